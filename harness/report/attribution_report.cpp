#include "harness/report/attribution_report.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "harness/report/markup.h"
#include "harness/report/svg_plot.h"
#include "src/safe_file.h"

namespace cliprepro {

namespace {

constexpr size_t kTopLayers = 8;  // rows of each step's worst-layers table

std::string percent(double fraction) {
  if (std::isnan(fraction)) return "—";
  return format_double("%.0f", 100 * fraction) + " %";
}

std::string error_text(double e) { return std::isnan(e) ? "—" : format_double("%.3g", e); }

// A relative error as a percentage with two significant digits ("3.9 %", "0.0012 %").
std::string relative_percent(double e) {
  if (!std::isfinite(e)) return error_text(e);
  return format_double(e >= 0.1 ? "%.0f" : "%.2g", 100 * e) + " %";
}

int bitwise_count(const StepErrors& e, const ErrorFamily& f, int* total) {
  int n = 0;
  *total = 0;
  for (const auto& t : e.tensors) {
    if (t.name.rfind(f.prefix, 0) != 0) continue;
    ++*total;
    n += t.bitwise ? 1 : 0;
  }
  return n;
}

std::string finding(const Attribution& a, const StepAttribution& s) {
  const std::string step = "At step " + std::to_string(s.errors.step) + ", ";
  const double update = s.errors.family(error_family("update")).rel();
  const double grad = s.errors.family(error_family("grads")).rel();
  if (update == 0 && grad == 0) {
    return step + a.variant_name +
           "'s teacher-forced step is bitwise the reference's update: "
           "no rounding to attribute.";
  }
  std::string out = step + a.variant_name + "'s one-step update error is " +
                    relative_percent(update) + " of the reference's own update (gradient error " +
                    relative_percent(grad) + ")";
  if (s.groups.empty()) return out + ".";
  const auto& top = s.groups.front();
  out += "; " + percent(top.update_removed) + " of it comes from **" + top.group +
         "**: lifting that group alone to fp32 leaves " + relative_percent(top.update_error);
  if (s.groups.size() > 1) {
    const auto& next = s.groups[1];
    out += " (next: " + next.group + ", " + percent(next.update_removed) + ")";
  }
  return out + ".";
}

std::string scaler_note(const Attribution& a) {
  for (const auto& s : a.steps) {
    if (s.errors.has_scaler && !s.errors.scaler_restored && s.errors.step > 1) {
      return "The variant runs `amp` but the reference logged no loss scale: every teacher-forced "
             "step starts from the GradScaler's initial scale (65536), not the one a free run "
             "would have reached.\n\n";
    }
  }
  return "";
}

}  // namespace

std::vector<std::string> attribution_findings(const Attribution& a) {
  std::vector<std::string> out;
  for (const auto& s : a.steps) out.push_back(finding(a, s));
  return out;
}

std::string attribution_markdown(const Attribution& a) {
  std::ostringstream o;
  o << "# Precision attribution: " << a.variant_name << "\n\n"
    << "Reference log `" << a.reference << "`; variant `" << a.variant << "`.\n\n"
    << "Each step is **teacher-forced**: the variant runs that one step from the reference's "
       "exact state before it (parameters, buffers, AdamW moments) on the same batch, so its "
       "error is the rounding of that step alone, with no trajectory drift. Errors are relative "
       "L2 (float64): ‖variant − reference‖ / ‖reference‖; the update error divides by the "
       "reference's own update ‖r_s − r_{s−1}‖ instead.\n\n"
    << scaler_note(a) << "## Findings\n\n";
  for (const auto& f : attribution_findings(a)) o << "- " << f << "\n";
  o << "\n## Error per family\n\n| step |";
  for (const auto& f : error_families()) o << " " << f.label << " |";
  o << "\n|---|";
  for (size_t i = 0; i < error_families().size(); ++i) o << "---|";
  o << "\n";
  for (const auto& s : a.steps) {
    o << "| " << s.errors.step << " |";
    for (const auto& f : error_families()) {
      int total = 0;
      const int same = bitwise_count(s.errors, f, &total);
      o << " " << (total == 0 ? "—" : error_text(s.errors.family(f).rel())) << " (" << same << "/"
        << total << " bitwise) |";
    }
    o << "\n";
  }
  for (const auto& s : a.steps) {
    o << "\n## Step " << s.errors.step << "\n\n";
    if (!s.groups.empty()) {
      o << "Groups lifted to fp32 one at a time (`attribute --rank`; groups in docs/design.md):\n\n"
        << "| group | update error with it in fp32 | update error removed | gradient error "
           "removed |\n|---|---|---|---|\n";
      for (const auto& g : s.groups) {
        o << "| " << g.group << " | " << error_text(g.update_error) << " | "
          << percent(g.update_removed) << " | " << percent(g.grad_removed) << " |\n";
      }
      o << "\nA negative share: lifting that group alone makes the step's error larger (the "
           "rounding of different groups partly cancels).\n\n";
    }
    for (const char* key : {"grads", "update", "bn_batch"}) {
      const auto& f = error_family(key);
      auto layers = s.errors.layers(f);
      if (layers.empty()) continue;
      std::stable_sort(layers.begin(), layers.end(), [](const auto& x, const auto& y) {
        return x.second.rel() > y.second.rel();
      });
      o << "Largest errors by layer, " << f.label << ":\n\n| layer | error |\n|---|---|\n";
      for (size_t i = 0; i < std::min(kTopLayers, layers.size()); ++i)
        o << "| " << layers[i].first << " | " << error_text(layers[i].second.rel()) << " |\n";
      o << "\n";
    }
  }
  o << "Every tensor's values are in `attribution.json`; the heat maps in `attribution.html`.\n";
  return o.str();
}

std::string attribution_html(const Attribution& a) {
  std::ostringstream o;
  const std::string title = "Precision attribution: " + a.variant_name;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << markup_escape(title)
    << "</title>\n<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto;}"
       "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
       "</style></head><body>\n<h1>"
    << markup_escape(title) << "</h1>\n<p>Reference <code>" << markup_escape(a.reference)
    << "</code>, variant <code>" << markup_escape(a.variant)
    << "</code>. Teacher-forced one-step errors (relative L2); hover a cell for its value.</p>\n"
       "<h2>Findings</h2>\n<ul>\n";
  for (const auto& f : attribution_findings(a)) o << "<li>" << markup_escape(f) << "</li>\n";
  o << "</ul>\n";
  for (const auto& f : error_families()) {
    HeatMap m;
    m.title = std::string(f.label) + ": error by layer and step";
    m.value_label = "relative L2 error";
    std::vector<std::string> rows;
    for (const auto& s : a.steps) {
      m.cols.push_back(double(s.errors.step));
      for (const auto& [layer, sums] : s.errors.layers(f))
        if (std::find(rows.begin(), rows.end(), layer) == rows.end()) rows.push_back(layer);
    }
    if (rows.empty()) continue;
    m.rows = rows;
    m.values.assign(rows.size(), std::vector<double>(a.steps.size(), kNoValue));
    for (size_t c = 0; c < a.steps.size(); ++c) {
      for (const auto& [layer, sums] : a.steps[c].errors.layers(f)) {
        const auto r = size_t(std::find(rows.begin(), rows.end(), layer) - rows.begin());
        m.values[r][c] = sums.rel();
      }
    }
    o << "<h2>" << markup_escape(f.label) << "</h2>\n" << render_heat_map(m) << "\n";
  }
  if (!a.steps.empty() && !a.steps.front().groups.empty()) {
    o << "<h2>Groups lifted to fp32 (update error removed)</h2>\n<table><tr><th>group</th>";
    for (const auto& s : a.steps) o << "<th>step " << s.errors.step << "</th>";
    o << "</tr>\n";
    for (const auto& g : attribution_groups()) {
      o << "<tr><td>" << markup_escape(g.name) << "</td>";
      for (const auto& s : a.steps) {
        double v = kNoValue;
        for (const auto& e : s.groups)
          if (e.group == g.name) v = e.update_removed;
        o << "<td>" << markup_escape(percent(v)) << "</td>";
      }
      o << "</tr>\n";
    }
    o << "</table>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

nlohmann::json attribution_json(const Attribution& a) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : a.steps) {
    nlohmann::json fam, tensors = nlohmann::json::array(), groups = nlohmann::json::array();
    for (const auto& f : error_families()) fam[f.key] = num(s.errors.family(f).rel());
    for (const auto& t : s.errors.tensors) {
      nlohmann::json j = {{"name", t.name},
                          {"layer", layer_of(t.name)},
                          {"rel_l2", num(t.sums.rel())},
                          {"max_abs", num(t.max_abs)},
                          {"bitwise", t.bitwise}};
      if (t.name.rfind(family::kParams, 0) == 0) j["update_rel"] = num(t.update.rel());
      tensors.push_back(j);
    }
    for (const auto& g : s.groups) {
      groups.push_back({{"group", g.group},
                        {"update_error", num(g.update_error)},
                        {"grad_error", num(g.grad_error)},
                        {"update_removed", num(g.update_removed)},
                        {"grad_removed", num(g.grad_removed)}});
    }
    steps.push_back({{"step", s.errors.step},
                     {"families", fam},
                     {"scaler_restored", s.errors.scaler_restored},
                     {"tensors", tensors},
                     {"groups", groups}});
  }
  nlohmann::json group_defs = nlohmann::json::array();
  for (const auto& g : attribution_groups())
    group_defs.push_back({{"group", g.name}, {"globs", g.globs}});
  return {{"reference", a.reference},       {"variant", a.variant},
          {"variant_name", a.variant_name}, {"findings", attribution_findings(a)},
          {"groups", group_defs},           {"steps", steps}};
}

std::vector<std::filesystem::path> write_attribution(const Attribution& a,
                                                     const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"attribution.md", attribution_markdown(a)},
      {"attribution.html", attribution_html(a)},
      {"attribution.json", attribution_json(a).dump(1) + "\n"}};
  std::vector<std::filesystem::path> out;
  for (const auto& [name, text] : files) {
    const auto p = dir / name;
    write_file_atomically(p, text, "report");  // no reader sees half a file
    out.push_back(p);
  }
  return out;
}

}  // namespace cliprepro
