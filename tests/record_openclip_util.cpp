// Helpers shared by the recorder's end-to-end tests (test_record_openclip.cpp,
// test_record_webdataset.cpp).
#include "tests/record_openclip_util.h"

#include <gtest/gtest.h>

#include "harness/log/log_reader.h"
#include "test_paths.h"

namespace cliprepro::record_test {

std::filesystem::path data_dir(const std::string& name, const std::string& options, int images) {
  const auto dir = test::temp_dir("record_openclip_" + name);
  const auto r = test::run_python_script(
      "make_image_text_set.py", (dir / "set").string() + " " + std::to_string(images) + options);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dir;
}

std::string openclip_flags(int batch, const std::string& extra, const std::string& data) {
  return std::string("--model ") + kSourceDir + "/src/model/configs/tiny-bpe.json " + data +
         " --batch-size " + std::to_string(batch) +
         " --epochs 1 --lr 1e-3 --wd 0.1 --warmup 2 --seed 3 --report-to none " + extra;
}

test::CommandResult record(const std::filesystem::path& dir, const std::string& out, int world,
                           const std::string& flags, const std::string& options) {
  const std::string recorder = std::string(kPython) + " -m cliprepro.record --out rec/" + out +
                               " --threads " + (world == 1 ? "2" : "1") + " " + options + " -- " +
                               flags;
  const std::string cmd = world == 1 ? recorder : test::torchrun(world, recorder);
  return test::run_command("cd " + dir.string() + " && " + cmd);
}

void run_as(const std::filesystem::path& dir, const std::filesystem::path& toml,
            const std::string& name, int world, const std::string& extra) {
  auto text = test::read_file(toml);
  const auto at = text.find("\nname = \"");  // OpenCLIP's --name, else "openclip-import"
  ASSERT_NE(at, std::string::npos) << text;
  const auto end = text.find('\n', at + 1);
  text.replace(at, end - at, "\nname = \"" + name + "\"");
  // The import writes [determinism] (portable = false): `extra`'s keys go into that table.
  const std::string det = "[determinism]\n";
  const auto in_extra = extra.find(det), in_text = text.find(det);
  if (in_extra != std::string::npos && in_text != std::string::npos) {
    text.insert(in_text + det.size(), extra.substr(in_extra + det.size()));
  } else {
    text += extra;
  }
  test::write_file(toml, text);
  const std::string run = std::string(kCliBin) + " run " + toml.string() + " --out " +
                          (dir / "out").string() + " --no-golden --quiet";
  const auto r = test::run_command("cd " + dir.string() + " && " +
                                   (world == 1 ? run : test::torchrun(world, run)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void replay(const std::filesystem::path& dir, const std::string& recording, const std::string& name,
            int world) {
  const auto toml = dir / (name + ".toml");
  const auto r = test::run_cli("import-openclip --replay " + (dir / "rec" / recording).string() +
                               " --out " + toml.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  run_as(dir, toml, name, world);
}

void expect_match(const std::filesystem::path& ours, const std::filesystem::path& recorded,
                  int64_t steps) {
  const auto r = test::run_cli("compare " + ours.string() + " " + recorded.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("bitwise identical"), std::string::npos) << r.output;
  const LogReader log(recorded);
  EXPECT_TRUE(log.complete());
  EXPECT_EQ(log.last_complete_step(), steps);
  for (const char* name :
       {"data/images", "data/texts", "data/sample_ids", "activations/visual.conv1",
        "activations/visual.layer4.0", "activations/transformer.resblocks.1",
        "activations/logits_per_image", "bn_batch/visual.layer1.0.bn2.invstd",
        "grads/visual.conv1.weight", "optimizer/exp_avg_sq/token_embedding.weight",
        "optimizer/step/logit_scale", "params/text_projection", "buffers/visual.bn1.running_var",
        "scalars/loss"}) {
    const auto* s = log.find(name);
    ASSERT_NE(s, nullptr) << name;
    const std::string n = name;  // the initial state is step 0
    const bool initial = n.rfind("params/", 0) == 0 || n.rfind("buffers/", 0) == 0;
    EXPECT_EQ(s->steps.size(), size_t(initial ? steps + 1 : steps)) << name;
  }
}

void run_imported(const std::filesystem::path& dir, const std::string& flags,
                  const std::string& name, int world) {
  const auto toml = dir / (name + ".toml");
  const auto r = test::run_command("cd " + dir.string() + " && " + kCliBin +
                                   " import-openclip --out " + toml.string() + " -- " + flags);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto text = test::read_file(toml);
  ASSERT_NE(text.find("seeding = \"openclip\""), std::string::npos) << text;
  // The recorder's intra-op threads (record() above).
  run_as(dir, toml, name, world,
         std::string("\n[determinism]\nthreads = ") + (world == 1 ? "2" : "1") + "\n");
}

}  // namespace cliprepro::record_test
