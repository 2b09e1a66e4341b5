// Study files: [study] + [variants.NAME], each variant a scenario of its own with its own golden.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "harness/scenario/scenario.h"
#include "harness/scenario/study.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

const char* kStudy =
    "model = 'tiny'\n"
    "batch-size = 8\n"
    "precision = 'fp32'\n"
    "[log]\n"
    "digest-every = 2\n"
    "[golden]\n"
    "full-tensors = ['params/logit_scale']\n"
    "[study]\n"
    "name = 'prec'\n"
    "reference = 'fp32'\n"
    "golden-dir = 'golden/prec'\n"
    "[variants.fp32]\n"
    "[variants.bf16]\n"
    "precision = 'amp_bf16'\n"
    "[variants.bf16.log]\n"
    "digest-every = 1\n"
    "[variants.w2]\n"
    "nproc = 2\n"
    "local-loss = true\n";

std::string load_error(const std::filesystem::path& p, const std::string& variant) {
  try {
    load_scenario(p, variant);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(Study, VariantsAreScenariosWithTheirOwnGoldens) {
  const auto dir = test::temp_dir("study_parse");
  test::write_file(dir / "prec.toml", kStudy);
  const Study st = load_study(dir / "prec.toml");
  EXPECT_EQ(st.name, "prec");
  EXPECT_EQ(st.reference, "fp32");
  ASSERT_EQ(st.variants.size(), 3u);  // in file order, not the table's sorted order
  EXPECT_EQ(st.variants[0].name, "fp32");
  EXPECT_EQ(st.variants[1].name, "bf16");
  EXPECT_EQ(st.variants[2].name, "w2");
  EXPECT_EQ(st.variants[2].nproc, 2);
  EXPECT_EQ(st.variants[0].nproc, 1);

  const Scenario bf16 = load_scenario(dir / "prec.toml", "bf16");
  EXPECT_EQ(bf16.variant, "bf16");
  EXPECT_EQ(bf16.name, "prec-bf16");
  EXPECT_EQ(bf16.train.precision, Precision::kAmpBf16);
  EXPECT_EQ(bf16.train.batch_size, 8);
  EXPECT_EQ(bf16.log.digest_every, 1);  // a section of the variant over the base's
  EXPECT_EQ(bf16.golden.path, (dir / "golden" / "prec" / "bf16.h5").lexically_normal());
  EXPECT_EQ(bf16.golden.selection.full_tensors, std::vector<std::string>{"params/logit_scale"});
  EXPECT_NE(bf16.text.find("variant bf16"), std::string::npos) << bf16.text;
  const Scenario fp32 = load_scenario(dir / "prec.toml", "fp32");
  EXPECT_EQ(fp32.train.precision, Precision::kFp32);
  EXPECT_EQ(fp32.log.digest_every, 2);
  EXPECT_TRUE(load_scenario(dir / "prec.toml", "w2").train.dist.local_loss);
  EXPECT_EQ(scenario_argument(bf16), (dir / "prec.toml").string() + " --variant bf16");
}

TEST(Study, BadStudiesNameTheFileAndLine) {
  const auto dir = test::temp_dir("study_errors");
  const auto file = dir / "s.toml";
  const std::string f = file.string();
  test::write_file(file, kStudy);
  // A study file names a variant; a plain scenario none.
  EXPECT_NE(load_error(file, "").find("cliprepro study " + f), std::string::npos);
  EXPECT_NE(load_error(file, "bf32").find("no variant 'bf32' (variants: fp32, bf16, w2)"),
            std::string::npos)
      << load_error(file, "bf32");
  test::write_file(dir / "plain.toml", "batch-size = 8\n");
  EXPECT_NE(load_error(dir / "plain.toml", "x").find("not a study"), std::string::npos);
  // An unknown key in a variant is that variant's line.
  test::write_file(file, std::string(kStudy) + "batch-szie = 4\n");
  EXPECT_NE(load_error(file, "w2").find(f + ":20:1: unknown key 'batch-szie'"), std::string::npos)
      << load_error(file, "w2");
  try {
    load_study(file);
    ADD_FAILURE() << "a variant with an unknown key loaded";
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find(":20:1:"), std::string::npos) << e.what();
  }
  // The reference must be a variant; [study] keys are checked; one [golden] path cannot be meant.
  std::string text = kStudy;
  text.replace(text.find("reference = 'fp32'"), 18, "reference = 'fp64'");
  test::write_file(file, text);
  EXPECT_NE(load_error(file, "fp32").find(f + ":10:"), std::string::npos)
      << load_error(file, "fp32");
  EXPECT_NE(load_error(file, "fp32").find("names no variant: 'fp64'"), std::string::npos);
  test::write_file(file, std::string(kStudy).replace(std::string(kStudy).find("[study]\n"), 8,
                                                     "[study]\nrefrence = 'x'\n"));
  EXPECT_NE(load_error(file, "fp32").find("unknown key 'refrence' in [study]"), std::string::npos)
      << load_error(file, "fp32");
  test::write_file(file, std::string(kStudy).replace(std::string(kStudy).find("[golden]\n"), 9,
                                                     "[golden]\npath = 'g.h5'\n"));
  EXPECT_NE(load_error(file, "fp32").find(f + ":7:"), std::string::npos)
      << load_error(file, "fp32");
  EXPECT_NE(load_error(file, "fp32").find("golden-dir"), std::string::npos);
  for (const char* n : {"0", "100000"}) {  // 100000 ranks was a fork bomb through torchrun
    test::write_file(file, std::string(kStudy) + "[variants.x]\nnproc = " + n + "\n");
    EXPECT_NE(load_error(file, "x").find("'nproc' must be in [1, 64]"), std::string::npos)
        << load_error(file, "x");
  }
}

TEST(Study, ReportsNameTheirReferenceFloorAndVariants) {
  const auto dir = test::temp_dir("study_reports");
  const auto file = dir / "s.toml";
  const std::string head =
      "model = 'tiny'\n[study]\nname = 's'\nreference = 'a'\nnoise-floor = 'a-floor'\n"
      "[variants.a]\n[variants.a-floor]\nlr = 0.00100000095367431640625\n[variants.b]\n"
      "precision = 'amp_bf16'\n[variants.c]\nwarmup = 2\n";
  test::write_file(file, head);
  Study st = load_study(file);
  ASSERT_EQ(st.reports.size(), 1u);  // the default: every variant against the reference
  EXPECT_EQ(st.reports[0].name, "");
  EXPECT_EQ(st.reports[0].noise_floor, "a-floor");
  EXPECT_EQ(st.reports[0].variants, (std::vector<std::string>{"a-floor", "b", "c"}));
  EXPECT_TRUE(st.golden_dir.empty());  // no golden-dir: the variants run without goldens
  EXPECT_TRUE(load_scenario(file, "b").golden.path.empty());

  test::write_file(file, head +
                             "[reports.zeta]\nvariants = ['b']\n"
                             "[reports.alpha]\nreference = 'c'\ntitle = 'T'\nvariants = ['a']\n");
  st = load_study(file);
  ASSERT_EQ(st.reports.size(), 2u);  // in file order
  EXPECT_EQ(st.reports[0].name, "zeta");
  EXPECT_EQ(st.reports[0].reference, "a");
  EXPECT_EQ(st.reports[0].noise_floor, "a-floor");  // the study's floor: same reference
  EXPECT_EQ(st.reports[0].title, "Study s: zeta against a");
  EXPECT_EQ(st.reports[1].reference, "c");
  EXPECT_EQ(st.reports[1].noise_floor, "");  // another reference: the study's floor is not its
  EXPECT_EQ(st.reports[1].title, "T");

  const std::string f = file.string();
  test::write_file(file, head + "[reports.r]\nvariants = ['b', 'zz']\n");
  EXPECT_NE(load_error(file, "a").find(f + ":14:"), std::string::npos) << load_error(file, "a");
  EXPECT_NE(load_error(file, "a").find("names no variant: 'zz'"), std::string::npos);
  test::write_file(file, head + "[reports.r]\ntitel = 'x'\nvariants = ['b']\n");
  EXPECT_NE(load_error(file, "a").find(f + ":14:1: unknown key 'titel' in [reports.r]"),
            std::string::npos)
      << load_error(file, "a");
  test::write_file(file, head + "[reports.r]\ntitle = 'x'\n");
  EXPECT_NE(load_error(file, "a").find("[reports.r] needs 'variants'"), std::string::npos)
      << load_error(file, "a");
  test::write_file(file, head + "[reports.r]\nnoise-floor = 'a'\nvariants = ['b']\n");
  EXPECT_NE(load_error(file, "a").find("cannot be the reference"), std::string::npos)
      << load_error(file, "a");
}

// A relative golden-dir is the study file's directory's, however the file is named.
TEST(Study, RelativeGoldenDirIsTheFilesWhateverTheWorkingDirectory) {
  const auto dir = test::temp_dir("study_golden_dir");
  std::filesystem::create_directories(dir / "scenarios");
  test::write_file(dir / "scenarios" / "p.toml",
                   "[study]\nreference = 'x'\ngolden-dir = '../golden/p'\n[variants.x]\n");
  const auto here = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  const Scenario s = load_scenario("scenarios/p.toml", "x");
  // An absolute golden-dir stays that directory (it had become an empty [golden] path).
  test::write_file(dir / "scenarios" / "a.toml", "[study]\nreference = 'x'\ngolden-dir = '" +
                                                     (dir / "abs").string() + "'\n[variants.x]\n");
  const Scenario a = load_scenario("scenarios/a.toml", "x");
  std::filesystem::current_path(here);
  EXPECT_EQ(std::filesystem::weakly_canonical(dir / s.golden.path),
            std::filesystem::weakly_canonical(dir / "golden" / "p" / "x.h5"))
      << s.golden.path;
  EXPECT_EQ(a.golden.path, dir / "abs" / "x.h5");
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// The study command end to end on a 3-step tiny study: bless, check (exit 0, JUnit, report),
// one changed key (exactly that variant fails, exit 1), a missing golden (exit 2, bless command).
TEST(Study, CommandBlessesChecksAndNamesTheVariantThatDiffers) {
  const auto dir = test::temp_dir("study_cli");
  const auto file = dir / "tiny.toml";
  const std::string base =
      "model = 'tiny'\ntrain-num-samples = 32\nval-num-samples = 16\nbatch-size = 8\n"
      "steps = 3\nwarmup = 1\nseed = 3\nzeroshot-frequency = 0\n"
      "[determinism]\nthreads = 1\n[log]\ndigest-every = 1\n"
      "[study]\nreference = 'ref'\ngolden-dir = 'golden'\n"
      "[variants.ref]\n[variants.lr]\n";
  test::write_file(file, base + "lr = 2e-3\n");
  const std::string q = " " + file.string() + " -j 2 ";
  auto r = test::run_cli("study" + q + "--bless --out " + (dir / "bless").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "golden" / "ref.h5")) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "golden" / "lr.txt")) << r.output;

  r = test::run_cli("study" + q + "--out " + (dir / "check").string() + " --junit " +
                    (dir / "ok.xml").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ok = read(dir / "ok.xml");
  EXPECT_EQ(count(ok, "<testcase "), 2u) << ok;
  EXPECT_EQ(count(ok, "<failure"), 0u) << ok;
  EXPECT_TRUE(std::filesystem::exists(dir / "check" / "report.md")) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "check" / "tiny-lr.h5")) << r.output;

  test::write_file(file, base + "lr = 3e-3\n");  // one key of one variant changed
  r = test::run_cli("study" + q + "--out " + (dir / "changed").string() + " --junit " +
                    (dir / "bad.xml").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string bad = read(dir / "bad.xml");
  EXPECT_EQ(count(bad, "<failure"), 1u) << bad;
  EXPECT_NE(bad.find("name=\"lr\" time"), std::string::npos) << bad;
  EXPECT_LT(bad.find("name=\"ref\""), bad.find("<failure")) << bad;  // ref passed: lr failed
  EXPECT_NE(bad.find("first difference"), std::string::npos) << bad;

  std::filesystem::remove(dir / "golden" / "ref.h5");
  r = test::run_cli("study" + q + "--only ref --out " + (dir / "missing").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("golden bless " + file.string() + " --variant ref"), std::string::npos)
      << r.output;

  test::write_file(file, base + "lr = 2e-3\nbatch-szie = 4\n");
  r = test::run_cli("study" + q);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(file.string() + ":19:1: unknown key 'batch-szie'"), std::string::npos)
      << r.output;
}

// [study] prepare runs once, in the file's directory, before any variant reads what it made; a
// failing one is an error naming its command and output; half a pair of keys is a load error.
TEST(Study, PrepareMakesTheVariantsDataOnce) {
  const auto dir = test::temp_dir("study_prepare");
  test::write_file(dir / "make.py",
                   "import pathlib, sys\n"
                   "p = pathlib.Path(sys.argv[1]); p.parent.mkdir(exist_ok=True)\n"
                   "n = int(p.read_text()) + 1 if p.exists() else 1\n"
                   "if sys.argv[2] == 'fail': sys.exit('the generator failed')\n"
                   "p.write_text(str(n))\n");
  const auto file = dir / "s.toml";
  const std::string head =
      "model = 'tiny'\ntrain-num-samples = 16\nval-num-samples = 8\nbatch-size = 8\nsteps = 1\n"
      "zeroshot-frequency = 0\n[determinism]\nthreads = 1\n[study]\nreference = 'a'\n";
  const std::string prepared = "prepare-creates = 'data/made'\n[variants.a]\n";
  test::write_file(file, head + "prepare = ['make.py', 'data/made', 'ok']\n" + prepared);
  const std::string q = "study " + file.string() + " --out " + (dir / "out").string();
  auto r = test::run_cli(q);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("preparing"), std::string::npos) << r.output;
  EXPECT_EQ(test::read_file(dir / "data" / "made"), "1");
  r = test::run_cli(q);  // made already: not run again
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("preparing"), std::string::npos) << r.output;
  EXPECT_EQ(test::read_file(dir / "data" / "made"), "1");

  std::filesystem::remove(dir / "data" / "made");
  test::write_file(file, head + "prepare = ['make.py', 'data/made', 'fail']\n" + prepared);
  r = test::run_cli(q);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("did not create"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the generator failed"), std::string::npos) << r.output;

  test::write_file(file, head + prepared);
  r = test::run_cli(q);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(file.string() + ":9:1: 'prepare-creates' needs 'prepare'"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace cliprepro
