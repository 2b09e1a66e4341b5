// The CLI's contract: exit codes 0 match / 1 differ / 2 error, and clear error messages.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

TEST(Cli, MalformedScenarioReportsFileLineAndExits2) {
  const auto dir = test::temp_dir("cli_bad");
  const auto p = dir / "bad.toml";
  test::write_file(p, "model = \"tiny\"\nbatch-size = 32\nlearning_rate = 0.1\n");
  const auto r = test::run_cli("run " + p.string() + " --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(p.string() + ":3:1: unknown key 'learning_rate'"), std::string::npos)
      << r.output;
  test::write_file(p, "model = \"tiny\"\n[log\n");
  const auto r2 = test::run_cli("run " + p.string());
  EXPECT_EQ(r2.exit_code, 2) << r2.output;
  EXPECT_NE(r2.output.find(p.string() + ":2:"), std::string::npos) << r2.output;
}

TEST(Cli, MissingGoldenExits2BeforeTraining) {
  const auto dir = test::temp_dir("cli_nogolden");
  const auto p = test::short_scenario(dir, "nogold", 2);
  const auto r = test::run_cli("run " + p.string() + " --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("nogold-golden.h5 does not exist"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cliprepro golden bless"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "nogold.h5"));
}

TEST(Cli, BlessRunCompareExitCodes) {
  const auto dir = test::temp_dir("cli_codes");
  const auto p = test::short_scenario(dir, "codes", 2);
  auto bless = test::run_cli("golden bless " + p.string() + " -q");
  ASSERT_EQ(bless.exit_code, 0) << bless.output;
  auto run = test::run_cli("run " + p.string() + " -q --out " + (dir / "a").string());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("MATCH"), std::string::npos) << run.output;
  auto check =
      test::run_cli("golden check " + p.string() + " " + (dir / "a" / "codes.h5").string());
  EXPECT_EQ(check.exit_code, 0) << check.output;

  const auto q = test::short_scenario(dir, "other", 2, "beta1 = 0.85\n");
  ASSERT_EQ(test::run_cli("run " + q.string() + " -q --no-golden --out " + (dir / "b").string())
                .exit_code,
            0);
  auto cmp = test::run_cli("compare " + (dir / "a" / "codes.h5").string() + " " +
                           (dir / "b" / "other.h5").string());
  EXPECT_EQ(cmp.exit_code, 1) << cmp.output;
  EXPECT_NE(cmp.output.find("first difference: step 1"), std::string::npos) << cmp.output;

  auto missing = test::run_cli("compare " + (dir / "a" / "codes.h5").string() + " " +
                               (dir / "nope.h5").string());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  test::write_file(dir / "junk.h5", "not hdf5");
  auto junk = test::run_cli("compare " + (dir / "a" / "codes.h5").string() + " " +
                            (dir / "junk.h5").string());
  EXPECT_EQ(junk.exit_code, 2) << junk.output;
  EXPECT_NE(junk.output.find("error:"), std::string::npos) << junk.output;
}

TEST(Cli, EnvPrintsFingerprintJson) {
  const auto r = test::run_cli("env");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("torch_version").get<std::string>().rfind("2.11", 0), 0u);
  EXPECT_TRUE(j.at("cpu").contains("isa_flags"));
  EXPECT_TRUE(j.at("determinism").contains("deterministic_algorithms"));
  EXPECT_FALSE(j.at("git_commit").get<std::string>().empty());
}

TEST(Cli, NoSubcommandIsAnError) {
  EXPECT_EQ(test::run_cli("").exit_code, 2);
  EXPECT_EQ(test::run_cli("frobnicate").exit_code, 2);
  EXPECT_EQ(test::run_cli("--help").exit_code, 0);
}

}  // namespace
}  // namespace cliprepro
