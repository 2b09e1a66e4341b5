// Per-tensor statistics logged beside each digest. Computed over finite elements in float64;
// NaN/Inf/zero are counted. CUDA tensors are reduced on the device: only 8 numbers come back.
#pragma once
#include <torch/types.h>

#include <array>

#include "src/log_schema.h"

namespace cliprepro {

struct TensorStats {
  double min = 0, max = 0, mean = 0, std = 0, l2 = 0;  // over finite elements; NaN if none
  double nan = 0, inf = 0, zero = 0;                   // counts
  // In kStatColumns order.
  StatRow as_array() const { return {min, max, mean, std, l2, nan, inf, zero}; }
};

// `t` must be contiguous when on the CPU (the log writer passes its host copy).
TensorStats tensor_stats(const torch::Tensor& t);

}  // namespace cliprepro
