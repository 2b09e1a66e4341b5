// Training on real image-caption data (OpenCLIP's csv and webdataset types) end to end: the
// CLI on a set built at run time by scripts/make_image_text_set.py. What each step consumed is
// in the log (data/sample_ids, data/images, data/texts), fixed by the seed whatever the number
// of threads that decode and augment it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "harness/log/log_reader.h"
#include "src/data/image_decode.h"
#include "src/data/image_folder.h"
#include "src/data/openclip_zero_shot_metadata.h"
#include "src/data/real_data.h"
#include "src/data/transforms.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

constexpr int kSamples = 20;

// The image set, built once per process.
const std::filesystem::path& image_set() {
  static const std::filesystem::path dir = [] {
    auto d = test::temp_dir("real-data-train");
    auto r = test::run_python_script(
        "make_image_text_set.py", d.string() + " " + std::to_string(kSamples) + " --val-classes 3");
    if (r.exit_code != 0) throw std::runtime_error("make_image_text_set.py:\n" + r.output);
    return d;
  }();
  return dir;
}

std::filesystem::path scenario(const std::string& name, const std::string& data_lines,
                               int threads) {
  const auto path = image_set() / (name + ".toml");
  test::write_file(path, "name = \"" + name + "\"\nmodel = \"tiny-bpe\"\n" + data_lines +
                             "batch-size = 4\nepochs = 2\nwarmup = 2\nlr = 1e-3\nseed = 5\n"
                             "aug-cfg = { scale = [0.4, 1.0] }\n[determinism]\nthreads = " +
                             std::to_string(threads) +
                             "\n[log]\nfull-steps = [\"1:\"]\nfull-tensors = [\"data/*\"]\n");
  return path;
}

test::CommandResult run(const std::filesystem::path& s) {
  return test::run_cli("run " + s.string() + " --out " + (image_set() / "out").string() +
                       " --no-golden -q");
}

const std::string kCsv = "dataset-type = \"csv\"\ntrain-data = \"train.csv\"\n";

TEST(RealDataTraining, CsvRunLogsSeededBatchesIndependentOfThreads) {
  auto r1 = run(scenario("csv_t1", kCsv, 1));
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  auto r2 = run(scenario("csv_t2", kCsv, 2));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  LogReader a(image_set() / "out" / "csv_t1.h5"), b(image_set() / "out" / "csv_t2.h5");
  // A CSV epoch is the whole list: 20 samples, batch 4 -> 5 steps per epoch, 2 epochs.
  const int64_t steps = 10;
  ASSERT_EQ(a.find("data/images")->steps.size(), size_t(steps));
  for (const char* name : {"data/sample_ids", "data/images", "data/texts"}) {
    EXPECT_EQ(a.find(name)->digests, b.find(name)->digests) << name << " depends on threads";
  }
  // Each epoch visits every sample once, in a seeded order that changes between epochs.
  std::vector<int64_t> epoch_order[2];
  for (int64_t s = 1; s <= steps; ++s) {
    const auto ids = a.read_full("data/sample_ids", s);
    for (int64_t i = 0; i < ids.numel(); ++i)
      epoch_order[(s - 1) / 5].push_back(ids[i].item<int64_t>());
  }
  for (const auto& order : epoch_order) {
    EXPECT_EQ(std::set<int64_t>(order.begin(), order.end()).size(), size_t(kSamples));
  }
  EXPECT_NE(epoch_order[0], epoch_order[1]);

  // The logged images are the OpenCLIP train transform of the decoded file, drawn from the
  // sample's own generator (tests/test_real_data.cpp checks that transform against OpenCLIP).
  const auto ids = a.read_full("data/sample_ids", 1);
  const auto images = a.read_full("data/images", 1);
  CsvDataset csv((image_set() / "train.csv").string());
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const int64_t id = ids[i].item<int64_t>();
    auto gen = at::detail::createCPUGenerator(sample_seed(5, 0, id));
    const auto want =
        train_transform(decode_image_file(csv.resolved_path(size_t(id))), 64, gen, {0.4, 1.0});
    EXPECT_TRUE(torch::equal(images[i], want)) << "sample " << id;
  }
  // Captions are CLIP BPE rows: SOT first.
  EXPECT_EQ(a.read_full("data/texts", 1)[0][0].item<int64_t>(), ClipTokenizer::kSotId);
}

// OpenCLIP's --workers: a pool decodes the next batches while a step trains. The run's bits do
// not depend on it (each sample has its own generator and slot), for csv and webdataset.
// (The csv run at 0 workers is the reference; "wds" takes the pool's extremes only.)
TEST(RealDataTraining, WorkerCountDoesNotChangeABit) {
  const std::string wds = "dataset-type = \"webdataset\"\ntrain-data = \"" +
                          (image_set() / "shards" / "shard-{000..002}.tar").string() +
                          "\"\ntrain-num-samples = 16\n";
  for (const auto& [kind, data, counts] : {std::tuple{"csv", kCsv, std::vector<int>{0, 1, 3}},
                                           std::tuple{"wds", wds, std::vector<int>{0, 3}}}) {
    std::vector<std::filesystem::path> logs;
    for (int workers : counts) {
      const std::string name = std::string(kind) + "_w" + std::to_string(workers);
      // 6 steps: over an epoch boundary for webdataset (4 steps per epoch), enough to compare.
      auto r =
          run(scenario(name, data + "steps = 6\nworkers = " + std::to_string(workers) + "\n", 2));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      logs.push_back(image_set() / "out" / (name + ".h5"));
    }
    for (size_t i = 1; i < logs.size(); ++i) {
      const auto c = test::run_cli("compare " + logs[i].string() + " " + logs[0].string());
      EXPECT_EQ(c.exit_code, 0) << c.output;  // every tensor, data/* included, every step
    }
  }
}

TEST(RealDataTraining, WebDatasetShardsTrainAndSkipUncaptionedSamples) {
  const std::string wds = "dataset-type = \"webdataset\"\ntrain-data = \"" +
                          (image_set() / "shards" / "shard-{000..002}.tar").string() +
                          "\"\ntrain-num-samples = 16\n";
  auto r = run(scenario("wds", wds, 2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("orphan"), std::string::npos) << r.output;
  LogReader log(image_set() / "out" / "wds.h5");
  EXPECT_TRUE(log.complete());
  EXPECT_EQ(log.find("data/images")->steps.size(), 8u);  // 16 samples / 4, 2 epochs
}

// seeding = "openclip" refuses, naming why, what no OpenCLIP run can reproduce or what its loader
// does not do: webdataset (sample shuffle seeded from pid and clock), timm's Python-random crops,
// skip-bad-samples. Nothing is trained.
TEST(RealDataTraining, OpenClipSeedingRefusesWhatItCannotReproduce) {
  const std::string wds = "dataset-type = \"webdataset\"\ntrain-data = \"" +
                          (image_set() / "shards" / "shard-{000..002}.tar").string() +
                          "\"\ntrain-num-samples = 16\n";
  const std::pair<std::string, std::string> cases[] = {
      {wds, "from the process id and the clock"},
      {kCsv + "aug-cfg = { use_timm = true }\n", "use_timm"},  // replaces the scenario's aug-cfg
      {kCsv + "skip-bad-samples = true\n", "skip-bad-samples"},
  };
  int i = 0;
  for (const auto& [lines, named] : cases) {
    auto text = test::read_file(scenario("refused" + std::to_string(i++), lines, 1));
    if (lines.find("aug-cfg") != std::string::npos)
      text.erase(text.find("aug-cfg = { scale"),
                 std::string("aug-cfg = { scale = [0.4, 1.0] }\n").size());
    const auto path = image_set() / ("refused" + std::to_string(i) + "-openclip.toml");
    test::write_file(path, "seeding = \"openclip\"\n" + text);
    const auto r = run(path);
    EXPECT_EQ(r.exit_code, 2) << lines << r.output;
    EXPECT_NE(r.output.find(named), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("seeding = \"openclip\""), std::string::npos) << r.output;
  }
}

// Also from the loader's worker threads: the error reaches the training thread, the run stops
// (no worker left hanging) and exits 2 naming the file.
class CorruptImage : public testing::TestWithParam<int> {};

TEST_P(CorruptImage, FailsNamingTheFile) {
  const auto dir = test::temp_dir("real-data-corrupt-w" + std::to_string(GetParam()));
  auto g = test::run_python_script("make_image_text_set.py", dir.string() + " 8 --corrupt 3");
  ASSERT_EQ(g.exit_code, 0) << g.output;
  const auto s = dir / "bad.toml";
  test::write_file(s,
                   "name = \"bad\"\nmodel = \"tiny-bpe\"\ndataset-type = \"csv\"\n"
                   "train-data = \"train.csv\"\nbatch-size = 8\nsteps = 1\nworkers = " +
                       std::to_string(GetParam()) + "\n[log]\n");
  auto r =
      test::run_cli("run " + s.string() + " --out " + (dir / "out").string() + " --no-golden -q");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("0003.jpg"), std::string::npos) << r.output;
  // The log says it failed, why, and what it still holds (step 0), never "complete".
  const LogReader log(dir / "out" / "bad.h5");
  EXPECT_EQ(log.attr("status"), "failed");
  EXPECT_NE(log.attr("failure").find("0003.jpg"), std::string::npos) << log.attr("failure");
  EXPECT_EQ(log.attr("last_step"), "0");
  EXPECT_EQ(log.last_complete_step(), 0);
  const auto v = test::run_cli("verify " + (dir / "out" / "bad.h5").string());
  EXPECT_EQ(v.exit_code, 1) << v.output;
  EXPECT_NE(v.output.find("(status failed: "), std::string::npos) << v.output;
}
INSTANTIATE_TEST_SUITE_P(RealDataTraining, CorruptImage, testing::Values(0, 3));

// max-image-pixels reaches the decoders: with a bound below the images' size, the run stops
// naming the first image and the key.
TEST(RealDataTraining, MaxImagePixelsRefusesLargerImages) {
  const auto dir = test::temp_dir("real-data-pixels");
  auto g = test::run_python_script("make_image_text_set.py", dir.string() + " 8");
  ASSERT_EQ(g.exit_code, 0) << g.output;
  const auto s = dir / "small.toml";
  test::write_file(
      s,
      "name = \"small\"\nmodel = \"tiny-bpe\"\ndataset-type = \"csv\"\n"
      "train-data = \"train.csv\"\nbatch-size = 8\nsteps = 1\nmax-image-pixels = 100\n");
  auto r =
      test::run_cli("run " + s.string() + " --out " + (dir / "out").string() + " --no-golden -q");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("exceeds max-image-pixels 100"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/images/"), std::string::npos) << r.output;  // names the file
}

// skip-bad-samples: the bad sample is found when the data is indexed, left out of every epoch,
// and named on stderr and in the log's provenance; training goes on with the others.
TEST(RealDataTraining, SkipBadSamplesLeavesThemOutAndLogsThem) {
  const auto dir = test::temp_dir("real-data-skip");
  auto g = test::run_python_script("make_image_text_set.py", dir.string() + " 8 --corrupt 3");
  ASSERT_EQ(g.exit_code, 0) << g.output;
  const auto s = dir / "skip.toml";
  // 7 good samples: one batch of 7 per epoch, 2 epochs.
  test::write_file(s,
                   "name = \"skip\"\nmodel = \"tiny-bpe\"\ndataset-type = \"csv\"\n"
                   "train-data = \"train.csv\"\nskip-bad-samples = true\nbatch-size = 7\n"
                   "epochs = 2\nwarmup = 1\n[log]\nfull-steps = [\"1:\"]\n"
                   "full-tensors = [\"data/*\"]\n");
  auto r =
      test::run_cli("run " + s.string() + " --out " + (dir / "out").string() + " --no-golden -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("0003.jpg"), std::string::npos) << r.output;
  LogReader log(dir / "out" / "skip.h5");
  ASSERT_TRUE(log.complete());
  const auto skipped = nlohmann::json::parse(log.attr("skipped_samples"));
  ASSERT_EQ(skipped.size(), 1u) << skipped.dump();
  EXPECT_NE(skipped[0]["source"].get<std::string>().find("row 4 ("), std::string::npos);
  EXPECT_NE(skipped[0]["source"].get<std::string>().find("0003.jpg"), std::string::npos);
  EXPECT_FALSE(skipped[0]["reason"].get<std::string>().empty());
  for (int64_t step : {1, 2}) {
    auto ids = log.read_full("data/sample_ids", step);
    std::set<int64_t> seen(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
    EXPECT_EQ(seen, (std::set<int64_t>{0, 1, 2, 4, 5, 6, 7})) << "step " << step;
  }
}

TEST(RealDataTraining, AugCfgFollowsOpenClip) {
  // re_prob without use_timm: OpenCLIP warns and ignores it; so does cliprepro.
  auto r = run(scenario("re_prob", kCsv + "steps = 1\n", 2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto path = image_set() / "re_prob.toml";
  auto text = test::read_file(path);
  text.replace(text.find("scale = [0.4, 1.0] }"), 20, "scale = [0.4, 1.0], re_prob = 0.3 }");
  test::write_file(path, text);
  r = run(path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("re_prob is ignored without use_timm"), std::string::npos) << r.output;
  // use_timm = true: timm's pipeline, which with these keys is the same crop and normalisation
  // plus RandomErasing (pixel mode). re_prob = 0 gives the plain run's images; re_prob = 1
  // erases a region in every image, drawn after that image's crop.
  // (Readers closed before the next run rewrites the log.)
  const auto plain_images =
      LogReader(image_set() / "out" / "re_prob.h5").read_full("data/images", 1);
  for (const char* p : {"0.0", "1.0"}) {
    text = test::read_file(path);
    const auto at = text.find("re_prob = ");
    text.replace(at, text.find(" }", at) - at, std::string("re_prob = ") + p + ", use_timm = true");
    test::write_file(path, text);
    r = run(path);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("re_prob is ignored"), std::string::npos) << r.output;
    const auto images = LogReader(image_set() / "out" / "re_prob.h5").read_full("data/images", 1);
    if (std::string(p) == "0.0") {
      EXPECT_TRUE(torch::equal(images, plain_images));
    } else {
      const auto changed = images.ne(plain_images).flatten(1).any(1);
      EXPECT_TRUE(changed.all().item<bool>()) << changed;
    }
  }
}

TEST(RealDataTraining, ZeroShotOnAnImageFolderWithTemplates) {
  const auto folder = load_image_folder((image_set() / "val").string(), 64);
  EXPECT_EQ(folder.class_folders, (std::vector<std::string>{"blue", "green", "red"}));
  EXPECT_EQ(folder.labels.numel(), 12);
  EXPECT_EQ(folder.labels[4].item<int64_t>(), 1);
  EXPECT_EQ(zero_shot_prompts({"red", "big dog"}, {"a {}.", "{} photo"}),
            (std::vector<std::string>{"a red.", "red photo", "a big dog.", "big dog photo"}));

  auto r = run(scenario("zs",
                        kCsv + "imagenet-val = \"val\"\n" +
                            "zeroshot-templates = [\"a photo of a {}.\", \"a {} thing.\"]\n",
                        2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("on 12 images of"), std::string::npos) << r.output;
  LogReader log(image_set() / "out" / "zs.h5");
  const auto* top1 = log.find("eval/zeroshot_top1");
  ASSERT_NE(top1, nullptr);
  EXPECT_EQ(top1->steps.front(), 0);
  EXPECT_EQ(top1->steps.back(), 10);
  for (int64_t step : top1->steps) {
    const double t1 = log.read_full("eval/zeroshot_top1", step).item<double>();
    const double t5 = log.read_full("eval/zeroshot_top5", step).item<double>();
    EXPECT_DOUBLE_EQ(t1 * 12, std::round(t1 * 12)) << "a fraction of the 12 images";
    EXPECT_EQ(t5, 1.0) << "3 classes: the top 5 hold every class";
  }
  // Bad folders fail naming the folder.
  r = run(scenario("zs_bad", kCsv + "imagenet-val = \"images\"\n", 2));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no class subfolders"), std::string::npos) << r.output;
  // ImageNet's WordNet-id folders name no class: folder-names refuses them.
  const auto wordnet = image_set() / "val_wordnet" / "n01440764";
  std::filesystem::create_directories(wordnet);
  std::filesystem::copy_file(folder.files[0], wordnet / "a.jpg",
                             std::filesystem::copy_options::overwrite_existing);
  r = run(scenario("zs_wordnet", kCsv + "imagenet-val = \"val_wordnet\"\n", 2));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("are WordNet ids (n01440764, …)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("zeroshot-classes = \"openclip-imagenet\""), std::string::npos)
      << r.output;
}

// OpenCLIP's zero_shot_eval metadata, read from the installed wheel's file (its first class
// name and template, as OpenCLIP 3.3.0 ships them).
TEST(RealDataTraining, OpenClipImagenetMetadataComesFromTheWheel) {
  const auto m = openclip_imagenet_metadata();
  EXPECT_NE(m.source.find("open_clip/zero_shot_metadata.py"), std::string::npos) << m.source;
  ASSERT_EQ(m.class_names.size(), 1000u);
  ASSERT_EQ(m.templates.size(), 80u);
  EXPECT_EQ(m.class_names.front(), "tench");
  EXPECT_EQ(m.class_names.back(), "toilet paper");
  EXPECT_EQ(m.templates.front(), "a bad photo of a {}.");
  EXPECT_EQ(m.templates.back(), "a tattoo of the {}.");
}

}  // namespace
}  // namespace cliprepro
