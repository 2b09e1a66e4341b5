// Tolerance policies, the cosine metric, compare under a tolerance, and compare's JSON, JUnit
// (validated against tests/data/junit.xsd with xmllint) and markdown outputs with exit codes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "harness/compare/compare.h"
#include "harness/compare/tensor_depth.h"
#include "harness/compare/tensor_diff.h"
#include "harness/compare/tolerance.h"
#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

torch::Tensor f32(std::initializer_list<float> v) { return torch::tensor(std::vector<float>(v)); }

bool passes(const std::string& spec, const torch::Tensor& a, const torch::Tensor& b,
            int64_t depth = 0) {
  return check_tolerance(parse_tolerance(spec), a, b, depth).pass;
}

TEST(Tolerance, ParsesEveryPolicyAndRejectsOthers) {
  EXPECT_EQ(parse_tolerance("bitwise").kind, Tolerance::Kind::kBitwise);
  EXPECT_EQ(parse_tolerance("ulp=4").ulp, 4);
  const auto c = parse_tolerance("rtol=1e-3,atol=1e-5");
  EXPECT_EQ(c.kind, Tolerance::Kind::kClose);
  EXPECT_DOUBLE_EQ(c.rtol, 1e-3);
  EXPECT_DOUBLE_EQ(c.atol, 1e-5);
  EXPECT_EQ(parse_tolerance("torch").kind, Tolerance::Kind::kTorchDefaults);
  const auto d = parse_tolerance("depth:k=2,c=1.1");
  EXPECT_EQ(d.kind, Tolerance::Kind::kDepth);
  EXPECT_DOUBLE_EQ(d.k, 2.0);
  EXPECT_DOUBLE_EQ(d.c, 1.1);
  EXPECT_DOUBLE_EQ(parse_tolerance("depth").k, 4.0);  // Megatron's k = 4, C = 1.03
  EXPECT_EQ(parse_tolerance("rtol=0.5,atol=0").text(), "rtol=0.5,atol=0");
  for (const char* bad :
       {"", "exact", "ulp=-1", "ulp=1.5", "rtol=x", "rtol=1,ulp=2", "depth:q=1", "ulp=2,rtol=1",
        "atol=nan", "ulp=99999999999999999999"}) {  // wrapped to a negative int64 once
    EXPECT_THROW(parse_tolerance(bad), std::invalid_argument) << bad;
  }
}

TEST(Tolerance, BitwiseTellsSignedZerosApartUlpAndCloseDoNot) {
  const auto a = f32({0.0f, 1.0f}), b = f32({-0.0f, 1.0f});
  EXPECT_FALSE(passes("bitwise", a, b));
  EXPECT_TRUE(passes("ulp=0", a, b));
  EXPECT_TRUE(passes("rtol=0,atol=0", a, b));
  EXPECT_FALSE(passes("bitwise", a, a.to(torch::kFloat64)));  // same values, other dtype
}

TEST(Tolerance, UlpCountsInTheTensorsOwnFormatIncludingSubnormals) {
  const float one = 1.0f, next = std::nextafter(1.0f, 2.0f), next2 = std::nextafter(next, 2.0f);
  EXPECT_TRUE(passes("ulp=1", f32({one}), f32({next})));
  EXPECT_FALSE(passes("ulp=1", f32({one}), f32({next2})));
  const float tiny = std::numeric_limits<float>::denorm_min();
  EXPECT_TRUE(passes("ulp=1", f32({0.0f}), f32({tiny})));
  EXPECT_TRUE(passes("ulp=2", f32({-tiny}), f32({tiny})));  // across zero, sign-aware
  EXPECT_FALSE(passes("ulp=1", f32({-tiny}), f32({tiny})));
  // bf16: one ULP at 1.0 is 2^-7.
  auto b1 = torch::ones({1}, torch::kBFloat16), b2 = b1 + std::ldexp(1.0, -7);
  EXPECT_TRUE(passes("ulp=1", b1, b2));
}

TEST(Tolerance, CloseTreatsNanAsEqualAndInfinitiesExactly) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(passes("rtol=0,atol=0", f32({nan, inf, -inf}), f32({nan, inf, -inf})));
  EXPECT_FALSE(passes("rtol=1,atol=1", f32({nan}), f32({1.0f})));
  EXPECT_FALSE(passes("rtol=1,atol=1", f32({inf}), f32({-inf})));
  EXPECT_FALSE(passes("rtol=1,atol=1e30", f32({inf}), f32({3.0e38f})));
  // |a - b| <= atol + rtol * |b|: relative to the reference b.
  EXPECT_TRUE(passes("rtol=0.11,atol=0", f32({1.1f}), f32({1.0f})));
  EXPECT_FALSE(passes("rtol=0.09,atol=0", f32({1.1f}), f32({1.0f})));
  EXPECT_TRUE(passes("rtol=0,atol=1e-3", f32({0.0f}), f32({1e-4f})));  // safe at zero
}

TEST(Tolerance, TorchDefaultsDependOnDtype) {
  // 1e-2 relative: inside bf16's rtol 1.6e-2, outside fp16's 1e-3 and fp32's 1.3e-6.
  auto ref = torch::full({4}, 1.0), run = torch::full({4}, 1.01);
  EXPECT_TRUE(passes("torch", run.to(torch::kBFloat16), ref.to(torch::kBFloat16)));
  EXPECT_FALSE(passes("torch", run.to(torch::kHalf), ref.to(torch::kHalf)));
  EXPECT_FALSE(passes("torch", run.to(torch::kFloat), ref.to(torch::kFloat)));
}

TEST(Tolerance, DepthBoundGrowsWithDepthAndUsesTheRunsEpsilon) {
  // eps comes from the run's dtype (a): a bf16 run gets 2^-7, an fp64 one 2^-52.
  EXPECT_DOUBLE_EQ(dtype_eps(torch::kBFloat16), std::ldexp(1.0, -7));
  const auto ref = torch::ones({8}, torch::kFloat64);
  const auto off = torch::full({8}, 1.0 + 3 * std::ldexp(1.0, -7), torch::kFloat64);
  EXPECT_TRUE(check_tolerance(parse_tolerance("depth"), off.to(torch::kBFloat16), ref).pass);
  EXPECT_FALSE(check_tolerance(parse_tolerance("depth"), off, ref).pass);
  Tolerance t = parse_tolerance("depth");
  auto a = torch::full({8}, 1.0 + 5 * std::ldexp(1.0, -23), torch::kFloat64).to(torch::kFloat32);
  auto b = torch::ones({8}, torch::kFloat32);
  const double rel = (a.to(torch::kFloat64) - 1).abs().max().item<double>();
  ASSERT_GT(rel, 4 * std::ldexp(1.0, -23));
  EXPECT_FALSE(check_tolerance(t, a, b, 0).pass);
  EXPECT_TRUE(check_tolerance(t, a, b, 40).pass) << "4 * 1.03^40 = 13 eps";
  EXPECT_NEAR(check_tolerance(t, a, b, 40).bound, 4 * std::pow(1.03, 40) * std::ldexp(1.0, -23),
              1e-15);
}

TEST(Tolerance, EmptyPassAndShapeMismatchFails) {
  EXPECT_TRUE(passes("rtol=0,atol=0", torch::empty({0}), torch::empty({0})));
  EXPECT_TRUE(passes("bitwise", torch::empty({0, 3}), torch::empty({0, 3})));
  EXPECT_FALSE(passes("rtol=1,atol=1", torch::zeros({2}), torch::zeros({3})));
}

TEST(ElementwiseDiff, CosineSimilarity) {
  EXPECT_DOUBLE_EQ(diff_tensors(f32({1, 2}), f32({1, 2})).cosine, 1.0);
  EXPECT_NEAR(diff_tensors(f32({1, 0}), f32({0, 1})).cosine, 0.0, 1e-15);
  EXPECT_NEAR(diff_tensors(f32({1, 1}), f32({-1, -1})).cosine, -1.0, 1e-15);
  EXPECT_DOUBLE_EQ(diff_tensors(f32({0, 0}), f32({1, 0})).cosine, 0.0);   // one all-zero
  EXPECT_DOUBLE_EQ(diff_tensors(f32({0.0f}), f32({-0.0f})).cosine, 1.0);  // both zero vectors
  EXPECT_TRUE(std::isnan(
      diff_tensors(f32({std::numeric_limits<float>::quiet_NaN(), 1}), f32({1, 1})).cosine));
  EXPECT_DOUBLE_EQ(diff_tensors(torch::empty({0}), torch::empty({0})).cosine, 1.0);
}

// Two runs whose lr differs by 1e-5 relative, every tensor stored in full at every step.
struct TwoRuns {
  std::filesystem::path dir, a, b;
};
const TwoRuns& two_runs() {
  static const TwoRuns r = [] {
    TwoRuns t;
    t.dir = test::temp_dir("tolerance_runs");
    for (const char* name : {"a", "b"}) {
      std::ostringstream lr;
      lr.precision(17);
      lr << (name[0] == 'a' ? 1e-3 : 1e-3 * (1 + 1e-5));
      const auto s = t.dir / (std::string(name) + ".toml");
      test::write_file(s, "name = \"" + std::string(name) +
                              "\"\nmodel = \"tiny\"\ntrain-num-samples = 64\n"
                              "val-num-samples = 16\nbatch-size = 16\nsteps = 2\nwarmup = 1\n"
                              "seed = 4\nlr = " +
                              lr.str() +
                              "\n[determinism]\nthreads = 2\n[log]\nfull-steps = [\"0:\"]\n"
                              "full-tensors = [\"*\"]\n");
      auto run =
          test::run_cli("run " + s.string() + " --out " + t.dir.string() + " --no-golden -q");
      if (run.exit_code != 0) throw std::runtime_error(run.output);
    }
    t.a = t.dir / "a.h5";
    t.b = t.dir / "b.h5";
    return t;
  }();
  return r;
}

TEST(CompareTolerance, TinyLrChangeDiffersBitwiseAndMatchesWithinRtol) {
  LogReader a(two_runs().a), b(two_runs().b);
  const auto bitwise = compare_logs(a, b);
  ASSERT_FALSE(bitwise.equal());
  EXPECT_EQ(bitwise.diffs.front().first_step, 1);
  EXPECT_EQ(bitwise.diffs.front().reason,
            DiffReason::kValues);  // full tensors: located to the element
  EXPECT_GE(bitwise.diffs.front().first_element, 0);

  // Everything stays within rtol except the attention key biases: their gradient is zero up to
  // rounding (softmax ignores a shift shared by all keys), and Adam's m/sqrt(v) turns that noise
  // into steps of about lr whose sign the 1e-5 lr change decides.
  CompareOptions close;
  close.tolerance.fallback = parse_tolerance("rtol=1e-3,atol=1e-4");
  auto r = compare_logs(a, b, close);
  ASSERT_FALSE(r.equal());
  EXPECT_GT(r.steps_tolerated, 10);
  for (const auto& d : r.diffs) {
    EXPECT_EQ(d.first_step, 2);
    EXPECT_TRUE(d.name.find("k_proj.bias") != std::string::npos ||
                d.name.find("in_proj_bias") != std::string::npos)
        << d.name;
  }
  // Per-family overrides: the first matching glob wins.
  close.tolerance.overrides = {parse_tolerance_override("*k_proj.bias=rtol=0,atol=3e-3"),
                               parse_tolerance_override("*in_proj_bias=rtol=0,atol=3e-3")};
  r = compare_logs(a, b, close);
  EXPECT_TRUE(r.equal()) << format_compare(r, "a", "b");
  EXPECT_NE(format_compare(r, "a", "b").find("MATCH within tolerance rtol=0.001,atol=0.0001; "),
            std::string::npos);
  CompareOptions ulp0;
  ulp0.tolerance.fallback = parse_tolerance("ulp=0");
  EXPECT_FALSE(compare_logs(a, b, ulp0).equal());
}

TEST(Tolerance, PolicyOverridesByGlobFirstMatchWins) {
  TolerancePolicy p;
  p.fallback = parse_tolerance("ulp=1");
  p.overrides = {parse_tolerance_override("optimizer/*=rtol=1e-5,atol=0"),
                 parse_tolerance_override("optimizer/exp_avg_sq/*=bitwise"),
                 parse_tolerance_override("*=ulp=9")};
  EXPECT_EQ(p.for_tensor("optimizer/exp_avg_sq/w").kind, Tolerance::Kind::kClose);
  EXPECT_EQ(p.for_tensor("params/w").ulp, 9);
  EXPECT_FALSE(p.all_bitwise());
  EXPECT_EQ(p.text(),
            "ulp=1; optimizer/*=rtol=1e-05,atol=0; optimizer/exp_avg_sq/*=bitwise; *=ulp=9");
  TolerancePolicy none;
  EXPECT_TRUE(none.all_bitwise());
  EXPECT_EQ(none.for_tensor("x").kind, Tolerance::Kind::kBitwise);
  for (const char* bad : {"=ulp=1", "params/*", "params/*=ulp=-1", "params/*=close"}) {
    EXPECT_THROW(parse_tolerance_override(bad), std::invalid_argument) << bad;
  }
}

TEST(CompareReport, CliWritesJsonJunitAndMarkdownWithExitCodes) {
  const auto& t = two_runs();
  const auto json = t.dir / "r.json", junit = t.dir / "r.xml", md = t.dir / "r.md";
  auto r =
      test::run_cli("compare " + t.a.string() + " " + t.b.string() + " --json " + json.string() +
                    " --junit " + junit.string() + " --markdown " + md.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const auto j = nlohmann::json::parse(test::read_file(json));
  EXPECT_EQ(j["verdict"], "differ");
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_EQ(j["tolerance"], "bitwise");
  EXPECT_EQ(j["first_divergence"]["first_step"], 1);
  EXPECT_GT(j["diffs"].size(), 5u);
  const auto xml = test::read_file(junit);
  EXPECT_NE(xml.find("<failure"), std::string::npos);
  const std::string xsd = std::string(kSourceDir) + "/tests/data/junit.xsd";
  auto v = test::run_command("xmllint --noout --schema " + xsd + " " + junit.string());
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(test::read_file(md).find("**First divergence**: step 1"), std::string::npos);

  // Within tolerance: exit 0, JUnit without failures, still schema-valid.
  r = test::run_cli(
      "compare " + t.a.string() + " " + t.b.string() +
      " --tolerance rtol=1e-3,atol=1e-4 --tolerance-for '*k_proj.bias=rtol=0,atol=3e-3' "
      "--tolerance-for '*in_proj_bias=rtol=0,atol=3e-3' --junit " +
      junit.string() + " --json " + json.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(test::read_file(junit).find("failures=\"0\""), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(test::read_file(json))["verdict"], "match");
  v = test::run_command("xmllint --noout --schema " + xsd + " " + junit.string());
  EXPECT_EQ(v.exit_code, 0) << v.output;

  // A bad policy is an error: exit 2, nothing claimed.
  r = test::run_cli("compare " + t.a.string() + " " + t.b.string() + " --tolerance rtol=oops");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("tolerance 'rtol=oops'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cliprepro

namespace cliprepro {
namespace {

// Depths of the tiny model's tensors from a real log: capture points in execution order per
// tower; forward tensors count from the input, parameters (and their gradients) from the loss.
TEST(TensorDepth, ForwardFromTheInputBackwardFromTheLossPerTower) {
  LogReader log(two_runs().a);
  const auto d = tensor_depths(log);
  // tiny visual tower: conv1 bn1 act1 conv2 bn2 act2 conv3 bn3 act3 avgpool layer1.0 … layer4.0
  // attnpool = 15 capture points.
  EXPECT_EQ(d.at("activations/visual.conv1"), 1);
  EXPECT_EQ(d.at("activations/visual.bn1"), 2);
  EXPECT_EQ(d.at("activations/visual.attnpool"), 15);
  EXPECT_EQ(d.at("bn_batch/visual.bn1.mean"), 2);
  EXPECT_EQ(d.at("grads/visual.conv1.weight"), 15);
  EXPECT_EQ(d.at("params/visual.conv1.weight"), 15);
  EXPECT_EQ(d.at("optimizer/exp_avg_sq/visual.bn1.weight"), 14);
  EXPECT_EQ(d.at("buffers/visual.bn1.running_var"), 14);
  EXPECT_EQ(d.at("grads/visual.layer1.0.conv1.weight"), 5);
  EXPECT_EQ(d.at("grads/visual.attnpool.c_proj.weight"), 1);
  // Text tower: token_embedding, transformer.resblocks.0, .1, ln_final.
  EXPECT_EQ(d.at("activations/token_embedding"), 1);
  EXPECT_EQ(d.at("activations/ln_final"), 4);
  EXPECT_EQ(d.at("grads/token_embedding.weight"), 4);
  EXPECT_EQ(d.at("grads/transformer.resblocks.0.attn.in_proj_weight"), 3);
  EXPECT_EQ(d.at("grads/transformer.resblocks.1.attn.in_proj_weight"), 2);
  // Outputs and tensors no capture point holds.
  EXPECT_EQ(d.at("scalars/loss"), 1);
  EXPECT_EQ(d.at("activations/logits_per_image"), 1);
  EXPECT_EQ(d.at("grads/text_projection"), 1);
}

}  // namespace
}  // namespace cliprepro
