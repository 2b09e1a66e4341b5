// [numerics] fp32-modules / low-precision-modules: which sites a glob selects, what dtype each
// site computes in, that lifting every site to fp32 inside amp_bf16 reproduces an fp32 run bit
// for bit, and that bad globs and precisions are refused with the scenario's file and line.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "harness/scenario/scenario.h"
#include "src/model/clip.h"
#include "src/model/precision_sites.h"
#include "src/train/clip_loss.h"
#include "src/train/precision.h"
#include "test_util.h"

namespace cliprepro {
namespace {

Clip tiny_model(const PrecisionOverrides& o) {
  torch::manual_seed(0);
  Clip m(load_model_config("tiny"));
  m->train();
  ModelNumerics n;
  n.overrides = o;
  m->set_numerics(n);
  return m;
}

std::map<std::string, torch::Tensor> forward_captures(Clip& m, bool autocast_bf16) {
  const auto& cfg = m->config();
  torch::manual_seed(1);
  auto images = torch::randn({4, 3, cfg.vision.image_size, cfg.vision.image_size});
  auto tokens = torch::randint(1, cfg.text.vocab_size - 1, {4, cfg.text.context_length});
  CaptureTape tape;
  {
    AutocastGuard autocast(torch::kCPU,
                           autocast_bf16 ? std::optional(torch::kBFloat16) : std::nullopt);
    m->forward(images, tokens, &tape);
  }
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : tape.entries()) out[name] = t;
  return out;
}

// The sites as the built model has them: every Conv2d, Linear, BatchNorm2d and attention of
// named_modules(), then the two non-modules.
std::vector<std::string> module_sites(torch::nn::Module& model) {
  std::vector<std::string> out;
  for (const auto& kv : model.named_modules("", /*include_self=*/false)) {
    const auto& m = kv.value();
    if (m->as<torch::nn::Conv2dImpl>() || m->as<torch::nn::LinearImpl>() ||
        m->as<torch::nn::BatchNorm2dImpl>() || m->as<MultiheadAttentionImpl>() ||
        m->as<AttentionPool2dImpl>())
      out.push_back(kv.key());
  }
  out.push_back(kTextProjectionSite);
  out.push_back(kLossSite);
  return out;
}

TEST(PrecisionSites, SiteNamesAreTheModelsModuleNames) {
  for (const char* name : {"tiny", "RN50"}) {
    const auto cfg = load_model_config(name);
    Clip model(cfg);
    EXPECT_EQ(precision_site_names(cfg), module_sites(*model)) << name;
  }
  const auto sites = precision_site_names(load_model_config("tiny"));
  for (const char* want :
       {"visual.conv1", "visual.bn1", "visual.layer1.0.conv2", "visual.layer1.0.downsample.0",
        "visual.layer1.0.downsample.1", "visual.attnpool", "visual.attnpool.q_proj",
        "transformer.resblocks.0.attn", "transformer.resblocks.0.attn.out_proj",
        "transformer.resblocks.0.mlp.c_fc", kTextProjectionSite, kLossSite}) {
    EXPECT_NE(std::find(sites.begin(), sites.end(), want), sites.end()) << want;
  }
  // Containers and non-precision modules are not sites.
  for (const char* not_site : {"visual", "visual.layer1", "visual.avgpool", "ln_final",
                               "transformer.resblocks.0.ln_1", "token_embedding"}) {
    EXPECT_EQ(std::find(sites.begin(), sites.end(), not_site), sites.end()) << not_site;
  }
}

TEST(PrecisionSites, ResolveFp32WinsLowSelectsOnlyItsSites) {
  const std::vector<std::string> sites = {"visual.conv1", "visual.layer1.0.bn1",
                                          "visual.layer1.0.conv1", "visual.attnpool.q_proj",
                                          "loss"};
  auto p = resolve_site_precision(sites, {{"visual.layer1.*.bn*", "loss"}, {}});
  EXPECT_EQ(p.at("visual.layer1.0.bn1"), SitePrecision::kFp32);
  EXPECT_EQ(p.at("loss"), SitePrecision::kFp32);
  EXPECT_EQ(p.at("visual.conv1"), SitePrecision::kAsRun) << "fp32-modules alone: the rest as run";
  EXPECT_EQ(p.at("visual.layer1.0.conv1"), SitePrecision::kAsRun);

  p = resolve_site_precision(sites, {{"visual.layer1.0.bn1"}, {"visual.layer1"}});
  EXPECT_EQ(p.at("visual.layer1.0.bn1"), SitePrecision::kFp32) << "fp32-modules wins";
  EXPECT_EQ(p.at("visual.layer1.0.conv1"), SitePrecision::kLow) << "selected by its ancestor";
  EXPECT_EQ(p.at("visual.conv1"), SitePrecision::kFp32) << "not selected: fp32";
  EXPECT_EQ(p.at("visual.attnpool.q_proj"), SitePrecision::kFp32);

  EXPECT_TRUE(resolve_site_precision(sites, {}).empty());
  try {
    resolve_site_precision(sites, {{}, {"visual.layer9"}});
    FAIL() << "an unmatched glob must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("low-precision-modules: 'visual.layer9'"),
              std::string::npos)
        << e.what();
  }
}

// Each site computes in the precision it was given; the autocast dtype elsewhere.
TEST(PrecisionSites, SitesComputeInTheirPrecision) {
  auto lifted = tiny_model({{"visual.conv1", "visual.bn2", "text_projection"}, {}});
  auto c = forward_captures(lifted, true);
  EXPECT_EQ(c.at("visual.conv1").scalar_type(), torch::kFloat);
  EXPECT_EQ(c.at("visual.bn1").scalar_type(), torch::kFloat) << "as run: follows its input";
  EXPECT_EQ(c.at("visual.conv2").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(c.at("visual.bn2").scalar_type(), torch::kFloat);
  EXPECT_EQ(c.at("visual.layer1.0").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(c.at("text_features").scalar_type(), torch::kFloat);

  auto only_layer1 = tiny_model({{}, {"visual.layer1"}});
  c = forward_captures(only_layer1, true);
  EXPECT_EQ(c.at("visual.conv1").scalar_type(), torch::kFloat);
  EXPECT_EQ(c.at("visual.layer1.0").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(c.at("visual.layer2.0").scalar_type(), torch::kFloat);
  EXPECT_EQ(c.at("visual.attnpool").scalar_type(), torch::kFloat);
  EXPECT_EQ(c.at("text_features").scalar_type(), torch::kFloat);

  auto low_bn = tiny_model({{}, {"visual.bn1"}});
  c = forward_captures(low_bn, true);
  EXPECT_EQ(c.at("visual.conv1").scalar_type(), torch::kFloat);
  EXPECT_EQ(c.at("visual.bn1").scalar_type(), torch::kBFloat16) << "a low BN casts its fp32 input";
  EXPECT_EQ(c.at("visual.conv2").scalar_type(), torch::kFloat) << "an fp32 conv casts it back";
}

// Every site lifted to fp32 inside bf16 autocast is the fp32 forward, bit for bit: nothing the
// override leaves out (LayerNorm, activations, adds) computes differently under autocast.
TEST(PrecisionSites, AllSitesFp32UnderAutocastIsTheFp32Forward) {
  auto plain = tiny_model({});
  auto lifted = tiny_model({{"*"}, {}});
  const auto want = forward_captures(plain, false);
  const auto got = forward_captures(lifted, true);
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, t] : want) {
    EXPECT_TRUE(torch::equal(t, got.at(name))) << name;
  }
  // And the default bf16 autocast forward is not (the test can fail).
  auto as_run = tiny_model({});
  EXPECT_FALSE(torch::equal(forward_captures(as_run, true).at("image_features").to(torch::kFloat),
                            want.at("image_features")));
}

// The same for the backward: every gradient of a loss on both towers' features.
TEST(PrecisionSites, AllSitesFp32UnderAutocastHaveTheFp32Gradients) {
  at::set_num_threads(2);
  auto grads = [](bool lifted) {
    auto m = tiny_model(lifted ? PrecisionOverrides{{"*"}, {}} : PrecisionOverrides{});
    const auto& cfg = m->config();
    torch::manual_seed(1);
    auto images = torch::randn({16, 3, cfg.vision.image_size, cfg.vision.image_size});
    auto tokens = torch::randint(1, cfg.text.vocab_size - 1, {16, cfg.text.context_length});
    torch::Tensor loss;
    {
      AutocastGuard autocast(torch::kCPU, lifted ? std::optional(torch::kBFloat16) : std::nullopt);
      const auto out = m->forward(images, tokens);
      const auto site = m->sites.of(kLossSite);
      SiteScope scope(site, torch::kCPU);
      loss = clip_loss(clip_logits(out.image_features, out.text_features, out.logit_scale));
    }
    loss.backward();
    std::map<std::string, torch::Tensor> g;
    for (const auto& kv : m->named_parameters())
      if (kv.value().grad().defined()) g[kv.key()] = kv.value().grad().clone();
    return g;
  };
  const auto want = grads(false), got = grads(true);
  ASSERT_EQ(want.size(), got.size());
  for (const auto& [name, t] : want) EXPECT_TRUE(torch::equal(t, got.at(name))) << name;
}

std::filesystem::path overrides_scenario(const std::filesystem::path& dir, const std::string& name,
                                         const std::string& precision, const std::string& numerics,
                                         int steps = 2) {
  auto path = test::short_scenario(dir, name, steps);
  auto text = test::read_file(path);
  const std::string fp32 = "precision = \"fp32\"";
  text.replace(text.find(fp32), fp32.size(), "precision = \"" + precision + "\"");
  test::write_file(path, text + "[numerics]\n" + numerics);
  return path;
}

TEST(PrecisionSites, ScenarioRefusesUnmatchedGlobAndNonAutocastAtTheirLine) {
  const auto dir = test::temp_dir("sites_scenario");
  const auto bad = overrides_scenario(dir, "bad", "amp_bf16",
                                      "bn-fp32 = false\nfp32-modules = [\"visual.layer9.*\"]\n");
  auto r = test::run_cli("run " + bad.string() + " --no-golden --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'visual.layer9.*' selects no module"), std::string::npos) << r.output;
  const auto bad_text = test::read_file(bad);
  const auto lines = std::count(bad_text.begin(), bad_text.end(), '\n');
  EXPECT_NE(r.output.find(bad.string() + ":" + std::to_string(lines) + ":"), std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.h5"));

  const auto fp32 =
      overrides_scenario(dir, "fp32run", "fp32", "low-precision-modules = [\"visual.layer1\"]\n");
  r = test::run_cli("run " + fp32.string() + " --no-golden --out " + dir.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("need precision \"amp\" or \"amp_bf16\", not \"fp32\""),
            std::string::npos)
      << r.output;

  auto sites = test::run_cli("sites tiny 'visual.layer1.*.bn*'");
  EXPECT_EQ(sites.exit_code, 0) << sites.output;
  EXPECT_NE(sites.output.find("visual.layer1.0.bn3\n"), std::string::npos) << sites.output;
  EXPECT_EQ(sites.output.find("conv"), std::string::npos) << sites.output;
  EXPECT_EQ(test::run_cli("sites tiny 'visual.layer9'").exit_code, 1);
}

// The whole training log (forward, batch statistics, gradients, AdamW moments) of amp_bf16 with
// every site in fp32 is the fp32 run's: compare says MATCH.
TEST(PrecisionSites, AmpBf16WithEverySiteFp32TrainsAsFp32) {
  const auto dir = test::temp_dir("sites_train");
  const auto fp32 = test::short_scenario(dir, "plain", 2);
  const auto lifted = overrides_scenario(dir, "lifted", "amp_bf16", "fp32-modules = [\"*\"]\n");
  for (const auto& p : {fp32, lifted}) {
    const auto r = test::run_cli("run " + p.string() + " -q --no-golden --out " + dir.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const auto cmp =
      test::run_cli("compare " + (dir / "plain.h5").string() + " " + (dir / "lifted.h5").string());
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
}

}  // namespace
}  // namespace cliprepro
