// Scenario inheritance (`extends`): child keys over parent keys, sections merged key by key,
// errors and relative paths naming the file that wrote the key.
#include <gtest/gtest.h>

#include <string>

#include "harness/scenario/scenario.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

std::string load_error(const std::filesystem::path& p) {
  try {
    load_scenario(p);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(ScenarioInherit, ChildKeysOverrideAndSectionsMerge) {
  const auto dir = test::temp_dir("inherit_merge");
  std::filesystem::create_directories(dir / "base");
  test::write_file(dir / "base" / "base.toml",
                   "batch-size = 8\nlr = 0.01\nprecision = 'fp32'\ndataset-type = 'csv'\n"
                   "train-data = 'lists/train.csv'\n"
                   "[log]\ndigest-every = 2\nfull-tensors = ['params/*']\n"
                   "[golden]\npath = 'golden/base.h5'\n");
  test::write_file(dir / "mid.toml", "extends = 'base/base.toml'\nlr = 0.02\n");
  test::write_file(dir / "child.toml",
                   "extends = 'mid.toml'\nprecision = 'amp_bf16'\n[log]\ndigest-every = 4\n");
  const Scenario s = load_scenario(dir / "child.toml");
  EXPECT_EQ(s.name, "child");
  EXPECT_EQ(s.train.batch_size, 8);                   // from the root-most parent
  EXPECT_DOUBLE_EQ(s.train.optim.lr, 0.02);           // the middle file's override
  EXPECT_EQ(s.train.precision, Precision::kAmpBf16);  // the child's
  EXPECT_EQ(s.log.digest_every, 4);                   // merged into the parent's [log]...
  EXPECT_EQ(s.log.full_tensors, std::vector<std::string>{"params/*"});  // ...which keeps the rest
  // Relative paths resolve against the file that wrote them.
  EXPECT_EQ(s.train.data.train_data,
            (dir / "base" / "lists" / "train.csv").lexically_normal().string());
  EXPECT_EQ(s.golden.path, (dir / "base" / "golden" / "base.h5").lexically_normal());
  // The log records the resolved scenario and where it came from.
  EXPECT_NE(s.text.find("extends " + (dir / "mid.toml").string()), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("precision = 'amp_bf16'"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("batch-size = 8"), std::string::npos) << s.text;
  EXPECT_EQ(s.text.find("extends ="), std::string::npos) << s.text;
  EXPECT_EQ(s.resolved()["precision"], "amp_bf16");
}

TEST(ScenarioInherit, ErrorsNameTheFileAndLineAtFault) {
  const auto dir = test::temp_dir("inherit_errors");
  // A bad value inherited from the parent is the parent's line.
  test::write_file(dir / "bad_base.toml", "batch-size = 8\nlr = -1.0\n");
  test::write_file(dir / "a.toml", "extends = 'bad_base.toml'\n");
  const std::string bad = load_error(dir / "a.toml");
  EXPECT_NE(bad.find((dir / "bad_base.toml").string() + ":2:"), std::string::npos) << bad;
  // An unknown key is the child's.
  test::write_file(dir / "ok_base.toml", "batch-size = 8\n");
  test::write_file(dir / "typo.toml", "extends = 'ok_base.toml'\n\nbatch-szie = 4\n");
  const std::string typo = load_error(dir / "typo.toml");
  EXPECT_NE(typo.find((dir / "typo.toml").string() + ":3:1: unknown key 'batch-szie'"),
            std::string::npos)
      << typo;
  // Missing parent, wrong type, cycle: at the extends line.
  test::write_file(dir / "orphan.toml", "# no parent\nextends = 'nowhere.toml'\n");
  const std::string orphan = load_error(dir / "orphan.toml");
  EXPECT_NE(orphan.find((dir / "orphan.toml").string() + ":2:"), std::string::npos) << orphan;
  EXPECT_NE(orphan.find("nowhere.toml"), std::string::npos) << orphan;
  test::write_file(dir / "number.toml", "extends = 3\n");
  EXPECT_NE(load_error(dir / "number.toml").find("must be a file name"), std::string::npos);
  test::write_file(dir / "x.toml", "extends = 'y.toml'\n");
  test::write_file(dir / "y.toml", "lr = 0.1\nextends = 'x.toml'\n");
  const std::string cycle = load_error(dir / "x.toml");
  EXPECT_NE(cycle.find((dir / "y.toml").string() + ":2:"), std::string::npos) << cycle;
  EXPECT_NE(cycle.find("cycle"), std::string::npos) << cycle;
  test::write_file(dir / "self.toml", "extends = 'self.toml'\n");
  EXPECT_NE(load_error(dir / "self.toml").find("cycle"), std::string::npos);
  // Not a regular file: refused before reading (a device would be read forever).
  test::write_file(dir / "dev.toml", "extends = '/dev/zero'\n");
  EXPECT_NE(load_error(dir / "dev.toml").find("cannot read scenario file"), std::string::npos);
}

TEST(ScenarioInherit, WithoutAParentTheLogKeepsTheFileAsRead) {
  const std::string text = "# as written\nbatch-size = 8  # comment kept\n";
  EXPECT_EQ(parse_scenario(text, "/x/plain.toml").text, text);
}

}  // namespace
}  // namespace cliprepro
