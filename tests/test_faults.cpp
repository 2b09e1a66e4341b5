// Faults outside the program: a disk that fills up mid-run. The run must stop with exit 2 and
// the operating system's reason, name the file, and leave a log that is true up to the last
// step it holds; nothing may crash on the way out (HDF5 retries its writes at shutdown).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "harness/log/digest.h"
#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

namespace fs = std::filesystem;

// Runs `command` with `disk` a fresh tmpfs of `kib` KiB, in a private mount namespace (nobody
// else sees it, and it is gone when the command ends); what the command left on it is copied
// to `keep` first. Needs root (CAP_SYS_ADMIN): CI runs as root on this project's machine.
test::CommandResult run_on_small_disk(const fs::path& disk, int kib, const std::string& command,
                                      const fs::path& keep) {
  fs::create_directories(disk);
  fs::create_directories(keep);
  const std::string script = "mount -t tmpfs -o size=" + std::to_string(kib) + "k tmpfs '" +
                             disk.string() + "' || exit 99; " + command + "; rc=\\$?; cp -a '" +
                             disk.string() + "/.' '" + keep.string() + "/'; exit \\$rc";
  auto r = test::run_command("unshare -m sh -c \"" + script + "\"");
  if (r.exit_code == 99) {
    ADD_FAILURE() << "cannot mount a small tmpfs (needs root / CAP_SYS_ADMIN): " << r.output;
  }
  return r;
}

TEST(Faults, FullDiskStopsTheRunAndLeavesALogTrueToItsLastStep) {
  const auto dir = test::temp_dir("full_disk");
  const auto scenario = test::short_scenario(dir, "fill", 2000);
  const auto disk = dir / "disk", keep = dir / "kept";
  const auto r = run_on_small_disk(
      disk, 10240,
      std::string(kCliBin) + " run " + scenario.string() + " --no-golden -q --out " + disk.string(),
      keep);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((disk / "fill.h5").string()), std::string::npos) << r.output;

  LogReader log(keep / "fill.h5");
  EXPECT_FALSE(log.complete());
  const int64_t last = log.last_complete_step();
  EXPECT_GE(last, 2) << "the disk should fill after a few steps, not at once";
  EXPECT_LT(last, 2000);
  // Every tensor holds every step up to /progress, nothing past it, and no unwritten (zero) row
  // passes for a step; stored full tensors hash to their digests.
  for (const auto& [name, s] : log.series()) {
    if (name.starts_with("eval/")) continue;
    ASSERT_FALSE(s.steps.empty()) << name;
    EXPECT_EQ(s.steps.back(), last) << name;
    EXPECT_EQ(int64_t(s.steps.size()), last - s.steps.front() + 1) << name;
    EXPECT_TRUE(std::is_sorted(s.steps.begin(), s.steps.end())) << name;
    for (int64_t step : s.full_steps) {
      const auto it = std::find(s.steps.begin(), s.steps.end(), step);
      ASSERT_NE(it, s.steps.end()) << name << " step " << step;
      EXPECT_EQ(tensor_digest(log.read_full(name, step)), s.digests[size_t(it - s.steps.begin())])
          << name << " step " << step;
    }
  }
  // compare reads it as an incomplete log, not as a difference at step 0.
  const auto self =
      test::run_cli("compare " + (keep / "fill.h5").string() + " " + (keep / "fill.h5").string());
  EXPECT_EQ(self.output.find("first difference"), std::string::npos) << self.output;
}

TEST(Faults, GoldenBlessOnAFullDiskFailsCleanlyAndLeavesNothing) {
  const auto dir = test::temp_dir("full_disk_bless");
  const auto disk = dir / "disk", keep = dir / "kept";
  auto scenario = test::short_scenario(dir, "bless", 40);
  auto toml = test::read_file(scenario);
  const std::string rel = "path = \"bless-golden.h5\"";
  toml.replace(toml.find(rel), rel.size(),
               "path = \"" + (disk / "bless-golden.h5").string() + "\"");
  test::write_file(scenario, toml);
  const auto r = run_on_small_disk(
      disk, 64, std::string(kCliBin) + " golden bless " + scenario.string() + " -q", keep);
  EXPECT_EQ(r.exit_code, 2) << r.output;  // not 139 (a crash in HDF5's shutdown)
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bless-golden"), std::string::npos) << r.output;
  for (const auto& e : fs::directory_iterator(keep)) ADD_FAILURE() << "left behind: " << e.path();
}

// A checkpoint that fills the disk: the OS's reason and the step, its temporary removed (or the
// disk stays full), and the log intact to its last step, marked failed (it was left flagged as
// open for writing: "not an HDF5 file?").
TEST(Faults, CheckpointThatFillsTheDiskLeavesNoTemporaryAndAWholeLog) {
  const auto dir = test::temp_dir("full_disk_checkpoint");
  const auto disk = dir / "disk", keep = dir / "kept";
  const auto scenario = dir / "ck.toml";
  // Tiny checkpoints are 17.3 MB: two fit in 40 MiB, the third does not; the log (no full
  // tensors) stays small.
  test::write_file(
      scenario,
      "name = \"ck\"\nmodel = \"tiny\"\nprecision = \"fp32\"\ntrain-num-samples = 128\n"
      "val-num-samples = 32\nbatch-size = 16\nsteps = 6\nsave-every-steps = 1\n"
      "[determinism]\nthreads = 2\n");
  const auto r = run_on_small_disk(
      disk, 40960,
      std::string(kCliBin) + " run " + scenario.string() + " --no-golden -q --out " + disk.string(),
      keep);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("checkpoint of step 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("No space left on device"), std::string::npos) << r.output;
  for (const auto& e : fs::directory_iterator(keep / "ck.checkpoints"))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  LogReader log(keep / "ck.h5");
  EXPECT_EQ(log.attr("status"), "failed");
  EXPECT_GE(log.last_complete_step(), 2);
  EXPECT_NE(log.attr("failure").find("No space left on device"), std::string::npos);
  const auto v = test::run_cli("verify " + (keep / "ck.h5").string());
  EXPECT_EQ(v.output.find("not an HDF5 file"), std::string::npos) << v.output;
}

}  // namespace
}  // namespace cliprepro
