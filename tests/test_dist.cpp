// OpenCLIP's loss flags over real Gloo process groups, launched by torchrun (--no-python):
// global loss vs --local-loss --gather-with-grad, and the two half-measures (issues #616, #894).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "harness/compare/tensor_diff.h"
#include "harness/log/log_reader.h"
#include "harness/log/tensor_file.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

using test::torchrun;

// Runs dist_worker on `world` ranks; returns every rank's output file.
std::vector<TensorMap> run_ranks(int world, const std::string& flags, const std::string& tag) {
  const auto prefix = (test::temp_dir("dist_" + tag) / "out").string();
  const std::string cmd = torchrun(world, std::string(kDistWorker) + " " + prefix + " " + flags);
  auto r = test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
  std::vector<TensorMap> out;
  for (int k = 0; k < world; ++k)
    out.push_back(read_tensor_file(prefix + ".rank" + std::to_string(k) + ".h5"));
  return out;
}

// Largest |a - b*scale| over the gradients selected by `only` ("" = all but `skip`),
// relative to the largest |a| among them.
double max_grad_rel_diff(const TensorMap& a, const TensorMap& b, double scale_b = 1.0,
                         const std::string& only = "", const std::string& skip = "") {
  double num = 0, den = 0;
  for (const auto& [k, t] : a) {
    if (k.rfind("grads/", 0) != 0 || k == skip || (!only.empty() && k != only)) continue;
    const auto d = t.to(torch::kFloat64) - b.at(k).to(torch::kFloat64) * scale_b;
    num = std::max(num, d.abs().max().item<double>());
    den = std::max(den, t.abs().max().item<double>());
  }
  return num / den;
}

TEST(Dist, LossFlagsOverGlooAtWorldSizes2And4) {
  for (int world : {2, 4}) {
    SCOPED_TRACE("world size " + std::to_string(world));
    const auto w = std::to_string(world);
    auto global = run_ranks(world, "", "global" + w);
    auto local_gwg = run_ranks(world, "--local-loss --gather-with-grad", "lgwg" + w);
    auto local_only = run_ranks(world, "--local-loss", "local" + w);
    auto gwg_only = run_ranks(world, "--gather-with-grad", "gwg" + w);
    ASSERT_EQ(global.size(), size_t(world));
    // DDP invariant: after averaging, every rank holds the same gradients, bit for bit.
    for (const auto* run : {&global, &local_gwg, &local_only, &gwg_only}) {
      for (int k = 1; k < world; ++k) {
        for (const auto& [name, t] : (*run)[0]) {
          if (name.rfind("grads/", 0) == 0) {
            EXPECT_TRUE(torch::equal(t, (*run)[k].at(name))) << name;
          }
        }
      }
    }
    // Reference: the true gradient of the global loss, which local-loss + gather-with-grad
    // computes (each rank's local rows, gradients summed back through the gather).
    const auto& ref = local_gwg[0];
    const double rel_gwg = max_grad_rel_diff(ref, gwg_only[0]);
    const double rel_plain = max_grad_rel_diff(ref, global[0]);
    const std::string kScale = "grads/logit_scale";
    const double rel_plain_scaled = max_grad_rel_diff(ref, global[0], world, "", kScale);
    const double rel_plain_scale_param = max_grad_rel_diff(ref, global[0], 1.0, kScale);
    const double rel_local = max_grad_rel_diff(ref, local_only[0]);
    const double rel_local_scaled = max_grad_rel_diff(ref, local_only[0], world);
    std::cout << "world " << world
              << ": max |grad diff| / max |grad| against --local-loss --gather-with-grad"
              << "\n  --gather-with-grad (global loss)          " << rel_gwg
              << "\n  no flags (global loss, local-slice trick) " << rel_plain
              << "\n  no flags, x world_size, all but logit_scale " << rel_plain_scaled
              << "\n  no flags, logit_scale gradient (unscaled)  " << rel_plain_scale_param
              << "\n  --local-loss only                         " << rel_local
              << "\n  --local-loss only, x world_size           " << rel_local_scaled << "\n";
    // #894: local loss with the autograd gather equals the global loss up to fp32 rounding.
    EXPECT_LT(rel_gwg, 1e-5);
    // #616: without the autograd gather, gradients reaching the towers through the features
    // are 1/world_size of the global loss's — but logit_scale, used directly by every rank's
    // copy of the loss, keeps its full gradient: not a uniform rescaling.
    EXPECT_GT(rel_plain, 0.4);
    EXPECT_LT(rel_plain_scaled, 1e-5);
    EXPECT_LT(rel_plain_scale_param, 1e-5);
    // Local loss without the autograd gather drops the cross-rank terms: not a rescaling.
    EXPECT_GT(rel_local, 1e-2);
    EXPECT_GT(rel_local_scaled, 1e-2);
  }
}

// `cliprepro run` under torchrun: one log per rank plus a manifest; DDP keeps parameters,
// gradients and Adam moments identical across ranks while each rank sees its own data.
TEST(Dist, TorchrunRunWritesPerRankLogsThatAgreeOnTheModel) {
  const auto dir = test::temp_dir("dist_run");
  const auto scenario = dir / "dist2.toml";
  test::write_file(scenario,
                   "name = \"dist2\"\nmodel = \"tiny\"\ntrain-num-samples = 128\n"
                   "val-num-samples = 32\nbatch-size = 8\nsteps = 3\nwarmup = 1\nlr = 1e-3\n"
                   "local-loss = true\ngather-with-grad = true\n"
                   "[determinism]\nthreads = 1\n[log]\nfull-steps = [1]\n"
                   "full-tensors = [\"grads/logit_scale\", \"data/sample_ids\"]\n");
  const std::string cmd =
      torchrun(2, std::string(kCliBin) + " run " + scenario.string() + " --out " +
                      (dir / "out").string() + " --no-golden --quiet");
  auto r = test::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
  const auto manifest = nlohmann::json::parse(test::read_file(dir / "out" / "dist2.manifest.json"));
  EXPECT_EQ(manifest.at("world_size"), 2);
  EXPECT_EQ(manifest.at("logs"), (nlohmann::json{"dist2.rank0.h5", "dist2.rank1.h5"}));
  LogReader r0(dir / "out" / "dist2.rank0.h5"), r1(dir / "out" / "dist2.rank1.h5");
  EXPECT_TRUE(r0.complete());
  EXPECT_TRUE(r1.complete());
  int same_model = 0, differing_data = 0;
  for (const auto& [name, s0] : r0.series()) {
    const auto* s1 = r1.find(name);
    ASSERT_NE(s1, nullptr) << name;
    const bool model_state = name.rfind("params/", 0) == 0 || name.rfind("grads/", 0) == 0 ||
                             name.rfind("optimizer/", 0) == 0;
    if (model_state) {
      EXPECT_EQ(s0.digests, s1->digests) << name << " differs between ranks";
      ++same_model;
    }
    if (name == "data/sample_ids" || name == "activations/image_features") {
      EXPECT_NE(s0.digests, s1->digests) << name << " should differ between ranks";
      ++differing_data;
    }
  }
  EXPECT_GT(same_model, 50);
  EXPECT_EQ(differing_data, 2);
  // One global batch = 2 ranks x 8 samples: rank 1 took the second half.
  auto ids0 = r0.read_full("data/sample_ids", 1), ids1 = r1.read_full("data/sample_ids", 1);
  EXPECT_EQ(ids0.numel(), 8);
  EXPECT_FALSE(torch::equal(ids0, ids1));
}

}  // namespace
}  // namespace cliprepro
