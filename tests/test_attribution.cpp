// cliprepro attribute: teacher-forced one-step errors and the --rank ranking. A reference run
// logs every tensor in full; variants differ from it in precision and [numerics] only.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/compare/attribution.h"
#include "harness/log/log_reader.h"
#include "src/glob.h"
#include "src/model/precision_sites.h"
#include "test_util.h"

namespace cliprepro {
namespace {

constexpr int kSteps = 3;

// The short quickstart scenario, every tensor logged in full at every step.
std::filesystem::path full_scenario(const std::filesystem::path& dir, const std::string& name,
                                    const std::string& precision, const std::string& numerics) {
  auto path = test::short_scenario(dir, name, kSteps);
  auto text = test::read_file(path);
  auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  };
  replace("precision = \"fp32\"", "precision = \"" + precision + "\"");
  replace(
      "[log]\nfull-steps = [0, 1, -1]\nfull-tensors = [\"params/text_projection\", \"grads/*\"]",
      "[log]\nfull-steps = [0, 1, 2, 3]\nfull-tensors = [\"*\"]");
  test::write_file(path, text + (numerics.empty() ? "" : "[numerics]\n" + numerics));
  return path;
}

class Attribution : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(test::temp_dir("attribution"));
    const auto ref = full_scenario(*dir_, "ref", "fp32", "");
    const auto r = test::run_cli("run " + ref.string() + " -q --no-golden --out " + dir_->string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static LogReader reference() { return LogReader(*dir_ / "ref.h5"); }
  static std::filesystem::path* dir_;
};
std::filesystem::path* Attribution::dir_ = nullptr;

TEST(AttributionGroups, PartitionEveryPrecisionSite) {
  for (const auto& site : precision_site_names(load_model_config("RN50"))) {
    std::vector<std::string> in;
    for (const auto& g : attribution_groups()) {
      for (const auto& glob : g.globs) {
        if (glob_selects_site(glob, site)) {
          in.push_back(g.name);
          break;
        }
      }
    }
    EXPECT_EQ(in.size(), 1u) << site << " is in " << in.size() << " groups";
  }
}

// Through the CLI, as a user runs it: the process pins the scenario's cpu-isa before its first
// kernel, as the reference run's did (in this test binary ATen has long chosen its kernels).
nlohmann::json attribute_json(const std::filesystem::path& ref, const std::filesystem::path& v,
                              const std::string& steps, const std::string& flags = "") {
  const auto out = v.parent_path() / (v.stem().string() + ".attr" + flags);
  const auto r = test::run_cli("attribute " + ref.string() + " " + v.string() + " --steps " +
                               steps + " -q " + flags + " --out " + out.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(test::read_file(out / "attribution.json"));
}

TEST_F(Attribution, SelfIsExactlyZero) {
  const auto j =
      attribute_json(*dir_ / "ref.h5", *dir_ / "ref.toml", "1," + std::to_string(kSteps));
  ASSERT_EQ(j.at("steps").size(), 2u);
  for (const auto& s : j.at("steps")) {
    ASSERT_FALSE(s.at("tensors").empty());
    for (const auto& t : s.at("tensors")) {
      EXPECT_TRUE(t.at("bitwise").get<bool>()) << t.at("name") << " at step " << s.at("step");
      EXPECT_EQ(t.at("rel_l2").get<double>(), 0) << t.at("name");
    }
    for (const auto& f : error_families()) EXPECT_EQ(s.at("families").at(f.key), 0) << f.key;
  }
  EXPECT_NE(j.at("findings").at(0).get<std::string>().find("bitwise the reference's"),
            std::string::npos);
}

// amp_bf16's rounding in one step: non-zero, and no larger than the free-running drift its own
// run has built up by then (the same step's rounding plus everything before it, amplified).
TEST_F(Attribution, AmpBf16OneStepErrorIsBelowItsFreeRunningDrift) {
  const auto ref = reference();
  const auto bf16 = full_scenario(*dir_, "bf16", "amp_bf16", "");
  const auto r = test::run_cli("run " + bf16.string() + " -q --no-golden --out " + dir_->string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const LogReader free_run(*dir_ / "bf16.h5");
  const auto j = attribute_json(*dir_ / "ref.h5", bf16, "1," + std::to_string(kSteps));
  for (const auto& s : j.at("steps")) {
    const int64_t step = s.at("step");
    const double forced = s.at("families").at("update");
    ErrorSums drift;
    for (const auto& t : s.at("tensors")) {
      const std::string name = t.at("name");
      if (name.rfind("params/", 0) != 0) continue;
      const auto r_s = ref.read_full(name, step).to(torch::kFloat64);
      const auto r_prev = ref.read_full(name, step - 1).to(torch::kFloat64);
      const auto f_s = free_run.read_full(name, step).to(torch::kFloat64);
      drift.add({(f_s - r_s).square().sum().item<double>(),
                 (r_s - r_prev).square().sum().item<double>()});
    }
    EXPECT_GT(forced, 0) << "step " << step;
    if (step == 1) {
      EXPECT_DOUBLE_EQ(forced, drift.rel()) << "step 1 starts from the same state either way";
    } else {
      EXPECT_LE(forced, drift.rel()) << "step " << step;
    }
  }
}

// The known answer: an fp32 run with one group alone in bf16 (amp_bf16 with
// low-precision-modules) — --rank puts that group first at every step, removing all its error.
TEST_F(Attribution, RankFindsTheOneGroupInLowPrecision) {
  const auto v = full_scenario(*dir_, "layer2conv", "amp_bf16",
                               "low-precision-modules = [\"visual.layer2.*.conv*\", "
                               "\"visual.layer2.*.downsample.0\"]\n");
  const auto out = *dir_ / "attr";
  const auto r =
      test::run_cli("attribute " + (*dir_ / "ref.h5").string() + " " + v.string() +
                    " --steps 1,2," + std::to_string(kSteps) + " --rank -q --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(test::read_file(out / "attribution.json"));
  ASSERT_EQ(j.at("steps").size(), 3u);
  for (const auto& s : j.at("steps")) {
    const auto& groups = s.at("groups");
    ASSERT_EQ(groups.size(), attribution_groups().size());
    EXPECT_GT(s.at("families").at("update").get<double>(), 0) << "step " << s.at("step");
    EXPECT_EQ(groups.at(0).at("group"), "layer2.conv") << "step " << s.at("step");
    EXPECT_EQ(groups.at(0).at("update_removed"), 1.0) << "lifted, the step is the fp32 one";
    for (size_t i = 1; i < groups.size(); ++i)
      EXPECT_EQ(groups.at(i).at("update_removed"), 0.0) << groups.at(i).at("group");
  }
  // The report states the answer plainly, and has its heat maps and tables.
  EXPECT_NE(r.output.find("At step 2, layer2conv's one-step update error is"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("100 % of it comes from **layer2.conv**"), std::string::npos) << r.output;
  EXPECT_NE(test::read_file(out / "attribution.html").find("<svg"), std::string::npos);
  EXPECT_NE(test::read_file(out / "attribution.md").find("| layer2.conv |"), std::string::npos);
}

// A study asks for attribution in a report: [reports.NAME] attribute-steps.
TEST(StudyAttribution, ReportAttributesItsVariantsAtTheListedSteps) {
  const auto dir = test::temp_dir("attribution_study");
  test::write_file(dir / "prec.toml",
                   "model = 'tiny'\nprecision = 'fp32'\ntrain-num-samples = 64\n"
                   "val-num-samples = 16\nbatch-size = 16\nsteps = 3\nepochs = 1\nwarmup = 1\n"
                   "seed = 3\n[determinism]\nthreads = 2\ncpu-isa = 'AVX2'\n"
                   "[log]\nfull-steps = ['0:4']\nfull-tensors = ['*']\n"
                   "[study]\nname = 'prec'\nreference = 'fp32'\n"
                   "[variants.fp32]\n[variants.bf16]\nprecision = 'amp_bf16'\n"
                   "[variants.bf16-bn]\nprecision = 'amp_bf16'\nnumerics = { bn-fp32 = true }\n"
                   "[reports.autocast]\nvariants = ['bf16', 'bf16-bn']\n"
                   "attribute-steps = [2, -1]\nattribute-rank = true\n");
  const auto r = test::run_cli("study " + (dir / "prec.toml").string() + " --out " +
                               (dir / "out").string() + " --runs " + (dir / "runs").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* v : {"bf16", "bf16-bn"}) {
    const auto j = nlohmann::json::parse(
        test::read_file(dir / "out" / "autocast" / "attribution" / v / "attribution.json"));
    ASSERT_EQ(j.at("steps").size(), 2u) << v;
    EXPECT_EQ(j.at("steps").at(1).at("step"), 3) << "-1 is the last step";
    EXPECT_GT(j.at("steps").at(0).at("families").at("update").get<double>(), 0) << v;
    if (std::string(v) != "bf16-bn") continue;
    // Its BatchNorms already run in fp32: lifting them changes nothing, exactly.
    for (const auto& s : j.at("steps")) {
      for (const auto& g : s.at("groups")) {
        const std::string name = g.at("group");
        if (name.ends_with(".bn")) {
          EXPECT_EQ(g.at("update_removed"), 0.0) << name;
        }
      }
    }
  }
  const auto findings = test::read_file(dir / "out" / "findings.md");
  EXPECT_NE(findings.find("Attribution of bf16-bn"), std::string::npos) << findings;
  EXPECT_NE(findings.find("At step 3, bf16's one-step update error is"), std::string::npos)
      << findings;
}

TEST_F(Attribution, RefusesReferenceWithoutFullStateAndOtherBatches) {
  const auto dir = test::temp_dir("attribution_refuse");
  const auto thin = test::short_scenario(dir, "thin", kSteps);
  ASSERT_EQ(
      test::run_cli("run " + thin.string() + " -q --no-golden --out " + dir.string()).exit_code, 0);
  auto r = test::run_cli("attribute " + (dir / "thin.h5").string() + " " + thin.string() +
                         " --steps 2 -q");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("needs the full"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("full-tensors = [\"*\"]"), std::string::npos) << r.output;

  // Another seed draws other batches: not a teacher-forced step of the reference.
  const auto other = test::short_scenario(dir, "other", kSteps, "");
  auto text = test::read_file(other);
  text.replace(text.find("seed = 3"), 8, "seed = 4");
  test::write_file(other, text);
  r = test::run_cli("attribute " + (*dir_ / "ref.h5").string() + " " + other.string() +
                    " --steps 2 -q");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("differs from the reference's"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cliprepro
