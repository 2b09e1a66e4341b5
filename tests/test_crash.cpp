// A run killed with SIGKILL leaves a log readable up to its last complete step; one asked to
// stop (SIGINT, SIGTERM) stops after its step and says so in the log.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

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
  const std::string cmd =
      std::string(kPython) + " -m cliprepro.read " + log.string() + " >/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// Starts `cliprepro ARGS...` with its output into `output`; returns its pid.
pid_t start_cli(const std::vector<std::string>& args, const std::filesystem::path& output) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(kCliBin)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kCliBin, argv.data());
    _exit(127);
  }
  return pid;
}

int exit_status_of(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

// SIGINT: the run finishes its step, flushes, marks the log interrupted and says where it
// stopped (exit 130). SIGTERM on golden bless: exit 143 and no temporary file left behind.
TEST(Crash, SigintStopsAfterTheStepAndMarksTheLogInterrupted) {
  const auto dir = test::temp_dir("sigint");
  const auto scenario = test::short_scenario(dir, "long", 5000);
  const auto log = dir / "long.h5";
  const pid_t pid = start_cli(
      {"run", scenario.string(), "--no-golden", "-q", "--out", dir.string()}, dir / "run.out");
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (progress_of(log) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  EXPECT_EQ(exit_status_of(pid), 130);
  const std::string out = test::read_file(dir / "run.out");
  EXPECT_NE(out.find("interrupted: SIGINT after step "), std::string::npos) << out;
  EXPECT_NE(out.find("(status interrupted)"), std::string::npos) << out;
  const LogReader r(log);  // a closed file again: no SWMR reader needed
  EXPECT_EQ(r.attr("status"), "interrupted");
  EXPECT_FALSE(r.complete());
  EXPECT_GE(r.last_complete_step(), 3);
  EXPECT_LT(r.last_complete_step(), 5000);
  EXPECT_EQ(r.attr("last_step"), std::to_string(r.last_complete_step()));
  EXPECT_NE(r.attr("failure").find("SIGINT after step " + r.attr("last_step")), std::string::npos)
      << r.attr("failure");
  EXPECT_NE(out.find("after step " + r.attr("last_step") + ";"), std::string::npos) << out;
  for (const auto& [name, s] : r.series()) {
    if (!name.starts_with("eval/")) {
      EXPECT_EQ(s.steps.back(), r.last_complete_step()) << name;
    }
  }

  const pid_t bless = start_cli({"golden", "bless", scenario.string(), "-q"}, dir / "bless.out");
  const auto tmp_exists = [&] {
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().string().find(".tmp-") != std::string::npos) return true;
    return false;
  };
  const auto bless_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!tmp_exists() && std::chrono::steady_clock::now() < bless_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // into the training steps
  kill(bless, SIGTERM);
  EXPECT_EQ(exit_status_of(bless), 143) << test::read_file(dir / "bless.out");
  EXPECT_FALSE(tmp_exists());
  EXPECT_FALSE(std::filesystem::exists(dir / "long-golden.h5"));
  EXPECT_NE(test::read_file(dir / "bless.out").find("no golden written"), std::string::npos);
}

}  // namespace
}  // namespace cliprepro
