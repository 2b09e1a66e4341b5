// A run killed with SIGKILL leaves a log readable up to its last complete step.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "harness/log/digest.h"
#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

int64_t progress_of(const std::filesystem::path& log) {
  try {
    return LogReader(log).last_complete_step();
  } catch (const std::exception&) {
    return -1;  // not created yet, or not yet in SWMR mode
  }
}

TEST(Crash, SigkillLeavesLogReadableToLastCompleteStep) {
  const auto dir = test::temp_dir("kill");
  const auto scenario = test::short_scenario(dir, "long", 5000);
  const auto log = dir / "long.h5";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string s = scenario.string(), out = dir.string();
    execl(kCliBin, kCliBin, "run", s.c_str(), "--no-golden", "-q", "--out", out.c_str(),
          (char*)nullptr);
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (progress_of(log) < 6 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";

  LogReader r(log);
  EXPECT_FALSE(r.complete());
  const int64_t last = r.last_complete_step();
  EXPECT_GE(last, 6);
  EXPECT_LT(last, 5000);
  // Every tensor has every step 0/1..last, and nothing beyond it (eval/* only at eval steps).
  for (const auto& [name, s] : r.series()) {
    ASSERT_FALSE(s.steps.empty()) << name;
    EXPECT_LE(s.steps.back(), last) << name;
    if (name.rfind("eval/", 0) != 0) {
      EXPECT_EQ(s.steps.back(), last) << name;
      EXPECT_EQ(int64_t(s.steps.size()), last - s.steps.front() + 1) << name;
    }
    EXPECT_EQ(s.stats.size(), s.steps.size()) << name;
    // Stored full tensors are intact: their bits hash to the logged digests.
    for (int64_t step : s.full_steps) {
      auto it = std::find(s.steps.begin(), s.steps.end(), step);
      ASSERT_NE(it, s.steps.end());
      EXPECT_EQ(tensor_digest(r.read_full(name, step)), s.digests[size_t(it - s.steps.begin())])
          << name;
    }
  }
  EXPECT_NE(r.find("params/text_projection"), nullptr);
  // The h5py reader copes with it too (it opens killed logs in SWMR-read mode).
  const std::string cmd = std::string(kPython) + " " + kSourceDir + "/scripts/read_log.py " +
                          log.string() + " >/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace cliprepro
