#include "src/train/determinism.h"

#include <torch/torch.h>

#include <cstdlib>

namespace cliprepro {

void apply_process_environment(const DeterminismConfig& cfg) {
  if (!cfg.cpu_isa.empty()) setenv("ONEDNN_MAX_CPU_ISA", cfg.cpu_isa.c_str(), 1);
  if (!cfg.mkl_cbwr.empty()) setenv("MKL_CBWR", cfg.mkl_cbwr.c_str(), 1);
  // Deterministic cuBLAS needs a fixed workspace configuration.
  if (cfg.deterministic) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 1);
}

nlohmann::json apply_determinism(const DeterminismConfig& cfg, uint64_t seed) {
  auto& ctx = at::globalContext();
  ctx.setDeterministicAlgorithms(cfg.deterministic, /*warn_only=*/false);
  ctx.setDeterministicFillUninitializedMemory(cfg.deterministic);
  ctx.setDeterministicCuDNN(cfg.deterministic);
  ctx.setBenchmarkCuDNN(false);
  ctx.setAllowTF32CuBLAS(cfg.allow_tf32);
  ctx.setAllowTF32CuDNN(cfg.allow_tf32);
  ctx.setFloat32MatmulPrecision(cfg.allow_tf32 ? "high" : "highest");
  ctx.setAllowFP16ReductionCuBLAS(!cfg.deterministic);
  ctx.setAllowBF16ReductionCuBLAS(!cfg.deterministic);
  if (cfg.threads > 0) {
    at::set_num_threads(cfg.threads);
  }
  torch::manual_seed(seed);
  return read_determinism_switches();
}

nlohmann::json read_determinism_switches() {
  auto& ctx = at::globalContext();
  auto env = [](const char* k) -> nlohmann::json {
    const char* v = std::getenv(k);
    return v ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  return {
      {"deterministic_algorithms", ctx.deterministicAlgorithms()},
      {"deterministic_algorithms_warn_only", ctx.deterministicAlgorithmsWarnOnly()},
      {"deterministic_fill_uninitialized_memory", ctx.deterministicFillUninitializedMemory()},
      {"cudnn_deterministic", ctx.deterministicCuDNN()},
      {"cudnn_benchmark", ctx.benchmarkCuDNN()},
      {"allow_tf32_cublas", ctx.allowTF32CuBLAS()},
      {"allow_tf32_cudnn", ctx.allowTF32CuDNN()},
      {"float32_matmul_precision",
       ctx.float32MatmulPrecision() == at::Float32MatmulPrecision::HIGHEST ? "highest"
                                                                           : "high/medium"},
      // CuBLASReductionOption: 0 reduced precision allowed, 1 disallowed, 2 disallowed and no
      // split-K.
      {"fp16_reduction_cublas", static_cast<int>(ctx.allowFP16ReductionCuBLAS())},
      {"bf16_reduction_cublas", static_cast<int>(ctx.allowBF16ReductionCuBLAS())},
      {"mkldnn_enabled", ctx.userEnabledMkldnn()},
      {"intra_op_threads", at::get_num_threads()},
      {"inter_op_threads", at::get_num_interop_threads()},
      {"env",
       {{"ONEDNN_MAX_CPU_ISA", env("ONEDNN_MAX_CPU_ISA")},
        {"MKL_CBWR", env("MKL_CBWR")},
        {"OMP_NUM_THREADS", env("OMP_NUM_THREADS")},
        {"OMP_WAIT_POLICY", env("OMP_WAIT_POLICY")},
        {"MKL_NUM_THREADS", env("MKL_NUM_THREADS")},
        {"CUBLAS_WORKSPACE_CONFIG", env("CUBLAS_WORKSPACE_CONFIG")}}},
  };
}

}  // namespace cliprepro
