// `cliprepro import-openclip`: OpenCLIP 3.3.0's own parser reads the command (its defaults, its
// per-model betas/eps, its --aug-cfg), every flag is mapped through the key table or refused by
// name, and speed/bookkeeping flags are listed as ignored. The written scenario is loaded back
// with load_scenario, so each check is on the config the trainer would receive.
#include <gtest/gtest.h>

#include "harness/scenario/scenario.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

struct Imported {
  test::CommandResult result;
  std::filesystem::path path;
};

Imported import_flags(const std::string& name, const std::string& flags) {
  const auto dir = test::temp_dir("import_openclip_" + name);
  const auto out = dir / (name + ".toml");
  return {test::run_cli("import-openclip --out " + out.string() + " -- " + flags), out};
}

// The seed write-up's command (../shared/seed/), on a CSV set.
TEST(ImportOpenClip, SeedWriteUpCommandMapsEveryFlag) {
  const auto imp = import_flags(
      "seed",
      "--model RN50 --batch-size 128 --lr 1e-3 --wd 0.1 --epochs 32 --warmup 10000 "
      "--precision amp_bf16 --aug-cfg scale='(0.4, 1.0)' re_prob=0.3 use_timm=True --local-loss "
      "--gather-with-grad --beta2 0.99 --train-data /data/cc3m/train.csv --csv-img-key filepath "
      "--csv-caption-key title --workers 8 --report-to tensorboard --save-frequency 1 --device "
      "cpu --seed 42");
  ASSERT_EQ(imp.result.exit_code, 0) << imp.result.output;
  const Scenario s = load_scenario(imp.path);
  const TrainConfig& t = s.train;
  EXPECT_EQ(t.model, "RN50");
  EXPECT_EQ(t.batch_size, 128);
  EXPECT_EQ(t.optim.lr, 1e-3);
  EXPECT_EQ(t.optim.wd, 0.1);
  EXPECT_EQ(t.epochs, 32);
  EXPECT_EQ(t.optim.warmup, 10000);
  EXPECT_EQ(t.precision, Precision::kAmpBf16);
  EXPECT_EQ(t.optim.beta1, 0.9);   // OpenCLIP's default for RN models
  EXPECT_EQ(t.optim.beta2, 0.99);  // given
  EXPECT_EQ(t.optim.eps, 1e-8);    // OpenCLIP's default for RN models
  EXPECT_TRUE(t.dist.local_loss);
  EXPECT_TRUE(t.dist.gather_with_grad);
  EXPECT_EQ(t.data.aug.scale[0], 0.4);
  EXPECT_EQ(t.data.aug.scale[1], 1.0);
  EXPECT_EQ(t.data.aug.re_prob, 0.3);
  EXPECT_TRUE(t.data.aug.use_timm);
  EXPECT_EQ(t.data.dataset_type, DatasetType::kCsv);  // --dataset-type auto, from .csv
  EXPECT_EQ(t.data.train_data, "/data/cc3m/train.csv");
  EXPECT_EQ(t.seed, 42);
  EXPECT_EQ(t.device, Device::kCpu);
  const std::string text = test::read_file(imp.path);
  EXPECT_NE(text.find("workers = 8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("#   --report-to \"tensorboard\""), std::string::npos) << text;
  EXPECT_NE(text.find("open_clip_train.main --model RN50"), std::string::npos) << text;
  // use_timm: timm's crops come from Python's random, so OpenCLIP's order cannot be followed and
  // the scenario stays runnable on cliprepro's seeding, saying why.
  EXPECT_EQ(t.seeding, Seeding::kCliprepro);
  EXPECT_NE(text.find("Python's random"), std::string::npos) << text;
}

TEST(ImportOpenClip, AbsentFlagsTakeOpenClipsDefaults) {
  const auto imp = import_flags("defaults", "--train-data rel/shards-{000..003}.tar");
  ASSERT_EQ(imp.result.exit_code, 0) << imp.result.output;
  const Scenario s = load_scenario(imp.path);
  EXPECT_EQ(s.train.model, "RN50");
  EXPECT_EQ(s.train.precision, Precision::kAmp);
  EXPECT_EQ(s.train.optim.warmup, 10000);
  EXPECT_EQ(s.train.optim.lr, 5e-4);
  EXPECT_EQ(s.train.optim.wd, 0.2);
  EXPECT_EQ(s.train.optim.beta2, 0.999);
  EXPECT_EQ(s.train.batch_size, 64);
  EXPECT_EQ(s.train.epochs, 32);
  EXPECT_EQ(s.train.data.dataset_type, DatasetType::kWebdataset);
  // Relative to where OpenCLIP would have run: made absolute, the scenario may live elsewhere.
  EXPECT_TRUE(std::filesystem::path(s.train.data.train_data).is_absolute())
      << s.train.data.train_data;
  EXPECT_NE(test::read_file(imp.path).find("warmup = 10000  # OpenCLIP's default"),
            std::string::npos);
  EXPECT_EQ(s.train.seeding, Seeding::kCliprepro);  // webdataset: no reproducible order
}

// OpenCLIP README's RN50 command (its "Single-process running code" section).
TEST(ImportOpenClip, OpenClipReadmeCommandImports) {
  const auto imp = import_flags(
      "readme",
      "--save-frequency 1 --zeroshot-frequency 1 --report-to tensorboard "
      "--train-data=/path/to/train_data.csv --val-data=/path/to/validation_data.csv "
      "--csv-img-key filepath --csv-caption-key title --imagenet-val=/path/to/imagenet/root/val/ "
      "--warmup 10000 --batch-size=128 --lr=1e-3 --wd=0.1 --epochs=30 --workers=8 --model RN50");
  ASSERT_EQ(imp.result.exit_code, 0) << imp.result.output;
  const Scenario s = load_scenario(imp.path);
  EXPECT_EQ(s.train.epochs, 30);
  EXPECT_EQ(s.train.eval.zeroshot_frequency, 1);
  EXPECT_EQ(s.train.eval.imagenet_val, "/path/to/imagenet/root/val/");
  EXPECT_EQ(s.train.eval.zeroshot_classes, ZeroShotClasses::kOpenClipImagenet);
  EXPECT_NE(test::read_file(imp.path).find("#   --val-data"), std::string::npos);
  EXPECT_EQ(s.train.seeding, Seeding::kOpenClip);  // csv: the imported command is the run
}

TEST(ImportOpenClip, UnsupportedFlagsAreRefusedByName) {
  const std::pair<const char*, const char*> cases[] = {
      {"--lock-image", "--lock-image"},
      {"--opt sgd --momentum 0.9", "--momentum"},
      {"--lr-scheduler const", "--lr-scheduler"},
      {"--aug-cfg ratio='(0.5, 2.0)'", "--aug-cfg ratio"},
      {"--no-such-flag 3", "--no-such-flag"},  // argparse's own message
      {"--dataset-type synthetic", "--dataset-type synthetic"},
      {"--model ViT-B-32", "ViT-B-32"},
      {"--resume latest", "--resume latest"},
  };
  for (const auto& [flags, named] : cases) {
    const auto imp =
        import_flags("refused", std::string("--train-data /d/x.csv --device cpu ") + flags);
    EXPECT_EQ(imp.result.exit_code, 2) << flags << "\n" << imp.result.output;
    EXPECT_NE(imp.result.output.find(named), std::string::npos) << imp.result.output;
    EXPECT_FALSE(std::filesystem::exists(imp.path)) << flags << ": nothing is written";
  }
}

}  // namespace
}  // namespace cliprepro
