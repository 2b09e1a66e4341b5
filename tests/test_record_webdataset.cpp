// Recording OpenCLIP's WebDataset pipeline (`--dataset-type webdataset`, python/cliprepro/
// record_wds.py) on tar shards built here: every batch is logged as the model received it, with
// each sample's id (shard << 32 | index within the shard) and `__key__` (data/sample_keys), and
// `cliprepro run` of `import-openclip --replay` must match the recording bit for bit.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>

#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/record_openclip_util.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

using namespace record_test;

constexpr int kShardImages = 32;  // 4 shards of 8: OpenCLIP wants a shard per worker per rank

std::string wds_flags(int batch, const std::string& extra) {
  return openclip_flags(batch, extra,
                        "--train-data 'set/shards/shard-{000..003}.tar' --dataset-type webdataset "
                        "--train-num-samples 32");
}

// Every step's keys are the keys of the samples its ids name: make_image_text_set.py writes
// sample i as key "%06d" of i into shard i / 8 at index i % 8. Returns the distinct samples seen.
size_t expect_keys_match_ids(const std::filesystem::path& log_path) {
  const LogReader log(log_path);
  std::set<int64_t> seen;
  for (int64_t step = 1; step <= log.last_complete_step(); ++step) {
    const auto ids = log.read_full("data/sample_ids", step);
    const auto keys = log.read_full("data/sample_keys", step);
    EXPECT_EQ(keys.size(0), ids.size(0));
    EXPECT_EQ(keys.size(1), 256);
    for (int64_t r = 0; r < ids.size(0); ++r) {
      const int64_t id = ids[r].item<int64_t>(), sample = (id >> 32) * 8 + (id & 0xffffffff);
      const auto row = keys[r];
      const std::string key(reinterpret_cast<const char*>(row.data_ptr<uint8_t>()));
      char want[16];
      std::snprintf(want, sizeof want, "%06lld", static_cast<long long>(sample));
      EXPECT_EQ(key, want) << log_path << " step " << step << " row " << r;
      seen.insert(sample);
    }
  }
  return seen.size();
}

// World size 1, no loader workers, sampling with replacement (--dataset-resampled). Also the
// observer effect: with webdataset's unseeded shuffle pinned in both processes
// (tests/observer_effect.py --pin-shuffle), plain and recorded OpenCLIP save the same checkpoint.
TEST(RecordOpenClip, WebDatasetResampledReplayMatchesAndRecordingChangesNoBit) {
  const auto dir = data_dir("wds_w1", "", kShardImages);
  const auto flags = wds_flags(8,
                               "--dataset-resampled --precision fp32 --workers 0 "
                               "--save-frequency 1 --name run");
  const std::string observer =
      std::string(kPython) + " " + kSourceDir + "/tests/observer_effect.py --pin-shuffle ";
  auto r = test::run_command("cd " + dir.string() + " && " + observer + "plain 2 " + flags +
                             " --logs plain");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command("cd " + dir.string() + " && " + observer +
                        "record --out rec/rs.h5 --threads 2 -- " + flags + " --logs recorded");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command(std::string(kPython) + " " + kSourceDir + "/tests/observer_effect.py " +
                        "equal " + (dir / "plain/run/checkpoints/epoch_1.pt").string() + " " +
                        (dir / "recorded/run/checkpoints/epoch_1.pt").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;

  replay(dir, "rs.h5", "rs", 1);
  expect_match(dir / "out" / "rs.h5", dir / "rec" / "rs.h5", 4);
  EXPECT_GT(expect_keys_match_ids(dir / "rec" / "rs.h5"), 8u);
}

// The acceptance case: two ranks under torchrun (Gloo), two loader workers each, every
// shard read once per epoch (detshuffle2, split by node and by worker), --local-loss
// --gather-with-grad.
TEST(RecordOpenClip, WebDatasetGlooWorldTwoWorkersTwoReplayMatches) {
  const auto dir = data_dir("wds_w2", "", kShardImages);
  const auto r = record(dir, "w2.h5", 2,
                        wds_flags(4,
                                  "--precision fp32 --workers 2 --local-loss "
                                  "--gather-with-grad"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  replay(dir, "w2.manifest.json", "w2", 2);
  size_t samples = 0;
  for (int rank = 0; rank < 2; ++rank) {
    const std::string f = "w2.rank" + std::to_string(rank) + ".h5";
    expect_match(dir / "out" / f, dir / "rec" / f, 4);
    samples += expect_keys_match_ids(dir / "rec" / f);
  }
  EXPECT_EQ(samples, 32u);  // each sample once: 2 ranks x 4 steps x 4
}

}  // namespace
}  // namespace cliprepro
