// Single-byte damage anywhere in a log or a golden: every reader (compare, verify, golden check)
// either reports it or fails with an error — it never crashes, and a damaged golden never
// matches. Runs in-process: a crash inside libhdf5 fails the test by killing it.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <random>

#include "harness/compare/compare.h"
#include "harness/compare/golden.h"
#include "harness/compare/golden_text.h"
#include "harness/log/h5_types.h"
#include "harness/log/log_reader.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

constexpr int kFlips = 200;

// Copies `bytes` to `path` with the byte at `at` XORed with `mask` (never 0).
void write_flipped(const std::filesystem::path& path, std::string bytes, size_t at, uint8_t mask) {
  bytes[at] = char(uint8_t(bytes[at]) ^ mask);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

class Corruption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(test::temp_dir("corruption"));
    scenario_ = new Scenario(load_scenario(test::short_scenario(*dir_, "flip", 2)));
    bless_golden(*scenario_, false);
    auto run = [](const std::filesystem::path& scenario, const std::filesystem::path& out) {
      const auto r =
          test::run_cli("run " + scenario.string() + " -q --no-golden --out " + out.string());
      if (r.exit_code != 0) throw std::runtime_error(r.output);
    };
    run(scenario_->path, *dir_ / "run");
    // The same run storing only what is always stored in full (0-d values, sample ids): a small
    // file that is mostly structure (object headers, chunk indexes, the digest table), where
    // random flips hit what HDF5 itself must parse rather than tensor bytes.
    std::string toml = test::read_file(scenario_->path);
    const std::string full = "full-tensors = [\"params/text_projection\", \"grads/*\"]";
    // Flushed after every step: the file's layout (how many appends, where) must not depend on
    // how fast the machine ran, or the sweep would hit different structures from run to run.
    toml.replace(toml.find(full), full.size(), "full-tensors = []\nflush-seconds = 0");
    test::write_file(*dir_ / "lean.toml", toml);
    run(*dir_ / "lean.toml", *dir_ / "lean");
    h5_quiet();
  }
  static std::filesystem::path* dir_;
  static Scenario* scenario_;
};
std::filesystem::path* Corruption::dir_ = nullptr;
Scenario* Corruption::scenario_ = nullptr;

TEST_F(Corruption, FlippedBytesInALogNeverCrashAReader) {
  const auto good = *dir_ / "lean" / "flip.h5";
  const std::string bytes = test::read_file(good);
  std::mt19937_64 rng(23);
  int errors = 0, reported = 0, unnoticed = 0;
  for (int i = 0; i < kFlips; ++i) {
    const size_t at = size_t(rng() % bytes.size());
    const auto mask = uint8_t(1 + rng() % 255);
    const auto damaged = *dir_ / "damaged.h5";
    write_flipped(damaged, bytes, at, mask);
    try {
      const LogReader a(good), b(damaged);
      CompareOptions verify;
      verify.verify = true;
      const CompareResult r = compare_logs(a, b, verify);
      (r.equal() ? unnoticed : reported)++;
    } catch (const std::exception&) {
      ++errors;
    }
  }
  // Unnoticed: bytes no verdict reads — the advisory statistics columns of /digests (most of this
  // file; docs/compare.md), unused chunk space, padding.
  std::cout << "log flips: " << errors << " errors, " << reported << " differences, " << unnoticed
            << " in bytes no verdict reads (of " << bytes.size() << ")\n";
  EXPECT_EQ(errors + reported + unnoticed, kFlips);
  EXPECT_GT(errors, 0) << "no flip hit the file's structure: the sweep proves little";
}

TEST_F(Corruption, FlippedBytesInAGoldenNeverMatch) {
  const auto& golden = scenario_->golden.path;
  const std::string bytes = test::read_file(golden);
  const std::string companion = test::read_file(companion_path(golden));
  std::mt19937_64 rng(24);
  int matches = 0, errors = 0, differences = 0, refused_by_hash = 0;
  Scenario s = *scenario_;
  s.golden.path = *dir_ / "damaged-golden.h5";
  std::ofstream(companion_path(s.golden.path), std::ios::binary | std::ios::trunc) << companion;
  for (int i = 0; i < kFlips; ++i) {
    const size_t at = size_t(rng() % bytes.size());
    const auto mask = uint8_t(1 + rng() % 255);
    write_flipped(s.golden.path, bytes, at, mask);
    try {
      const CompareResult r = check_golden(*dir_ / "run" / "flip.h5", s);
      (r.equal() ? matches : differences)++;
    } catch (const std::exception&) {
      ++errors;
    }
    // Compare, verify and report open a golden directly: every reader refuses it by the
    // SHA-256 its companion records, before libhdf5 (whose parser has crashed on damaged files
    // of another environment's layout) sees a byte.
    try {
      const LogReader g(s.golden.path);
      for (const auto& [name, series] : g.series()) (void)corrupt_steps(g, series);
    } catch (const std::exception& e) {
      refused_by_hash +=
          std::string(e.what()).find("does not hash to the SHA-256") != std::string::npos;
    }
  }
  std::cout << "golden flips: " << errors << " errors, " << differences << " differences, "
            << matches << " matches; " << refused_by_hash
            << " refused by LogReader's hash check (of " << bytes.size() << " bytes)\n";
  EXPECT_EQ(matches, 0);
  EXPECT_EQ(refused_by_hash, kFlips);
  EXPECT_NO_THROW(LogReader{golden});  // the intact golden hashes to its record
}

}  // namespace
}  // namespace cliprepro
