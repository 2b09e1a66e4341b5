// The CUDA path: the same trainer on a GPU (cuDNN deterministic, no benchmark, TF32 off,
// CUBLAS_WORKSPACE_CONFIG; see src/train/determinism.cpp) and NCCL between ranks. These tests
// need a CUDA device and say so by skipping where there is none (CI has none); the NCCL
// refusals on CPU run everywhere.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/log/log_reader.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

std::filesystem::path cuda_scenario(const std::filesystem::path& dir, const std::string& name,
                                    const std::string& precision, const std::string& extra = "") {
  const auto path = dir / (name + ".toml");
  test::write_file(path, "name = \"" + name + "\"\nmodel = \"tiny\"\ndevice = \"cuda\"\n" +
                             "precision = \"" + precision + "\"\ntrain-num-samples = 256\n" +
                             "val-num-samples = 32\nbatch-size = 32\nsteps = 6\nwarmup = 2\n" +
                             "lr = 1e-3\nseed = 11\n" + extra + "[log]\ndigest-every = 1\n");
  return path;
}

// Two runs of one scenario on the GPU: every digest of every tensor at every step equal.
void expect_two_gpu_runs_bitwise_equal(const std::string& precision) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device on this machine";
  const auto dir = test::temp_dir("cuda_repro_" + precision);
  for (const char* run : {"a", "b"}) {
    const auto s = cuda_scenario(dir, std::string("gpu_") + run, precision);
    auto r =
        test::run_cli("run " + s.string() + " --out " + (dir / "out").string() + " --no-golden -q");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto c = test::run_cli("compare " + (dir / "out" / "gpu_a.h5").string() + " " +
                         (dir / "out" / "gpu_b.h5").string());
  EXPECT_EQ(c.exit_code, 0) << c.output;
  LogReader log(dir / "out" / "gpu_a.h5");
  EXPECT_NE(log.attr("fingerprint").find("cudnn"), std::string::npos);
  EXPECT_GT(log.series().size(), 300u);
}

TEST(Cuda, Fp32RunsAreBitwiseEqual) { expect_two_gpu_runs_bitwise_equal("fp32"); }
TEST(Cuda, AmpRunsAreBitwiseEqual) { expect_two_gpu_runs_bitwise_equal("amp"); }
TEST(Cuda, AmpBf16RunsAreBitwiseEqual) { expect_two_gpu_runs_bitwise_equal("amp_bf16"); }

TEST(Cuda, NcclWorldTwoRanksAgreeOnTheModel) {
  if (torch::cuda::device_count() < 2) GTEST_SKIP() << "needs 2 CUDA devices";
  const auto dir = test::temp_dir("cuda_nccl");
  const auto s =
      cuda_scenario(dir, "nccl2", "fp32", "local-loss = true\ngather-with-grad = true\n");
  auto r =
      test::run_command(test::torchrun(2, std::string(kCliBin) + " run " + s.string() + " --out " +
                                              (dir / "out").string() + " --no-golden -q"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  LogReader r0(dir / "out" / "nccl2.rank0.h5"), r1(dir / "out" / "nccl2.rank1.h5");
  for (const auto& [name, s0] : r0.series()) {
    if (name.rfind("params/", 0) == 0) {
      EXPECT_EQ(s0.digests, r1.find(name)->digests) << name;
    }
  }
}

// NCCL reduces GPU tensors: asked for on CPU, both ranks stop with a message and exit 2.
TEST(Cuda, NcclOnCpuIsRefusedClearly) {
  const auto dir = test::temp_dir("nccl_cpu");
  const auto s = dir / "nccl_cpu.toml";
  test::write_file(s,
                   "name = \"nccl_cpu\"\nmodel = \"tiny\"\ndist-backend = \"nccl\"\n"
                   "train-num-samples = 64\nbatch-size = 8\nsteps = 1\n[log]\n");
  auto r =
      test::run_command(test::torchrun(2, std::string(kCliBin) + " run " + s.string() + " --out " +
                                              (dir / "out").string() + " --no-golden -q"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dist-backend 'nccl' needs device = \"cuda\""), std::string::npos)
      << r.output;
  // Without torchrun the same scenario is one process: no process group, so it just runs.
  auto one =
      test::run_cli("run " + s.string() + " --out " + (dir / "out").string() + " --no-golden -q");
  EXPECT_EQ(one.exit_code, 0) << one.output;
}

}  // namespace
}  // namespace cliprepro
