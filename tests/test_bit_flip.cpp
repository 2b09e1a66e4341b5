// compare's self-test: [debug] flips one bit of one live state tensor after one step's update;
// over many random draws (tensor, element, bit, step), compare must name exactly that step,
// that tensor and that element as the first divergence from the unflipped run.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/compare/compare.h"
#include "harness/log/log_reader.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

constexpr int kSteps = 3;

std::filesystem::path flip_scenario(const std::filesystem::path& dir, const std::string& name,
                                    const std::string& debug) {
  const auto path = dir / (name + ".toml");
  test::write_file(path, "name = \"" + name +
                             "\"\nmodel = \"tiny\"\ntrain-num-samples = 64\nval-num-samples = 16\n"
                             "batch-size = 16\nsteps = " +
                             std::to_string(kSteps) +
                             "\nwarmup = 1\nlr = 1e-3\nseed = 8\nzeroshot-frequency = 0\n"
                             "[determinism]\nthreads = 2\n" +
                             debug +
                             "[log]\nfull-steps = [\"1:\"]\nfull-tensors = [\"params/*\", "
                             "\"buffers/*\", \"optimizer/*\"]\n");
  return path;
}

test::CommandResult run(const std::filesystem::path& s, const std::filesystem::path& out) {
  return test::run_cli("run " + s.string() + " --out " + out.string() + " --no-golden -q");
}

TEST(BitFlip, RandomFlipsAreLocatedExactly) {
  const auto dir = test::temp_dir("bit_flip");
  ASSERT_EQ(run(flip_scenario(dir, "base", ""), dir).exit_code, 0);
  constexpr int kTrials = 8;
  for (int trial = 1; trial <= kTrials; ++trial) {
    const int step = 1 + trial % kSteps;
    const std::string name = "flip" + std::to_string(trial);
    auto r = run(flip_scenario(dir, name,
                               "[debug]\nflip-step = " + std::to_string(step) +
                                   "\nflip-seed = " + std::to_string(1000 + trial) + "\n"),
                 dir);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    LogReader flipped(dir / (name + ".h5")), base(dir / "base.h5");
    const auto flip = nlohmann::json::parse(flipped.attr("debug_flip"));
    ASSERT_EQ(flip["step"], step);
    const auto c = compare_logs(flipped, base);
    ASSERT_FALSE(c.equal()) << flip.dump();
    const auto& first = c.diffs.front();
    EXPECT_EQ(first.first_step, step) << flip.dump() << "\n" << format_compare(c, "f", "b");
    EXPECT_EQ(first.name, flip["tensor"].get<std::string>()) << flip.dump();
    EXPECT_EQ(first.first_element, flip["element"].get<int64_t>()) << flip.dump();
    EXPECT_EQ(first.elements_differing, 1) << flip.dump();
    // The flipped element differs in exactly that bit.
    const auto a = flipped.read_full(first.name, step), b = base.read_full(first.name, step);
    const auto e = flip["element"].get<int64_t>();
    const int bits = int(a.element_size() * 8);
    ASSERT_TRUE(bits == 32 || bits == 64) << first.name;
    const uint64_t xa = bits == 32 ? uint32_t(a.view(torch::kInt32).view({-1})[e].item<int32_t>())
                                   : uint64_t(a.view(torch::kInt64).view({-1})[e].item<int64_t>());
    const uint64_t xb = bits == 32 ? uint32_t(b.view(torch::kInt32).view({-1})[e].item<int32_t>())
                                   : uint64_t(b.view(torch::kInt64).view({-1})[e].item<int64_t>());
    EXPECT_EQ(xa ^ xb, uint64_t(1) << flip["bit"].get<int>()) << flip.dump();
  }
}

TEST(BitFlip, ChosenFlipAndBadChoicesAreErrors) {
  const auto dir = test::temp_dir("bit_flip_chosen");
  auto r = run(flip_scenario(dir, "chosen",
                             "[debug]\nflip-step = 2\nflip-tensor = \"params/logit_scale\"\n"
                             "flip-element = 0\nflip-bit = 0\n"),
               dir);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("flipped bit 0 of params/logit_scale[0] after step 2"), std::string::npos)
      << r.output;
  for (const std::string bad :
       {"flip-step = 9\n", "flip-step = 1\nflip-tensor = \"params/nope\"\n",
        "flip-step = 1\nflip-tensor = \"params/logit_scale\"\n"
        "flip-element = 1\n",
        "flip-step = 1\nflip-bit = 64\nflip-tensor = \"params/logit_scale\"\n"}) {
    r = run(flip_scenario(dir, "bad", "[debug]\n" + bad), dir);
    EXPECT_EQ(r.exit_code, 2) << bad << r.output;
    EXPECT_NE(r.output.find("[debug]"), std::string::npos) << r.output;
  }
  r = run(flip_scenario(dir, "bad", "[debug]\nflip-bit = 3\n"), dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("bad.toml:"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cliprepro
