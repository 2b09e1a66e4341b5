// OpenCLIP's own training loop is the reference for ours: scripts/openclip_train_reference.py
// replays a cliprepro log (its step-0 weights and its logged batches) through
// open_clip_train.train.train_one_epoch with main.py's optimizer groups, cosine_lr, ClipLoss,
// GradScaler and DDP, and these tests expect parameters, AdamW moments and step counts and
// BatchNorm buffers after every step to be bitwise equal to our log's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>
#include <sstream>

#include "harness/compare/tensor_diff.h"
#include "harness/log/log_reader.h"
#include "harness/log/tensor_file.h"
#include "src/model/model_config.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

constexpr int kSteps = 5;
constexpr int kBatch = 16;

// A 5-step, one-epoch scenario whose log keeps every tensor the reference needs or checks.
std::filesystem::path parity_scenario(const std::filesystem::path& dir, const std::string& name,
                                      int world, const std::string& precision,
                                      const std::string& extra, int accum) {
  std::ostringstream s;
  s << "name = \"" << name << "\"\nmodel = \"tiny\"\nprecision = \"" << precision << "\"\n"
    << "train-num-samples = " << kSteps * kBatch * world * accum << "\naccum-freq = " << accum
    << "\nval-num-samples = 16\n"
    << "batch-size = " << kBatch << "\nepochs = 1\nlr = 1e-3\nwd = 0.1\nwarmup = 2\n"
    << "beta2 = 0.98\neps = 1e-6\nseed = 3\nzeroshot-frequency = 0\n"
    // OpenCLIP runs LibTorch's own kernels: parity compares them (portable = false).
    << extra << "[determinism]\nthreads = 2\nportable = false\n[log]\nfull-steps = [\"0:\"]\n"
    << "full-tensors = [\"params/*\", \"buffers/*\", \"optimizer/*\", \"data/*\", \"scaler/*\"]\n";
  const auto path = dir / (name + ".toml");
  test::write_file(path, s.str());
  return path;
}

// Every reference tensor `step<s>/<name>` against our log's `<name>` at step s.
void expect_log_matches_reference(const std::filesystem::path& log_path,
                                  const std::filesystem::path& ref_path, const std::string& title) {
  LogReader log(log_path);
  ASSERT_TRUE(log.complete()) << log_path;
  const auto ref = read_tensor_file(ref_path.string());
  std::map<int64_t, std::pair<int, int>> per_step;  // step -> (compared, bitwise)
  std::vector<std::pair<std::string, ElementwiseDiff>> differing;
  std::vector<std::string> dtypes;
  for (const auto& [key, r] : ref) {
    const auto slash = key.find('/');
    const int64_t step = std::stoll(key.substr(4, slash - 4));
    const std::string name = key.substr(slash + 1);
    ASSERT_NE(log.find(name), nullptr) << "only in OpenCLIP's output: " << name;
    const auto ours = log.read_full(name, step);
    const auto d = diff_tensors(r, ours);
    auto& [compared, bitwise] = per_step[step];
    ++compared;
    // Same bits in the same dtype: a weight OpenCLIP keeps in fp32 must not be bf16 here.
    const bool same = d.bitwise_equal && r.scalar_type() == ours.scalar_type();
    EXPECT_EQ(r.scalar_type(), ours.scalar_type()) << key;
    bitwise += same ? 1 : 0;
    if (!same) {
      differing.emplace_back(key, d);
      dtypes.push_back(dtype_name(r.scalar_type()));
    }
  }
  std::cout << "\n== OpenCLIP training parity: " << title << " ==\n";
  for (const auto& [step, c] : per_step) {
    std::cout << "step " << step << ": " << c.second << " of " << c.first
              << " tensors bitwise equal\n";
  }
  if (!differing.empty()) std::cout << format_diff_table(differing, dtypes);
  std::cout << std::flush;
  EXPECT_TRUE(differing.empty()) << differing.size() << " tensors differ (table above)";
  ASSERT_EQ(per_step.size(), size_t(kSteps));
  for (const auto& [step, c] : per_step) EXPECT_GT(c.first, 100) << "step " << step;
}

// Returns the run's directory.
std::filesystem::path train_parity_case(const std::string& tag, int world,
                                        const std::string& precision, const std::string& extra,
                                        int accum = 1) {
  const auto dir = test::temp_dir("train_parity_" + tag);
  const auto scenario = parity_scenario(dir, tag, world, precision, extra, accum);
  const std::string run_args = scenario.string() + " --out " + dir.string() + " --no-golden -q";
  const std::string ref_args = "--model-config " + (model_config_dir() / "tiny.json").string() +
                               " --threads 2 --run-log " + (dir / tag).string();
  if (world == 1) {
    auto r = test::run_cli("run " + run_args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto p = test::run_python_script("openclip_train_reference.py",
                                     ref_args + ".h5 --out " + (dir / "openclip.h5").string());
    EXPECT_EQ(p.exit_code, 0) << p.output;
    expect_log_matches_reference(dir / (tag + ".h5"), dir / "openclip.h5",
                                 tag + ": tiny, " + precision + ", CPU, world 1");
    return dir;
  }
  auto r = test::run_command(test::torchrun(world, std::string(kCliBin) + " run " + run_args));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto p = test::run_command(test::torchrun_python(
      world, "openclip_train_reference.py",
      ref_args + ".rank{RANK}.h5 --out " + (dir / "openclip.rank{RANK}.h5").string()));
  EXPECT_EQ(p.exit_code, 0) << p.output;
  for (int rank = 0; rank < world; ++rank) {
    const std::string suffix = ".rank" + std::to_string(rank) + ".h5";
    expect_log_matches_reference(dir / (tag + suffix), dir / ("openclip" + suffix),
                                 tag + ": tiny, " + precision + ", CPU, gloo world " +
                                     std::to_string(world) + ", rank " + std::to_string(rank));
  }
  return dir;
}

TEST(OpenClipTrainParity, Fp32WorldOneFiveStepsBitwise) {
  train_parity_case("fp32_w1", 1, "fp32", "");
}

// DDP averaging, rank-0 buffer broadcast before each forward, gathered loss, gradient clipping.
TEST(OpenClipTrainParity, Fp32GlooWorldTwoFiveStepsBitwise) {
  train_parity_case("fp32_w2", 2, "fp32", "grad-clip-norm = 1.0\n");
}

TEST(OpenClipTrainParity, Fp32GlooWorldTwoLocalLossGatherWithGradBitwise) {
  train_parity_case("fp32_w2_local", 2, "fp32", "local-loss = true\ngather-with-grad = true\n");
}

// fp16 autocast + GradScaler: the first steps overflow at scale 65536 and are skipped, so this
// also checks the skip, the backoff, and moments that stay absent until the first real step.
TEST(OpenClipTrainParity, AmpWorldOneBitwise) {
  const auto dir = train_parity_case("amp_w1", 1, "amp", "");
  LogReader log(dir / "amp_w1.h5");
  EXPECT_EQ(log.read_full("scaler/found_inf", 1).item<float>(), 1.0f) << "step 1 overflows";
  EXPECT_EQ(log.read_full("scaler/scale", 1).item<float>(), 32768.0f);
}

TEST(OpenClipTrainParity, AmpBf16WorldOneBitwise) {
  train_parity_case("amp_bf16_w1", 1, "amp_bf16", "");
}

// Under amp, clipping needs the unscale before it (and step must not unscale twice).
TEST(OpenClipTrainParity, AmpGlooWorldTwoGradClipBitwise) {
  train_parity_case("amp_w2_clip", 2, "amp", "grad-clip-norm = 1.0\n");
}

// OpenCLIP's accum-freq: cached no-grad features as negatives, one backward per micro-batch,
// DDP all-reducing accumulated gradients in each, and DDP's buffer-sync rule (only after a
// forward with grad) deciding which forwards see rank 0's BatchNorm statistics.
TEST(OpenClipTrainParity, AccumFreqTwoWorldOneBitwise) {
  train_parity_case("accum2_w1", 1, "fp32", "", 2);
}

TEST(OpenClipTrainParity, AccumFreqTwoAmpGlooWorldTwoBitwise) {
  train_parity_case("accum2_amp_w2", 2, "amp", "", 2);
}

// convert_weights_to_lp: conv/linear/attention weights and text_projection in fp16, BatchNorm,
// embeddings, LayerNorm (computed in fp32: LayerNormFp32) and logit_scale in fp32; images cast
// to fp16; fp16 gradients and AdamW moments for the converted weights; no loss scaling.
TEST(OpenClipTrainParity, Fp16WorldOneBitwise) { train_parity_case("fp16_w1", 1, "fp16", ""); }

TEST(OpenClipTrainParity, Bf16WorldOneBitwise) { train_parity_case("bf16_w1", 1, "bf16", ""); }

// Mixed fp32/bf16 gradients through DDP's all-reduce and PyTorch's per-dtype clip_grad_norm_.
TEST(OpenClipTrainParity, Bf16GlooWorldTwoGradClipBitwise) {
  train_parity_case("bf16_w2_clip", 2, "bf16", "grad-clip-norm = 1.0\n");
}

// model.to(dtype): every floating parameter and buffer (BatchNorm statistics included) in low
// precision, int64 num_batches_tracked kept.
TEST(OpenClipTrainParity, PureFp16WorldOneBitwise) {
  train_parity_case("pure_fp16_w1", 1, "pure_fp16", "");
}

TEST(OpenClipTrainParity, PureBf16WorldOneBitwise) {
  train_parity_case("pure_bf16_w1", 1, "pure_bf16", "");
}

}  // namespace
}  // namespace cliprepro
