// Model structure: output shapes and OpenCLIP state-dict names/shapes for RN50 and tiny.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <tuple>

#include <cmath>

#include "src/model/clip.h"
#include "src/model/modified_resnet.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

torch::Tensor tokens_with_eot(int64_t n, const TextConfig& t) {
  auto tok = torch::randint(1, t.vocab_size - 2, {n, t.context_length}, torch::kInt64);
  tok.select(1, 0).fill_(t.vocab_size - 2);
  tok.select(1, 5).fill_(t.vocab_size - 1);
  tok.slice(1, 6).zero_();
  return tok;
}

std::map<std::string, std::vector<int64_t>> shapes_of(Clip& m) {
  std::map<std::string, std::vector<int64_t>> s;
  for (const auto& kv : m->named_parameters()) s[kv.key()] = kv.value().sizes().vec();
  for (const auto& kv : m->named_buffers()) s[kv.key()] = kv.value().sizes().vec();
  return s;
}

// Sizes that cannot build a model are refused with the config's name and key, before any module
// exists (heads = 0 was a SIGFPE, negative layers ran, 4e9 wrapped).
TEST(ModelConfig, ImpossibleSizesNameTheKey) {
  const std::string good = test::read_file(model_config_dir() / "tiny.json");
  EXPECT_NO_THROW(parse_model_config(good, "tiny"));
  auto with = [&](const std::string& section, const std::string& key, const std::string& value) {
    auto j = nlohmann::json::parse(good);
    auto& obj = section.empty() ? j : j[section];
    obj[key] = nlohmann::json::parse(value);
    try {
      parse_model_config(j.dump(), "edited");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  for (const auto& [section, key, value, want] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"text_cfg", "heads", "0", "text_cfg.heads must be an integer in [1, 4096], got 0"},
           {"vision_cfg", "layers", "[1, -2, 1, 1]", "vision_cfg.layers[1] must be an integer"},
           {"vision_cfg", "layers", "[1, 1, 1]", "vision_cfg.layers must be a list of 4"},
           {"vision_cfg", "image_size", "0", "vision_cfg.image_size must be an integer in [32,"},
           {"vision_cfg", "image_size", "48", "vision_cfg.image_size must be a multiple of 32"},
           {"", "embed_dim", "-64", "embed_dim must be an integer in [1,"},
           {"vision_cfg", "width", "4000000000", "vision_cfg.width must be an integer"},
           {"vision_cfg", "width", "1", "vision_cfg.width * 32 = 32 channels do not split into"},
           // Issue 36: every OpenCLIP key honoured, ignored by OpenCLIP too, or refused by name.
           {"vision_cfg", "head_width", "0", "vision_cfg.head_width must be an integer in [1,"},
           {"vision_cfg", "head_width", "48",
            "vision_cfg.width * 32 = 512 channels do not split into width * 32 // head_width = 10"},
           {"vision_cfg", "timm_model_name", "\"convnext_tiny\"",
            "vision_cfg.timm_model_name = \"convnext_tiny\" builds another model in OpenCLIP"},
           {"text_cfg", "mlp_ratio", "2.0", "text_cfg.mlp_ratio = 2.0 builds another model"},
           {"text_cfg", "hf_model_name", "\"bert\"", "text_cfg.hf_model_name = \"bert\" builds"},
           {"", "init_logit_bias", "-10", "init_logit_bias = -10 builds another model"},
           {"vision_cfg", "hed_width", "32", "vision_cfg.hed_width is no key of OpenCLIP's"},
           {"text_cfg", "width", "\"wide\"", "text_cfg.width must be an integer"},
           {"text_cfg", "context_length", "18446744073709551615", "text_cfg.context_length"},
           {"", "quick_gelu", "1", "quick_gelu must be true or false"}}) {
    const std::string e = with(section, key, value);
    EXPECT_NE(e.find("model config 'edited': " + want), std::string::npos)
        << key << " = " << value << ": " << e;
  }
}

// OpenCLIP's ModifiedResNet has width * 32 // head_width attention-pool heads: head_width = 32
// is another model there, and must be here (it was read as 64).
TEST(ModelConfig, HeadWidthSetsTheAttentionPoolHeads) {
  auto j = nlohmann::json::parse(test::read_file(model_config_dir() / "tiny.json"));
  EXPECT_EQ(parse_model_config(j.dump(), "tiny").vision.heads, 16 * 32 / 64);
  j["vision_cfg"]["head_width"] = 32;
  const auto cfg = parse_model_config(j.dump(), "tiny-hw32");
  EXPECT_EQ(cfg.vision.heads, 16 * 32 / 32);
  Clip m(cfg);
  EXPECT_EQ(m->visual->attnpool->num_heads, 16);
  // Keys OpenCLIP's ModifiedResNet never reads build the same model there, so they are accepted.
  j["vision_cfg"]["patch_size"] = 14;
  EXPECT_NO_THROW(parse_model_config(j.dump(), "tiny-patch"));
}

TEST(Model, TinyForwardShapesAndNormalisation) {
  torch::manual_seed(0);
  auto cfg = load_model_config("tiny");
  Clip m(cfg);
  CaptureTape tape;
  auto out = m->forward(torch::randn({4, 3, 64, 64}), tokens_with_eot(4, cfg.text), &tape);
  EXPECT_EQ(out.image_features.sizes(), (std::vector<int64_t>{4, cfg.embed_dim}));
  EXPECT_EQ(out.text_features.sizes(), (std::vector<int64_t>{4, cfg.embed_dim}));
  EXPECT_TRUE(torch::allclose(out.image_features.norm(2, -1), torch::ones({4}), 1e-5, 1e-5));
  EXPECT_NEAR(out.logit_scale.item<double>(), 1 / 0.07, 1e-4);
  std::map<std::string, std::vector<int64_t>> captured;
  for (const auto& [k, v] : tape.entries()) captured[k] = v.sizes().vec();
  EXPECT_EQ(captured.at("visual.layer4.0"), (std::vector<int64_t>{4, 16 * 32, 2, 2}));
  EXPECT_EQ(captured.at("transformer.resblocks.1"), (std::vector<int64_t>{4, 16, 64}));
}

TEST(Model, RN50ForwardShapes) {
  torch::manual_seed(0);
  auto cfg = load_model_config("RN50");
  Clip m(cfg);
  m->eval();
  torch::NoGradGuard no_grad;
  CaptureTape tape;
  auto out = m->forward(torch::randn({2, 3, 224, 224}), tokens_with_eot(2, cfg.text), &tape);
  EXPECT_EQ(out.image_features.sizes(), (std::vector<int64_t>{2, 1024}));
  EXPECT_EQ(out.text_features.sizes(), (std::vector<int64_t>{2, 1024}));
  std::map<std::string, std::vector<int64_t>> captured;
  for (const auto& [k, v] : tape.entries()) captured[k] = v.sizes().vec();
  EXPECT_EQ(captured.at("visual.layer4.2"), (std::vector<int64_t>{2, 2048, 7, 7}));
  EXPECT_EQ(captured.at("visual.layer3.5"), (std::vector<int64_t>{2, 1024, 14, 14}));
  EXPECT_EQ(captured.at("transformer.resblocks.11"), (std::vector<int64_t>{2, 77, 512}));
}

TEST(Model, RN50StateDictNamesAndShapesFollowOpenCLIP) {
  torch::manual_seed(0);
  Clip m(load_model_config("RN50"));
  const auto s = shapes_of(m);
  // Spot checks against OpenCLIP's RN50 state_dict (modified_resnet.py / transformer.py).
  const std::map<std::string, std::vector<int64_t>> expected{
      {"visual.conv1.weight", {32, 3, 3, 3}},
      {"visual.bn3.running_var", {64}},
      {"visual.layer1.0.downsample.0.weight", {256, 64, 1, 1}},
      {"visual.layer1.0.downsample.1.num_batches_tracked", {}},
      {"visual.layer2.0.conv2.weight", {128, 128, 3, 3}},
      {"visual.layer4.2.bn3.weight", {2048}},
      {"visual.attnpool.positional_embedding", {50, 2048}},
      {"visual.attnpool.q_proj.weight", {2048, 2048}},
      {"visual.attnpool.c_proj.weight", {1024, 2048}},
      {"token_embedding.weight", {49408, 512}},
      {"positional_embedding", {77, 512}},
      {"transformer.resblocks.11.attn.in_proj_weight", {1536, 512}},
      {"transformer.resblocks.11.attn.out_proj.bias", {512}},
      {"transformer.resblocks.0.mlp.c_fc.weight", {2048, 512}},
      {"transformer.resblocks.0.ln_2.bias", {512}},
      {"ln_final.weight", {512}},
      {"text_projection", {512, 1024}},
      {"logit_scale", {}},
  };
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(s.count(name)) << name;
    EXPECT_EQ(s.at(name), shape) << name;
  }
  // Blocks with stride 1 and matching width have no downsample.
  EXPECT_FALSE(s.count("visual.layer1.1.downsample.0.weight"));
  // The causal mask is not persistent in OpenCLIP: not part of the state dict.
  EXPECT_FALSE(s.count("attn_mask"));
}

TEST(Model, InitFollowsOpenCLIP) {
  torch::manual_seed(0);
  Clip m(load_model_config("RN50"));
  for (const auto& kv : m->named_parameters()) {
    const auto& k = kv.key();
    if (k.rfind("visual.layer", 0) == 0 && k.size() > 10 &&
        k.substr(k.size() - 10) == "bn3.weight") {
      EXPECT_EQ(kv.value().abs().max().item<float>(), 0.0f) << k;
    }
  }
  const double attn_std = std::pow(2048.0, -0.5);
  EXPECT_NEAR(m->visual->attnpool->q_proj->weight.std().item<double>(), attn_std, 0.02 * attn_std);
  EXPECT_NEAR(m->token_embedding->weight.std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(m->positional_embedding.std().item<double>(), 0.01, 0.001);
  const double proj_std = std::pow(512.0, -0.5) * std::pow(24.0, -0.5);
  auto blk = m->transformer->resblocks->ptr<ResidualAttentionBlockImpl>(0);
  EXPECT_NEAR(blk->attn->out_proj->weight.std().item<double>(), proj_std, 0.03 * proj_std);
  EXPECT_NEAR(blk->mlp->c_fc->weight.std().item<double>(), std::pow(1024.0, -0.5),
              0.02 * std::pow(1024.0, -0.5));
}

TEST(Model, SameSeedSameInitialWeights) {
  auto cfg = load_model_config("tiny");
  torch::manual_seed(5);
  Clip a(cfg);
  torch::manual_seed(5);
  Clip b(cfg);
  auto pa = a->named_parameters();
  auto pb = b->named_parameters();
  for (const auto& kv : pa) EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();
}

// Capturing BatchNorm batch statistics must not change training: a bottleneck run with a tape
// gives the same output, running stats and gradients, bit for bit, as one run without, and the
// recorded mean/invstd are the batch's (biased variance, eps inside the root).
TEST(Model, BatchNormCaptureLeavesTrainingBitwiseUnchanged) {
  torch::manual_seed(11);
  Bottleneck a(64, 16, 2), b(64, 16, 2);
  {
    torch::NoGradGuard no_grad;
    for (auto& kv : a->named_parameters()) kv.value().normal_();
    auto pb = b->named_parameters();
    for (const auto& kv : a->named_parameters()) pb[kv.key()].copy_(kv.value());
  }
  a->train();
  b->train();
  const auto x = torch::randn({4, 64, 8, 8});
  for (int step = 0; step < 2; ++step) {
    CaptureTape tape;
    auto ya = a->forward(x, &tape, "layer1.0");
    auto yb = b->forward(x, nullptr, "layer1.0");
    ASSERT_TRUE(torch::equal(ya, yb));
    (ya * ya).sum().backward();
    (yb * yb).sum().backward();
    auto pb = b->named_parameters();
    for (const auto& kv : a->named_parameters())
      EXPECT_TRUE(torch::equal(kv.value().grad(), pb[kv.key()].grad())) << kv.key();
    auto bb = b->named_buffers();
    for (const auto& kv : a->named_buffers())
      EXPECT_TRUE(torch::equal(kv.value(), bb[kv.key()])) << kv.key();
    std::map<std::string, torch::Tensor> rec(tape.entries().begin(), tape.entries().end());
    ASSERT_TRUE(rec.count("bn_batch/layer1.0.bn1.mean"));
    ASSERT_TRUE(rec.count("bn_batch/layer1.0.downsample.1.invstd"));
    // The recorded statistics are of bn1's input, conv1(x).
    const auto in = a->conv1->forward(x).detach();
    const auto mean = in.mean({0, 2, 3});
    const auto var = in.var({0, 2, 3}, /*unbiased=*/false);
    EXPECT_TRUE(torch::allclose(rec.at("bn_batch/layer1.0.bn1.mean"), mean, 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(rec.at("bn_batch/layer1.0.bn1.invstd"),
                                1.0 / torch::sqrt(var + a->bn1->options.eps()), 1e-4, 1e-6));
    EXPECT_EQ(a->bn1->num_batches_tracked.item<int64_t>(), step + 1);
  }
}

}  // namespace
}  // namespace cliprepro
