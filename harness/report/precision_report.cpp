#include "harness/report/precision_report.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>

#include "harness/log/log_reader.h"
#include "harness/report/markup.h"
#include "harness/report/svg_plot.h"
#include "src/log_schema.h"

namespace cliprepro {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

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

std::string pct(double v) { return std::isfinite(v) ? fmt("%.1f%%", 100 * v) : "n/a"; }
std::string sci(double v) { return std::isfinite(v) ? fmt("%.2e", v) : format_number(v); }

std::vector<std::string> findings(const PrecisionReport& rep) {
  std::vector<std::string> out;
  const RunReport& ref = rep.runs.front();
  const double ref_tail = tail_mean(ref.loss);
  for (const auto& r : rep.runs) {
    std::ostringstream f;
    const double tail = tail_mean(r.loss);
    f << "**" << r.label << "**: loss over the last 10% of steps " << fmt("%.4f", tail);
    if (&r != &ref) {
      f << " (reference " << fmt("%.4f", ref_tail) << ", "
        << fmt("%+.1f%%", 100 * (tail / ref_tail - 1)) << ")";
    }
    if (!r.zeroshot_top1.empty()) {
      f << "; zero-shot top-1 at the end " << pct(last_value(r.zeroshot_top1));
      const StepValue best = max_of(r.zeroshot_top1);
      if (best.value > last_value(r.zeroshot_top1)) {
        f << " (best " << pct(best.value) << " at step " << best.step << ")";
      }
    }
    const StepValue spike = worst_loss_spike(r.loss);
    if (spike.step >= 0 && spike.value > 0.1) {
      f << "; smoothed loss rose " << fmt("%+.0f%%", 100 * spike.value)
        << " above its running minimum at step " << spike.step;
    }
    if (&r != &ref) {
      if (r.first_param_difference < 0) {
        f << "; parameters bitwise equal to the reference at every logged step";
      } else {
        f << "; parameters first differ from the reference at step " << r.first_param_difference;
      }
      const auto pe = r.family_error.find("params");
      if (pe != r.family_error.end() && !pe->second.empty()) {
        f << ", relative L2 error of all parameters " << sci(pe->second.back().value) << " at step "
          << pe->second.back().step;
      }
      const StepValue bv = max_of(r.bn_running_var_drift);
      if (bv.step >= 0) {
        f << "; BatchNorm running_var norm drift up to " << sci(bv.value) << " (step " << bv.step
          << ")";
      }
      const StepValue av = max_of(r.adam_exp_avg_sq_drift);
      if (av.step >= 0) {
        f << "; Adam exp_avg_sq norm drift up to " << sci(av.value) << " (step " << av.step << ")";
      }
    }
    if (!r.loss_scale.empty()) {
      f << "; loss scale " << format_number(r.loss_scale.front().value) << " -> "
        << format_number(r.loss_scale.back().value) << ", " << r.skipped_steps.size()
        << " skipped step(s)";
    }
    out.push_back(f.str() + ".");
  }
  return out;
}

std::string curve_cell(const Curve& c, int64_t step) {
  for (const auto& sv : c) {
    if (sv.step == step) return sci(sv.value);
  }
  return "";
}

PlotSeries to_series(const std::string& label, const Curve& c) {
  PlotSeries s{label, {}, {}};
  for (const auto& sv : c) s.x.push_back(double(sv.step)), s.y.push_back(sv.value);
  return s;
}

LineChart chart_of(const PrecisionReport& rep, const std::string& title, const std::string& y,
                   bool log_y, bool with_reference, Curve RunReport::*member) {
  LineChart ch{title, "step", y, log_y, {}};
  for (size_t i = with_reference ? 0 : 1; i < rep.runs.size(); ++i) {
    const Curve& c = rep.runs[i].*member;
    if (!c.empty()) ch.series.push_back(to_series(rep.runs[i].label, c));
  }
  return ch;
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
  rep.findings = findings(rep);
  return rep;
}

std::string precision_report_markdown(const PrecisionReport& rep) {
  std::ostringstream o;
  const RunReport& ref = rep.runs.front();
  o << "# " << rep.title << "\n\nReference: **" << ref.label << "** (`" << ref.file
    << "`). Generated by `cliprepro report`; every figure below is computed from the logs.\n\n"
    << "## Findings\n\n";
  for (const auto& f : rep.findings) o << "- " << f << "\n";
  o << "\n## Summary\n\n| run | log | final loss | zero-shot top-1 | first param difference | "
       "params rel. L2 error (last full step) | max BN running_var drift | max Adam exp_avg_sq "
       "drift | skipped steps |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rep.runs) {
    const bool is_ref = &r == &ref;
    const auto pe = r.family_error.find("params");
    o << "| " << r.label << " | `" << r.file << "` | " << fmt("%.4f", last_value(r.loss)) << " | "
      << pct(last_value(r.zeroshot_top1)) << " | "
      << (is_ref                         ? "reference"
          : r.first_param_difference < 0 ? "none"
                                         : std::to_string(r.first_param_difference))
      << " | "
      << (pe == r.family_error.end() || pe->second.empty() ? "" : sci(pe->second.back().value))
      << " | " << (is_ref ? "" : sci(max_of(r.bn_running_var_drift).value)) << " | "
      << (is_ref ? "" : sci(max_of(r.adam_exp_avg_sq_drift).value)) << " | "
      << (r.loss_scale.empty() ? "" : std::to_string(r.skipped_steps.size())) << " |\n";
  }
  for (size_t i = 1; i < rep.runs.size(); ++i) {
    const RunReport& r = rep.runs[i];
    if (r.family_error.empty()) continue;
    std::set<int64_t> steps;
    for (const auto& [f, c] : r.family_error) {
      for (const auto& sv : c) steps.insert(sv.step);
    }
    o << "\n## Error growth: " << r.label << " vs " << ref.label
      << "\n\nRelative L2 error of each family (all its tensors together) at the steps both logs "
         "hold full tensors.\n\n| family |";
    for (int64_t s : steps) o << " step " << s << " |";
    o << "\n|---|";
    for (size_t k = 0; k < steps.size(); ++k) o << "---|";
    o << "\n";
    for (const auto& f : report_families()) {
      const auto it = r.family_error.find(f);
      if (it == r.family_error.end()) continue;
      o << "| " << f << " |";
      for (int64_t s : steps) o << " " << curve_cell(it->second, s) << " |";
      o << "\n";
    }
  }
  o << "\nThe HTML report (`report.html`) has the curves, the heat maps and every value as a "
       "tooltip.\n";
  return o.str();
}

std::string precision_report_html(const PrecisionReport& rep) {
  std::ostringstream o;
  const RunReport& ref = rep.runs.front();
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << markup_escape(rep.title)
    << "</title>\n<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;}"
       "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
       "h2{margin-top:1.5em}</style></head><body>\n<h1>"
    << markup_escape(rep.title) << "</h1>\n<p>Reference: <b>" << markup_escape(ref.label)
    << "</b> (<code>" << markup_escape(ref.file)
    << "</code>). Hover a point or cell for its exact value.</p>\n<h2>Findings</h2>\n<ul>\n";
  for (const auto& f : rep.findings) {
    std::string text = markup_escape(f);
    for (size_t p; (p = text.find("**")) != std::string::npos;) {
      const size_t q = text.find("**", p + 2);
      if (q == std::string::npos) break;
      text =
          text.substr(0, p) + "<b>" + text.substr(p + 2, q - p - 2) + "</b>" + text.substr(q + 2);
    }
    o << "<li>" << text << "</li>\n";
  }
  o << "</ul>\n<h2>Loss</h2>\n"
    << render_line_chart(chart_of(rep, "Training loss", "loss", false, true, &RunReport::loss));
  if (!ref.zeroshot_top1.empty()) {
    o << render_line_chart(
        chart_of(rep, "Zero-shot top-1", "top-1", false, true, &RunReport::zeroshot_top1));
  }
  o << "<h2>Error growth against " << markup_escape(ref.label) << "</h2>\n";
  for (const auto& f : report_families()) {
    LineChart ch{"Relative L2 error: " + f, "step", "||x - ref|| / ||ref||", true, {}};
    for (size_t i = 1; i < rep.runs.size(); ++i) {
      const auto it = rep.runs[i].family_error.find(f);
      if (it != rep.runs[i].family_error.end())
        ch.series.push_back(to_series(rep.runs[i].label, it->second));
    }
    if (!ch.series.empty()) o << render_line_chart(ch);
  }
  for (size_t i = 1; i < rep.runs.size(); ++i) {
    const RunReport& r = rep.runs[i];
    if (r.heat.empty()) continue;
    HeatMap m{"Step x tensor: " + rep.heat_family + " of " + r.label + " vs " + ref.label,
              "relative L2 error",
              r.heat_rows,
              {},
              r.heat};
    for (int64_t s : r.heat_steps) m.cols.push_back(double(s));
    o << render_heat_map(m);
  }
  o << "<h2>BatchNorm running statistics and Adam moments</h2>\n<p>Every logged step, from the "
       "stored L2 norms: |norm / norm<sub>ref</sub> - 1| of the total norm over all layers.</p>\n"
    << render_line_chart(chart_of(rep, "BatchNorm running_var drift", "rel. norm drift", true,
                                  false, &RunReport::bn_running_var_drift))
    << render_line_chart(chart_of(rep, "BatchNorm running_mean drift", "rel. norm drift", true,
                                  false, &RunReport::bn_running_mean_drift))
    << render_line_chart(chart_of(rep, "Adam exp_avg drift", "rel. norm drift", true, false,
                                  &RunReport::adam_exp_avg_drift))
    << render_line_chart(chart_of(rep, "Adam exp_avg_sq drift", "rel. norm drift", true, false,
                                  &RunReport::adam_exp_avg_sq_drift));
  bool any_scaler = false;
  for (const auto& r : rep.runs) any_scaler |= !r.loss_scale.empty();
  if (any_scaler) {
    o << "<h2>Loss scale</h2>\n"
      << render_line_chart(
             chart_of(rep, "GradScaler scale", "scale", true, true, &RunReport::loss_scale))
      << "<table><tr><th>run</th><th>skipped steps (found inf/NaN)</th></tr>\n";
    for (const auto& r : rep.runs) {
      if (r.loss_scale.empty()) continue;
      o << "<tr><td>" << markup_escape(r.label) << "</td><td>";
      for (size_t k = 0; k < r.skipped_steps.size(); ++k)
        o << (k ? ", " : "") << r.skipped_steps[k];
      o << "</td></tr>\n";
    }
    o << "</table>\n";
  }
  o << "<h2>Runs</h2>\n<table><tr><th>run</th><th>log</th></tr>\n";
  for (const auto& r : rep.runs) {
    o << "<tr><td>" << markup_escape(r.label) << "</td><td><code>" << markup_escape(r.file)
      << "</code></td></tr>\n";
  }
  o << "</table>\n</body></html>\n";
  return o.str();
}

}  // namespace cliprepro
