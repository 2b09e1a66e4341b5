// The model's numerics beyond OpenCLIP's precisions: open_clip's weight conversions for the
// fp16/bf16 and pure_* precisions (which dtype each tensor ends up in), and cliprepro's
// [numerics] keys bn-fp32 and bn-eps. Bitwise agreement of the precisions with OpenCLIP's own
// training loop is in test_openclip_train_parity.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "src/model/clip.h"
#include "src/model/low_precision.h"
#include "src/model/model_config.h"
#include "src/train/precision.h"

namespace cliprepro {
namespace {

ModelNumerics bn_numerics(bool batch_norm_fp32, double eps) {
  ModelNumerics n;
  n.batch_norm_fp32 = batch_norm_fp32;
  n.batch_norm_eps = eps;
  return n;
}

Clip tiny_model() {
  torch::manual_seed(0);
  Clip m(load_model_config("tiny"));
  m->train();
  return m;
}

// The forward's captured activations by name.
std::map<std::string, torch::Tensor> forward_captures(Clip& m, torch::ScalarType image_dtype) {
  const auto& cfg = m->config();
  torch::manual_seed(1);
  auto images = torch::randn({4, 3, cfg.vision.image_size, cfg.vision.image_size}).to(image_dtype);
  auto tokens = torch::randint(1, cfg.text.vocab_size - 1, {4, cfg.text.context_length});
  CaptureTape tape;
  m->forward(images, tokens, &tape);
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : tape.entries()) out[name] = t;
  return out;
}

TEST(Precision, LowPrecisionModesParse) {
  for (const char* name : {"fp16", "bf16", "pure_fp16", "pure_bf16"}) {
    const auto p = parse_precision(name);
    EXPECT_FALSE(p.autocast_dtype.has_value()) << name;
    EXPECT_FALSE(p.grad_scaler) << name << ": only amp scales the loss";
    ASSERT_TRUE(p.weight_dtype.has_value()) << name;
    EXPECT_EQ(*p.weight_dtype, std::string(name).find("fp16") != std::string::npos
                                   ? torch::kHalf
                                   : torch::kBFloat16);
    EXPECT_EQ(p.pure, std::string(name).rfind("pure_", 0) == 0) << name;
    EXPECT_EQ(p.layer_norm_fp32(), !p.pure) << name;
  }
  EXPECT_FALSE(parse_precision("amp").weight_dtype.has_value());
}

// open_clip.model.convert_weights_to_lp, tensor by tensor.
TEST(LowPrecision, ConvertWeightsToLpConvertsExactlyOpenClipsSet) {
  auto m = tiny_model();
  convert_weights_to_lp(*m, torch::kBFloat16);
  int converted = 0;
  for (const auto& kv : m->named_parameters()) {
    const auto& n = kv.key();
    const bool lp = n.find("conv") != std::string::npos ||
                    n.find("downsample.0") != std::string::npos ||
                    n.find("_proj") != std::string::npos || n.find("mlp.c_") != std::string::npos ||
                    n == "text_projection";
    EXPECT_EQ(kv.value().scalar_type(), lp ? torch::kBFloat16 : torch::kFloat) << n;
    converted += lp ? 1 : 0;
  }
  EXPECT_GT(converted, 20);
  for (const auto& kv : m->named_buffers()) {
    EXPECT_EQ(kv.value().scalar_type(), kv.key().find("num_batches_tracked") != std::string::npos
                                            ? torch::kInt64
                                            : torch::kFloat)
        << kv.key();
  }
}

TEST(LowPrecision, PureConversionKeepsIntegerBuffersAndOptionallyBatchNorm) {
  for (bool keep_bn : {false, true}) {
    auto m = tiny_model();
    convert_floating_tensors(*m, torch::kHalf, keep_bn);
    for (const auto& kv : m->named_parameters()) {
      const bool bn = kv.key().find(".bn") != std::string::npos ||
                      kv.key().find("downsample.1") != std::string::npos;
      EXPECT_EQ(kv.value().scalar_type(), keep_bn && bn ? torch::kFloat : torch::kHalf) << kv.key();
    }
    for (const auto& kv : m->named_buffers()) {
      const auto want = kv.key().find("num_batches_tracked") != std::string::npos ? torch::kInt64
                        : keep_bn                                                 ? torch::kFloat
                                                                                  : torch::kHalf;
      EXPECT_EQ(kv.value().scalar_type(), want) << kv.key();
    }
    // The model still runs: BatchNorm in fp32 takes and returns fp16 activations.
    m->set_numerics(bn_numerics(keep_bn, 1e-5));
    const auto c = forward_captures(m, torch::kHalf);
    EXPECT_EQ(c.at("visual.bn1").scalar_type(), torch::kHalf);
    EXPECT_EQ(c.at("image_features").scalar_type(), torch::kHalf);
  }
}

// fp16/bf16: LayerNormFp32 computes on fp32 copies and hands back the input's dtype.
TEST(LowPrecision, LayerNormFp32ComputesInFp32AndReturnsTheInputDtype) {
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({64}));
  auto x = (torch::randn({8, 64}) * 30).to(torch::kBFloat16);
  const auto y = layer_norm(*ln, x, /*in_fp32=*/true);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(y, ln(x.to(torch::kFloat)).to(torch::kBFloat16)));
  EXPECT_EQ(layer_norm(*ln, x.to(torch::kFloat), false).scalar_type(), torch::kFloat);
}

// bn-fp32 under autocast: BatchNorm's output (and the residual stream after it) stays fp32;
// without it, BatchNorm runs on and returns the autocast dtype.
TEST(Numerics, BnFp32KeepsBatchNormOutputFp32UnderAutocast) {
  for (bool bn_fp32 : {false, true}) {
    auto m = tiny_model();
    m->set_numerics(bn_numerics(bn_fp32, 1e-5));
    std::map<std::string, torch::Tensor> c;
    {
      AutocastGuard autocast(torch::kCPU, torch::kBFloat16);
      c = forward_captures(m, torch::kFloat);
    }
    const auto want = bn_fp32 ? torch::kFloat : torch::kBFloat16;
    EXPECT_EQ(c.at("visual.conv1").scalar_type(), torch::kBFloat16) << "autocast conv";
    EXPECT_EQ(c.at("visual.bn1").scalar_type(), want) << "bn-fp32 " << bn_fp32;
    EXPECT_EQ(c.at("visual.layer1.0").scalar_type(), want) << "bn-fp32 " << bn_fp32;
    EXPECT_EQ(m->visual->bn1->running_mean.scalar_type(), torch::kFloat);
    // Captured batch statistics come from the fp32 copy of the conv output either way.
    EXPECT_EQ(c.at("bn_batch/visual.bn1.mean").scalar_type(), torch::kFloat);
  }
}

// bn-fp32 normalises exactly what BatchNorm would on the fp32 copy of its input.
TEST(Numerics, BnFp32OutputIsBatchNormOfTheFp32Input) {
  auto m = tiny_model();
  m->set_numerics(bn_numerics(true, 1e-5));
  torch::manual_seed(2);
  const int64_t s = m->config().vision.image_size;
  auto x = torch::randn({4, 3, s, s});
  auto conv_out = [&] {
    AutocastGuard autocast(torch::kCPU, torch::kBFloat16);
    return m->visual->conv1(x);
  }();
  auto bn_copy = torch::nn::BatchNorm2d(conv_out.size(1));
  bn_copy->train();
  const auto want = bn_copy(conv_out.to(torch::kFloat));
  std::map<std::string, torch::Tensor> c;
  {
    AutocastGuard autocast(torch::kCPU, torch::kBFloat16);
    CaptureTape tape;
    m->visual->forward(x, &tape);
    for (const auto& [name, t] : tape.entries()) c[name] = t;
  }
  EXPECT_TRUE(torch::equal(c.at("visual.bn1"), want));
  EXPECT_TRUE(torch::equal(m->visual->bn1->running_var, bn_copy->running_var));
}

TEST(Numerics, BnEpsReachesEveryBatchNormAndChangesTheOutput) {
  auto a = tiny_model();
  auto b = tiny_model();
  b->set_numerics(bn_numerics(false, 1e-2));
  int bns = 0;
  for (const auto& mod : b->modules()) {
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) {
      EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-2);
      ++bns;
    }
  }
  EXPECT_EQ(bns, 3 + 4 * 3 + 4);  // stem, 4 single-block stages x 3, 4 downsamples (tiny)
  const auto ca = forward_captures(a, torch::kFloat);
  const auto cb = forward_captures(b, torch::kFloat);
  EXPECT_FALSE(torch::equal(ca.at("visual.bn1"), cb.at("visual.bn1")));
}

}  // namespace
}  // namespace cliprepro
