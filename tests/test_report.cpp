// `cliprepro report` (precision report), its SVG charts, and compare's HTML output.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "harness/compare/compare.h"
#include "harness/log/log_reader.h"
#include "harness/report/compare_report.h"
#include "harness/report/markup.h"
#include "harness/report/noise_floor.h"
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
// bf16 autocast and fp16 autocast (GradScaler), and fp32 with lr x (1 + 2^-20): a noise floor.
struct Runs {
  std::filesystem::path dir;
  std::filesystem::path log(const std::string& name) const { return dir / (name + ".h5"); }
};
const Runs& runs() {
  static const Runs r = [] {
    Runs t{test::temp_dir("report_runs")};
    struct Variant {
      std::string name, precision, extra;
    };
    for (const auto& [name, precision, extra] : std::vector<Variant>{
             {"fp32", "fp32", ""},
             {"again", "fp32", ""},
             {"bf16", "amp_bf16", ""},
             {"fp16", "amp", ""},
             {"floor", "fp32", "lr = 0.0005000004768371582\n"}}) {  // default 5e-4 x (1 + 2^-20)
      const auto s = t.dir / (name + ".toml");
      test::write_file(s, extra + "name = \"" + name + "\"\nprecision = \"" + precision +
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
                                          {"t", {"fp32", "bf16 autocast"}, "params", ""});
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

TEST(PrecisionReport, NoiseFloorMultiplesAreDriftOverTheFloorsAtTheSameStep) {
  ReportOptions opts{"t", {"fp32", "floor", "bf16"}, "params", "floor"};
  const auto rep =
      build_precision_report({runs().log("fp32"), runs().log("floor"), runs().log("bf16")}, opts);
  EXPECT_EQ(rep.noise_floor, "floor");
  EXPECT_TRUE(rep.findings[1].is_noise_floor);
  EXPECT_FALSE(rep.findings[2].is_noise_floor);
  EXPECT_TRUE(rep.runs[1].floor_multiple.empty());  // the floor is not measured against itself
  const auto& floor = rep.runs[1].family_error.at("params");
  const auto& bf16 = rep.runs[2].family_error.at("params");
  const auto& multiple = rep.runs[2].floor_multiple.at("params");
  ASSERT_EQ(multiple.size(), 4u);
  EXPECT_TRUE(std::isnan(multiple[0].value));  // step 0: neither moved
  EXPECT_GT(floor[1].value, 0.0);              // the perturbation reaches every parameter
  for (size_t i = 1; i < multiple.size(); ++i) {
    EXPECT_EQ(multiple[i].step, bf16[i].step);
    EXPECT_DOUBLE_EQ(multiple[i].value, bf16[i].value / floor[i].value);
  }
  // bf16 autocast rounds far more than an 8-ulp lr change: well above the floor.
  EXPECT_GT(rep.findings[2].params_floor_multiple, 10.0);
  EXPECT_DOUBLE_EQ(rep.findings[2].params_floor_multiple, multiple.back().value);
  EXPECT_GT(rep.findings[2].bn_running_var_floor_multiple, 1.0);
  const std::string text = finding_text(rep.findings[2]);
  EXPECT_NE(text.find(format_multiple(multiple.back().value) + " the noise floor)"),
            std::string::npos)
      << text;
  EXPECT_NE(finding_text(rep.findings[1]).find("(the noise floor"), std::string::npos);
  const std::string md = precision_report_markdown(rep);
  EXPECT_NE(md.find("## Drift as a multiple of the noise floor"), std::string::npos);
  EXPECT_NE(md.find("| bf16 | params | — | "), std::string::npos) << md;
  EXPECT_NE(precision_report_html(rep).find("Drift as a multiple of the noise floor"),
            std::string::npos);
  // The floor must be a compared run other than the reference.
  opts.noise_floor = "fp64";
  EXPECT_THROW(build_precision_report({runs().log("fp32"), runs().log("floor")},
                                      {"t", {"fp32", "floor"}, "params", "fp64"}),
               std::runtime_error);
  EXPECT_THROW(build_precision_report({runs().log("fp32"), runs().log("floor")},
                                      {"t", {"fp32", "floor"}, "params", "fp32"}),
               std::runtime_error);
}

TEST(NoiseFloor, MultiplesAndTheirWording) {
  EXPECT_TRUE(std::isnan(floor_multiple(0, 0)));
  EXPECT_TRUE(std::isinf(floor_multiple(1e-9, 0)));
  EXPECT_DOUBLE_EQ(floor_multiple(3, 2), 1.5);
  EXPECT_EQ(format_multiple(0.5), "0.50×");
  EXPECT_EQ(format_multiple(3.14), "3.1×");
  EXPECT_EQ(format_multiple(57.2), "57×");
  EXPECT_EQ(format_multiple(535794), "5.4e+05×");
  EXPECT_EQ(format_multiple(floor_multiple(1, 0)), "∞");
  EXPECT_EQ(format_multiple(floor_multiple(0, 0)), "—");
  RunFinding f;
  f.label = "x";
  f.params_error = {8, 1e-3};
  f.params_floor_multiple = 0.8;
  EXPECT_NE(finding_text(f).find("(within the noise floor: 0.80×)"), std::string::npos)
      << finding_text(f);
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
