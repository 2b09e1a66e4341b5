// `cliprepro bisect`: logs with digests every 3 steps and no full tensors; one run has a bit
// flipped in a parameter after step 4. The logs first differ at step 5, in the loss (0-d values
// are stored every step); bisect re-runs both from
// their step-4 checkpoints (or from the start when there are none) and names the flipped tensor
// and element.
#include <gtest/gtest.h>

#include <algorithm>

#include "harness/compare/bisect.h"
#include "harness/compare/compare.h"
#include "harness/log/log_reader.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

constexpr const char* kFlipped = "params/text_projection";
constexpr int64_t kElement = 5;
// The top mantissa bit: a change the loss of step 5 shows on every CPU (bit 9 left it unchanged
// on an Intel Xeon, so the first difference there was a gradient).
constexpr int kBit = 22;

std::filesystem::path scenario(const std::filesystem::path& dir, const std::string& name,
                               const std::string& debug) {
  const auto path = dir / (name + ".toml");
  test::write_file(path, "name = \"" + name +
                             "\"\nmodel = \"tiny\"\ntrain-num-samples = 64\nval-num-samples = 16\n"
                             "batch-size = 16\nsteps = 6\nwarmup = 1\nlr = 1e-3\nseed = 8\n"
                             "zeroshot-frequency = 0\nsave-every-steps = 2\n"
                             "[determinism]\nthreads = 2\n" +
                             debug + "[log]\ndigest-every = 3\n");
  return path;
}

struct Logs {
  std::filesystem::path dir, a, b;
};
const Logs& logs() {
  static const Logs l = [] {
    Logs t{test::temp_dir("bisect_runs"), {}, {}};
    for (const auto& [name, debug] : std::vector<std::pair<std::string, std::string>>{
             {"a", ""},
             {"b", "[debug]\nflip-step = 4\nflip-tensor = \"" + std::string(kFlipped) +
                       "\"\nflip-element = " + std::to_string(kElement) + "\nflip-bit = " + std::to_string(kBit) + "\n"}}) {
      const auto r = test::run_cli("run " + scenario(t.dir, name, debug).string() + " --out " +
                                   t.dir.string() + " --no-golden -q");
      if (r.exit_code != 0) throw std::runtime_error(r.output);
    }
    t.a = t.dir / "a.h5", t.b = t.dir / "b.h5";
    return t;
  }();
  return l;
}

TEST(Bisect, LocatesAFlipBetweenDigestStepsFromTheNearestCheckpoint) {
  {
    LogReader a(logs().a), b(logs().b);
    const auto c = compare_logs(a, b);
    ASSERT_FALSE(c.equal());
    // Tensors have digests at steps 0, 3, 6 only; 0-d values every step: the loss of step 5
    // is the first to see the flip. Which parameter holds it, the logs cannot tell.
    ASSERT_EQ(c.diffs.front().first_step, 5);
    EXPECT_EQ(c.diffs.front().name, "scalars/loss");
    const auto flipped = std::find_if(c.diffs.begin(), c.diffs.end(),
                                      [](const TensorDiff& d) { return d.name == kFlipped; });
    ASSERT_NE(flipped, c.diffs.end());
    EXPECT_EQ(flipped->first_step, 6);
    EXPECT_EQ(flipped->reason, DiffReason::kDigest);
    EXPECT_EQ(flipped->detail, "digests only; no step has it in full in both logs");
  }
  const auto work = test::temp_dir("bisect_work");
  const BisectResult r = bisect_logs(logs().a, logs().b, work);
  EXPECT_EQ(r.divergence_step, 5);
  EXPECT_EQ(r.a.from_step, 4);
  EXPECT_EQ(r.b.from_step, 4);
  EXPECT_EQ(r.b.checkpoint.filename(), "step_4.safetensors");
  ASSERT_FALSE(r.rerun.equal());
  const TensorDiff& d = r.rerun.diffs.front();
  EXPECT_EQ(d.name, kFlipped);
  EXPECT_EQ(d.first_step, 4);  // the state resumed from already holds the flip
  EXPECT_EQ(d.first_element, kElement);
  EXPECT_EQ(d.elements_differing, 1);
  // The re-runs stopped at the divergence step and stored everything in full.
  LogReader rerun(r.b.rerun_log);
  EXPECT_EQ(rerun.last_complete_step(), 5);
  EXPECT_EQ(rerun.find(kFlipped)->full_steps, (std::vector<int64_t>{4, 5}));

  const auto cli = test::run_cli("bisect " + logs().a.string() + " " + logs().b.string() +
                                 " --work-dir " + (work / "cli").string());
  EXPECT_EQ(cli.exit_code, 1) << cli.output;
  EXPECT_NE(cli.output.find("logs diverge at step 5 (scalars/loss)"), std::string::npos)
      << cli.output;
  EXPECT_NE(cli.output.find("from checkpoint step 4"), std::string::npos) << cli.output;
  EXPECT_NE(cli.output.find("first differing tensor in execution order: " + std::string(kFlipped) +
                            " (step 4, phase optimizer"),
            std::string::npos)
      << cli.output;
  EXPECT_NE(cli.output.find("first at flat index 5"), std::string::npos) << cli.output;
}

TEST(Bisect, WithoutCheckpointsReRunsFromTheStart) {
  const auto dir = test::temp_dir("bisect_no_ckpt");
  std::filesystem::copy_file(logs().a, dir / "a.h5",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(logs().b, dir / "b.h5",
                             std::filesystem::copy_options::overwrite_existing);
  const BisectResult r = bisect_logs(dir / "a.h5", dir / "b.h5", dir / "work");
  EXPECT_TRUE(r.b.checkpoint.empty());
  EXPECT_EQ(r.b.from_step, 0);
  ASSERT_FALSE(r.rerun.equal());
  EXPECT_EQ(r.rerun.diffs.front().name, kFlipped);
  EXPECT_EQ(r.rerun.diffs.front().first_step, 4);  // the re-run flips again after step 4
  EXPECT_EQ(r.rerun.diffs.front().first_element, kElement);
}

TEST(Bisect, IdenticalLogsHaveNothingToBisectAndBadInputIsAnError) {
  auto r = test::run_cli("bisect " + logs().a.string() + " " + logs().a.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("nothing to bisect"), std::string::npos);
  const auto dir = test::temp_dir("bisect_bad");
  test::write_file(dir / "not.h5", "not hdf5");
  r = test::run_cli("bisect " + logs().a.string() + " " + (dir / "not.h5").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace cliprepro
