// Scenario parsing: the shipped quickstart, defaults, and file:line errors for bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "harness/scenario/scenario.h"
#include "harness/scenario/scenario_doc.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

std::string parse_error(const std::string& text, const std::string& path) {
  try {
    parse_scenario(text, path);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}
std::string error_of(const std::string& text) { return parse_error(text, "/x/bad.toml"); }

TEST(Scenario, QuickstartParses) {
  auto s = load_scenario(std::filesystem::path(kSourceDir) / "scenarios" / "quickstart.toml");
  EXPECT_EQ(s.name, "quickstart");
  EXPECT_EQ(s.train.model, "tiny");
  EXPECT_EQ(s.train.precision, Precision::kFp32);
  EXPECT_EQ(s.train.batch_size, 32);
  EXPECT_DOUBLE_EQ(s.train.optim.lr, 1e-3);
  EXPECT_EQ(s.train.determinism.threads, 2);
  EXPECT_EQ(s.golden.path,
            (std::filesystem::path(kSourceDir) / "golden" / "quickstart.h5").lexically_normal());
  EXPECT_EQ(s.resolved()["total-steps"], s.train.total_steps());
}

TEST(Scenario, DefaultsAreOpenCLIPs) {
  auto s = parse_scenario("", "/x/empty.toml");
  EXPECT_DOUBLE_EQ(s.train.optim.lr, 5e-4);
  EXPECT_DOUBLE_EQ(s.train.optim.wd, 0.2);
  EXPECT_EQ(s.train.optim.warmup, 10000);
  EXPECT_DOUBLE_EQ(s.train.optim.beta2, 0.999);
  EXPECT_DOUBLE_EQ(s.train.optim.eps, 1e-8);
  EXPECT_EQ(s.train.epochs, 32);
  EXPECT_EQ(s.train.batch_size, 64);
  EXPECT_TRUE(s.golden.path.empty());
}

TEST(Scenario, UnknownKeyNamesFileAndLine) {
  EXPECT_EQ(error_of("model = \"tiny\"\n\nlearning-rate = 1e-3\n"),
            "/x/bad.toml:3:1: unknown key 'learning-rate'");
  EXPECT_EQ(error_of("[log]\ndigest-every = 1\nfull = [1]\n"),
            "/x/bad.toml:3:1: unknown key 'full' in [log]");
}

TEST(Scenario, WrongTypeAndBadValuesNameFileAndLine) {
  EXPECT_EQ(error_of("seed = 0\nbatch-size = \"32\"\n"),
            "/x/bad.toml:2:14: 'batch-size' must be an integer");
  EXPECT_EQ(error_of("lr = true\n"), "/x/bad.toml:1:6: 'lr' must be a number");
  EXPECT_EQ(error_of("\nbeta2 = 1.5\n"), "/x/bad.toml:2:9: 'beta2' must be in [0, 1)");
  EXPECT_NE(error_of("[log]\nfull-steps = [\"x:y\"]\n").find("/x/bad.toml:2:"), std::string::npos);
  EXPECT_NE(error_of("precision = \"amp_fp8\"\n").find("/x/bad.toml:1:13: precision 'amp_fp8'"),
            std::string::npos);
}

// Values no run can mean are file:line:column errors before any work (issue 23's cases).
TEST(Scenario, ValuesThatCannotBeMeantAreErrors) {
  auto has = [](const std::string& text, const std::string& want) {
    const std::string e = error_of(text);
    EXPECT_NE(e.find(want), std::string::npos) << text << " gave: " << e;
  };
  for (const char* v : {"nan", "inf", "-inf"}) {
    for (const char* k : {"lr", "wd", "beta1", "grad-clip-norm"})
      has(std::string(k) + " = " + v + "\n", "/x/bad.toml:1:");
    has(std::string("[log]\nflush-seconds = ") + v + "\n", "'flush-seconds' must be a finite");
  }
  has("lr = nan\n", "'lr' must be a finite number");
  has("eps = 0\n", "/x/bad.toml:1:7: 'eps' must be > 0");
  has("eps = -1e-8\n", "'eps' must be > 0");
  has("[determinism]\nthreads = -1\n", "/x/bad.toml:2:11: 'threads' must be in [0, 1024]");
  has("[determinism]\nthreads = 10000\n", "must be in [0, 1024]");
  has("[determinism]\nthreads = 4294967297\n", "/x/bad.toml:2:11:");
  has("zeroshot-frequency = -1\n", "'zeroshot-frequency' must be >= 0");
  // Step counts: checked arithmetic and a bound.
  has("epochs = 4611686018427387904\n", "/x/bad.toml:1:10: the schedule has more than");
  has("epochs = 1152921504606846977\n", "more than 1000000000 steps");
  has("train-num-samples = 4000000000\nbatch-size = 1\n", "the schedule has more than");
  // Issue 36: sizes that allocate or spawn without bound, and what PyTorch refuses.
  has("train-num-samples = 4611686018427387904\n",
      "/x/bad.toml:1:21: 'train-num-samples' must be in [1, 4294967296]");
  has("val-num-samples = 1099511627776\n", "/x/bad.toml:1:19: 'val-num-samples' must be in [1,");
  has("workers = 3000\n", "/x/bad.toml:1:11: 'workers' must be in [0, 128]");
  has("wd = -1\n", "/x/bad.toml:1:6: 'wd' must be >= 0");
  // Rules across keys still name a place in the file.
  has("train-num-samples = 96\nbatch-size = 32\naccum-freq = 2\n",
      "/x/bad.toml:3:14: accum-freq 2 must divide the 3 batches per epoch");
  has("steps = 4\n[debug]\nflip-step = 9\nflip-tensor = \"params/logit_scale\"\n",
      "/x/bad.toml:3:13: [debug] flip-step 9 is past the run's last step 4");
  has("steps = 2000000000\n", "/x/bad.toml:1:9: the schedule has more than");
  // full-steps: beyond the run, negative other than -1, empty ranges, not a step at all.
  has("steps = 10\n[log]\nfull-steps = [11]\n", "/x/bad.toml:3:14: full-steps: step 11 is beyond");
  has("steps = 10\n[golden]\npath = \"g.h5\"\nfull-steps = [\"20:\"]\n", "/x/bad.toml:4:");
  has("[log]\nfull-steps = [-2]\n", "steps are >= 0 (or -1 alone");
  has("[log]\nfull-steps = [\"5:2\"]\n", "empty range");
  has("[log]\nfull-steps = [\"abc\"]\n", "step spec 'abc': expected an integer");
  EXPECT_EQ(error_of("steps = 10\n[log]\nfull-steps = [0, \"2:10:2\", 10, -1]\n"), "");
  // A log name is one file stem inside --out.
  for (const char* bad : {"../../x", "/abs/x", "", ".", "..", "a/b", "-x", "a b"})
    has(std::string("name = \"") + bad + "\"\n", "/x/bad.toml:1:8: 'name' must be one file stem");
  EXPECT_EQ(error_of("name = \"rn50_bf16-amp.v2\"\n"), "");
  // A model-config path is relative to the scenario; a shipped name stays a name.
  EXPECT_EQ(parse_scenario("model = \"cfg/m.json\"\n", "/x/s/a.toml").train.model,
            "/x/s/cfg/m.json");
  EXPECT_EQ(parse_scenario("model = \"RN50\"\n", "/x/s/a.toml").train.model, "RN50");
  EXPECT_NE(parse_error("", "/x/.toml").find("set 'name'"), std::string::npos);
}

// [numerics] (cliprepro's keys beyond OpenCLIP's flags) and skip-bad-samples.
// A full-tensors glob with a typo would store nothing, silently: the run names it, with the
// section, in a warning at its first training step (when every tensor has appeared). A warning,
// not an error: variants share lists in which some families exist only for some precisions.
TEST(Scenario, FullTensorGlobsThatMatchNothingAreNamed) {
  const auto dir = test::temp_dir("globs");
  const auto scenario = test::short_scenario(dir, "globs", 4);
  auto toml = test::read_file(scenario);
  const std::string full = "full-tensors = [\"params/text_projection\", \"grads/*\"]";
  toml.replace(toml.find(full), full.size(), "full-tensors = [\"grads/*\", \"parms/*\", \"[[[\"]");
  test::write_file(scenario, toml);
  const auto r =
      test::run_cli("run " + scenario.string() + " --no-golden -q --out " + (dir / "out").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(
      r.output.find("warning: [log] full-tensors: 'parms/*', '[[[' match no tensor of this run"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("'params/"), std::string::npos) << r.output;  // what names look like
  // Every glob matches: no warning.
  const auto ok = test::run_cli("run " + test::short_scenario(dir, "globs_ok", 2).string() +
                                " --no-golden -q --out " + (dir / "ok").string());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(ok.output.find("warning"), std::string::npos) << ok.output;
}

TEST(Scenario, NumericsAndSkipBadSamples) {
  auto s = parse_scenario("skip-bad-samples = true\n[numerics]\nbn-fp32 = true\nbn-eps = 1e-3\n",
                          "/x/ok.toml");
  EXPECT_TRUE(s.train.data.skip_bad_samples);
  EXPECT_TRUE(s.train.numerics.bn_fp32);
  EXPECT_DOUBLE_EQ(s.train.numerics.bn_eps, 1e-3);
  EXPECT_EQ(s.resolved()["numerics"]["bn-eps"], 1e-3);
  EXPECT_EQ(s.resolved()["skip-bad-samples"], true);
  const auto d = parse_scenario("", "/x/ok.toml");
  EXPECT_FALSE(d.train.numerics.bn_fp32);
  EXPECT_DOUBLE_EQ(d.train.numerics.bn_eps, 1e-5);  // nn.BatchNorm2d's default
  EXPECT_EQ(error_of("[numerics]\nbn-eps = 0\n"), "/x/bad.toml:2:10: 'bn-eps' must be > 0");
  EXPECT_EQ(error_of("[numerics]\nbn-fp32 = 1\n"),
            "/x/bad.toml:2:11: 'bn-fp32' must be true or false");
  EXPECT_EQ(error_of("[numerics]\nln-fp32 = true\n"),
            "/x/bad.toml:2:1: unknown key 'ln-fp32' in [numerics]");
}

TEST(Scenario, SyntaxErrorNamesFileAndLine) {
  const auto e = error_of("model = \"tiny\"\nlr = = 3\n");
  EXPECT_EQ(e.rfind("/x/bad.toml:2:", 0), 0u) << e;
}

TEST(Scenario, IntegerAcceptedWhereNumberExpected) {
  auto s = parse_scenario("lr = 1\nwd = 0\n", "/x/ok.toml");
  EXPECT_DOUBLE_EQ(s.train.optim.lr, 1.0);
  EXPECT_DOUBLE_EQ(s.train.optim.wd, 0.0);
}

TEST(Scenario, OneUlpLrSurvivesParsing) {
  auto s = parse_scenario("lr = 0.0010000000000000002\n", "/x/ok.toml");
  EXPECT_EQ(s.train.optim.lr, std::nextafter(1e-3, 1.0));
}

// The key table: one row per (section, key); every row shows up in the resolved config.
TEST(ScenarioKeys, EveryKeyDefinedOnceAndResolved) {
  std::set<std::string> seen;
  const auto resolved = parse_scenario("", "/x/empty.toml").resolved();
  for (const auto& k : scenario_keys()) {
    EXPECT_TRUE(seen.insert(k.qualified()).second) << k.qualified() << " defined twice";
    const auto& where = k.section.empty() ? resolved : resolved.at(k.section);
    EXPECT_TRUE(where.contains(k.key)) << k.qualified() << " missing from resolved()";
    EXPECT_FALSE(k.doc.empty()) << k.qualified();
  }
}

TEST(ScenarioKeys, EnumerationsParsedAtLoad) {
  auto s = parse_scenario(
      "precision = \"amp_bfloat16\"\ndevice = \"cuda\"\ndist-backend = \"gloo\"\n"
      "[log]\ncompression = \"gzip\"\n",
      "/x/ok.toml");
  EXPECT_EQ(s.train.precision, Precision::kAmpBf16);
  EXPECT_EQ(s.train.device, Device::kCuda);
  EXPECT_EQ(s.train.dist.dist_backend, DistBackend::kGloo);
  EXPECT_EQ(s.log.compression, Compression::kGzip);
  EXPECT_EQ(s.resolved()["precision"], "amp_bf16");  // the canonical spelling
  EXPECT_TRUE(parse_scenario("", "/x/ok.toml").resolved()["dist-backend"].is_null());
  EXPECT_EQ(error_of("\ndevice = \"tpu\"\n"),
            "/x/bad.toml:2:10: device 'tpu' is not supported (supported: cpu, cuda)");
  EXPECT_EQ(error_of("dataset-type = \"csv\"\n"),
            "/x/bad.toml:1:16: dataset-type 'csv' needs train-data");
}

TEST(ScenarioKeys, SectionsAndRequiredKeys) {
  EXPECT_EQ(
      error_of("[debug]\nflip-bit = 3\n").rfind("/x/bad.toml:1:1: [debug] needs 'flip-step'", 0),
      0u);
  EXPECT_EQ(error_of("[golden]\ntolerance = \"torch\"\n")
                .rfind("/x/bad.toml:1:1: [golden] needs 'path'", 0),
            0u);
  EXPECT_EQ(error_of("numerics = 3\n"),
            "/x/bad.toml:1:12: 'numerics' must be a table ([numerics])");
  EXPECT_EQ(error_of("aug-cfg = { scale = [0.5, 0.4] }\n"),
            "/x/bad.toml:1:21: 'scale' must satisfy 0 < min <= max");
  auto s = parse_scenario(
      "[golden]\npath = \"g/x.h5\"\nfull-steps = [1]\n[log]\ndigest-every = 2\n", "/x/ok.toml");
  EXPECT_EQ(s.golden.path, std::filesystem::path("/x/g/x.h5"));
  EXPECT_EQ(s.golden.selection.digest_every, 2);  // digests as [log], full tensors as [golden]
  EXPECT_EQ(s.golden.selection.full_steps.size(), 1u);
}

// The resume check covers exactly the trajectory rows plus the derived schedule and world size.
TEST(ScenarioKeys, TrajectoryIsTheFlaggedRows) {
  const auto s = parse_scenario("beta2 = 0.99\n[numerics]\nbn-eps = 1e-3\n", "/x/ok.toml");
  const auto t = trajectory_json(s.train);
  EXPECT_EQ(t["beta2"], 0.99);
  EXPECT_EQ(t["numerics.bn-eps"], 1e-3);
  EXPECT_EQ(t["total-steps"], s.train.total_steps());
  EXPECT_FALSE(t.contains("device"));
  EXPECT_FALSE(t.contains("determinism.threads"));
  size_t flagged = 0;
  for (const auto& k : train_config_keys()) flagged += k.has(kTrajectory);
  EXPECT_EQ(t.size(), flagged + 2);
}

// docs/scenario-schema.md's key tables are generated from the table and must not drift.
TEST(SchemaDoc, TablesMatchTheKeyTable) {
  const auto path = std::filesystem::path(kSourceDir) / "docs" / "scenario-schema.md";
  std::stringstream in;
  in << std::ifstream(path).rdbuf();
  ASSERT_FALSE(in.str().empty()) << path;
  EXPECT_EQ(in.str(), update_schema_doc(in.str()))
      << "regenerate with: build/cliprepro keys --write-doc docs/scenario-schema.md";
}

}  // namespace
}  // namespace cliprepro
