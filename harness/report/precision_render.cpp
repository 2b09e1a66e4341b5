#include "harness/report/precision_render.h"

#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "harness/report/markup.h"
#include "harness/report/noise_floor.h"
#include "harness/report/svg_plot.h"

namespace cliprepro {
namespace {

std::string pct(double v) { return std::isfinite(v) ? format_double("%.1f%%", 100 * v) : "n/a"; }
std::string sci(double v) { return std::isfinite(v) ? format_double("%.2e", v) : format_number(v); }

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

// " (3.1× the noise floor)", " (within the noise floor: 0.52×)"; "" without a multiple.
std::string floor_clause(double m, const char* whose) {
  if (std::isnan(m)) return "";
  if (m <= 1)
    return std::string(" (within the noise floor") + whose + ": " + format_multiple(m) + ")";
  return " (" + format_multiple(m) + " the noise floor" + whose + ")";
}

// The multiple table: one row per (run, family or norm), one column per step.
struct FloorTable {
  std::vector<int64_t> steps;
  struct Row {
    std::string run, drift;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows;
};

FloorTable floor_table(const PrecisionReport& rep) {
  FloorTable t;
  std::set<int64_t> steps;
  for (const auto& r : rep.runs)
    for (const auto& f : report_families())
      if (const auto it = r.floor_multiple.find(f); it != r.floor_multiple.end())
        for (const auto& sv : it->second) steps.insert(sv.step);
  if (steps.empty()) {  // digest-only logs: eight of the norm drifts' steps, the last included
    std::set<int64_t> all;
    for (const auto& r : rep.runs)
      for (const auto& [row, c] : r.floor_multiple)
        for (const auto& sv : c) all.insert(sv.step);
    const std::vector<int64_t> v(all.begin(), all.end());
    for (size_t k = 1; k <= 8 && !v.empty(); ++k) steps.insert(v[(v.size() - 1) * k / 8]);
  }
  t.steps.assign(steps.begin(), steps.end());
  std::vector<std::string> rows = report_families();
  rows.push_back(kBnRunningVarNorm);
  rows.push_back(kAdamExpAvgSqNorm);
  for (const auto& r : rep.runs) {
    for (const auto& name : rows) {
      const auto it = r.floor_multiple.find(name);
      if (it == r.floor_multiple.end() || it->second.empty()) continue;
      FloorTable::Row row{r.label, name, {}};
      for (int64_t s : t.steps) {
        std::string cell;
        for (const auto& sv : it->second)
          if (sv.step == s) cell = format_multiple(sv.value);
        row.cells.push_back(cell);
      }
      t.rows.push_back(std::move(row));
    }
  }
  return t;
}

constexpr const char* kFloorIntro =
    "is the reference under a change of no semantics. Any perturbation grows through training "
    "(the butterfly effect), so each value is a run's drift from the reference divided by the "
    "floor's at the same step: families by the relative L2 error of their full tensors, the "
    "norms by |norm / norm<sub>ref</sub> - 1|. At most 1× is within the floor: rounding noise, "
    "not an effect of the setting. —: neither moved; ∞: the run's values are not finite, or only "
    "the run moved.";

}  // namespace

std::string finding_text(const RunFinding& r) {
  std::ostringstream f;
  f << "**" << r.label << "**"
    << (r.is_noise_floor ? " (the noise floor: the reference under a change of no semantics)" : "")
    << ": loss over the last 10% of steps " << format_double("%.4f", r.tail_loss);
  if (!r.is_reference) {
    f << " (reference " << format_double("%.4f", r.reference_tail_loss) << ", "
      << format_double("%+.1f%%", 100 * (r.tail_loss / r.reference_tail_loss - 1)) << ")";
  }
  if (r.has_top1) {
    f << "; zero-shot top-1 at the end " << pct(r.final_top1);
    if (r.best_top1.step >= 0) {
      f << " (best " << pct(r.best_top1.value) << " at step " << r.best_top1.step << ")";
    }
  }
  if (r.loss_spike.step >= 0) {
    f << "; smoothed loss rose " << format_double("%+.0f%%", 100 * r.loss_spike.value)
      << " above its running minimum at step " << r.loss_spike.step;
  }
  if (!r.is_reference) {
    if (r.first_param_difference < 0) {
      f << "; parameters bitwise equal to the reference at every logged step";
    } else {
      f << "; parameters first differ from the reference at step " << r.first_param_difference;
    }
    if (r.params_error.step >= 0) {
      f << ", relative L2 error of all parameters " << sci(r.params_error.value) << " at step "
        << r.params_error.step << floor_clause(r.params_floor_multiple, "");
    }
    if (r.max_bn_running_var_drift.step >= 0) {
      f << "; BatchNorm running_var norm drift up to " << sci(r.max_bn_running_var_drift.value)
        << " (step " << r.max_bn_running_var_drift.step << ")"
        << floor_clause(r.bn_running_var_floor_multiple, "'s");
    }
    if (r.max_adam_exp_avg_sq_drift.step >= 0) {
      f << "; Adam exp_avg_sq norm drift up to " << sci(r.max_adam_exp_avg_sq_drift.value)
        << " (step " << r.max_adam_exp_avg_sq_drift.step << ")"
        << floor_clause(r.adam_exp_avg_sq_floor_multiple, "'s");
    }
  }
  if (r.has_loss_scale) {
    f << "; loss scale " << format_number(r.first_loss_scale) << " -> "
      << format_number(r.last_loss_scale) << ", " << r.skipped_steps << " skipped step(s)";
  }
  return f.str() + ".";
}

std::string precision_report_markdown(const PrecisionReport& rep) {
  std::ostringstream o;
  const RunReport& ref = rep.runs.front();
  o << "# " << rep.title << "\n\nReference: **" << ref.label << "** (`" << ref.file
    << "`). Generated by `cliprepro report`; every figure below is computed from the logs.\n\n"
    << "## Findings\n\n";
  for (const auto& f : rep.findings) o << "- " << finding_text(f) << "\n";
  o << "\n## Summary\n\n| run | log | final loss | zero-shot top-1 | first param difference | "
       "params rel. L2 error (last full step) | max BN running_var drift | max Adam exp_avg_sq "
       "drift | skipped steps |\n|---|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < rep.runs.size(); ++i) {
    const RunReport& r = rep.runs[i];
    const RunFinding& f = rep.findings[i];
    o << "| " << r.label << " | `" << r.file << "` | " << format_double("%.4f", f.final_loss)
      << " | " << pct(f.final_top1) << " | "
      << (f.is_reference                 ? "reference"
          : f.first_param_difference < 0 ? "none"
                                         : std::to_string(f.first_param_difference))
      << " | " << (f.params_error.step < 0 ? "" : sci(f.params_error.value)) << " | "
      << (f.is_reference ? "" : sci(f.max_bn_running_var_drift.value)) << " | "
      << (f.is_reference ? "" : sci(f.max_adam_exp_avg_sq_drift.value)) << " | "
      << (f.has_loss_scale ? std::to_string(f.skipped_steps) : "") << " |\n";
  }
  if (!rep.noise_floor.empty()) {
    const FloorTable t = floor_table(rep);
    std::string intro = kFloorIntro;
    intro.replace(intro.find("<sub>"), 5, "_").erase(intro.find("</sub>"), 6);
    o << "\n## Drift as a multiple of the noise floor\n\n**" << rep.noise_floor << "** " << intro
      << "\n\n| run | drift of |";
    for (int64_t s : t.steps) o << " step " << s << " |";
    o << "\n|---|---|";
    for (size_t k = 0; k < t.steps.size(); ++k) o << "---|";
    o << "\n";
    for (const auto& row : t.rows) {
      o << "| " << row.run << " | " << row.drift << " |";
      for (const auto& c : row.cells) o << " " << c << " |";
      o << "\n";
    }
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
    std::string text = markup_escape(finding_text(f));
    for (size_t p; (p = text.find("**")) != std::string::npos;) {
      const size_t q = text.find("**", p + 2);
      if (q == std::string::npos) break;
      text =
          text.substr(0, p) + "<b>" + text.substr(p + 2, q - p - 2) + "</b>" + text.substr(q + 2);
    }
    o << "<li>" << text << "</li>\n";
  }
  o << "</ul>\n";
  if (!rep.noise_floor.empty()) {
    const FloorTable t = floor_table(rep);
    o << "<h2>Drift as a multiple of the noise floor</h2>\n<p><b>" << markup_escape(rep.noise_floor)
      << "</b> " << kFloorIntro << "</p>\n<table><tr><th>run</th><th>drift of</th>";
    for (int64_t s : t.steps) o << "<th>step " << s << "</th>";
    o << "</tr>\n";
    for (const auto& row : t.rows) {
      o << "<tr><td>" << markup_escape(row.run) << "</td><td>" << markup_escape(row.drift)
        << "</td>";
      for (const auto& c : row.cells) o << "<td>" << c << "</td>";
      o << "</tr>\n";
    }
    o << "</table>\n";
  }
  o << "<h2>Loss</h2>\n"
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
