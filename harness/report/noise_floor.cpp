#include "harness/report/noise_floor.h"

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "harness/report/svg_plot.h"

namespace cliprepro {
namespace {

constexpr double kNoMultiple = std::numeric_limits<double>::quiet_NaN();

std::map<int64_t, double> values_by_step(const Curve& c) {
  std::map<int64_t, double> m;
  for (const auto& sv : c) m[sv.step] = sv.value;
  return m;
}

// The run's curve over the floor's, at the steps both have.
Curve divided_by_floor(const Curve& drift, const Curve& floor) {
  const auto f = values_by_step(floor);
  Curve out;
  for (const auto& sv : drift) {
    const auto it = f.find(sv.step);
    if (it != f.end()) out.push_back({sv.step, floor_multiple(sv.value, it->second)});
  }
  return out;
}

double value_at_step(const Curve& c, int64_t step) {
  for (const auto& sv : c)
    if (sv.step == step) return sv.value;
  return kNoMultiple;
}

}  // namespace

double floor_multiple(double drift, double floor) {
  if (std::isnan(drift) || std::isnan(floor)) return kNoMultiple;
  if (floor == 0) return drift == 0 ? kNoMultiple : std::numeric_limits<double>::infinity();
  return drift / floor;
}

std::string format_multiple(double m) {
  if (std::isnan(m)) return "—";
  if (std::isinf(m)) return "∞";
  return format_double(m >= 1000 ? "%.1e×" : m >= 10 ? "%.0f×" : m >= 1 ? "%.1f×" : "%.2f×", m);
}

void apply_noise_floor(PrecisionReport& rep, size_t floor_index) {
  if (floor_index == 0 || floor_index >= rep.runs.size())
    throw std::runtime_error("report: the noise floor must be one of the runs, not the reference");
  const RunReport& floor = rep.runs[floor_index];
  const RunFinding& floor_finding = rep.findings[floor_index];
  rep.noise_floor = floor.label;
  rep.findings[floor_index].is_noise_floor = true;
  for (size_t i = 1; i < rep.runs.size(); ++i) {
    if (i == floor_index) continue;
    RunReport& r = rep.runs[i];
    for (const auto& [family, curve] : r.family_error) {
      const auto it = floor.family_error.find(family);
      if (it != floor.family_error.end())
        r.floor_multiple[family] = divided_by_floor(curve, it->second);
    }
    r.floor_multiple[kBnRunningVarNorm] =
        divided_by_floor(r.bn_running_var_drift, floor.bn_running_var_drift);
    r.floor_multiple[kAdamExpAvgSqNorm] =
        divided_by_floor(r.adam_exp_avg_sq_drift, floor.adam_exp_avg_sq_drift);
    RunFinding& f = rep.findings[i];
    if (f.params_error.step >= 0) {
      const auto it = floor.family_error.find("params");
      if (it != floor.family_error.end())
        f.params_floor_multiple =
            floor_multiple(f.params_error.value, value_at_step(it->second, f.params_error.step));
    }
    // The largest norm drift over the run against the floor's largest: these per-step drifts
    // cross zero (|norm / norm_ref - 1|), so a same-step ratio would be noise.
    if (f.max_bn_running_var_drift.step >= 0 && floor_finding.max_bn_running_var_drift.step >= 0)
      f.bn_running_var_floor_multiple = floor_multiple(
          f.max_bn_running_var_drift.value, floor_finding.max_bn_running_var_drift.value);
    if (f.max_adam_exp_avg_sq_drift.step >= 0 && floor_finding.max_adam_exp_avg_sq_drift.step >= 0)
      f.adam_exp_avg_sq_floor_multiple = floor_multiple(
          f.max_adam_exp_avg_sq_drift.value, floor_finding.max_adam_exp_avg_sq_drift.value);
  }
}

}  // namespace cliprepro
