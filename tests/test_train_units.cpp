// Loss, optimizer groups, AdamW arithmetic and the cosine schedule against their definitions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include <cmath>
#include <numbers>

#include "src/train/adamw.h"
#include "src/train/clip_loss.h"
#include "src/train/cosine_schedule.h"
#include "src/train/precision.h"

namespace cliprepro {
namespace {

TEST(CosineLr, WarmupThenCosineToZero) {
  EXPECT_DOUBLE_EQ(cosine_lr(1e-3, 10, 110, 0), 1e-3 * 1 / 10);
  EXPECT_DOUBLE_EQ(cosine_lr(1e-3, 10, 110, 9), 1e-3);
  EXPECT_DOUBLE_EQ(cosine_lr(1e-3, 10, 110, 10), 1e-3);
  EXPECT_NEAR(cosine_lr(1e-3, 10, 110, 60), 0.5e-3, 1e-18);
  EXPECT_NEAR(cosine_lr(1e-3, 10, 110, 110), 0.0, 1e-18);
  EXPECT_DOUBLE_EQ(cosine_lr(2.0, 0, 4, 1), 0.5 * (1 + std::cos(std::numbers::pi * 1 / 4)) * 2.0);
}

TEST(AdamW, OpenCLIPWeightDecayGroups) {
  auto w2 = torch::zeros({2, 2}, torch::requires_grad());
  auto w1 = torch::zeros({2}, torch::requires_grad());
  std::vector<std::pair<std::string, torch::Tensor>> named{
      {"visual.conv1.weight", w2.clone().requires_grad_()},
      {"visual.bn1.weight", w1.clone().requires_grad_()},
      {"transformer.resblocks.0.ln_1.weight", w1.clone().requires_grad_()},
      {"visual.attnpool.q_proj.bias", w1.clone().requires_grad_()},
      {"logit_scale", torch::zeros({}, torch::requires_grad())},
      {"positional_embedding", w2.clone().requires_grad_()},
      {"frozen", torch::zeros({2, 2})},
  };
  AdamW opt(named, AdamWOptions{});
  ASSERT_EQ(opt.groups().size(), 2u);
  EXPECT_EQ(opt.groups()[0].weight_decay, 0.0);
  EXPECT_EQ(opt.groups()[1].weight_decay, 0.2);
  std::vector<std::string> g0, g1;
  for (const auto& p : opt.groups()[0].params) g0.push_back(p.name);
  for (const auto& p : opt.groups()[1].params) g1.push_back(p.name);
  EXPECT_EQ(g0,
            (std::vector<std::string>{"visual.bn1.weight", "transformer.resblocks.0.ln_1.weight",
                                      "visual.attnpool.q_proj.bias", "logit_scale"}));
  EXPECT_EQ(g1, (std::vector<std::string>{"visual.conv1.weight", "positional_embedding"}));
}

TEST(AdamW, MatchesLibTorchAdamWWithinRounding) {
  torch::manual_seed(1);
  auto init = torch::randn({8, 8});
  auto a = init.clone().requires_grad_();
  auto b = init.clone().requires_grad_();
  AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.1;
  o.beta2 = 0.98;
  o.eps = 1e-6;
  AdamW ours({{"w", a}}, o);
  torch::optim::AdamW ref(
      {b}, torch::optim::AdamWOptions(1e-2).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.1));
  for (int step = 0; step < 5; ++step) {
    auto g = torch::randn({8, 8});
    ours.zero_grad();
    ref.zero_grad();
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    ours.step();
    ref.step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-7)) << (a - b).abs().max().item<float>();
  EXPECT_FALSE(torch::equal(a, init));
  EXPECT_EQ(ours.groups()[1].params[0].step.item<float>(), 5.0f);
}

TEST(ClipLoss, MatchesDefinition) {
  torch::manual_seed(2);
  namespace F = torch::nn::functional;
  auto img = F::normalize(torch::randn({6, 16}), F::NormalizeFuncOptions().dim(-1));
  auto txt = F::normalize(torch::randn({6, 16}), F::NormalizeFuncOptions().dim(-1));
  auto scale = torch::tensor(14.0f);
  auto logits = clip_logits(img, txt, scale);
  auto loss = clip_loss(logits).item<double>();
  // Cross-entropy written out: mean over rows of logsumexp(row) - row[i].
  auto lpi = scale * img.matmul(txt.t());
  auto ce = [](const torch::Tensor& l) {
    return (torch::logsumexp(l, 1) - l.diagonal()).mean().item<double>();
  };
  EXPECT_NEAR(loss, (ce(lpi) + ce(lpi.t())) / 2, 1e-5);
  EXPECT_TRUE(torch::allclose(logits.per_text, logits.per_image.t(), 1e-6, 1e-6));
  // Aligned pairs with a large scale give a loss near zero.
  EXPECT_LT(clip_loss(clip_logits(img, img.clone(), torch::tensor(100.0f))).item<double>(),
            clip_loss(clip_logits(img, txt, torch::tensor(100.0f))).item<double>());
}

// One parameter (2x2, so it is in the decayed group) with a given gradient.
struct OneParam {
  torch::Tensor w = torch::ones({2, 2}).requires_grad_();
  AdamW opt{{{"w", w}}, AdamWOptions{}};
  void set_grad(torch::Tensor g) { w.mutable_grad() = std::move(g); }
};

TEST(GradScaler, SkipsTheStepAndBacksOffOnInfOrNan) {
  for (float bad : {INFINITY, NAN}) {
    OneParam p;
    GradScaler scaler(torch::kCPU);
    p.set_grad(torch::tensor({{1.0f, bad}, {0.0f, 2.0f}}));
    EXPECT_FALSE(scaler.step(p.opt));
    scaler.update();
    EXPECT_TRUE(torch::equal(p.w, torch::ones({2, 2}))) << "parameters must not move";
    EXPECT_EQ(p.opt.groups()[1].params[0].step.item<float>(), 0.0f);
    EXPECT_EQ(scaler.found_inf().item<float>(), 1.0f);
    EXPECT_EQ(scaler.scale_tensor().item<float>(), 32768.0f);
    EXPECT_EQ(scaler.growth_tracker().item<int>(), 0);
  }
}

TEST(GradScaler, UnscalesExactlyAndGrowsAfterTheInterval) {
  OneParam p;
  GradScalerOptions o;
  o.growth_interval = 2;
  GradScaler scaler(torch::kCPU, o);
  EXPECT_EQ(scaler.scale(torch::tensor(3.0f)).item<float>(), 3.0f * 65536.0f);
  for (int i = 0; i < 2; ++i) {
    p.set_grad(torch::full({2, 2}, 65536.0f * 0.75f));
    scaler.unscale_(p.opt);
    EXPECT_TRUE(torch::equal(p.w.grad(), torch::full({2, 2}, 0.75f)));
    EXPECT_THROW(scaler.unscale_(p.opt), std::logic_error);
    EXPECT_TRUE(scaler.step(p.opt));
    scaler.update();
    EXPECT_EQ(scaler.found_inf().item<float>(), 0.0f);
  }
  EXPECT_EQ(scaler.scale_tensor().item<float>(), 131072.0f) << "doubled after 2 clean steps";
  EXPECT_EQ(scaler.growth_tracker().item<int>(), 0);
  EXPECT_FALSE(torch::equal(p.w, torch::ones({2, 2})));
}

TEST(GradScaler, RefusesHalfGradientsAsPyTorchDoes) {
  OneParam p;
  GradScaler scaler(torch::kCPU);
  p.set_grad(torch::ones({2, 2}, torch::kHalf));
  EXPECT_THROW(scaler.unscale_(p.opt), std::runtime_error);
}

TEST(Precision, OpenClipNamesParseAndOthersAreRejected) {
  EXPECT_FALSE(parse_precision("fp32").autocast_dtype.has_value());
  EXPECT_EQ(*parse_precision("amp").autocast_dtype, torch::kHalf);
  EXPECT_TRUE(parse_precision("amp").grad_scaler);
  EXPECT_EQ(*parse_precision("amp_bfloat16").autocast_dtype, torch::kBFloat16);
  EXPECT_FALSE(parse_precision("amp_bf16").grad_scaler);
  EXPECT_THROW(parse_precision("fp8"), std::invalid_argument);
}

TEST(Precision, AutocastGuardRestoresTheOuterState) {
  EXPECT_FALSE(at::autocast::is_autocast_enabled(torch::kCPU));
  {
    AutocastGuard g(torch::kCPU, torch::kBFloat16);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(torch::kCPU));
    auto y = torch::matmul(torch::ones({2, 2}), torch::ones({2, 2}));
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(torch::kCPU));
  EXPECT_EQ(torch::matmul(torch::ones({2, 2}), torch::ones({2, 2})).scalar_type(), torch::kFloat);
}

}  // namespace
}  // namespace cliprepro
