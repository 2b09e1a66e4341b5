// dataset-type = "replay": a run fed the batches a log recorded, from the weights it recorded at
// step 0, repeats the recorded run bit for bit; a log that cannot be replayed is an exit-2 error
// naming what is missing and how to record it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/log/log_reader.h"
#include "harness/scenario/scenario.h"
#include "src/train/replay.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

// A tiny fp32 run of 4 steps (32 samples, batch 8, one epoch; no zero-shot, which a replay
// without imagenet-val does not run). `log` is its [log] section.
std::filesystem::path recorded_scenario(const std::filesystem::path& dir, const std::string& name,
                                        const std::string& extra, const std::string& log,
                                        int threads = 2) {
  const auto path = dir / (name + ".toml");
  test::write_file(path, "name = \"" + name +
                             "\"\nmodel = \"tiny\"\nprecision = \"fp32\"\ndevice = \"cpu\"\n"
                             "train-num-samples = 32\nval-num-samples = 16\nbatch-size = 8\n"
                             "epochs = 1\nwarmup = 2\nlr = 1e-3\nseed = 3\n"
                             "zeroshot-frequency = 0\n" +
                             extra + "[determinism]\nthreads = " + std::to_string(threads) +
                             "\n[log]\n" + log);
  return path;
}

// Everything a replay needs: data/* at every step, params/* and buffers/* at step 0.
constexpr const char* kReplayableLog =
    "full-steps = [\"0:\"]\nfull-tensors = [\"data/*\", \"params/*\", \"buffers/*\"]\n";

// The same run replaying `train_data` (relative to the scenario), with another seed and without
// train-num-samples (the log gives both the weights and the epoch).
std::filesystem::path replay_scenario(const std::filesystem::path& dir, const std::string& name,
                                      const std::string& train_data, const std::string& extra,
                                      int threads = 2) {
  const auto path = dir / (name + ".toml");
  test::write_file(path, "name = \"" + name +
                             "\"\nmodel = \"tiny\"\nprecision = \"fp32\"\ndevice = \"cpu\"\n"
                             "dataset-type = \"replay\"\ntrain-data = \"" +
                             train_data +
                             "\"\nval-num-samples = 16\nbatch-size = 8\nepochs = 1\nwarmup = 2\n"
                             "lr = 1e-3\nseed = 11\nzeroshot-frequency = 0\n" +
                             extra + "[determinism]\nthreads = " + std::to_string(threads) + "\n");
  return path;
}

test::CommandResult run(const std::filesystem::path& scenario, const std::filesystem::path& out) {
  return test::run_cli("run " + scenario.string() + " --out " + out.string() + " --no-golden -q");
}

// Records, replays, and compares the two logs with the CLI's default (bitwise) compare.
void expect_replay_matches(const std::string& tag, const std::string& extra) {
  const auto dir = test::temp_dir("replay_" + tag);
  const auto a = recorded_scenario(dir, "recorded", extra, kReplayableLog);
  const auto ra = run(a, dir / "out");
  ASSERT_EQ(ra.exit_code, 0) << ra.output;
  const auto b = replay_scenario(dir, "replayed", "out/recorded.h5", extra);
  const auto rb = run(b, dir / "out");
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  const auto cmp = test::run_cli("compare " + (dir / "out" / "recorded.h5").string() + " " +
                                 (dir / "out" / "replayed.h5").string());
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
  EXPECT_NE(cmp.output.find("MATCH"), std::string::npos) << cmp.output;

  const LogReader la(dir / "out" / "recorded.h5"), lb(dir / "out" / "replayed.h5");
  // Every tensor of the recorded run, at every step 0..4, is in the replay's log.
  for (const auto& [name, s] : la.series()) {
    const auto* t = lb.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->steps, s.steps) << name;
    EXPECT_EQ(t->digests, s.digests) << name;
  }
  // The epoch came from the log (the replay's scenario leaves train-num-samples at 1024).
  const auto recorded = nlohmann::json::parse(la.attr("resolved_config"));
  const auto resolved = nlohmann::json::parse(lb.attr("resolved_config"));
  EXPECT_EQ(resolved.at("train-num-samples"), 32);
  EXPECT_EQ(resolved.at("total-steps"), recorded.at("total-steps"));
  EXPECT_EQ(resolved.at("seed"), 11);
  const int64_t total = recorded.at("total-steps").get<int64_t>();
  EXPECT_EQ(total, 4 / recorded.at("accum-freq").get<int64_t>());
  EXPECT_EQ(int64_t(la.find("params/visual.conv1.weight")->steps.size()), total + 1);
}

TEST(Replay, ReplayOfARunMatchesItBitwise) { expect_replay_matches("plain", ""); }

// With accum-freq 2 each step's data/* hold two micro-batches (16 rows): split in order.
TEST(Replay, AccumFreqTwoSplitsTheRecordedRows) {
  expect_replay_matches("accum", "accum-freq = 2\n");
}

TEST(Replay, LogWithoutDataAtAStepExits2NamingTheStepAndTheOption) {
  const auto dir = test::temp_dir("replay_nodata");
  // data/images and data/texts stored at steps 0..2 only.
  const auto a = recorded_scenario(
      dir, "recorded", "",
      "full-steps = [\"0:3\"]\nfull-tensors = [\"data/*\", \"params/*\", \"buffers/*\"]\n");
  ASSERT_EQ(run(a, dir / "out").exit_code, 0);
  const auto r = run(replay_scenario(dir, "replayed", "out/recorded.h5", ""), dir / "out");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const std::string log = (dir / "out" / "recorded.h5").string();
  EXPECT_NE(r.output.find(log + ": no full data/images at step 3; a replay needs data/* stored at "
                                "every step: record with `python -m cliprepro.record`"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("set [log] full-tensors to include \"data/*\" with full-steps = "
                          "[\"0:\"]"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "out" / "replayed.h5"));  // refused before training

  // A replay that stops before the missing steps needs only those it runs.
  const auto shorter =
      run(replay_scenario(dir, "shorter", "out/recorded.h5", "steps = 2\n"), dir / "out");
  EXPECT_EQ(shorter.exit_code, 0) << shorter.output;
}

TEST(Replay, LogWithoutInitialParamsExits2NamingTheTensor) {
  const auto dir = test::temp_dir("replay_noparams");
  const auto a = recorded_scenario(dir, "recorded", "",
                                   "full-steps = [\"0:\"]\nfull-tensors = [\"data/*\"]\n");
  ASSERT_EQ(run(a, dir / "out").exit_code, 0);
  const auto r = run(replay_scenario(dir, "replayed", "out/recorded.h5", ""), dir / "out");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const std::string log = (dir / "out" / "recorded.h5").string();
  EXPECT_NE(r.output.find(log + ": no full params/positional_embedding at step 0; a replay starts "
                                "from the recorded initial state"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("set [log] full-tensors to include \"params/*\", \"buffers/*\" with "
                          "step 0 in full-steps"),
            std::string::npos)
      << r.output;

  // A log that ends before the replay does.
  const auto b = recorded_scenario(dir, "short", "steps = 2\n", kReplayableLog);
  ASSERT_EQ(run(b, dir / "out").exit_code, 0);
  const auto r2 = run(replay_scenario(dir, "long", "out/short.h5", ""), dir / "out");
  EXPECT_EQ(r2.exit_code, 2) << r2.output;
  EXPECT_NE(r2.output.find((dir / "out" / "short.h5").string() +
                           " ends at step 2, but this replay runs to step 4: set steps = 2"),
            std::string::npos)
      << r2.output;
  // Another split of the recorded batches, another world size: refused, naming the setting.
  const auto split = replay_scenario(dir, "split", "out/short.h5", "steps = 2\n");
  std::string text = test::read_file(split);
  text.replace(text.find("batch-size = 8"), 14, "batch-size = 4");
  test::write_file(split, text);
  const auto r3 = run(split, dir);
  EXPECT_EQ(r3.exit_code, 2) << r3.output;
  EXPECT_NE(r3.output.find("recorded with batch-size 8, but this replay runs with 4"),
            std::string::npos)
      << r3.output;
  test::write_file(dir / "out" / "two.manifest.json",
                   R"({"world_size": 2, "logs": ["short.h5", "short.h5"]})");
  const auto r4 = run(replay_scenario(dir, "world", "out/two.manifest.json", "steps = 2\n"), dir);
  EXPECT_EQ(r4.exit_code, 2) << r4.output;
  EXPECT_NE(r4.output.find("two.manifest.json: the manifest of a 2-rank run, but this replay runs "
                           "at world size 1: launch it with torchrun on 2 ranks"),
            std::string::npos)
      << r4.output;
}

// A source of 2 steps of 2 x 3 rows whose every element is its row's number (step 2: 10, 11, …).
class CountingSource : public ReplaySource {
 public:
  explicit CountingSource(torch::ScalarType image_dtype) : image_dtype_(image_dtype) {}
  std::string origin() const override { return "counting"; }
  int64_t train_num_samples() const override { return 12; }
  void require_steps(int64_t, int64_t) const override {}
  ReplayStepData step_data(int64_t step) const override {
    const auto rows = torch::arange(6, torch::kInt64) + 10 * (step - 1);
    return {rows, rows.view({6, 1, 1, 1}).expand({6, 3, 2, 2}).to(image_dtype_).contiguous(),
            rows.view({6, 1}).expand({6, 4}).contiguous(), torch::Tensor()};
  }
  torch::Tensor initial_tensor(const std::string&) const override { return {}; }

 private:
  torch::ScalarType image_dtype_;
};

TEST(Replay, MicroBatchesAreTheStepsRowsInOrder) {
  const CountingSource f32(torch::kFloat32);
  const ReplayShape shape{3, 2, 2, 4};
  for (int64_t m = 0; m < 4; ++m) {  // step 1 rows 0-2, 3-5; step 2 rows 10-12, 13-15
    const Batch b = replay_batch(f32, m, shape);
    const int64_t first = 10 * (m / 2) + 3 * (m % 2);
    EXPECT_TRUE(torch::equal(b.sample_ids, torch::arange(first, first + 3, torch::kInt64))) << m;
    EXPECT_EQ(b.images.scalar_type(), torch::kFloat32);
    EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{3, 3, 2, 2}));
    EXPECT_EQ(b.images[2][1][1][1].item<float>(), float(first + 2));
    EXPECT_TRUE(torch::equal(b.tokens.select(1, 3), b.sample_ids));
    EXPECT_TRUE(torch::equal(b.labels, torch::full({3}, -1, torch::kInt64)));
  }
  // Images in the model's low input dtype (OpenCLIP's recorder logs them after the cast) are
  // fed as stored; in any other dtype, or of another size, they are refused.
  const CountingSource bf16(torch::kBFloat16);
  ReplayShape low = shape;
  low.input_dtype = torch::kBFloat16;
  EXPECT_EQ(replay_batch(bf16, 1, low).images.scalar_type(), torch::kBFloat16);
  try {
    replay_batch(bf16, 0, shape);
    ADD_FAILURE() << "bfloat16 images accepted by an fp32 run";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(),
                 "counting: data/images at step 1 is BFloat16 [6, 3, 2, 2]; the run needs Float "
                 "[6, 3, 2, 2] (accum-freq 2 x batch-size 3 = 6 rows, the model's image size 2)");
  }
  ReplayShape bigger = low;
  bigger.image_size = 4;
  EXPECT_THROW(replay_batch(bf16, 0, bigger), std::runtime_error);
  ReplayShape other_rows = shape;
  other_rows.batch_size = 2;
  EXPECT_THROW(replay_batch(f32, 0, other_rows), std::runtime_error);
}

TEST(Replay, TrainDataIsRelativeToTheScenario) {
  const auto dir = test::temp_dir("replay_paths");
  std::filesystem::create_directories(dir / "sub");
  const auto p = replay_scenario(dir / "sub", "replayed", "../out/recorded.h5", "");
  const Scenario s = load_scenario(p);
  EXPECT_EQ(s.train.data.dataset_type, DatasetType::kReplay);
  EXPECT_EQ(s.train.data.train_data, (dir / "out" / "recorded.h5").lexically_normal().string());
  test::write_file(dir / "bad.toml", "model = \"tiny\"\ndataset-type = \"replay\"\n");
  try {
    load_scenario(dir / "bad.toml");
    ADD_FAILURE() << "replay without train-data parsed";
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("dataset-type 'replay' needs train-data"),
              std::string::npos)
        << e.what();
  }
}

// World size 2: each rank replays its own log of the manifest.
TEST(Replay, TorchrunWorldTwoReplaysTheManifest) {
  const auto dir = test::temp_dir("replay_dist");
  const auto quiet = [&](const std::filesystem::path& scenario) {
    return test::run_command(test::torchrun(2, std::string(kCliBin) + " run " + scenario.string() +
                                                   " --out " + (dir / "out").string() +
                                                   " --no-golden -q"));
  };
  // 32 samples = 2 steps of 2 ranks x 8; one thread per rank on 2 cores.
  const auto ra = quiet(recorded_scenario(dir, "recorded", "", kReplayableLog, 1));
  ASSERT_EQ(ra.exit_code, 0) << ra.output;
  const auto rb = quiet(replay_scenario(dir, "replayed", "out/recorded.manifest.json", "", 1));
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  for (const char* rank : {"rank0", "rank1"}) {
    const auto cmp = test::run_cli(
        "compare " + (dir / "out" / ("recorded." + std::string(rank) + ".h5")).string() + " " +
        (dir / "out" / ("replayed." + std::string(rank) + ".h5")).string());
    EXPECT_EQ(cmp.exit_code, 0) << rank << "\n" << cmp.output;
  }
}

}  // namespace
}  // namespace cliprepro
