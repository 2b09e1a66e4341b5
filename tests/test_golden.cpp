// Goldens and compare: bless/check, one flipped bit located exactly, a one-ULP lr change
// found at the first optimizer update.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/compare/compare.h"
#include "harness/compare/golden.h"
#include "harness/compare/golden_text.h"
#include "harness/log/env_fingerprint.h"
#include "harness/log/log_reader.h"
#include "harness/run/run_scenario.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

RunResult run_to(const Scenario& s, const std::filesystem::path& log) {
  RunOptions o;
  o.log_path = log;
  o.selection = s.log;
  o.progress = false;
  return train_and_log(s, o);
}

class GoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("golden");
    scenario_ = load_scenario(test::short_scenario(dir_, "short", 3));
    bless_golden(scenario_, false);
    run_to(scenario_, dir_ / "run.h5");
  }
  std::filesystem::path dir_;
  Scenario scenario_;
};

TEST_F(GoldenTest, BlessedGoldenMatchesARerun) {
  EXPECT_TRUE(std::filesystem::exists(scenario_.golden.path));
  // No temporary file is left beside the golden.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    files += e.path().string().find(".tmp-") != std::string::npos;
  EXPECT_EQ(files, 0);
  const auto r = check_golden(dir_ / "run.h5", scenario_);
  EXPECT_TRUE(r.equal()) << format_compare(r, "run", "golden");
  EXPECT_GT(r.digests_compared, 100);
  EXPECT_GT(r.full_compared, 0);
}

TEST_F(GoldenTest, OneFlippedBitInGoldenTensorIsLocatedAndNamed) {
  // text_projection is stored in full at steps 1 and 3 in both files; row 0 is step 1.
  test::flip_bit(scenario_.golden.path, "/tensors/params/text_projection/full", 0, 37, 3);
  // The file no longer hashes to the SHA-256 its companion records: refused unread.
  try {
    check_golden(dir_ / "run.h5", scenario_);
    ADD_FAILURE() << "a flipped golden was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not hash to the SHA-256"), std::string::npos)
        << e.what();
  }
  // With the companion rewritten from the damaged file, the check still finds the flip.
  write_golden_text(scenario_.golden.path);
  const auto r = check_golden(dir_ / "run.h5", scenario_);
  ASSERT_FALSE(r.equal());
  const auto& f = r.diffs.front();
  EXPECT_EQ(f.name, "params/text_projection");
  EXPECT_EQ(f.first_step, 1);
  EXPECT_EQ(f.reason, DiffReason::kValues);
  EXPECT_EQ(f.elements_differing, 1);
  EXPECT_EQ(f.first_element, 37);
  EXPECT_GT(f.max_abs_err, 0.0);
  // The golden's own digest no longer matches its stored bits: reported as corruption too.
  bool corrupt = false;
  for (const auto& d : r.diffs)
    corrupt = corrupt || (d.reason == DiffReason::kCorrupt && d.name == f.name);
  EXPECT_TRUE(corrupt);
  const std::string text = format_compare(r, "run", "golden");
  EXPECT_NE(text.find("step 1"), std::string::npos) << text;
  EXPECT_NE(text.find("params/text_projection"), std::string::npos) << text;
}

TEST_F(GoldenTest, FlippedBitInTensorOnlyTheRunStoresIsCaughtByItsDigest) {
  // grads/* are stored in full in the run log only; the golden holds their digests.
  test::flip_bit(dir_ / "run.h5", "/tensors/grads/ln_final.weight/full", 0, 5,
                 30);  // row 0 = step 1
  const auto r = check_golden(dir_ / "run.h5", scenario_);
  ASSERT_FALSE(r.equal());
  EXPECT_EQ(r.diffs.front().name, "grads/ln_final.weight");
  EXPECT_EQ(r.diffs.front().reason, DiffReason::kCorrupt);
  EXPECT_EQ(r.diffs.front().first_step, 1);
}

// Goldens that prove nothing never match (exit 2 from the CLI), even when their text companion
// was rewritten from the damaged file (`cliprepro golden text`), as a user "fixing" it would.
TEST_F(GoldenTest, GoldensThatProveNothingAreErrorsNeverMatches) {
  const std::vector<std::pair<std::string, std::function<void(const std::filesystem::path&)>>>
      cases = {
          {"empty /digests",
           [](const auto& g) { test::edit_digest_rows(g, [](auto& r) { r.clear(); }); }},
          {"one row",
           [](const auto& g) { test::edit_digest_rows(g, [](auto& r) { r.resize(1); }); }},
          {"half its rows",
           [](const auto& g) {
             test::edit_digest_rows(g, [](auto& r) { r.resize(r.size() / 2); });
           }},
          {"steps shifted past the run's",
           [](const auto& g) {
             test::edit_digest_rows(g, [](auto& rows) {
               for (auto& r : rows) r.step += 1000;
             });
           }},
          {"no /progress", [](const auto& g) { test::set_progress(g, std::nullopt); }},
          {"/progress 0", [](const auto& g) { test::set_progress(g, 0); }},
          {"/progress -1", [](const auto& g) { test::set_progress(g, -1); }},
          {"a killed run's log",
           [](const auto& g) { test::set_root_attr(g, "status", "running"); }},
      };
  for (const auto& [what, damage] : cases) {
    const auto dir = test::temp_dir("golden_nothing");
    Scenario s = scenario_;
    s.golden.path = dir / "g.h5";
    std::filesystem::copy_file(scenario_.golden.path, s.golden.path);
    damage(s.golden.path);
    try {
      write_golden_text(s.golden.path);
    } catch (const std::exception&) {
      // Unreadable as a log: the check below must fail just as well.
    }
    bool matched = false;
    std::string error;
    try {
      matched = check_golden(dir_ / "run.h5", s).equal();
    } catch (const std::exception& e) {
      error = e.what();
    }
    EXPECT_FALSE(matched) << what;
    EXPECT_FALSE(error.empty()) << what << ": not an error";
    if (what == "half its rows") {
      EXPECT_NE(error.find("lacks"), std::string::npos) << error;
    }
    if (what == "a killed run's log") {
      EXPECT_NE(error.find("not closed cleanly"), std::string::npos) << error;
    }
  }
  // Through the CLI: exit 2, never MATCH.
  const auto dir = test::temp_dir("golden_nothing_cli");
  std::filesystem::copy_file(scenario_.golden.path, dir / "g.h5");
  test::edit_digest_rows(dir / "g.h5", [](auto& r) { r.resize(1); });
  write_golden_text(dir / "g.h5");
  auto toml = test::read_file(scenario_.path);
  toml.replace(toml.find("path = \""), std::string::npos,
               "path = \"" + (dir / "g.h5").string() + "\"\n");
  test::write_file(dir / "s.toml", toml);
  const auto r =
      test::run_cli("golden check " + (dir / "s.toml").string() + " " + (dir_ / "run.h5").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output.find("MATCH"), std::string::npos) << r.output;
}

TEST(Compare, OneUlpLrChangeFirstDiffersAtFirstOptimizerUpdate) {
  const auto dir = test::temp_dir("ulp");
  const auto a = load_scenario(test::short_scenario(dir, "base", 3, "lr = 1e-3\n"));
  std::ostringstream ulp;
  ulp.precision(17);
  ulp << "lr = " << std::nextafter(1e-3, 1.0) << "\n";
  const auto b = load_scenario(test::short_scenario(dir, "ulp", 3, ulp.str()));
  ASSERT_NE(a.train.optim.lr, b.train.optim.lr);
  run_to(a, dir / "a.h5");
  run_to(b, dir / "b.h5");
  LogReader ra(dir / "a.h5"), rb(dir / "b.h5");
  const auto r = compare_logs(ra, rb);
  ASSERT_FALSE(r.equal());
  EXPECT_EQ(r.diffs.front().first_step, 1) << format_compare(r, "a", "b");
  EXPECT_EQ(r.diffs.front().name, "scalars/lr");
  for (const auto& d : r.diffs) EXPECT_GE(d.first_step, 1) << d.name;
}

TEST(Compare, IdenticalLogsMatchAndMissingTensorsDiffer) {
  const auto dir = test::temp_dir("cmp");
  const auto s = load_scenario(test::short_scenario(dir, "c", 2));
  run_to(s, dir / "a.h5");
  LogReader ra(dir / "a.h5");
  EXPECT_TRUE(compare_logs(ra, ra).equal());
  // A golden-style subset: the run has everything the golden has, not the reverse.
  auto golden_like = s;
  golden_like.log.full_tensors.clear();
  run_to(golden_like, dir / "b.h5");
  LogReader rb(dir / "b.h5");
  CompareOptions subset;
  subset.b_is_subset = true;
  EXPECT_TRUE(compare_logs(ra, rb, subset).equal());
}

// A golden blessed at one lr, a run at lr·(1 + 1e-5): never bitwise equal. With the golden's
// fingerprint the check is bitwise and fails; with another key field (torch version) it applies
// the scenario's tolerance and passes; a field outside the key (git commit) changes nothing.
TEST(GoldenFingerprint, SameFingerprintIsBitwiseOtherwiseTheScenarioTolerance) {
  const auto dir = test::temp_dir("golden_fp");
  auto scenario = [&](const std::string& name, const std::string& lr) {
    const auto path = dir / (name + ".toml");
    test::write_file(path, "name = \"" + name +
                               "\"\nmodel = \"tiny\"\ntrain-num-samples = 64\n"
                               "val-num-samples = 16\nbatch-size = 16\nsteps = 2\nwarmup = 1\n"
                               "seed = 4\nlr = " +
                               lr +
                               "\n[determinism]\nthreads = 2\n"
                               "[golden]\npath = \"golden.h5\"\nfull-steps = [\"0:\"]\n"
                               "full-tensors = [\"*\"]\ntolerance = \"rtol=1e-3,atol=1e-4\"\n"
                               "tolerance-for = [\"*k_proj.bias=rtol=0,atol=3e-3\", "
                               "\"*in_proj_bias=rtol=0,atol=3e-3\"]\n");
    return load_scenario(path);
  };
  const Scenario golden = scenario("golden", "1e-3"), run = scenario("run", "1.00001e-3");
  bless_golden(golden, false);
  RunOptions o;
  o.log_path = dir / "run.h5";
  o.selection = run.golden.selection;
  o.progress = false;
  train_and_log(run, o);

  auto r = check_golden(o.log_path, run);
  EXPECT_FALSE(r.equal());
  EXPECT_EQ(r.tolerance, "bitwise");
  EXPECT_NE(r.tolerance_reason.find("same environment fingerprint"), std::string::npos)
      << r.tolerance_reason;

  auto fp = nlohmann::json::parse(LogReader(golden.golden.path).attr("fingerprint"));
  fp["git_commit"] = "0000000";
  test::set_root_attr(golden.golden.path, "fingerprint", fp.dump());
  write_golden_text(golden.golden.path);  // the edit changed the file's SHA-256
  EXPECT_EQ(check_golden(o.log_path, run).tolerance, "bitwise");

  fp["torch_version"] = "0.0.0";
  test::set_root_attr(golden.golden.path, "fingerprint", fp.dump());
  write_golden_text(golden.golden.path);
  r = check_golden(o.log_path, run);
  EXPECT_TRUE(r.equal()) << format_compare(r, "run", "golden");
  EXPECT_GT(r.steps_tolerated, 10);
  EXPECT_NE(r.tolerance_reason.find("torch_version"), std::string::npos) << r.tolerance_reason;
  EXPECT_NE(format_compare(r, "run", "golden").find("policy: environment fingerprint differs"),
            std::string::npos);
}

// The text companion: written by bless, readable (step 1's loss in full precision), checked
// against the binary golden by every check.
TEST_F(GoldenTest, TextCompanionIsWrittenAndMustAgreeWithTheGolden) {
  const auto text_path = companion_path(scenario_.golden.path);
  ASSERT_TRUE(std::filesystem::exists(text_path));
  const std::string text = test::read_file(text_path);
  LogReader golden(scenario_.golden.path);
  EXPECT_EQ(text, golden_text(golden));
  char loss[40];
  std::snprintf(loss, sizeof loss, "\n1\t%.17g\t",
                golden.read_full("scalars/loss", 1).to(torch::kFloat64).item<double>());
  EXPECT_NE(text.find(loss), std::string::npos) << text.substr(0, 600);
  EXPECT_NE(text.find("\tparams"), std::string::npos);
  // An edited companion (here: one digest character) is refused, naming both files.
  std::string edited = text;
  const auto row = edited.find("\n2\t");
  ASSERT_NE(row, std::string::npos);
  const auto last = edited.find('\n', row + 1) - 1;
  edited[last] = edited[last] == '0' ? '1' : '0';
  test::write_file(text_path, edited);
  try {
    check_golden(dir_ / "run.h5", scenario_);
    FAIL() << "an edited companion was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not describe"), std::string::npos) << e.what();
  }
  std::filesystem::remove(text_path);
  EXPECT_THROW(check_golden(dir_ / "run.h5", scenario_), GoldenMissing);
}

// A golden family: the [golden] path was blessed on another environment key (here: another
// torch version written into its fingerprint). Blessing on this machine leaves it untouched and
// writes this environment's <stem>.env-<id>.h5, which a run here is then checked against, bitwise;
// without it the run falls back to the [golden] path and the scenario's tolerance.
TEST_F(GoldenTest, OtherEnvironmentsGoldenIsKeptAndThisOnesIsChosen) {
  const auto& primary = scenario_.golden.path;
  auto fp = nlohmann::json::parse(LogReader(primary).attr("fingerprint"));
  fp["torch_version"] = "0.0.0";
  test::set_root_attr(primary, "fingerprint", fp.dump());
  write_golden_text(primary);
  const auto before = test::read_file(primary);
  EXPECT_EQ(select_golden(dir_ / "run.h5", scenario_), primary);
  EXPECT_NE(check_golden(dir_ / "run.h5", scenario_).tolerance_reason.find("torch_version"),
            std::string::npos);

  const RunResult blessed = bless_golden(scenario_, false);
  const auto here = nlohmann::json::parse(LogReader(dir_ / "run.h5").attr("fingerprint"));
  const auto keyed = environment_variant(scenario_.golden.path, fingerprint_key(here));
  EXPECT_EQ(blessed.log_path, keyed);
  EXPECT_EQ(keyed.filename().string().rfind("short-golden.env-", 0), 0u) << keyed;
  EXPECT_EQ(test::read_file(primary), before) << "the other environment's golden was rewritten";
  EXPECT_EQ(select_golden(dir_ / "run.h5", scenario_), keyed);
  const auto r = check_golden(dir_ / "run.h5", scenario_);
  EXPECT_TRUE(r.equal()) << format_compare(r, "run", "golden");
  EXPECT_NE(r.tolerance_reason.find("same environment fingerprint"), std::string::npos);
  // Blessing again on this environment rewrites its own golden, not the [golden] path.
  EXPECT_EQ(bless_golden(scenario_, false).log_path, keyed);
  EXPECT_EQ(test::read_file(primary), before);
}

TEST(GoldenFingerprint, BadToleranceInScenarioNamesFileAndLine) {
  const auto dir = test::temp_dir("golden_fp_bad");
  const auto path = dir / "bad.toml";
  test::write_file(path,
                   "name = \"bad\"\nmodel = \"tiny\"\n[golden]\npath = \"g.h5\"\n"
                   "tolerance = \"ulp=-1\"\n");
  try {
    load_scenario(path);
    FAIL() << "accepted a negative ULP bound";
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.toml:5:"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cliprepro
