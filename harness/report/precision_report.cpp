#include "harness/report/precision_report.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "harness/log/log_reader.h"
#include "harness/report/noise_floor.h"
#include "src/log_schema.h"

namespace cliprepro {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The per-step value of a 0-d series (its stored mean).
Curve scalar_curve(const LogReader& log, const std::string& name) {
  Curve c;
  const TensorSeries* s = log.find(name);
  if (s == nullptr) return c;
  for (size_t i = 0; i < s->steps.size() && i < s->stats.size(); ++i) {
    c.push_back({s->steps[i], s->stats[i][stat_index(StatColumn::kMean)]});
  }
  return c;
}

std::map<int64_t, size_t> step_index(const std::vector<int64_t>& steps) {
  std::map<int64_t, size_t> m;
  for (size_t i = 0; i < steps.size(); ++i) m[steps[i]] = i;
  return m;
}

double relative(double diff, double ref) {
  if (ref == 0) return diff == 0 ? 0 : std::numeric_limits<double>::infinity();
  return diff / ref;
}

// |‖x‖ / ‖ref‖ − 1| of the total L2 norm of the tensors selected by `pick`, at each step both
// logged. Total rather than per layer: a layer whose reference norm is ~0 (an attention key bias
// whose gradient is rounding noise) would make a per-layer maximum meaningless.
template <class Pick>
Curve norm_drift(const LogReader& a, const LogReader& ref, Pick pick) {
  std::map<int64_t, std::pair<double, double>> sums;  // step -> (Σ‖x‖², Σ‖ref‖²)
  for (const auto& [name, s] : a.series()) {
    if (!pick(name)) continue;
    const TensorSeries* r = ref.find(name);
    if (r == nullptr || r->stats.empty() || s.stats.empty()) continue;
    const auto ri = step_index(r->steps);
    for (size_t i = 0; i < s.steps.size() && i < s.stats.size(); ++i) {
      const auto it = ri.find(s.steps[i]);
      if (it == ri.end() || it->second >= r->stats.size()) continue;
      const double n = s.stats[i][stat_index(StatColumn::kL2)],
                   nr = r->stats[it->second][stat_index(StatColumn::kL2)];
      auto& acc = sums[s.steps[i]];
      acc.first += n * n, acc.second += nr * nr;
    }
  }
  Curve c;
  for (const auto& [step, acc] : sums) {
    const double n = std::sqrt(acc.first), nr = std::sqrt(acc.second);
    c.push_back({step, std::isfinite(n) ? relative(std::abs(n - nr), nr)
                                        : std::numeric_limits<double>::infinity()});
  }
  return c;
}

struct SqSums {
  double diff = 0, ref = 0;
};

// ||a - r||^2 and ||r||^2 in fp64; any non-finite value in `a` that `r` lacks makes it inf.
SqSums squared_error(const torch::Tensor& a, const torch::Tensor& r) {
  const auto a64 = a.to(torch::kFloat64), r64 = r.to(torch::kFloat64);
  auto d = a64 - r64;
  const auto same = (a64 == r64) | (a64.isnan() & r64.isnan());
  d = torch::where(same, torch::zeros_like(d), d);
  SqSums s;
  s.diff = d.square().sum().item<double>();
  s.ref = torch::where(r64.isfinite(), r64, torch::zeros_like(r64)).square().sum().item<double>();
  if (std::isnan(s.diff)) s.diff = std::numeric_limits<double>::infinity();
  return s;
}

std::string family_of(const std::string& name) {
  for (const auto& f : report_families()) {
    if (name.starts_with(f + "/")) return f;
  }
  return "";
}

void compare_full(const LogReader& a, const LogReader& ref, const std::string& heat_family,
                  RunReport& out) {
  std::map<std::string, std::map<int64_t, SqSums>> fam;
  // Steps where a tensor (not a 0-d scalar) of the family is full in both: 0-d state (loss
  // scale, step counts, logit_scale) is stored in full every step and alone would make every
  // step look like a family-wide comparison.
  std::map<std::string, std::set<int64_t>> tensor_steps;
  std::vector<std::pair<int32_t, std::string>> heat_names;
  std::set<int64_t> heat_steps;
  std::map<std::string, std::map<int64_t, double>> heat_vals;
  for (const auto& [name, s] : a.series()) {
    const std::string f = family_of(name);
    const TensorSeries* r = ref.find(name);
    if (f.empty() || r == nullptr || s.shape != r->shape || s.full_steps.empty()) continue;
    const std::set<int64_t> ref_full(r->full_steps.begin(), r->full_steps.end());
    for (int64_t step : s.full_steps) {
      if (ref_full.count(step) == 0) continue;
      const SqSums e = squared_error(a.read_full(name, step), ref.read_full(name, step));
      if (!s.shape.empty()) tensor_steps[f].insert(step);
      auto& acc = fam[f][step];
      acc.diff += e.diff, acc.ref += e.ref;
      if (f == heat_family) {
        heat_vals[name][step] = relative(std::sqrt(e.diff), std::sqrt(e.ref));
        heat_steps.insert(step);
      }
    }
    if (f == heat_family && heat_vals.count(name) != 0) {
      heat_names.push_back({s.order.empty() ? 0 : s.order.front(), name});
    }
  }
  auto kept = [&](const std::string& f, int64_t step) {
    const auto it = tensor_steps.find(f);
    return it == tensor_steps.end() || it->second.count(step) != 0;
  };
  for (const auto& [f, by_step] : fam) {
    for (const auto& [step, e] : by_step) {
      if (!kept(f, step)) continue;
      out.family_error[f].push_back({step, relative(std::sqrt(e.diff), std::sqrt(e.ref))});
    }
  }
  std::sort(heat_names.begin(), heat_names.end());
  for (int64_t step : heat_steps) {
    if (kept(heat_family, step)) out.heat_steps.push_back(step);
  }
  for (const auto& [order, name] : heat_names) {
    out.heat_rows.push_back(name.substr(heat_family.size() + 1));
    std::vector<double> row;
    for (int64_t step : out.heat_steps) {
      const auto it = heat_vals[name].find(step);
      row.push_back(it == heat_vals[name].end() ? kNaN : it->second);
    }
    out.heat.push_back(std::move(row));
  }
}

int64_t first_param_difference(const LogReader& a, const LogReader& ref) {
  int64_t first = -1;
  for (const auto& [name, s] : a.series()) {
    if (!name.starts_with(family::kParams)) continue;
    const TensorSeries* r = ref.find(name);
    if (r == nullptr) continue;
    const auto ri = step_index(r->steps);
    for (size_t i = 0; i < s.steps.size(); ++i) {
      const auto it = ri.find(s.steps[i]);
      if (it != ri.end() && r->digests[it->second] != s.digests[i]) {
        if (first < 0 || s.steps[i] < first) first = s.steps[i];
        break;
      }
    }
  }
  return first;
}

RunReport analyse(const LogReader& a, const LogReader& ref, const std::string& label,
                  const std::string& heat_family, bool is_reference) {
  RunReport r;
  r.label = label;
  r.file = a.path().filename().string();
  r.loss = scalar_curve(a, tensor_name::kLoss);
  r.zeroshot_top1 = scalar_curve(a, tensor_name::kZeroShotTop1);
  r.loss_scale = scalar_curve(a, tensor_name::kLossScale);
  for (const auto& sv : scalar_curve(a, tensor_name::kFoundInf)) {
    if (sv.value != 0) r.skipped_steps.push_back(sv.step);
  }
  if (is_reference) return r;
  compare_full(a, ref, heat_family, r);
  auto bn = [](const char* suffix) {
    return [suffix](const std::string& n) {
      return n.starts_with(family::kBuffers) && n.ends_with(suffix);
    };
  };
  r.bn_running_mean_drift = norm_drift(a, ref, bn(".running_mean"));
  r.bn_running_var_drift = norm_drift(a, ref, bn(".running_var"));
  r.adam_exp_avg_drift =
      norm_drift(a, ref, [](const std::string& n) { return n.starts_with(family::kExpAvg); });
  r.adam_exp_avg_sq_drift =
      norm_drift(a, ref, [](const std::string& n) { return n.starts_with(family::kExpAvgSq); });
  r.first_param_difference = first_param_difference(a, ref);
  return r;
}

double last_value(const Curve& c) { return c.empty() ? kNaN : c.back().value; }

StepValue max_of(const Curve& c) {
  StepValue m{-1, kNaN};
  for (const auto& sv : c) {
    if (m.step < 0 || sv.value > m.value || (std::isnan(m.value) && !std::isnan(sv.value))) m = sv;
  }
  return m;
}

// Loss averaged over a trailing window (a sixteenth of the run): per-batch losses are too noisy
// to call a rise an instability.
Curve smoothed(const Curve& c) {
  const size_t w = std::max<size_t>(1, c.size() / 16);
  Curve out;
  double sum = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    sum += c[i].value;
    if (i >= w) sum -= c[i - w].value;
    if (i + 1 >= w) out.push_back({c[i].step, sum / double(w)});
  }
  return out;
}

// Largest rise of the smoothed loss above its running minimum so far (relative): a training
// instability such as the seed's drop around epoch 15.
StepValue worst_loss_spike(const Curve& loss) {
  StepValue worst{-1, 0};
  double lowest = std::numeric_limits<double>::infinity();
  for (const auto& sv : smoothed(loss)) {
    if (std::isfinite(lowest) && lowest > 0 && (sv.value - lowest) / lowest > worst.value) {
      worst = {sv.step, (sv.value - lowest) / lowest};
    }
    lowest = std::min(lowest, sv.value);
  }
  return worst;
}

// Mean of the last `frac` of a curve: the end of a noisy loss curve, not its last sample.
double tail_mean(const Curve& c, double frac = 0.1) {
  if (c.empty()) return kNaN;
  const size_t n = std::max<size_t>(1, size_t(double(c.size()) * frac));
  double s = 0;
  for (size_t i = c.size() - n; i < c.size(); ++i) s += c[i].value;
  return s / double(n);
}

RunFinding finding_of(const RunReport& r, const RunReport& ref) {
  RunFinding f;
  f.label = r.label;
  f.is_reference = &r == &ref;
  f.final_loss = last_value(r.loss);
  f.tail_loss = tail_mean(r.loss);
  f.reference_tail_loss = tail_mean(ref.loss);
  f.has_top1 = !r.zeroshot_top1.empty();
  f.final_top1 = last_value(r.zeroshot_top1);
  if (f.has_top1) {
    const StepValue best = max_of(r.zeroshot_top1);
    if (best.value > f.final_top1) f.best_top1 = best;
  }
  const StepValue spike = worst_loss_spike(r.loss);
  if (spike.step >= 0 && spike.value > 0.1) f.loss_spike = spike;
  f.first_param_difference = r.first_param_difference;
  const auto pe = r.family_error.find("params");
  if (pe != r.family_error.end() && !pe->second.empty()) f.params_error = pe->second.back();
  f.max_bn_running_var_drift = max_of(r.bn_running_var_drift);
  f.max_adam_exp_avg_sq_drift = max_of(r.adam_exp_avg_sq_drift);
  f.has_loss_scale = !r.loss_scale.empty();
  if (f.has_loss_scale) {
    f.first_loss_scale = r.loss_scale.front().value;
    f.last_loss_scale = r.loss_scale.back().value;
  }
  f.skipped_steps = r.skipped_steps.size();
  return f;
}

}  // namespace

const std::vector<std::string>& report_families() {
  static const std::vector<std::string> kFamilies{
      "activations",         "bn_batch", "grads", "params", "buffers", "optimizer/exp_avg",
      "optimizer/exp_avg_sq"};
  return kFamilies;
}

PrecisionReport build_precision_report(const std::vector<std::filesystem::path>& logs,
                                       const ReportOptions& opts) {
  if (logs.size() < 2)
    throw std::runtime_error("report: needs a reference log and at least one run");
  if (!opts.labels.empty() && opts.labels.size() != logs.size()) {
    throw std::runtime_error("report: " + std::to_string(opts.labels.size()) + " labels for " +
                             std::to_string(logs.size()) + " logs");
  }
  PrecisionReport rep;
  rep.title = opts.title;
  rep.heat_family = opts.heat_family;
  const LogReader ref(logs.front());
  for (size_t i = 0; i < logs.size(); ++i) {
    const LogReader a(logs[i]);
    std::string label = opts.labels.empty() ? a.attr("scenario_name") : opts.labels[i];
    if (label.empty()) label = logs[i].stem().string();
    rep.runs.push_back(analyse(a, ref, label, opts.heat_family, i == 0));
  }
  for (const auto& r : rep.runs) rep.findings.push_back(finding_of(r, rep.runs.front()));
  if (!opts.noise_floor.empty()) {
    std::string labels;
    for (size_t i = 0; i < rep.runs.size(); ++i) {
      if (rep.runs[i].label == opts.noise_floor && i > 0) {
        apply_noise_floor(rep, i);
        return rep;
      }
      labels += (i ? ", " : "") + rep.runs[i].label;
    }
    throw std::runtime_error("report: the noise floor '" + opts.noise_floor +
                             "' is none of the compared runs (" + labels + ")");
  }
  return rep;
}

}  // namespace cliprepro
