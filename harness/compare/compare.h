// Compares two logs (or a log against a golden): per tensor and step, digests first; full tensors
// are read only at steps whose digests differ (their bits located, the tolerance applied) or, with
// `verify`, all of them, re-hashed against their digests. Finds the first difference in (step,
// execution order).
#pragma once
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "harness/compare/tolerance.h"
#include "harness/log/log_reader.h"

namespace cliprepro {

struct CompareOptions {
  // Golden check: B may hold a subset of A's tensors and steps; A's extras are not differences.
  bool b_is_subset = false;
  // Applied where both logs stored the full tensor of a step whose digests differ; a step with
  // digests only can match bitwise or not at all.
  TolerancePolicy tolerance;
  std::string tolerance_reason;  // why this policy (golden check: fingerprint match or not)
  // Re-hash every stored full tensor of both logs against its digest (`compare --verify`, golden
  // checks): a corrupt file then never matches. Off, a tensor whose digests all agree is settled
  // without reading it; the full tensors read at differing steps are still checked.
  bool verify = false;
  // Compare each tensor at the steps both logs hold only (`compare --common-steps`): a recorded
  // --window or a resumed run against the whole run. Off, a step one log lacks is a difference.
  bool common_steps = false;
};

// Why a tensor differs. kDigest: digests differ where a log holds digests only; kValues: full
// tensors differ (located to the element); kCorrupt: a stored tensor no longer hashes to its
// digest; kMissing: in one log only; kSteps: logged at different steps; kDtypeShape.
enum class DiffReason { kDigest, kValues, kCorrupt, kMissing, kSteps, kDtypeShape };
const char* reason_name(DiffReason r);  // "digest", "values", …, "dtype/shape" (the outputs')

struct TensorDiff {
  std::string name, phase;
  DiffReason reason = DiffReason::kDigest;
  std::string detail;
  int64_t first_step = -1;  // -1: structural (no step)
  int32_t first_order = 0;
  int64_t steps_compared = 0, steps_differing = 0;
  // From full tensors at first_step, when both logs stored them there.
  int64_t elements_differing = -1, first_element = -1;
  double max_abs_err = std::numeric_limits<double>::quiet_NaN();
  double cosine = std::numeric_limits<double>::quiet_NaN();
  int64_t max_ulp = -1;
  int64_t steps_tolerated = 0;  // digests differed, values within the tolerance
};

struct CompareResult {
  int64_t tensors_compared = 0, digests_compared = 0, full_compared = 0;
  int64_t steps_tolerated = 0;  // (tensor, step) pairs within the tolerance but not bitwise
  std::string tolerance = "bitwise";
  std::string tolerance_reason;
  std::vector<std::pair<std::string, std::string>> compared;  // (tensor, phase) in both logs
  std::vector<TensorDiff> diffs;                              // sorted: first divergence first
  // Said beside the verdict: a log not closed cleanly (a match then covers only the steps it
  // completed), tensors one side holds that the other does not (also listed as differences).
  std::vector<std::string> warnings;
  bool equal() const { return diffs.empty(); }
};

CompareResult compare_logs(const LogReader& a, const LogReader& b, const CompareOptions& opts = {});

// Steps of `s` whose stored full tensor does not hash to the logged digest of that step.
std::set<int64_t> corrupt_steps(const LogReader& log, const TensorSeries& s);

// Terminal summary: verdict, first difference, then one row per differing tensor (up to max_rows).
std::string format_compare(const CompareResult& r, const std::string& label_a,
                           const std::string& label_b, size_t max_rows = 20);

}  // namespace cliprepro
