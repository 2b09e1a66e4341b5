#include "harness/report/compare_report.h"

#include <cmath>
#include <map>
#include <sstream>

#include "harness/report/markup.h"
#include "harness/report/svg_plot.h"

namespace cliprepro {
namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string md_escape(const std::string& s) {
  std::string o;
  for (const char ch : s) {
    if (ch == '|') o += '\\';
    o += ch;
  }
  return o;
}

std::string describe(const TensorDiff& d) {
  std::ostringstream o;
  if (d.first_step >= 0) o << "step " << d.first_step << ": ";
  o << reason_name(d.reason);
  if (!d.detail.empty()) o << " (" << d.detail << ")";
  if (d.elements_differing >= 0) {
    o << "; " << d.elements_differing << " element(s) differ, first at flat index "
      << d.first_element << ", max abs error " << d.max_abs_err;
  }
  return o.str();
}

}  // namespace

nlohmann::json compare_json(const CompareResult& r, const std::string& label_a,
                            const std::string& label_b) {
  nlohmann::json diffs = nlohmann::json::array();
  for (const auto& d : r.diffs) {
    diffs.push_back({{"tensor", d.name},
                     {"phase", d.phase},
                     {"reason", reason_name(d.reason)},
                     {"detail", d.detail},
                     {"first_step", d.first_step},
                     {"order", d.first_order},
                     {"steps_compared", d.steps_compared},
                     {"steps_differing", d.steps_differing},
                     {"steps_tolerated", d.steps_tolerated},
                     {"elements_differing", d.elements_differing},
                     {"first_element", d.first_element},
                     {"max_abs_err", number_or_null(d.max_abs_err)},
                     {"max_ulp", d.max_ulp},
                     {"cosine", number_or_null(d.cosine)}});
  }
  nlohmann::json first = r.diffs.empty() ? nlohmann::json(nullptr) : diffs.front();
  return {{"verdict", r.equal() ? "match" : "differ"},
          {"exit_code", r.equal() ? 0 : 1},
          {"a", label_a},
          {"b", label_b},
          {"tolerance", r.tolerance},
          {"tolerance_reason", r.tolerance_reason},
          {"tensors_compared", r.tensors_compared},
          {"digests_compared", r.digests_compared},
          {"full_compared", r.full_compared},
          {"steps_tolerated", r.steps_tolerated},
          {"warnings", r.warnings},
          {"first_divergence", first},
          {"diffs", diffs}};
}

std::string compare_junit(const CompareResult& r, const std::string& label_a,
                          const std::string& label_b) {
  std::map<std::string, const TensorDiff*> failing;  // the first (earliest) diff per tensor
  for (const auto& d : r.diffs) failing.emplace(d.name, &d);
  std::ostringstream cases;
  int64_t tests = 0, failures = 0;
  auto testcase = [&](const std::string& name, const std::string& phase, const TensorDiff* d) {
    ++tests;
    cases << "    <testcase classname=\"" << markup_escape(phase.empty() ? "log" : phase)
          << "\" name=\"" << markup_escape(name) << "\" time=\"0\"";
    if (d == nullptr) {
      cases << "/>\n";
      return;
    }
    ++failures;
    cases << ">\n      <failure type=\"" << markup_escape(reason_name(d->reason)) << "\" message=\""
          << markup_escape(describe(*d)) << "\">" << markup_escape(describe(*d))
          << "</failure>\n    </testcase>\n";
  };
  for (const auto& c : r.compared) {
    auto it = failing.find(c.first);
    testcase(c.first, c.second, it == failing.end() ? nullptr : it->second);
    if (it != failing.end()) failing.erase(it);
  }
  for (const auto& [name, d] : failing) testcase(name, d->phase, d);  // missing from one log
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<testsuites name=\"cliprepro compare\" tests=\"" << tests << "\" failures=\"" << failures
    << "\" errors=\"0\" time=\"0\">\n"
    << "  <testsuite name=\"" << markup_escape(label_a + " vs " + label_b) << "\" tests=\"" << tests
    << "\" failures=\"" << failures << "\" errors=\"0\" skipped=\"0\" time=\"0\">\n"
    << "    <properties>\n"
    << "      <property name=\"tolerance\" value=\"" << markup_escape(r.tolerance) << "\"/>\n"
    << "      <property name=\"verdict\" value=\"" << (r.equal() ? "match" : "differ") << "\"/>\n"
    << "    </properties>\n"
    << cases.str() << "  </testsuite>\n</testsuites>\n";
  return o.str();
}

std::string compare_markdown(const CompareResult& r, const std::string& label_a,
                             const std::string& label_b, size_t max_rows) {
  std::ostringstream o;
  o << "### cliprepro compare: " << (r.equal() ? "✅ match" : "❌ differ") << "\n\n"
    << "`" << md_escape(label_a) << "` vs `" << md_escape(label_b) << "` — tolerance `"
    << r.tolerance << "`; " << r.tensors_compared << " tensors, " << r.digests_compared
    << " digests, " << r.full_compared << " full tensors compared";
  if (r.steps_tolerated > 0) o << ", " << r.steps_tolerated << " tensor-steps within tolerance";
  o << ".\n\n";
  if (!r.tolerance_reason.empty()) o << "Policy: " << md_escape(r.tolerance_reason) << ".\n\n";
  for (const auto& w : r.warnings) o << "⚠️ " << md_escape(w) << "\n\n";
  if (r.equal()) return o.str();
  o << "**First divergence**: " << md_escape(describe(r.diffs.front())) << " — `"
    << md_escape(r.diffs.front().name) << "` (" << r.diffs.front().phase << ")\n\n"
    << "| step | phase | tensor | reason | steps ≠ / compared | max abs | max ULP | cosine |\n"
    << "|---:|---|---|---|---:|---:|---:|---:|\n";
  for (size_t i = 0; i < r.diffs.size() && i < max_rows; ++i) {
    const auto& d = r.diffs[i];
    auto num = [](double v) {
      std::ostringstream s;
      if (std::isnan(v)) return std::string("–");
      s.precision(4);
      s << v;
      return s.str();
    };
    o << "| " << d.first_step << " | " << d.phase << " | `" << md_escape(d.name) << "` | "
      << reason_name(d.reason) << " | " << d.steps_differing << " / " << d.steps_compared << " | "
      << num(d.max_abs_err) << " | " << (d.max_ulp < 0 ? "–" : std::to_string(d.max_ulp)) << " | "
      << num(d.cosine) << " |\n";
  }
  if (r.diffs.size() > max_rows) o << "\n… and " << r.diffs.size() - max_rows << " more.\n";
  return o.str();
}

std::string compare_html(const CompareResult& r, const std::string& label_a,
                         const std::string& label_b) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cliprepro compare</title>\n"
       "<style>body{font-family:sans-serif;max-width:1200px;margin:1em auto}table{border-"
       "collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
       ".match{color:#080}.differ{color:#b00}</style></head><body>\n<h1 class=\""
    << (r.equal() ? "match\">match" : "differ\">differ") << "</h1>\n<p><code>"
    << markup_escape(label_a) << "</code> vs <code>" << markup_escape(label_b)
    << "</code>; tolerance <code>" << markup_escape(r.tolerance) << "</code>; "
    << r.tensors_compared << " tensors, " << r.digests_compared << " digests, " << r.full_compared
    << " full tensors compared";
  if (r.steps_tolerated > 0) o << ", " << r.steps_tolerated << " tensor-steps within tolerance";
  o << ".</p>\n";
  if (!r.tolerance_reason.empty())
    o << "<p>Policy: " << markup_escape(r.tolerance_reason) << ".</p>\n";
  for (const auto& w : r.warnings) o << "<p><b>Warning</b>: " << markup_escape(w) << "</p>\n";
  if (!r.equal()) {
    o << "<p><b>First divergence</b>: " << markup_escape(describe(r.diffs.front()))
      << " &mdash; <code>" << markup_escape(r.diffs.front().name) << "</code> ("
      << r.diffs.front().phase
      << ")</p>\n<table><tr><th>#</th><th>step</th><th>phase</th><th>tensor</th><th>reason</th>"
         "<th>steps &ne; / compared</th><th>elements &ne;</th><th>first element</th><th>max abs"
         "</th><th>max ULP</th><th>cosine</th><th>detail</th></tr>\n";
    for (size_t i = 0; i < r.diffs.size(); ++i) {
      const auto& d = r.diffs[i];
      o << "<tr><td>" << i + 1 << "</td><td>" << d.first_step << "</td><td>" << d.phase
        << "</td><td><code>" << markup_escape(d.name) << "</code></td><td>" << reason_name(d.reason)
        << "</td><td>" << d.steps_differing << " / " << d.steps_compared << "</td><td>"
        << (d.elements_differing < 0 ? "" : std::to_string(d.elements_differing)) << "</td><td>"
        << (d.first_element < 0 ? "" : std::to_string(d.first_element)) << "</td><td>"
        << (std::isnan(d.max_abs_err) ? "" : format_number(d.max_abs_err)) << "</td><td>"
        << (d.max_ulp < 0 ? "" : std::to_string(d.max_ulp)) << "</td><td>"
        << (std::isnan(d.cosine) ? "" : format_number(d.cosine)) << "</td><td>"
        << markup_escape(d.detail) << "</td></tr>\n";
    }
    o << "</table>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace cliprepro
