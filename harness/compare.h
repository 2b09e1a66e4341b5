// Compares two logs (or a log against a golden): per tensor and step, digests and, where both
// stored them, the full tensors' bits; finds the first difference in (step, execution order).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "harness/log_reader.h"

namespace cliprepro {

struct CompareOptions {
  // Golden check: B may hold a subset of A's tensors and steps; A's extras are not differences.
  bool b_is_subset = false;
};

struct TensorDiff {
  std::string name, phase;
  std::string reason;  // "digest", "values", "corrupt", "missing", "steps", "dtype/shape"
  std::string detail;
  int64_t first_step = -1;  // -1: structural (no step)
  int32_t first_order = 0;
  int64_t steps_compared = 0, steps_differing = 0;
  // From full tensors at first_step, when both logs stored them there.
  int64_t elements_differing = -1, first_element = -1;
  double max_abs_err = std::numeric_limits<double>::quiet_NaN();
};

struct CompareResult {
  int64_t tensors_compared = 0, digests_compared = 0, full_compared = 0;
  std::vector<TensorDiff> diffs;  // sorted: first divergence first
  bool equal() const { return diffs.empty(); }
};

CompareResult compare_logs(const LogReader& a, const LogReader& b, const CompareOptions& opts = {});

// Terminal summary: verdict, first difference, then one row per differing tensor (up to max_rows).
std::string format_compare(const CompareResult& r, const std::string& label_a,
                           const std::string& label_b, size_t max_rows = 20);

}  // namespace cliprepro
