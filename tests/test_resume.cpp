// Checkpoint and resume: a run resumed from its step-k checkpoint continues bit for bit — every
// digest of every tensor (data, activations, gradients, moments, parameters, scaler state) at
// steps k+1.. equals the uninterrupted run's.
#include <gtest/gtest.h>

#include <iostream>

#include "harness/log_reader.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

std::filesystem::path write_scenario(const std::filesystem::path& dir, const std::string& name,
                                     const std::string& precision, const std::string& extra) {
  const auto path = dir / (name + ".toml");
  test::write_file(path, "name = \"" + name + "\"\nmodel = \"tiny\"\nprecision = \"" + precision +
                             "\"\ntrain-num-samples = 64\nval-num-samples = 16\nbatch-size = 8\n"
                             "epochs = 1\nsteps = 6\nwarmup = 2\nlr = 1e-3\nseed = 9\n"
                             "zeroshot-frequency = 1\nsave-every-steps = 3\n" +
                             extra + "[determinism]\nthreads = 2\n");
  return path;
}

test::CommandResult run(const std::filesystem::path& scenario, const std::filesystem::path& out) {
  return test::run_cli("run " + scenario.string() + " --out " + out.string() + " --no-golden -q");
}

void expect_resume_is_bitwise(const std::string& precision) {
  const auto dir = test::temp_dir("resume_" + precision);
  auto r = run(write_scenario(dir, "full", precision, ""), dir / "out");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ckpt = dir / "out" / "full.checkpoints" / "step_3.safetensors";
  ASSERT_TRUE(std::filesystem::exists(ckpt));
  r = run(write_scenario(dir, "resumed", precision, "resume = \"" + ckpt.string() + "\"\n"),
          dir / "out");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  LogReader full(dir / "out" / "full.h5"), resumed(dir / "out" / "resumed.h5");
  ASSERT_TRUE(resumed.complete());
  int64_t compared = 0, after = 0;
  for (const auto& [name, rs] : resumed.series()) {
    const auto* fs = full.find(name);
    ASSERT_NE(fs, nullptr) << name;
    for (size_t i = 0; i < rs.steps.size(); ++i) {
      const int64_t step = rs.steps[i];
      EXPECT_GE(step, 3) << name << ": a resumed log starts at its checkpoint's step";
      // A resumed log evaluates the state it starts from; the full run did not eval at step 3.
      if (step == 3 && name.rfind("eval/", 0) == 0) continue;
      const auto it = std::find(fs->steps.begin(), fs->steps.end(), step);
      ASSERT_NE(it, fs->steps.end()) << name << " step " << step;
      EXPECT_EQ(rs.digests[i], fs->digests[size_t(it - fs->steps.begin())])
          << name << " differs at step " << step;
      ++compared;
      after += step > 3 ? 1 : 0;
    }
  }
  std::cout << precision << ": resumed from step 3; " << after
            << " digests at steps 4-6 compared, all equal to the uninterrupted run's\n";
  // Every tensor family, three steps after the checkpoint.
  EXPECT_GT(after, 3 * 300) << "compared " << compared;
  if (precision == "amp") {
    ASSERT_NE(resumed.find("scaler/scale"), nullptr);
  }
}

TEST(Resume, Fp32ContinuesBitwise) { expect_resume_is_bitwise("fp32"); }

// The GradScaler's scale and growth tracker are part of the state (the first steps overflow
// and back the scale off, so a fresh scaler would diverge).
TEST(Resume, AmpContinuesBitwise) { expect_resume_is_bitwise("amp"); }

TEST(Resume, RefusesACheckpointFromOtherSettingsOrNoCheckpoint) {
  const auto dir = test::temp_dir("resume_mismatch");
  auto r = run(write_scenario(dir, "a", "fp32", ""), dir / "out");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ckpt = (dir / "out" / "a.checkpoints" / "step_3.safetensors").string();
  r = run(write_scenario(dir, "b", "fp32", "beta2 = 0.99\nresume = \"" + ckpt + "\"\n"),
          dir / "out");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("beta2: checkpoint 0.999, this run 0.99"), std::string::npos) << r.output;
  r = run(write_scenario(dir, "c", "fp32", "resume = \"" + (dir / "a.toml").string() + "\"\n"),
          dir / "out");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("a.toml"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cliprepro
