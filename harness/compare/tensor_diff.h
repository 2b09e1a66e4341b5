// Element-wise comparison of two tensors: bitwise equality, max absolute / relative error and
// max ULP distance (sign-aware, in the tensors' own float format). The table printed by the
// OpenCLIP parity tests, and the metric base of `cliprepro compare`.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cliprepro {

struct ElementwiseDiff {
  bool same_shape = true;
  bool bitwise_equal = true;
  int64_t numel = 0;
  int64_t differing = 0;         // elements whose bits differ
  int64_t first_differing = -1;  // flat index of the first of them; -1 when none
  double max_abs = 0.0;          // NaN-safe: NaN vs NaN counts as equal, NaN vs number as +inf
  double max_rel = 0.0;          // |a-b| / max(|a|,|b|); 0 where both are 0
  // Largest distance in units in the last place of the common float format (fp64/fp32/fp16/
  // bf16); -0 and +0 are 0 apart; NaN vs a number is INT64_MAX. Integers: max |a-b|.
  int64_t max_ulp = 0;
  // Cosine similarity of the flattened tensors in float64: 1 for bitwise-equal tensors (also
  // all-zero or empty ones), 0 when exactly one is all zeros, NaN when a NaN or Inf is involved
  // in a difference (no direction to compare).
  double cosine = 1.0;
};

// a and b must have the same dtype (otherwise both are compared in float64 and max_ulp is
// measured in float64 ULPs).
ElementwiseDiff diff_tensors(const torch::Tensor& a, const torch::Tensor& b);

// Distance in ULPs between two floats of the same format (bits as unsigned integers).
int64_t ulp_distance_f32(float a, float b);

// A fixed-width table: name, dtype, numel, differing, max abs, max rel, max ULP.
std::string format_diff_table(const std::vector<std::pair<std::string, ElementwiseDiff>>& rows,
                              const std::vector<std::string>& dtypes);

}  // namespace cliprepro
