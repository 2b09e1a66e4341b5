// Checkpoint I/O: safetensors round trips, torch.save zip files written by PyTorch itself in
// OpenCLIP's layouts, strict-load reports, and clear errors for bad files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "src/model/checkpoint.h"
#include "src/model/clip.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

void expect_same(const StateDict& a, const StateDict& b) {
  std::map<std::string, torch::Tensor> mb(b.begin(), b.end());
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, t] : a) {
    ASSERT_TRUE(mb.count(k)) << k;
    EXPECT_EQ(t.scalar_type(), mb[k].scalar_type()) << k;
    EXPECT_TRUE(torch::equal(t, mb[k])) << k;
  }
}

TEST(Checkpoint, SafetensorsRoundTripKeepsDtypesBitsAndMetadata) {
  const auto dir = test::temp_dir("ckpt_roundtrip");
  StateDict sd = {{"a.f32", torch::randn({3, 4})},
                  {"b.f16", torch::randn({5}).to(torch::kFloat16)},
                  {"c.bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
                  {"d.i64", torch::tensor(std::vector<int64_t>{-1, 0, 7})},
                  {"e.scalar", torch::tensor(2.5f)},
                  {"f.empty", torch::empty({0, 3})},
                  {"g.noncontig", torch::randn({4, 3}).t()}};
  const auto path = (dir / "x.safetensors").string();
  write_safetensors(path, sd, {{"producer", "test"}});
  std::map<std::string, std::string> meta;
  expect_same(sd, read_safetensors(path, &meta));
  EXPECT_EQ(meta.at("producer"), "test");
}

TEST(Checkpoint, ModelStateDictLoadsBackStrictly) {
  torch::manual_seed(1);
  Clip a(load_model_config("tiny"));
  torch::manual_seed(2);
  Clip b(load_model_config("tiny"));
  const auto path = (test::temp_dir("ckpt_model") / "tiny.safetensors").string();
  write_safetensors(path, model_state_dict(*a));
  auto report = load_state_dict(*b, read_checkpoint(path), /*strict=*/true);
  EXPECT_TRUE(report.clean());
  expect_same(model_state_dict(*a), model_state_dict(*b));
}

// PyTorch writes the zip files: bare state dicts and OpenCLIP training checkpoints
// ({"epoch", "name", "state_dict", "optimizer"}), with and without DDP's "module." prefix.
TEST(Checkpoint, ReadsTorchZipFilesInOpenClipLayouts) {
  const auto dir = test::temp_dir("ckpt_torch");
  torch::manual_seed(4);
  Clip clip(load_model_config("tiny"));
  const auto st = (dir / "w.safetensors").string();
  write_safetensors(st, model_state_dict(*clip));
  for (const std::string flags : {"", "--wrap", "--module-prefix", "--wrap --module-prefix"}) {
    const auto pt = (dir / ("w" + std::to_string(flags.size()) + ".pt")).string();
    auto r = test::run_python_script(
        "openclip_reference.py", "save-torch --checkpoint " + st + " --out " + pt + " " + flags);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    SCOPED_TRACE("save-torch " + flags);
    expect_same(model_state_dict(*clip), read_checkpoint(pt));
    torch::manual_seed(9);
    Clip other(load_model_config("tiny"));
    EXPECT_TRUE(load_state_dict(*other, read_checkpoint(pt), true).clean());
  }
}

TEST(Checkpoint, StrictLoadListsMissingUnexpectedAndMismatchedKeys) {
  Clip clip(load_model_config("tiny"));
  auto sd = model_state_dict(*clip);
  StateDict edited;
  for (auto& [k, t] : sd) {
    if (k == "text_projection") continue;                              // missing
    if (k == "logit_scale") t = torch::zeros({2});                     // shape mismatch
    if (k.find("num_batches_tracked") != std::string::npos) continue;  // tolerated, as PyTorch
    edited.emplace_back(k, t);
  }
  edited.emplace_back("visual.extra.weight", torch::zeros({1}));  // unexpected
  try {
    load_state_dict(*clip, edited, /*strict=*/true);
    FAIL() << "strict load accepted a bad checkpoint";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("1 missing keys"), std::string::npos) << msg;
    EXPECT_NE(msg.find("text_projection"), std::string::npos) << msg;
    EXPECT_NE(msg.find("visual.extra.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("logit_scale: checkpoint [2] vs model []"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << msg;
  }
  // Non-strict: missing/unexpected are reported, shape mismatches still fail (as PyTorch).
  edited.erase(std::find_if(edited.begin(), edited.end(),
                            [](const auto& p) { return p.first == "logit_scale"; }));
  auto report = load_state_dict(*clip, edited, /*strict=*/false);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"text_projection", "logit_scale"}));
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"visual.extra.weight"});
}

TEST(Checkpoint, BadFilesGiveClearErrors) {
  const auto dir = test::temp_dir("ckpt_bad");
  test::write_file(dir / "trunc.safetensors", std::string("\xff\xff\x00\x00\x00\x00\x00\x00{", 9));
  test::write_file(dir / "legacy.pt", std::string("\x80\x02\x8a\x0a", 4));
  test::write_file(dir / "json.safetensors", std::string("\x02\x00\x00\x00\x00\x00\x00\x00{x", 10));
  for (const auto& [file, needle] : std::vector<std::pair<std::string, std::string>>{
           {"trunc.safetensors", "header length"},
           {"legacy.pt", "legacy (non-zip)"},
           {"json.safetensors", "bad safetensors header"},
           {"absent.pt", "cannot open checkpoint"}}) {
    try {
      read_checkpoint((dir / file).string());
      ADD_FAILURE() << file << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace cliprepro
