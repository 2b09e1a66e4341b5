// The shipped quickstart scenario is bitwise reproducible within one process: a second run of it
// (through step 80: one epoch, its zero-shot evaluation and 16 steps more) gives the same bits at
// every step it runs. Across processes and sessions, quickstart_matches_golden checks the whole
// run against the committed golden.
#include <gtest/gtest.h>

#include "harness/compare/compare.h"
#include "harness/run/run_scenario.h"
#include "src/log_schema.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

constexpr int64_t kPrefixSteps = 80;

TEST(Reproducibility, TwoQuickstartRunsAreBitwiseIdentical) {
  const auto dir = test::temp_dir("repro");
  Scenario s = load_scenario(std::filesystem::path(kSourceDir) / "scenarios" / "quickstart.toml");
  RunOptions o;
  o.log_path = dir / "full.h5";
  o.selection = s.log;
  o.progress = false;
  const auto full = train_and_log(s, o);
  EXPECT_LT(full.summary.last_loss, full.summary.first_loss);
  // Learnable: zero-shot accuracy on held-out images well above chance (1/16).
  EXPECT_GT(full.summary.zero_shot_after.top1, 3.0 / 16);

  // The same scenario again, stopped early (the lr schedule still spans the whole run).
  ASSERT_GT(s.train.total_steps(), kPrefixSteps);
  s.train.checkpoint.stop_after_step = kPrefixSteps;
  o.log_path = dir / "prefix.h5";
  o.selection.full_steps = {parse_step_spec("0"), parse_step_spec("1")};  // a subset of full's
  train_and_log(s, o);

  LogReader a(dir / "full.h5"), b(dir / "prefix.h5");
  EXPECT_EQ(b.last_complete_step(), kPrefixSteps);
  CompareOptions subset;
  subset.b_is_subset = true;
  const auto r = compare_logs(a, b, subset);
  EXPECT_TRUE(r.equal()) << format_compare(r, "full", "prefix");
  // Every parameter has a digest at every step 0..N.
  const auto* p = a.find("params/visual.conv1.weight");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(int64_t(p->steps.size()), s.train.total_steps() + 1);
  EXPECT_EQ(int64_t(b.find("params/visual.conv1.weight")->steps.size()), kPrefixSteps + 1);
  EXPECT_GT(r.digests_compared, 10000);
  // The prefix run evaluated zero-shot after epoch 1, as the full run did.
  const auto* top1 = b.find(tensor_name::kZeroShotTop1);
  ASSERT_NE(top1, nullptr);
  EXPECT_EQ(top1->steps, (std::vector<int64_t>{0, 64}));
}

}  // namespace
}  // namespace cliprepro
