// JPEG/PNG decoding that reproduces PIL's Image.open(...) pixels bit for bit, keeping PIL's
// image mode: OpenCLIP crops and resizes *before* convert('RGB'), and PIL resizes P images with
// nearest neighbour and RGBA/LA images premultiplied, so the mode matters for parity.
#pragma once
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "src/data/dataset_type.h"

namespace cliprepro {

// PIL modes that JPEG and PNG files open as.
enum class PilMode { kOne, kL, kLA, kP, kRGB, kRGBA, kI16, kCMYK };

const char* pil_mode_name(PilMode m);
int pil_mode_bands(PilMode m);

struct PilImage {
  PilMode mode = PilMode::kRGB;
  // (H, W, bands) contiguous. uint8 for every mode but kI16, which is int32 in [0, 65535].
  // kOne stores 0/255 (as PIL does internally), kP stores palette indices.
  torch::Tensor pixels;
  std::vector<uint8_t> palette;  // kP only: 256 RGB triples (missing entries zero)

  int64_t height() const { return pixels.size(0); }
  int64_t width() const { return pixels.size(1); }
};

enum class ImageFormat { kUnknown, kJpeg, kPng };
// By magic bytes (JPEG FF D8 FF, PNG's 8-byte signature).
ImageFormat detect_image_format(const uint8_t* data, size_t size);

// Decodes JPEG (libjpeg, ISLOW IDCT, fancy upsampling: PIL's defaults) or PNG (libpng, no gamma,
// 16-bit samples cut to their high byte except 16-bit grey, as PIL's PNG plugin does).
// Throws std::runtime_error "<name>: <reason>" on truncated, corrupt or unsupported input.
// Image bombs: decoders refuse an image of more pixels than this before allocating for it (the
// scenario key max-image-pixels sets it, as PIL's Image.MAX_IMAGE_PIXELS is set; <= 0: no limit),
// and read_binary_file refuses what is not a regular file of at most kMaxImageFileBytes.
inline constexpr uintmax_t kMaxImageFileBytes = uintmax_t(1) << 30;
void set_max_image_pixels(int64_t pixels);

PilImage decode_image(const uint8_t* data, size_t size, const std::string& name);
PilImage decode_image_file(const std::string& path);

// PIL's convert('RGB'): (H, W, 3) uint8.
torch::Tensor pil_to_rgb(const PilImage& img);
// decode + convert('RGB').
torch::Tensor decode_rgb(const uint8_t* data, size_t size, const std::string& name);
torch::Tensor decode_rgb_file(const std::string& path);

std::vector<uint8_t> read_binary_file(const std::string& path);

}  // namespace cliprepro
