// Scenario parsing: the shipped quickstart, defaults, and file:line errors for bad input.
#include <gtest/gtest.h>

#include "harness/scenario.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_scenario(text, "/x/bad.toml");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(Scenario, QuickstartParses) {
  auto s = load_scenario(std::filesystem::path(kSourceDir) / "scenarios" / "quickstart.toml");
  EXPECT_EQ(s.name, "quickstart");
  EXPECT_EQ(s.train.model, "tiny");
  EXPECT_EQ(s.train.precision, "fp32");
  EXPECT_EQ(s.train.batch_size, 32);
  EXPECT_DOUBLE_EQ(s.train.lr, 1e-3);
  EXPECT_EQ(s.train.determinism.threads, 2);
  EXPECT_EQ(s.golden.path,
            (std::filesystem::path(kSourceDir) / "golden" / "quickstart.h5").lexically_normal());
  EXPECT_EQ(s.resolved()["total-steps"], s.train.total_steps());
}

TEST(Scenario, DefaultsAreOpenCLIPs) {
  auto s = parse_scenario("", "/x/empty.toml");
  EXPECT_DOUBLE_EQ(s.train.lr, 5e-4);
  EXPECT_DOUBLE_EQ(s.train.wd, 0.2);
  EXPECT_EQ(s.train.warmup, 10000);
  EXPECT_DOUBLE_EQ(s.train.beta2, 0.999);
  EXPECT_DOUBLE_EQ(s.train.eps, 1e-8);
  EXPECT_EQ(s.train.epochs, 32);
  EXPECT_EQ(s.train.batch_size, 64);
  EXPECT_TRUE(s.golden.path.empty());
}

TEST(Scenario, UnknownKeyNamesFileAndLine) {
  EXPECT_EQ(error_of("model = \"tiny\"\n\nlearning-rate = 1e-3\n"),
            "/x/bad.toml:3:1: unknown key 'learning-rate'");
  EXPECT_EQ(error_of("[log]\ndigest-every = 1\nfull = [1]\n"),
            "/x/bad.toml:3:1: unknown key 'full' in [log]");
}

TEST(Scenario, WrongTypeAndBadValuesNameFileAndLine) {
  EXPECT_EQ(error_of("seed = 0\nbatch-size = \"32\"\n"),
            "/x/bad.toml:2:14: 'batch-size' must be an integer");
  EXPECT_EQ(error_of("lr = true\n"), "/x/bad.toml:1:6: 'lr' must be a number");
  EXPECT_EQ(error_of("\nbeta2 = 1.5\n"), "/x/bad.toml:2:9: 'beta2' must be in [0, 1)");
  EXPECT_NE(error_of("[log]\nfull-steps = [\"x:y\"]\n").find("/x/bad.toml:2:"), std::string::npos);
  EXPECT_NE(error_of("precision = \"amp_fp8\"\n").find("/x/bad.toml:1:13: precision 'amp_fp8'"),
            std::string::npos);
}

// [numerics] (cliprepro's keys beyond OpenCLIP's flags) and skip-bad-samples.
TEST(Scenario, NumericsAndSkipBadSamples) {
  auto s = parse_scenario("skip-bad-samples = true\n[numerics]\nbn-fp32 = true\nbn-eps = 1e-3\n",
                          "/x/ok.toml");
  EXPECT_TRUE(s.train.skip_bad_samples);
  EXPECT_TRUE(s.train.bn_fp32);
  EXPECT_DOUBLE_EQ(s.train.bn_eps, 1e-3);
  EXPECT_EQ(s.resolved()["numerics"]["bn-eps"], 1e-3);
  EXPECT_EQ(s.resolved()["skip-bad-samples"], true);
  const auto d = parse_scenario("", "/x/ok.toml");
  EXPECT_FALSE(d.train.bn_fp32);
  EXPECT_DOUBLE_EQ(d.train.bn_eps, 1e-5);  // nn.BatchNorm2d's default
  EXPECT_EQ(error_of("[numerics]\nbn-eps = 0\n"), "/x/bad.toml:2:10: 'bn-eps' must be > 0");
  EXPECT_EQ(error_of("[numerics]\nbn-fp32 = 1\n"),
            "/x/bad.toml:2:11: 'bn-fp32' must be true or false");
  EXPECT_EQ(error_of("[numerics]\nln-fp32 = true\n"),
            "/x/bad.toml:2:1: unknown key 'ln-fp32' in [numerics]");
}

TEST(Scenario, SyntaxErrorNamesFileAndLine) {
  const auto e = error_of("model = \"tiny\"\nlr = = 3\n");
  EXPECT_EQ(e.rfind("/x/bad.toml:2:", 0), 0u) << e;
}

TEST(Scenario, IntegerAcceptedWhereNumberExpected) {
  auto s = parse_scenario("lr = 1\nwd = 0\n", "/x/ok.toml");
  EXPECT_DOUBLE_EQ(s.train.lr, 1.0);
  EXPECT_DOUBLE_EQ(s.train.wd, 0.0);
}

TEST(Scenario, OneUlpLrSurvivesParsing) {
  auto s = parse_scenario("lr = 0.0010000000000000002\n", "/x/ok.toml");
  EXPECT_EQ(s.train.lr, std::nextafter(1e-3, 1.0));
}

}  // namespace
}  // namespace cliprepro
