// OpenCLIP's --dataset-type, plus cliprepro's seeded synthetic shapes.
#pragma once

namespace cliprepro {

enum class DatasetType { kSynthetic, kCsv, kWebdataset };

}  // namespace cliprepro
