// The user's own OpenCLIP run, end to end: OpenCLIP 3.3.0's open_clip_train.main trains on a CSV
// set built here, recorded by `python -m cliprepro.record` (hooks and wrappers, no OpenCLIP edits);
// `cliprepro import-openclip --replay` turns the recording into a scenario; `cliprepro run` of it
// replays the recorded batches from the recorded initial weights; `cliprepro compare` must find
// every tensor of every step bitwise equal: data, activations, BatchNorm batch statistics,
// gradients, lr, AdamW moments and steps, parameters and buffers (and GradScaler state under amp).
// Without replay, the imported scenario's seeding = "openclip" must make the same run by itself.
#include <gtest/gtest.h>

#include <string>

#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/record_openclip_util.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

using namespace record_test;

TEST(RecordOpenClip, Fp32ReplayMatchesAndTwoRecordingsCompareEqual) {
  const auto dir = data_dir("fp32");
  const auto flags = openclip_flags(8, "--precision fp32 --workers 0");
  auto r = record(dir, "a.h5", 1, flags);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  replay(dir, "a.h5", "fp32", 1);
  expect_match(dir / "out" / "fp32.h5", dir / "rec" / "a.h5");

  // The same command again: the same run, op for op (traced through TorchDispatchMode). One
  // part in 10^5 on --lr: compare names where it shows, and the trace the first op it changes.
  const std::string traced = "--trace-steps 1";
  ASSERT_EQ(record(dir, "b.h5", 1, flags, traced).exit_code, 0);
  r = test::run_cli("compare " + (dir / "rec/b.h5").string() + " " + (dir / "rec/a.h5").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(record(dir, "b2.h5", 1, flags, traced).exit_code, 0);
  r = test::run_cli("trace compare " + (dir / "rec/b.trace.h5").string() + " " +
                    (dir / "rec/b2.trace.h5").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("every input and output bitwise equal"), std::string::npos) << r.output;
  ASSERT_EQ(record(dir, "lr.h5", 1, flags + " --lr 1.00001e-3", traced).exit_code, 0);
  r = test::run_cli("compare " + (dir / "rec/lr.h5").string() + " " + (dir / "rec/a.h5").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("first difference: step 1, phase optimizer, tensor scalars/lr"),
            std::string::npos)
      << r.output;
  r = test::run_cli("trace compare " + (dir / "rec/lr.trace.h5").string() + " " +
                    (dir / "rec/b.trace.h5").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("phase optimizer"), std::string::npos) << r.output;
}

TEST(RecordOpenClip, AmpBf16ReplayMatches) {
  const auto dir = data_dir("amp_bf16");
  const auto r = record(dir, "a.h5", 1, openclip_flags(8, "--precision amp_bf16 --workers 0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  replay(dir, "a.h5", "amp_bf16", 1);
  expect_match(dir / "out" / "amp_bf16.h5", dir / "rec" / "a.h5");
}

// GradScaler (fp16 autocast on CPU): its first steps find inf and are skipped, before any AdamW
// state exists; with accum-freq 2 each step is two micro-batches (3 steps of 2 x 4 samples).
TEST(RecordOpenClip, AmpAccumFreqTwoReplayMatches) {
  const auto dir = data_dir("amp_accum");
  const auto r =
      record(dir, "a.h5", 1, openclip_flags(4, "--precision amp --accum-freq 2 --workers 0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  replay(dir, "a.h5", "amp_accum", 1);
  expect_match(dir / "out" / "amp_accum.h5", dir / "rec" / "a.h5");
  // The case it covers happened: some step was skipped (found_inf = 1, its max statistic).
  const LogReader log(dir / "rec" / "a.h5");
  const auto* found_inf = log.find("scaler/found_inf");
  ASSERT_NE(found_inf, nullptr);
  int skipped = 0;
  for (const auto& row : found_inf->stats) skipped += row[1] == 1.0 ? 1 : 0;
  EXPECT_GE(skipped, 1);
}

// The observer effect is zero: the same OpenCLIP command, plain and recorded, saves the same
// epoch checkpoint bit for bit (model with BatchNorm, AdamW state, and GradScaler-free amp_bf16).
TEST(RecordOpenClip, RecordingChangesNoBitOfTheRun) {
  const auto dir = data_dir("observer");
  for (const std::string precision : {"fp32", "amp_bf16"}) {
    const auto flags = openclip_flags(
        8, "--precision " + precision + " --workers 0 --save-frequency 1 --name run");
    const std::string observer = std::string(kSourceDir) + "/tests/observer_effect.py";
    auto r = test::run_command("cd " + dir.string() + " && " + kPython + " " + observer +
                               " plain 2 " + flags + " --logs plain-" + precision);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = record(dir, precision + ".h5", 1, flags + " --logs recorded-" + precision);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto ckpt = [&](const std::string& side) {
      return (dir / (side + "-" + precision) / "run" / "checkpoints" / "epoch_1.pt").string();
    };
    r = test::run_command(std::string(kPython) + " " + observer + " equal " + ckpt("plain") + " " +
                          ckpt("recorded"));
    EXPECT_EQ(r.exit_code, 0) << precision << ": " << r.output;
  }
}

// Capture points come from the model's structure (openclip_capture.capture_points), so a ViT and a
// timm trunk are recorded too: an activation for every residual block of both towers (and every
// stage and block of the trunk), compared like any recording. Tiny configs in tests/data.
TEST(RecordOpenClip, VitAndTimmTrunkRecordingsLogEveryBlock) {
  const auto dir = data_dir("vit", " --size 32");
  const std::string model = std::string(kSourceDir) + "/tests/data/openclip-tiny-vit.json";
  const auto flags = [&](const std::string& config, const std::string& precision) {
    return "--model " + config +
           " --train-data set/train.csv --dataset-type csv --batch-size 8 --epochs 1 --lr 1e-3 "
           "--wd 0.1 --warmup 2 --seed 3 --report-to none --workers 0 --precision " +
           precision;
  };
  ASSERT_EQ(record(dir, "a.h5", 1, flags(model, "fp32")).exit_code, 0);
  const LogReader log(dir / "rec" / "a.h5");
  for (const char* point : {"visual.conv1", "visual.ln_pre", "visual.transformer.resblocks.0",
                            "visual.transformer.resblocks.1", "visual.ln_post", "token_embedding",
                            "transformer.resblocks.0", "transformer.resblocks.1", "ln_final"}) {
    const auto* s = log.find(std::string("activations/") + point);
    ASSERT_NE(s, nullptr) << point;
    EXPECT_EQ(s->phase, "forward") << point;
  }
  ASSERT_EQ(record(dir, "b.h5", 1, flags(model, "fp32")).exit_code, 0);
  auto r =
      test::run_cli("compare " + (dir / "rec/b.h5").string() + " " + (dir / "rec/a.h5").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(record(dir, "bf16.h5", 1, flags(model, "amp_bf16")).exit_code, 0);
  r = test::run_cli("compare " + (dir / "rec/bf16.h5").string() + " " +
                    (dir / "rec/a.h5").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  // Autocast's bfloat16 activations: a dtype difference, in the forward pass.
  EXPECT_NE(r.output.find("first difference: phase forward, tensor activations/"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("(dtype/shape: bfloat16 vs float32)"), std::string::npos) << r.output;

  // A timm trunk (ConvNeXt-atto, LayerNorm): its stem, every stage and block, its heads.
  const std::string convnext = std::string(kSourceDir) + "/tests/data/openclip-tiny-convnext.json";
  r = record(dir, "convnext.h5", 1, flags(convnext, "fp32"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const LogReader trunk(dir / "rec" / "convnext.h5");
  for (const char* point :
       {"visual.trunk.stem", "visual.trunk.stages.0", "visual.trunk.stages.0.blocks.1",
        "visual.trunk.stages.3.blocks.1", "visual.head", "transformer.resblocks.1"}) {
    EXPECT_NE(trunk.find(std::string("activations/") + point), nullptr) << point;
  }
}

// Two ranks under torchrun (Gloo), OpenCLIP's DistributedSampler and two loader workers per rank.
TEST(RecordOpenClip, GlooWorldTwoLocalLossGatherWithGradReplayMatches) {
  const auto dir = data_dir("w2");
  const auto r = record(dir, "w2.h5", 2,
                        openclip_flags(4,
                                       "--precision fp32 --workers 2 --local-loss "
                                       "--gather-with-grad"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(std::filesystem::exists(dir / "rec" / "w2.manifest.json"));
  replay(dir, "w2.manifest.json", "w2", 2);
  for (int rank = 0; rank < 2; ++rank) {
    const std::string f = "w2.rank" + std::to_string(rank) + ".h5";
    expect_match(dir / "out" / f, dir / "rec" / f);
  }
}

// Without replay: `import-openclip` writes seeding = "openclip", so cliprepro's own
// initialisation and csv loader (src/data/openclip_loader.h) make the run OpenCLIP makes. Two
// epochs: the second's seeds come from the generator the first epoch's crops drew from.
TEST(RecordOpenClip, OpenClipSeedingWithoutReplayMatchesAtWorkersZeroAndTwo) {
  const auto dir = data_dir("seeding_w1");
  for (const char* workers : {"0", "2"}) {
    const std::string name = std::string("workers") + workers;
    const auto flags =
        openclip_flags(8, std::string("--precision fp32 --epochs 2 --workers ") + workers);
    ASSERT_EQ(record(dir, name + ".h5", 1, flags).exit_code, 0);
    run_imported(dir, flags, name, 1);
    expect_match(dir / "out" / (name + ".h5"), dir / "rec" / (name + ".h5"), 6);
  }
  // As in OpenCLIP, the worker count decides which generator draws each crop.
  const auto r = test::run_cli("compare " + (dir / "out/workers0.h5").string() + " " +
                               (dir / "out/workers2.h5").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("data/images"), std::string::npos) << r.output;
}

// Under torchrun: DistributedSampler's order (seed 0 + epoch, every second index per rank) and
// each rank's main generator seeded seed + rank.
TEST(RecordOpenClip, OpenClipSeedingWithoutReplayMatchesUnderGlooWorldTwo) {
  const auto dir = data_dir("seeding_w2");
  for (const char* workers : {"0", "2"}) {
    const std::string name = std::string("workers") + workers;
    const auto flags =
        openclip_flags(4, std::string("--precision fp32 --epochs 2 --workers ") + workers);
    ASSERT_EQ(record(dir, name + ".h5", 2, flags).exit_code, 0);
    run_imported(dir, flags, name, 2);
    for (int rank = 0; rank < 2; ++rank) {
      const std::string f = name + ".rank" + std::to_string(rank) + ".h5";
      expect_match(dir / "out" / f, dir / "rec" / f, 6);
    }
  }
}

// OpenCLIP's zero_shot_eval on --imagenet-val (an ImageFolder of WordNet-id class folders, read
// as ImageNet's first classes): import-openclip writes zeroshot-classes = "openclip-imagenet", and
// the classifier (1000 classes x 80 templates), every image's logits and top-1/top-5 must be
// bitwise OpenCLIP's at step 0 (the recorder evaluates the initial state as cliprepro does) and
// after each epoch. Iterating OpenCLIP's ImageNet loader after epoch 1 draws a seed from the
// generator epoch 2's crops come from, so epoch 2 matches only if cliprepro draws it too.
TEST(RecordOpenClip, OpenClipZeroShotEvalMatches) {
  const auto dir = data_dir("zero_shot", " --val-classes 3 --val-wordnet --no-shards");
  const auto flags = openclip_flags(
      8, "--precision fp32 --epochs 2 --workers 0 --imagenet-val set/val --zeroshot-frequency 1");
  const auto r = record(dir, "zs.h5", 1, flags);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  run_imported(dir, flags, "zs", 1);
  ASSERT_NE(test::read_file(dir / "zs.toml").find("zeroshot-classes = \"openclip-imagenet\""),
            std::string::npos);
  expect_match(dir / "out" / "zs.h5", dir / "rec" / "zs.h5", 6);
  for (const auto& path : {dir / "out" / "zs.h5", dir / "rec" / "zs.h5"}) {
    const LogReader log(path);
    for (const char* name : {"eval/zeroshot_top1", "eval/zeroshot_top5", "eval/zeroshot_classifier",
                             "eval/zeroshot_logits"}) {
      const auto* s = log.find(name);
      ASSERT_NE(s, nullptr) << path << " " << name;
      EXPECT_EQ(s->steps, (std::vector<int64_t>{0, 3, 6})) << path << " " << name;
    }
    EXPECT_EQ(log.find("eval/zeroshot_logits")->shape, (std::vector<int64_t>{12, 1000}));
    EXPECT_EQ(log.find("eval/zeroshot_classifier")->shape, (std::vector<int64_t>{64, 1000}));
  }
  // The draw matters: without the evals, epoch 2's crops are not OpenCLIP's.
  auto text = test::read_file(dir / "zs.toml");
  const std::pair<std::string, std::string> edits[] = {
      {"name = \"zs\"", "name = \"off\""}, {"zeroshot-frequency = 1", "zeroshot-frequency = 0"}};
  for (const auto& [from, to] : edits) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from << " in " << text;
    text.replace(at, from.size(), to);
  }
  test::write_file(dir / "off.toml", text);
  auto c = test::run_command("cd " + dir.string() + " && " + kCliBin + " run off.toml --out out " +
                             "--no-golden --quiet");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  c = test::run_cli("compare " + (dir / "out/off.h5").string() + " " +
                    (dir / "rec/zs.h5").string());
  EXPECT_EQ(c.exit_code, 1) << c.output;
  // RandomSampler draws epoch 2's order from the generator the eval drew from: epoch 1 (steps
  // 1-3) is the same run, epoch 2 (steps 4-6) holds other samples.
  const LogReader off(dir / "out" / "off.h5"), recorded(dir / "rec" / "zs.h5");
  for (int64_t step = 1; step <= 6; ++step) {
    const bool same = torch::equal(off.read_full("data/sample_ids", step),
                                   recorded.read_full("data/sample_ids", step));
    EXPECT_EQ(same, step <= 3) << "step " << step;
  }
}

TEST(RecordOpenClip, FlagsItCannotRecordAreRefusedByName) {
  const auto dir = test::temp_dir("record_openclip_refused");
  auto r = record(dir, "x.h5", 1, openclip_flags(8, "--imagenet-v2 /data/v2"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--imagenet-v2: ImageNet-V2 zero-shot is not recorded"),
            std::string::npos)
      << r.output;
  r = record(dir, "x.h5", 1, openclip_flags(8, "--no-such-flag 3"));  // OpenCLIP's parser
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "rec" / "x.h5"));
}

}  // namespace
}  // namespace cliprepro
