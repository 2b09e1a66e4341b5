// Recording only part of a run (python/cliprepro/record_steps.py): `--window A:B` writes the
// state of step A-1 in full and steps A..B-1, then stops OpenCLIP; with OpenCLIP's `--resume`
// the log starts at the checkpoint's step. `compare --common-steps` holds either against the
// whole run's recording.
#include <gtest/gtest.h>

#include <string>

#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/record_openclip_util.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

using namespace record_test;

test::CommandResult compare_common(const std::filesystem::path& dir, const std::string& a) {
  return test::run_cli("compare --common-steps " + (dir / "rec" / a).string() + " " +
                       (dir / "rec/whole.h5").string());
}

TEST(RecordOpenClip, WindowAndResumeRecordTheirStepsAndTheStateBefore) {
  const auto dir = data_dir("window", "", 16);
  // 2 steps per epoch, 2 epochs; amp: the GradScaler's state is part of the state too.
  const auto flags = openclip_flags(8, "--precision amp --epochs 2 --workers 0 --save-frequency 1");
  ASSERT_EQ(record(dir, "whole.h5", 1, flags + " --name whole").exit_code, 0);

  auto r = record(dir, "window.h5", 1, flags + " --name window", "--window 2:4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("recorded steps 2-3 of open_clip_train.main, with the state of step 1"),
            std::string::npos)
      << r.output;
  {
    const LogReader log(dir / "rec" / "window.h5");
    EXPECT_TRUE(log.complete());
    EXPECT_EQ(log.last_complete_step(), 3);  // OpenCLIP stopped after the window (of 4 steps)
    EXPECT_EQ(log.find("data/images")->steps, (std::vector<int64_t>{2, 3}));
    for (const char* state : {"params/visual.conv1.weight", "buffers/visual.bn1.running_var",
                              "optimizer/exp_avg_sq/visual.conv1.weight", "scaler/scale"}) {
      const auto* s = log.find(state);
      ASSERT_NE(s, nullptr) << state;
      EXPECT_TRUE(s->has_full(1)) << state << ": the state before the window, in full";
    }
  }
  r = compare_common(dir, "window.h5");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("MATCH"), std::string::npos) << r.output;
  // Without --common-steps the steps it left out are differences; a replay refuses it by name.
  EXPECT_EQ(test::run_cli("compare " + (dir / "rec/window.h5").string() + " " +
                          (dir / "rec/whole.h5").string())
                .exit_code,
            1);
  r = test::run_cli("import-openclip --replay " + (dir / "rec/window.h5").string() + " --out " +
                    (dir / "w.toml").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command("cd " + dir.string() + " && " + kCliBin +
                        " run w.toml --out out --no-golden --quiet");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("starts at step 1 (recorded with --window or --resume)"),
            std::string::npos)
      << r.output;

  // OpenCLIP's --resume of the whole run's epoch-1 checkpoint: the log starts at step 2 with the
  // state it loaded, equal to the whole run's there. OpenCLIP does not restore the random state,
  // so epoch 2's sampler order differs: compare names step 3's sample ids first.
  r = record(dir, "resumed.h5", 1,
             flags +
                 " --name resumed --resume rec/whole.openclip-logs/whole/checkpoints/"
                 "epoch_1.pt");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(LogReader(dir / "rec" / "resumed.h5").find("params/text_projection")->steps.front(), 2);
  r = compare_common(dir, "resumed.h5");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("first difference: step 3, phase data, tensor data/sample_ids"),
            std::string::npos)
      << r.output;

  r = record(dir, "bad.h5", 1, flags, "--window 0:2");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--window '0:2': needs 1 <= A < B"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cliprepro
