// Two runs of the shipped quickstart scenario give bitwise-identical logs.
#include <gtest/gtest.h>

#include "harness/compare/compare.h"
#include "harness/run/run_scenario.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

TEST(Reproducibility, TwoQuickstartRunsAreBitwiseIdentical) {
  const auto dir = test::temp_dir("repro");
  const auto s = load_scenario(std::filesystem::path(kSourceDir) / "scenarios" / "quickstart.toml");
  for (const char* name : {"a.h5", "b.h5"}) {
    RunOptions o;
    o.log_path = dir / name;
    o.selection = s.log;
    o.progress = false;
    const auto r = train_and_log(s, o);
    EXPECT_LT(r.summary.last_loss, r.summary.first_loss);
    // Learnable: zero-shot accuracy on held-out images well above chance (1/16).
    EXPECT_GT(r.summary.zero_shot_after.top1, 3.0 / 16);
  }
  LogReader a(dir / "a.h5"), b(dir / "b.h5");
  const auto r = compare_logs(a, b);
  EXPECT_TRUE(r.equal()) << format_compare(r, "a", "b");
  // Every parameter has a digest at every step 0..N.
  const auto* p = a.find("params/visual.conv1.weight");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(int64_t(p->steps.size()), s.train.total_steps() + 1);
  EXPECT_GT(r.digests_compared, 50000);
}

}  // namespace
}  // namespace cliprepro
