#include "harness/compare/compare.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "harness/compare/tensor_depth.h"
#include "harness/compare/tensor_diff.h"
#include "harness/log/digest.h"

namespace cliprepro {

const char* reason_name(DiffReason r) {
  switch (r) {
    case DiffReason::kDigest:
      return "digest";
    case DiffReason::kValues:
      return "values";
    case DiffReason::kCorrupt:
      return "corrupt";
    case DiffReason::kMissing:
      return "missing";
    case DiffReason::kSteps:
      return "steps";
    case DiffReason::kDtypeShape:
      return "dtype/shape";
  }
  return "?";
}
namespace {

int32_t order_at(const TensorSeries& s, int64_t step) {
  const int64_t row = s.row_at(step);
  return row < 0 ? 0 : s.order[size_t(row)];
}

// Calls fn(step, row tensor) for every stored full tensor, reading small series in one go.
template <typename Fn>
void for_each_full(const LogReader& log, const TensorSeries& s, Fn fn) {
  constexpr int64_t kBulkBytes = 64 << 20;
  int64_t row_bytes = int64_t(torch::elementSize(dtype_from_name(s.dtype)));
  for (auto d : s.shape) row_bytes *= d;
  const int64_t n = int64_t(s.full_steps.size());
  const int64_t per_read = std::max<int64_t>(1, kBulkBytes / std::max<int64_t>(row_bytes, 1));
  for (int64_t r0 = 0; r0 < n; r0 += per_read) {
    const int64_t k = std::min(per_read, n - r0);
    auto rows = log.read_full_rows(s.name, r0, k);
    for (int64_t i = 0; i < k; ++i) fn(s.full_steps[size_t(r0 + i)], rows[i]);
  }
}

TensorDiff corrupt_diff(const LogReader& log, const TensorSeries& s, int64_t step) {
  TensorDiff d;
  d.name = s.name;
  d.phase = s.phase;
  d.reason = DiffReason::kCorrupt;
  d.detail = "stored tensor in " + log.path().filename().string() + " does not match its digest";
  d.first_step = step;
  d.first_order = order_at(s, step);
  return d;
}

std::string fmt_double(double v) {
  std::ostringstream o;
  o.precision(6);
  o << v;
  return o.str();
}

TensorDiff missing_diff(const std::string& name, const std::string& phase,
                        const LogReader& only_in) {
  TensorDiff d;
  d.name = name;
  d.phase = phase;
  d.reason = DiffReason::kMissing;
  d.detail = "only in " + only_in.path().filename().string();
  return d;
}

// Where a step has digests only: the nearest steps at which both logs hold this tensor in full,
// so a reader knows where values can be inspected (or that `cliprepro bisect` is needed).
std::string nearby_full_steps(const TensorSeries& sa, const TensorSeries& sb, int64_t step) {
  int64_t before = -1, after = -1;
  for (const int64_t s : sb.full_steps) {
    if (!sa.has_full(s)) continue;
    if (s < step && s > before) before = s;
    if (s > step && (after < 0 || s < after)) after = s;
  }
  if (before < 0 && after < 0) return "digests only; no step has it in full in both logs";
  std::string t = "digests only; in full in both logs at step";
  if (before >= 0 && after >= 0) {
    return t + "s " + std::to_string(before) + " (before) and " + std::to_string(after) +
           " (after)";
  }
  return t + " " + std::to_string(before >= 0 ? before : after) +
         (before >= 0 ? " (before)" : " (after)");
}

uint64_t digest_at(const TensorSeries& s, int64_t step) {
  const int64_t row = s.row_at(step);
  return row < 0 ? 0 : s.digests[size_t(row)];
}

}  // namespace

std::set<int64_t> corrupt_steps(const LogReader& log, const TensorSeries& s) {
  std::set<int64_t> bad;
  if (s.full_steps.empty()) return bad;
  std::map<int64_t, uint64_t> digests;
  for (size_t i = 0; i < s.steps.size(); ++i) digests[s.steps[i]] = s.digests[i];
  for_each_full(log, s, [&](int64_t step, const torch::Tensor& t) {
    auto it = digests.find(step);
    if (it != digests.end() && tensor_digest(t) != it->second) bad.insert(step);
  });
  return bad;
}

CompareResult compare_logs(const LogReader& a, const LogReader& b, const CompareOptions& opts) {
  CompareResult r;
  r.tolerance = opts.tolerance.text();
  r.tolerance_reason = opts.tolerance_reason;
  const auto depth = tensor_depths(b);
  for (const LogReader* log : {&a, &b}) {
    const std::string why = log->unclean_reason();
    if (!why.empty()) {
      r.warnings.push_back(log->path().string() + " " + why +
                           ": the comparison covers only the steps it completed");
    }
  }
  int64_t only_a = 0, only_b = 0, uncompared_steps = 0;
  for (const auto& [name, sb] : b.series()) {
    if (a.find(name) == nullptr) {
      r.diffs.push_back(missing_diff(name, sb.phase, b));
      ++only_b;
    }
  }
  if (!opts.b_is_subset) {
    for (const auto& [name, sa] : a.series()) {
      if (b.find(name) == nullptr) {
        r.diffs.push_back(missing_diff(name, sa.phase, a));
        ++only_a;
      }
    }
  }
  for (const auto& [name, sa] : a.series()) {
    const TensorSeries* sbp = b.find(name);
    if (sbp == nullptr) continue;
    const TensorSeries& sb = *sbp;
    ++r.tensors_compared;
    r.compared.emplace_back(name, sa.phase);
    const Tolerance& tol = opts.tolerance.for_tensor(name);
    TensorDiff d;
    d.name = name;
    d.phase = sa.phase;
    if (sa.dtype != sb.dtype || sa.shape != sb.shape) {
      d.reason = DiffReason::kDtypeShape;
      d.detail = sa.dtype + " vs " + sb.dtype;
      r.diffs.push_back(d);
      continue;
    }
    std::map<int64_t, uint64_t> da;
    for (size_t i = 0; i < sa.steps.size(); ++i) da[sa.steps[i]] = sa.digests[i];
    std::vector<int64_t> differing, missing_in_a;
    for (size_t i = 0; i < sb.steps.size(); ++i) {
      auto it = da.find(sb.steps[i]);
      if (it == da.end()) {
        if (!opts.common_steps) missing_in_a.push_back(sb.steps[i]);
        ++uncompared_steps;
        continue;
      }
      ++d.steps_compared;
      ++r.digests_compared;
      if (it->second != sb.digests[i]) differing.push_back(sb.steps[i]);
    }
    // With `verify`, a stored tensor that no longer hashes to its digest is compared by value
    // even when the two logs' digests agree: the bits on disk are what a reader would trust.
    std::set<int64_t> bad_a, bad_b;
    if (opts.verify) bad_a = corrupt_steps(a, sa), bad_b = corrupt_steps(b, sb);
    for (const auto* bad : {&bad_a, &bad_b})
      for (const int64_t step : *bad)
        if (da.count(step) && sa.has_full(step) && sb.has_full(step) &&
            std::find(differing.begin(), differing.end(), step) == differing.end())
          differing.push_back(step);
    std::sort(differing.begin(), differing.end());
    d.steps_differing = int64_t(differing.size());
    r.full_compared += int64_t(std::count_if(
        sb.full_steps.begin(), sb.full_steps.end(), [&a_full = sa.full_steps](int64_t s) {
          // An init-capture: clang 14 (the sanitize preset) cannot capture a structured binding.
          return std::find(a_full.begin(), a_full.end(), s) != a_full.end();
        }));
    // Steps whose digests differ, in order: with both full tensors stored, the tolerance
    // decides (and the first differing element is located); without, the step differs.
    for (const int64_t step : differing) {
      auto ra = std::find(sa.full_steps.begin(), sa.full_steps.end(), step);
      auto rb = std::find(sb.full_steps.begin(), sb.full_steps.end(), step);
      if (ra == sa.full_steps.end() || rb == sb.full_steps.end()) {
        d.reason = DiffReason::kDigest;
        d.first_step = step;
        d.detail = nearby_full_steps(sa, sb, step);
        break;
      }
      auto ta = a.read_full_rows(name, int64_t(ra - sa.full_steps.begin()), 1)[0];
      auto tb = b.read_full_rows(name, int64_t(rb - sb.full_steps.begin()), 1)[0];
      // Read anyway: a stored tensor that does not hash to its digest is reported as corrupt.
      if (tensor_digest(ta) != digest_at(sa, step)) bad_a.insert(step);
      if (tensor_digest(tb) != digest_at(sb, step)) bad_b.insert(step);
      if (tol.kind != Tolerance::Kind::kBitwise &&
          check_tolerance(tol, ta, tb, depth.at(name)).pass) {
        ++d.steps_tolerated;
        ++r.steps_tolerated;
        continue;
      }
      const ElementwiseDiff v = diff_tensors(ta, tb);
      d.reason = v.bitwise_equal ? DiffReason::kDigest
                                 : DiffReason::kValues;  // equal bits: a digest is wrong
      d.first_step = step;
      d.elements_differing = v.differing;
      d.first_element = v.first_differing;
      d.max_abs_err = v.max_abs;
      d.max_ulp = v.max_ulp;
      d.cosine = v.cosine;
      break;
    }
    if (d.first_step >= 0) {
      d.first_order = order_at(sb, d.first_step);
      r.diffs.push_back(d);
    } else if (!missing_in_a.empty()) {
      d.reason = DiffReason::kSteps;
      d.detail = "step " + std::to_string(missing_in_a.front()) + " missing in " +
                 a.path().filename().string();
      d.first_step = missing_in_a.front();
      r.diffs.push_back(d);
    } else if (!opts.b_is_subset && !opts.common_steps && sa.steps != sb.steps) {
      d.reason = DiffReason::kSteps;
      d.detail =
          std::to_string(sa.steps.size()) + " vs " + std::to_string(sb.steps.size()) + " steps";
      d.first_step =
          std::min(sa.steps.empty() ? 0 : sa.steps.back(), sb.steps.empty() ? 0 : sb.steps.back());
      r.diffs.push_back(d);
    }
    if (!bad_a.empty()) r.diffs.push_back(corrupt_diff(a, sa, *bad_a.begin()));
    if (!bad_b.empty()) r.diffs.push_back(corrupt_diff(b, sb, *bad_b.begin()));
  }
  if (opts.common_steps) {
    r.warnings.push_back("--common-steps: " + std::to_string(uncompared_steps) +
                         " (tensor, step) rows of " + b.path().string() + " have none in " +
                         a.path().string() + " and were not compared");
  }
  if (only_a > 0 || only_b > 0) {
    r.warnings.push_back(std::to_string(only_a) + " tensor(s) only in " + a.path().string() + ", " +
                         std::to_string(only_b) + " only in " + b.path().string());
  }
  std::stable_sort(r.diffs.begin(), r.diffs.end(), [](const TensorDiff& x, const TensorDiff& y) {
    if (x.first_step != y.first_step) return x.first_step < y.first_step;
    return x.first_order < y.first_order;
  });
  return r;
}

std::string format_compare(const CompareResult& r, const std::string& label_a,
                           const std::string& label_b, size_t max_rows) {
  std::ostringstream o;
  if (r.equal()) {
    if (r.steps_tolerated == 0) {
      o << "MATCH: " << label_a << " and " << label_b << " are bitwise identical (";
    } else {
      o << "MATCH within tolerance " << r.tolerance << ": " << label_a << " and " << label_b << " ("
        << r.steps_tolerated << " tensor-steps within tolerance but not bitwise; ";
    }
    o << r.tensors_compared << " tensors, " << r.digests_compared << " digests, " << r.full_compared
      << " full tensors compared)\n";
    if (!r.tolerance_reason.empty()) o << "policy: " << r.tolerance_reason << "\n";
    for (const auto& w : r.warnings) o << "warning: " << w << "\n";
    return o.str();
  }
  const auto& f = r.diffs.front();
  o << "DIFFER: " << label_a << " vs " << label_b << " (tolerance " << r.tolerance << ")\n";
  if (!r.tolerance_reason.empty()) o << "policy: " << r.tolerance_reason << "\n";
  for (const auto& w : r.warnings) o << "warning: " << w << "\n";
  o << "first difference: ";
  if (f.first_step >= 0) o << "step " << f.first_step << ", ";
  o << "phase " << f.phase << ", tensor " << f.name << " (" << reason_name(f.reason);
  if (!f.detail.empty()) o << ": " << f.detail;
  o << ")\n";
  if (f.elements_differing > 0) {
    o << "  " << f.elements_differing << " element(s) differ, first at flat index "
      << f.first_element << ", max abs error " << fmt_double(f.max_abs_err) << "\n";
  }
  o << r.diffs.size() << " of " << r.tensors_compared << " tensors differ:\n";
  o << "  step  phase      reason    steps≠/compared  max|Δ|        tensor\n";
  for (size_t i = 0; i < r.diffs.size() && i < max_rows; ++i) {
    const auto& d = r.diffs[i];
    char line[160];
    std::snprintf(line, sizeof line, "  %4lld  %-9s  %-8s  %6lld/%-8lld  %-12s  ",
                  (long long)d.first_step, d.phase.c_str(), reason_name(d.reason),
                  (long long)d.steps_differing, (long long)d.steps_compared,
                  std::isnan(d.max_abs_err) ? "-" : fmt_double(d.max_abs_err).c_str());
    o << line << d.name << "\n";
  }
  if (r.diffs.size() > max_rows) o << "  ... " << r.diffs.size() - max_rows << " more\n";
  return o.str();
}

}  // namespace cliprepro
