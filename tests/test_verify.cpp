// compare settles tensors by their digests; stored bits are checked by `compare --verify`,
// `cliprepro verify` and every golden check.
#include <gtest/gtest.h>

#include <filesystem>

#include "harness/compare/compare.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

namespace fs = std::filesystem;

struct Logs {
  fs::path dir = test::temp_dir("verify");
  fs::path good = dir / "run" / "verify.h5", flipped = dir / "flipped.h5", open = dir / "open.h5",
           junk = dir / "junk.h5";
  Logs() {
    const auto scenario = test::short_scenario(dir, "verify", 2);
    const auto r = test::run_cli("run " + scenario.string() + " -q --no-golden --out " +
                                 (dir / "run").string());
    if (r.exit_code != 0) throw std::runtime_error(r.output);
    fs::copy_file(good, flipped);
    // Row 1 of params/text_projection's full tensors is step 1 (full-steps = [0, 1, -1]).
    test::flip_bit(flipped, "/tensors/params/text_projection/full", 1, 11, 30);
    fs::copy_file(good, open);
    test::set_root_attr(open, "status", "running");  // as a killed writer leaves it
    test::write_file(junk, "not hdf5");
  }
};

const Logs& logs() {
  static const Logs l;
  return l;
}

TEST(Verify, CompareReadsNoTensorWhoseDigestsAgreeUnlessAskedToVerify) {
  const LogReader good(logs().good), flipped(logs().flipped);
  // Same digests everywhere: compare is settled by the digest tables alone.
  const auto fast = compare_logs(good, flipped);
  EXPECT_TRUE(fast.equal()) << format_compare(fast, "good", "flipped");
  CompareOptions verify;
  verify.verify = true;
  const auto full = compare_logs(good, flipped, verify);
  ASSERT_FALSE(full.equal());
  bool named = false;
  for (const auto& d : full.diffs) {
    named |=
        d.reason == DiffReason::kCorrupt && d.name == "params/text_projection" && d.first_step == 1;
  }
  EXPECT_TRUE(named) << format_compare(full, "good", "flipped");
  EXPECT_EQ(corrupt_steps(flipped, *flipped.find("params/text_projection")), std::set<int64_t>{1});
  EXPECT_TRUE(corrupt_steps(good, *good.find("params/text_projection")).empty());
}

TEST(Verify, CliExitCodesNameTheCorruptTensorAndTheUnclosedLog) {
  const auto ok = test::run_cli("verify " + logs().good.string());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("closed cleanly"), std::string::npos) << ok.output;

  const auto bad = test::run_cli("verify " + logs().good.string() + " " + logs().flipped.string());
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("corrupt: params/text_projection at step 1"), std::string::npos)
      << bad.output;

  const auto open = test::run_cli("verify " + logs().open.string());
  EXPECT_EQ(open.exit_code, 1) << open.output;
  EXPECT_NE(open.output.find("not closed: ends at /progress step 2 (status running)"),
            std::string::npos)
      << open.output;

  const auto junk = test::run_cli("verify " + logs().good.string() + " " + logs().junk.string());
  EXPECT_EQ(junk.exit_code, 2) << junk.output;
  EXPECT_NE(junk.output.find(logs().junk.string()), std::string::npos) << junk.output;

  const auto cmp = test::run_cli("compare " + logs().good.string() + " " + logs().flipped.string());
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
  const auto cmp_verify =
      test::run_cli("compare --verify " + logs().good.string() + " " + logs().flipped.string());
  EXPECT_EQ(cmp_verify.exit_code, 1) << cmp_verify.output;
  // The flipped element shows as a value difference and the stored tensor as corrupt.
  EXPECT_NE(cmp_verify.output.find("first at flat index 11"), std::string::npos)
      << cmp_verify.output;
  EXPECT_NE(cmp_verify.output.find("corrupt"), std::string::npos) << cmp_verify.output;
}

}  // namespace
}  // namespace cliprepro
