// Per-tensor statistics logged beside each digest. Computed over finite elements in float64;
// NaN/Inf/zero are counted. CUDA tensors are reduced on the device: only 8 numbers come back.
#pragma once
#include <torch/types.h>

#include <array>
#include <optional>

#include "harness/log/host_digest.h"
#include "src/log_schema.h"

namespace cliprepro {

struct TensorStats : HostStats {
  TensorStats() = default;
  explicit TensorStats(const HostStats& s) : HostStats(s) {}
  TensorStats(double mn, double mx, double me, double sd, double l, double na, double in, double z)
      : HostStats{mn, mx, me, sd, l, na, in, z} {}
  // In kStatColumns order.
  StatRow as_array() const { return {min, max, mean, std, l2, nan, inf, zero}; }
};

// The host_digest.h element kind of a dtype; none for a dtype no log holds.
std::optional<ElemKind> elem_kind(torch::ScalarType t);

// `t` must be contiguous when on the CPU (the log writer passes its host copy).
TensorStats tensor_stats(const torch::Tensor& t);

}  // namespace cliprepro
