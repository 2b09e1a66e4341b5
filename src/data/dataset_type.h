// OpenCLIP's --dataset-type, plus cliprepro's seeded synthetic shapes and the replay of a
// recorded log's batches (src/train/replay.h); and the image-bomb bound every decoder applies
// (src/data/image_decode.h), kept here so configs need no LibTorch header.
#pragma once
#include <cstdint>

namespace cliprepro {

enum class DatasetType { kSynthetic, kCsv, kWebdataset, kReplay };

inline constexpr int64_t kDefaultMaxImagePixels = 25'000'000;

}  // namespace cliprepro
