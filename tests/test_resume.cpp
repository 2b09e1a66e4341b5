// Checkpoint and resume: a run resumed from its step-k checkpoint continues bit for bit — every
// digest of every tensor (data, activations, gradients, moments, parameters, scaler state) at
// steps k+1.. equals the uninterrupted run's.
#include <gtest/gtest.h>

#include <iostream>

#include "harness/log/log_reader.h"
#include "src/model/checkpoint.h"
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

test::CommandResult run(const std::filesystem::path& scenario, const std::filesystem::path& out,
                        int world = 1) {
  const std::string args = scenario.string() + " --out " + out.string() + " --no-golden -q";
  if (world == 1) return test::run_cli("run " + args);
  return test::run_command(test::torchrun(world, std::string(kCliBin) + " run " + args));
}

// `rank_buffers_from_rank0`: BatchNorm running statistics are per rank (each rank's forward
// updates its own; DDP broadcasts rank 0's before the next forward), and the checkpoint holds
// rank 0's. So rank r > 0 resumes holding rank 0's buffers: its step-k record differs from its
// uninterrupted one there, and only there — the next forward starts from rank 0's either way.
void expect_log_resumes(const std::filesystem::path& full_path,
                        const std::filesystem::path& resumed_path, const std::string& title,
                        bool rank_buffers_from_rank0 = false);

// World > 1: rank 0 writes the checkpoint; every rank resumes from it and each rank's log must
// continue as that rank's uninterrupted log.
void expect_resume_is_bitwise(const std::string& precision, int world = 1) {
  const auto dir = test::temp_dir("resume_" + precision + "_w" + std::to_string(world));
  auto r = run(write_scenario(dir, "full", precision, ""), dir / "out", world);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ckpt = dir / "out" / "full.checkpoints" / "step_3.safetensors";
  ASSERT_TRUE(std::filesystem::exists(ckpt));
  r = run(write_scenario(dir, "resumed", precision, "resume = \"" + ckpt.string() + "\"\n"),
          dir / "out", world);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  if (world == 1) {
    expect_log_resumes(dir / "out" / "full.h5", dir / "out" / "resumed.h5", precision);
    return;
  }
  for (int rank = 0; rank < world; ++rank) {
    const std::string suffix = ".rank" + std::to_string(rank) + ".h5";
    expect_log_resumes(
        dir / "out" / ("full" + suffix), dir / "out" / ("resumed" + suffix),
        precision + " gloo world " + std::to_string(world) + " rank " + std::to_string(rank),
        rank > 0);
  }
}

void expect_log_resumes(const std::filesystem::path& full_path,
                        const std::filesystem::path& resumed_path, const std::string& title,
                        bool rank_buffers_from_rank0) {
  LogReader full(full_path), resumed(resumed_path);
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
      if (step == 3 && rank_buffers_from_rank0 && name.rfind("buffers/", 0) == 0) continue;
      const auto it = std::find(fs->steps.begin(), fs->steps.end(), step);
      ASSERT_NE(it, fs->steps.end()) << name << " step " << step;
      EXPECT_EQ(rs.digests[i], fs->digests[size_t(it - fs->steps.begin())])
          << name << " differs at step " << step;
      ++compared;
      after += step > 3 ? 1 : 0;
    }
  }
  std::cout << title << ": resumed from step 3; " << after
            << " digests at steps 4-6 compared, all equal to the uninterrupted run's\n";
  // Every tensor family, three steps after the checkpoint.
  EXPECT_GT(after, 3 * 300) << "compared " << compared;
  if (title.rfind("amp", 0) == 0) {
    ASSERT_NE(resumed.find("scaler/scale"), nullptr);
  }
}

TEST(Resume, Fp32ContinuesBitwise) { expect_resume_is_bitwise("fp32"); }

// The GradScaler's scale and growth tracker are part of the state (the first steps overflow
// and back the scale off, so a fresh scaler would diverge).
TEST(Resume, AmpContinuesBitwise) { expect_resume_is_bitwise("amp"); }

// bf16 weights and AdamW moments go through the checkpoint in their own dtype.
TEST(Resume, Bf16ContinuesBitwise) { expect_resume_is_bitwise("bf16"); }

// Two Gloo ranks: rank 0's checkpoint holds the replicated state; each rank's data slice
// follows from (seed, step, rank), so both ranks continue their own logs bit for bit.
TEST(Resume, GlooWorldTwoContinuesBitwise) { expect_resume_is_bitwise("fp32", 2); }

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

// Edited training checkpoints: state of another shape (copy_ would broadcast it) and metadata
// steps that cannot be the step it was written after are refused, naming the tensor or value.
TEST(Resume, RefusesBroadcastStateAndImpossibleSteps) {
  const auto dir = test::temp_dir("resume_edited");
  auto r = run(write_scenario(dir, "a", "fp32", ""), dir / "out");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ckpt = (dir / "out" / "a.checkpoints" / "step_3.safetensors").string();
  std::map<std::string, std::string> meta;
  const StateDict original = read_safetensors(ckpt, &meta);
  int n = 0;
  auto expect_refused = [&](const StateDict& sd, const std::map<std::string, std::string>& m,
                            const std::string& needle) {
    const auto edited = dir / ("edited" + std::to_string(n++) + ".safetensors");
    write_safetensors(edited.string(), sd, m);
    const auto res = run(write_scenario(dir, "r" + std::to_string(n), "fp32",
                                        "resume = \"" + edited.string() + "\"\n"),
                         dir / "out");
    EXPECT_EQ(res.exit_code, 2) << needle << ": " << res.output;
    EXPECT_NE(res.output.find(needle), std::string::npos) << res.output;
  };
  StateDict broadcast = original;
  std::string moment;
  for (auto& [k, t] : broadcast) {
    if (moment.empty() && k.starts_with("optimizer/exp_avg/")) {
      moment = k;
      t = torch::zeros({1});
    }
  }
  ASSERT_FALSE(moment.empty());
  expect_refused(broadcast, meta, "tensor '" + moment + "' is Float [1], the run needs Float [");
  for (const std::string bad : {"-5", "0", "abc", "", "3x"}) {
    auto m = meta;
    m["step"] = bad;
    expect_refused(original, m, "metadata step '" + bad + "' is not a step number");
  }
  auto later = meta;
  later["step"] = "2";  // its optimizer state saw 3 updates
  expect_refused(original, later, "has 3 updates");
}

}  // namespace
}  // namespace cliprepro
