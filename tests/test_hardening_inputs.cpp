// Issue 36, what cliprepro reads: a golden vouches for every tensor of the run, compare says when
// a log was not closed cleanly, inputs that are not regular files are refused (never waited on),
// and every error names the file, without a C++ backtrace. Through the CLI, exit 2.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "harness/log/h5_types.h"
#include "src/log_schema.h"
#include "src/model/checkpoint.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

namespace fs = std::filesystem;

bool has(const test::CommandResult& r, const std::string& text) {
  return r.output.find(text) != std::string::npos;
}

// A 3-step run of the short scenario, its log at dir/runs/<name>.h5.
fs::path logged_run(const fs::path& dir, const std::string& name, const std::string& extra = "") {
  const auto scenario = test::short_scenario(dir, name, 3, extra);
  const auto r = test::run_cli("run " + scenario.string() + " --no-golden -q --out " +
                               (dir / "runs").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dir / "runs" / (name + ".h5");
}

// A golden cut down to fewer tensors (the repro; study goldens blessed before
// eval/zeroshot_classifier existed are the same case) must not pass the tensors it lacks.
TEST(Hardening, GoldenThatLacksTensorsOfTheRunIsRefusedNamingThem) {
  const auto dir = test::temp_dir("golden_lacks");
  const auto s = test::short_scenario(dir, "g", 3);
  ASSERT_EQ(test::run_cli("golden bless " + s.string() + " -q").exit_code, 0);
  const auto golden = dir / "g-golden.h5";
  int64_t series = -1;
  {
    h5_quiet();
    H5Id f = h5_check(H5Fopen(golden.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open");
    H5Id g = h5_check(H5Gopen2(f.get(), "/tensors/params/logit_scale", H5P_DEFAULT), "group");
    series = h5_read_i64_array_attr(g.get(), "series").at(0);
    g.reset();
    h5_check_status(H5Ldelete(f.get(), "/tensors/params/logit_scale", H5P_DEFAULT), "delete");
  }
  test::edit_digest_rows(golden, [&](std::vector<DigestRow>& rows) {
    std::erase_if(rows, [&](const DigestRow& r) { return r.series == series; });
  });
  ASSERT_EQ(test::run_cli("golden text " + golden.string()).exit_code, 0);  // consistent again
  const auto r = test::run_cli("run " + s.string() + " -q --out " + (dir / "r").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "g-golden.h5 lacks 1 of the run's")) << r.output;
  EXPECT_TRUE(has(r, "params/logit_scale")) << r.output;
  EXPECT_TRUE(has(r, "re-bless")) << r.output;
  EXPECT_FALSE(has(r, "MATCH")) << r.output;
}

TEST(Hardening, CompareSaysWhenALogWasNotClosedCleanly) {
  const auto dir = test::temp_dir("unclean_compare");
  const auto log = logged_run(dir, "u");
  const auto killed = dir / "killed.h5";
  fs::copy_file(log, killed);
  test::set_root_attr(killed, "status", "running");  // as a SIGKILLed writer leaves it
  const auto r = test::run_cli("compare " + killed.string() + " " + log.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;  // the steps it holds do match
  EXPECT_TRUE(has(r, "warning: " + killed.string() + " was not closed cleanly (status 'running'"))
      << r.output;
  const auto json = dir / "c.json";
  test::run_cli("compare " + killed.string() + " " + log.string() + " --json " + json.string());
  EXPECT_TRUE(test::read_file(json).find("not closed cleanly") != std::string::npos);
}

// bisect re-runs both logs: a log cut short differs by its length, which no re-run explains.
TEST(Hardening, BisectRefusesALogCutShortBeforeWritingAnything) {
  const auto dir = test::temp_dir("bisect_short");
  const auto log = logged_run(dir, "b");
  // The same scenario stopped after 2 of its 3 steps, as SIGINT leaves it.
  fs::create_directories(dir / "short");
  const auto s2 = test::short_scenario(dir / "short", "b", 2);
  ASSERT_EQ(test::run_cli("run " + s2.string() + " --no-golden -q --out " + dir.string()).exit_code,
            0);
  const auto cut = dir / "cut.h5";
  fs::rename(dir / "b.h5", cut);
  test::set_root_attr(cut, "status", "interrupted");
  const auto work = dir / "work";
  const auto r =
      test::run_cli("bisect " + cut.string() + " " + log.string() + " --work-dir " + work.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, cut.string() + " was not closed cleanly")) << r.output;
  EXPECT_FALSE(fs::exists(work)) << "bisect wrote before refusing";
}

// A FIFO blocked its reader forever; a directory or /dev/zero read as garbage or without end.
TEST(Hardening, InputsThatAreNotRegularFilesAreRefusedAtOnce) {
  const auto dir = test::temp_dir("fifo_inputs");
  const auto log = logged_run(dir, "f");
  const auto fifo = dir / "fifo.h5";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string bin = std::string("timeout 60 ") + kCliBin;
  auto r = test::run_command(bin + " compare " + fifo.string() + " " + log.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, fifo.string() + " is a FIFO, not a regular file")) << r.output;
  const auto g = test::short_scenario(dir, "c", 3);
  ASSERT_EQ(test::run_cli("golden bless " + g.string() + " -q").exit_code, 0);
  r = test::run_command(bin + " golden check " + g.string() + " " + fifo.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "is a FIFO")) << r.output;
  // A golden whose text companion is a FIFO.
  fs::remove(dir / "c-golden.txt");
  ASSERT_EQ(::mkfifo((dir / "c-golden.txt").c_str(), 0644), 0);
  r = test::run_command(bin + " golden check " + g.string() + " " + log.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "c-golden.txt is a FIFO")) << r.output;
  // resume: a FIFO, a directory, a device.
  for (const auto& [resume, want] :
       {std::pair{fifo.string(), "is a FIFO"}, std::pair{dir.string(), "is a directory"},
        std::pair{std::string("/dev/zero"), "is a character device"}}) {
    const auto s = test::short_scenario(dir, "res", 3, "resume = \"" + resume + "\"\n");
    r = test::run_command(bin + " run " + s.string() + " --no-golden -q --out " +
                          (dir / "rr").string());
    EXPECT_EQ(r.exit_code, 2) << resume << ": " << r.output;
    EXPECT_TRUE(has(r, want)) << resume << ": " << r.output;
  }
}

TEST(Hardening, ErrorsNameTheFileAndCarryNoBacktrace) {
  const auto dir = test::temp_dir("named_errors");
  const auto log = logged_run(dir, "n", "save-every-steps = 1\n");
  // Damage in the HDF5 metadata: every command's error names the file.
  int damaged = 0;
  for (int offset = 0; offset < 4096; offset += 331) {
    const auto bad = dir / ("bad" + std::to_string(offset) + ".h5");
    fs::copy_file(log, bad);
    std::string bytes = test::read_file(bad);
    if (size_t(offset) >= bytes.size()) break;
    bytes[size_t(offset)] = char(bytes[size_t(offset)] ^ 0x5a);
    test::write_file(bad, bytes);
    const auto r = test::run_cli("compare " + bad.string() + " " + log.string());
    if (r.exit_code == 2) {
      ++damaged;
      EXPECT_TRUE(has(r, bad.string())) << "offset " << offset << ": " << r.output;
    }
    fs::remove(bad);
  }
  EXPECT_GT(damaged, 3) << "the flips should damage some metadata";
  // A checkpoint whose generator state is garbage: LibTorch's error, without its backtrace.
  const auto ckpt = dir / "runs" / "n.checkpoints" / "step_2.safetensors";
  std::map<std::string, std::string> meta;
  auto tensors = read_safetensors(ckpt.string(), &meta);
  for (auto& [name, t] : tensors)
    if (name == "rng/cpu") t = torch::zeros({7}, torch::kUInt8);
  write_safetensors(ckpt.string(), tensors, meta);
  const auto s = test::short_scenario(dir, "n2", 3, "resume = \"" + ckpt.string() + "\"\n");
  auto r = test::run_cli("run " + s.string() + " --no-golden -q --out " + (dir / "r2").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "tensor 'rng/cpu' is no CPU generator state")) << r.output;
  EXPECT_FALSE(has(r, "Exception raised from")) << r.output;
  // OpenCLIP's parser takes 1e999 as inf: named, not a raw JSON error.
  r = test::run_cli("import-openclip --out " + (dir / "i.toml").string() +
                    " -- --model RN50 --lr 1e999");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(has(r, "--lr inf: not a finite number")) << r.output;
}

}  // namespace
}  // namespace cliprepro
