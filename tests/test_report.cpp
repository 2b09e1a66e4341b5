// `cliprepro report` (precision report), its SVG charts, and compare's HTML output.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "harness/compare/compare.h"
#include "harness/log/log_reader.h"
#include "harness/report/compare_report.h"
#include "harness/report/markup.h"
#include "harness/report/precision_render.h"
#include "harness/report/svg_plot.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

double max_drift(const Curve& c) {
  double m = 0;
  for (const auto& sv : c) m = std::max(m, sv.value);
  return m;
}

TEST(SvgPlot, LineChartDrawsFinitePointsOnlyAndEscapesLabels) {
  LineChart c{"a <b> & c", "step", "err", true, {}};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  c.series.push_back({"run<1>", {0, 1, 2, 3, 4}, {1e-3, nan, 0.0, 1e-1, -1}});  // 2 drawable
  c.series.push_back({"run2", {0, 1}, {1e-5, 1e-4}});
  const std::string svg = render_line_chart(c);
  EXPECT_EQ(count(svg, "<circle"), 4u);
  EXPECT_NE(svg.find("a &lt;b&gt; &amp; c"), std::string::npos);
  EXPECT_NE(svg.find("run&lt;1&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  EXPECT_NE(svg.find(">1e-5<"), std::string::npos);  // decade ticks on a log axis
  EXPECT_NE(render_line_chart({"empty", "x", "y", false, {}}).find("no data"), std::string::npos);
}

TEST(SvgPlot, HeatMapMarksBitwiseWhiteAndNonFiniteMagenta) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HeatMap m{"h", "rel", {"t0", "t1"}, {1, 2, 3}, {{0, 1e-6, inf}, {nan, 1e-3, 1e-7}}};
  const std::string svg = render_heat_map(m);
  EXPECT_EQ(count(svg, "<rect x=\"300"), 2u);  // first column of each row at the label edge
  EXPECT_EQ(count(svg, "fill=\"#ffffff\""), 1u);
  EXPECT_EQ(count(svg, "fill=\"#ff00ff\""), 1u);
  EXPECT_NE(svg.find("t1 @ 2: rel 0.001"), std::string::npos);
  EXPECT_NE(svg.find("1e-7.0"), std::string::npos);  // colour scale spans the finite values
  EXPECT_NE(svg.find("1e-3.0"), std::string::npos);
}

// Tiny runs of 3 steps with every tensor in full at every step: fp32 twice (bitwise equal),
// bf16 autocast and fp16 autocast (GradScaler).
struct Runs {
  std::filesystem::path dir;
  std::filesystem::path log(const std::string& name) const { return dir / (name + ".h5"); }
};
const Runs& runs() {
  static const Runs r = [] {
    Runs t{test::temp_dir("report_runs")};
    for (const auto& [name, precision] : std::vector<std::pair<std::string, std::string>>{
             {"fp32", "fp32"}, {"again", "fp32"}, {"bf16", "amp_bf16"}, {"fp16", "amp"}}) {
      const auto s = t.dir / (name + ".toml");
      test::write_file(s, "name = \"" + name + "\"\nprecision = \"" + precision +
                              "\"\nmodel = \"tiny\"\ntrain-num-samples = 64\nval-num-samples = 16\n"
                              "batch-size = 16\nsteps = 3\nwarmup = 1\nseed = 2\n"
                              "zeroshot-frequency = 1\n[determinism]\nthreads = 2\n[log]\n"
                              "full-steps = [\"0:\"]\nfull-tensors = [\"*\"]\n");
      const auto run =
          test::run_cli("run " + s.string() + " --out " + t.dir.string() + " --no-golden -q");
      if (run.exit_code != 0) throw std::runtime_error(run.output);
    }
    return t;
  }();
  return r;
}

TEST(PrecisionReport, IdenticalRunIsBitwiseEverywhere) {
  const auto rep = build_precision_report({runs().log("fp32"), runs().log("again")});
  ASSERT_EQ(rep.runs.size(), 2u);
  const RunReport& r = rep.runs[1];
  EXPECT_EQ(r.label, "again");
  EXPECT_EQ(r.first_param_difference, -1);
  ASSERT_FALSE(r.family_error.empty());
  for (const auto& [family, curve] : r.family_error) {
    for (const auto& sv : curve) EXPECT_EQ(sv.value, 0.0) << family << " step " << sv.step;
  }
  ASSERT_FALSE(r.bn_running_var_drift.empty());
  for (const auto& sv : r.bn_running_var_drift) EXPECT_EQ(sv.value, 0.0);
  ASSERT_EQ(rep.findings.size(), 2u);
  EXPECT_EQ(rep.findings[1].first_param_difference, -1);
  EXPECT_EQ(rep.findings[1].tail_loss, rep.findings[1].reference_tail_loss);
  EXPECT_NE(
      finding_text(rep.findings[1]).find("bitwise equal to the reference at every logged step"),
      std::string::npos);
  EXPECT_EQ(r.loss.size(), 3u);
}

TEST(PrecisionReport, Bf16AutocastDriftsFromStepOneAndHeatCellsAreRelativeL2Errors) {
  const auto rep = build_precision_report({runs().log("fp32"), runs().log("bf16")},
                                          {"t", {"fp32", "bf16 autocast"}, "params"});
  const RunReport& r = rep.runs[1];
  EXPECT_EQ(r.label, "bf16 autocast");
  EXPECT_EQ(r.first_param_difference, 1);  // step 0 is the shared initialisation
  const auto& params = r.family_error.at("params");
  ASSERT_EQ(params.size(), 4u);  // steps 0..3
  EXPECT_EQ(params[0].value, 0.0);
  for (size_t i = 1; i < params.size(); ++i) EXPECT_GT(params[i].value, 0.0);
  EXPECT_GT(r.family_error.at("activations").front().value, 1e-4);  // bf16 compute at step 1
  EXPECT_GT(r.family_error.at("grads").front().value, 0.0);
  // Heat map: one row per parameter, one column per step; a cell recomputed independently.
  LogReader a(runs().log("bf16")), ref(runs().log("fp32"));
  size_t n_params = 0;
  for (const auto& [name, s] : ref.series()) n_params += name.rfind("params/", 0) == 0;
  ASSERT_EQ(r.heat_rows.size(), n_params);
  ASSERT_EQ(r.heat_steps, (std::vector<int64_t>{0, 1, 2, 3}));
  const std::string name = "params/" + r.heat_rows.back();
  const auto x = a.read_full(name, 3).to(torch::kFloat64),
             y = ref.read_full(name, 3).to(torch::kFloat64);
  const double expected = ((x - y).norm() / y.norm()).item<double>();
  EXPECT_NEAR(r.heat.back()[3], expected, 1e-12 * expected);
  EXPECT_GT(max_drift(r.bn_running_var_drift), 0.0);
  EXPECT_GT(max_drift(r.adam_exp_avg_sq_drift), 0.0);
  EXPECT_EQ(rep.findings[1].params_error.step, 3);
  EXPECT_EQ(rep.findings[1].params_error.value, params.back().value);
  EXPECT_NE(
      finding_text(rep.findings[1]).find("parameters first differ from the reference at step 1"),
      std::string::npos);
}

TEST(PrecisionReport, Fp16AutocastReportsLossScaleEvents) {
  const auto rep = build_precision_report({runs().log("fp32"), runs().log("fp16")});
  const RunReport& r = rep.runs[1];
  ASSERT_EQ(r.loss_scale.size(), 4u);  // step 0 (initial) to 3
  EXPECT_EQ(r.loss_scale.front().value, 65536.0);
  LogReader log(runs().log("fp16"));
  size_t skipped = 0;
  for (int64_t s = 1; s <= 3; ++s)
    skipped += log.read_full("scaler/found_inf", s).item<float>() != 0;
  EXPECT_EQ(r.skipped_steps.size(), skipped);
  EXPECT_TRUE(rep.runs[0].loss_scale.empty());
  EXPECT_TRUE(rep.findings[1].has_loss_scale);
  EXPECT_EQ(rep.findings[1].skipped_steps, skipped);
  EXPECT_FALSE(rep.findings[0].has_loss_scale);
  EXPECT_NE(finding_text(rep.findings[1]).find(std::to_string(skipped) + " skipped step(s)"),
            std::string::npos);
}

TEST(PrecisionReport, HtmlIsSelfContainedAndMarkdownTabulatesEveryRun) {
  const auto rep = build_precision_report(
      {runs().log("fp32"), runs().log("bf16"), runs().log("fp16"), runs().log("again")});
  const std::string html = precision_report_html(rep), md = precision_report_markdown(rep);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_GE(count(html, "<svg"), 8u);  // loss, zero-shot, families, heat maps, drifts, scale
  EXPECT_EQ(count(html, "Step x tensor"), 3u);
  EXPECT_NE(html.find("GradScaler scale"), std::string::npos);
  for (const char* label : {"| fp32 |", "| bf16 |", "| fp16 |", "| again |"}) {
    EXPECT_NE(md.find(label), std::string::npos) << label;
  }
  EXPECT_NE(md.find("## Error growth: bf16 vs fp32"), std::string::npos);
  // Reports depend only on the logs: rebuilding gives the same bytes.
  EXPECT_EQ(precision_report_html(build_precision_report(
                {runs().log("fp32"), runs().log("bf16"), runs().log("fp16"), runs().log("again")})),
            html);
}

TEST(PrecisionReport, CliWritesBothFilesAndRejectsBadArguments) {
  const auto out = test::temp_dir("report_cli");
  auto r =
      test::run_cli("report " + runs().log("fp32").string() + " " + runs().log("bf16").string() +
                    " --out " + out.string() + " --labels ref,bf16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(test::read_file(out / "report.html").find("</html>"), std::string::npos);
  EXPECT_NE(test::read_file(out / "report.md").find("Reference: **ref**"), std::string::npos);
  EXPECT_NE(r.output.find("- **bf16**"), std::string::npos);
  r = test::run_cli("report " + runs().log("fp32").string() + " --out " + out.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;  // a reference alone compares nothing
  r = test::run_cli("report " + runs().log("fp32").string() + " " + runs().log("bf16").string() +
                    " --out " + out.string() + " --labels only-one");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("1 labels for 2 logs"), std::string::npos) << r.output;
}

TEST(CompareHtml, NamesTheFirstDivergenceAndEveryDifferingTensor) {
  LogReader a(runs().log("bf16")), b(runs().log("fp32"));
  const auto c = compare_logs(a, b);
  ASSERT_FALSE(c.equal());
  const std::string html = compare_html(c, "bf16.h5", "fp32.h5");
  EXPECT_NE(html.find("<h1 class=\"differ\">differ</h1>"), std::string::npos);
  EXPECT_NE(html.find("<code>" + c.diffs.front().name + "</code>"), std::string::npos);
  EXPECT_EQ(count(html, "<tr><td>"), c.diffs.size());
  LogReader again(runs().log("again")), fp32(runs().log("fp32"));
  EXPECT_NE(compare_html(compare_logs(again, fp32), "again", "fp32").find("class=\"match\""),
            std::string::npos);
  const auto out = test::temp_dir("compare_html");
  const auto r =
      test::run_cli("compare " + runs().log("again").string() + " " + runs().log("fp32").string() +
                    " --html " + (out / "c.html").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(test::read_file(out / "c.html").find("match"), std::string::npos);
}

}  // namespace
}  // namespace cliprepro
