// Issue 36, what cliprepro writes: nothing outside --out, nothing through a symbolic link, no
// device or FIFO replaced (root runs these commands: `--json /dev/null` must not replace the
// system's /dev/null), one writer per log, and no child left running when a study is stopped.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

namespace fs = std::filesystem;

bool has(const test::CommandResult& r, const std::string& text) {
  return r.output.find(text) != std::string::npos;
}

bool is_char_device(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

// Polls for `p` to exist (a child's lock or output), up to `seconds`.
bool wait_for(const fs::path& p, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (fs::exists(p)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(Hardening, RunNeverWritesThroughALinkInsideOut) {
  const auto dir = test::temp_dir("out_links");
  const auto outside = dir / "outside.h5", elsewhere = dir / "elsewhere";
  test::write_file(outside, "not yours");
  fs::create_directories(elsewhere);
  const auto s = test::short_scenario(dir, "l", 3, "save-every-steps = 1\n");
  fs::create_directories(dir / "o1");
  fs::create_symlink(outside, dir / "o1" / "l.h5");
  auto r = test::run_cli("run " + s.string() + " --no-golden -q --out " + (dir / "o1").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "l.h5 is a symbolic link")) << r.output;
  EXPECT_EQ(test::read_file(outside), "not yours");
  fs::create_directories(dir / "o2");
  fs::create_directory_symlink(elsewhere, dir / "o2" / "l.checkpoints");
  r = test::run_cli("run " + s.string() + " --no-golden -q --out " + (dir / "o2").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "l.checkpoints is a symbolic link")) << r.output;
  EXPECT_TRUE(fs::is_empty(elsewhere)) << "checkpoints went through the link";
}

TEST(Hardening, ReportOutputsNeverReplaceDevicesOrLinks) {
  const auto dir = test::temp_dir("out_devices");
  const auto s = test::short_scenario(dir, "d", 2);
  ASSERT_EQ(test::run_cli("run " + s.string() + " --no-golden -q --out " + dir.string()).exit_code,
            0);
  const auto log = (dir / "d.h5").string();
  // A character device named on purpose is written as a stream and stays a device.
  const auto null_dev = dir / "null";
  ASSERT_EQ(::mknod(null_dev.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << "needs root";
  auto r = test::run_cli("compare " + log + " " + log + " --json " + null_dev.string() +
                         " --markdown " + null_dev.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(is_char_device(null_dev)) << "compare replaced the device node";
  r = test::run_cli("compare " + log + " " + log + " --json /dev/stdout");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r, "\"verdict\": \"match\"")) << r.output;
  // A FIFO nobody reads is refused at once, not waited on.
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  r = test::run_command("timeout 60 " + std::string(kCliBin) + " compare " + log + " " + log +
                        " --junit " + fifo.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  // Links: refused, the file they point to untouched.
  const auto target = dir / "target.html";
  test::write_file(target, "keep");
  fs::create_symlink(target, dir / "link.html");
  r = test::run_cli("compare " + log + " " + log + " --html " + (dir / "link.html").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "link.html is a symbolic link")) << r.output;
  fs::create_directories(dir / "rep");
  fs::create_symlink(target, dir / "rep" / "report.html");
  r = test::run_cli("report " + log + " " + log + " --out " + (dir / "rep").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(test::read_file(target), "keep");
  fs::create_symlink(target, dir / "imported.toml");
  r = test::run_cli("import-openclip --out " + (dir / "imported.toml").string() +
                    " -- --model RN50");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(test::read_file(target), "keep");
}

// The second run into one --out used to truncate the first's open log and then wait minutes in
// HDF5's retries.
TEST(Hardening, SecondRunIntoTheSameOutIsRefusedAtOnceNamingTheFirst) {
  const auto dir = test::temp_dir("two_runs");
  const auto s = test::short_scenario(dir, "twice", 2000);
  const auto out = dir / "o";
  const auto first = dir / "first.txt";
  test::run_command("(" + std::string(kCliBin) + " run " + s.string() + " --no-golden -q --out " +
                    out.string() + " > " + first.string() + " 2>&1; echo rc=$? >> " +
                    first.string() + ") </dev/null >/dev/null 2>&1 &");  // popen must not wait
  ASSERT_TRUE(wait_for(out / "twice.h5.lock", 60)) << test::read_file(first);
  const auto second = test::run_command("timeout 60 " + std::string(kCliBin) + " run " +
                                        s.string() + " --no-golden -q --out " + out.string());
  EXPECT_EQ(second.exit_code, 2) << second.output;
  EXPECT_TRUE(has(second, "another cliprepro process is writing " + (out / "twice.h5").string()))
      << second.output;
  EXPECT_TRUE(has(second, " run " + s.string())) << "names the other run: " << second.output;
  // Anchored: neither the shell that runs pkill nor the one waiting for the run may match.
  test::run_command("pkill -TERM -f '^" + std::string(kCliBin) + " run " + s.string() + "'");
  for (int i = 0; i < 600 && test::read_file(first).find("rc=") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(has({0, test::read_file(first)}, "rc=143")) << test::read_file(first);
  // The first run's log is whole up to the step it stopped at.
  const auto verify = test::run_cli("verify " + (out / "twice.h5").string());
  EXPECT_TRUE(has(verify, "interrupted")) << verify.output;
  EXPECT_FALSE(fs::exists(out / "twice.h5.lock"));
}

TEST(Hardening, SigtermToAStudyStopsItsVariantsAndWaitsForThem) {
  const auto dir = test::temp_dir("study_sigterm");
  const auto file = dir / "sig.toml";
  test::write_file(file,
                   "model = 'tiny'\nbatch-size = 8\nprecision = 'fp32'\ntrain-num-samples = 64\n"
                   "steps = 5000\n[determinism]\nthreads = 1\n[study]\nname = 'sig'\n"
                   "reference = 'a'\n[variants.a]\n[variants.b]\nseed = 2\n");
  const auto out = dir / "o", status = dir / "status.txt";
  test::run_command("(" + std::string(kCliBin) + " study " + file.string() + " --jobs 2 --out " +
                    out.string() + " > " + (dir / "study.txt").string() + " 2>&1; echo rc=$? > " +
                    status.string() + ") </dev/null >/dev/null 2>&1 &");
  ASSERT_TRUE(wait_for(out / "sig-a.h5.lock", 60))
      << test::run_command("ls -R " + out.string()).output;
  ASSERT_TRUE(wait_for(out / "sig-b.h5.lock", 30));
  // Anchored: neither the shell that runs pkill nor the one waiting for the study may match.
  test::run_command("pkill -TERM -f '^" + std::string(kCliBin) + " study " + file.string() + "'");
  ASSERT_TRUE(wait_for(status, 120)) << test::read_file(dir / "study.txt");
  EXPECT_EQ(test::read_file(status), "rc=143\n") << test::read_file(dir / "study.txt");
  // No variant outlives the study: none was re-parented to PID 1.
  const auto left = test::run_command("pgrep -af '[-]-out " + out.string() + "'");
  EXPECT_NE(left.exit_code, 0) << "still running: " << left.output;
  EXPECT_TRUE(test::read_file(dir / "study.txt").find("interrupted: SIGTERM") != std::string::npos)
      << test::read_file(dir / "study.txt");
}

}  // namespace
}  // namespace cliprepro
