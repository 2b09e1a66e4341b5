#include "src/train/determinism.h"

#include "src/model/portable_kernels.h"

#include <torch/torch.h>

#include <ATen/Version.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace cliprepro {

std::string aten_capability_for(const std::string& cpu_isa) {
  if (cpu_isa.rfind("AVX512", 0) == 0) return "avx512";
  if (cpu_isa.rfind("AVX2", 0) == 0) return "avx2";
  if (cpu_isa == "SSE41" || cpu_isa == "AVX") return "default";
  return "";  // "ALL", unset: ATen picks the best the CPU has
}

void reexec_with_passive_omp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;  // a user's value is kept
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: then carry on as we are
}

DeterminismConfig with_portable_pins(const DeterminismConfig& cfg) {
  DeterminismConfig e = cfg;
  if (cfg.portable && e.cpu_isa.empty()) e.cpu_isa = kPortableCpuIsa;
  if (cfg.portable && e.mkl_cbwr.empty()) e.mkl_cbwr = kPortableMklCbwr;
  return e;
}

void require_portable_cpu(const DeterminismConfig& cfg) {
  if (!cfg.portable) return;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return;
  throw std::runtime_error(
      "[determinism] portable needs a CPU with AVX2 and FMA (its pins run AVX2 kernels); this "
      "CPU lacks them, so its bits would not be the portable ones: run on another CPU, or set "
      "portable = false (and expect this CPU's own bits)");
}

void apply_process_environment(const DeterminismConfig& requested) {
  require_portable_cpu(requested);
  const DeterminismConfig cfg = with_portable_pins(requested);
  if (!cfg.cpu_isa.empty()) setenv("ONEDNN_MAX_CPU_ISA", cfg.cpu_isa.c_str(), 1);
  // ATen's own vectorised kernels (softmax, exp, reductions, …) dispatch on the CPU too: pin
  // them to the same ISA, or an AVX-512 machine computes other bits than an AVX2 one. ATen reads
  // the variable once, at its first kernel dispatch; apply_determinism checks it took.
  const std::string capability = aten_capability_for(cfg.cpu_isa);
  if (!capability.empty()) setenv("ATEN_CPU_CAPABILITY", capability.c_str(), 1);
  if (!cfg.mkl_cbwr.empty()) setenv("MKL_CBWR", cfg.mkl_cbwr.c_str(), 1);
  // Deterministic cuBLAS needs a fixed workspace configuration.
  if (cfg.deterministic) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 1);
}

nlohmann::json apply_determinism(const DeterminismConfig& requested, uint64_t seed) {
  const DeterminismConfig cfg = with_portable_pins(requested);
  set_portable_kernels(cfg.portable);
  const std::string capability = aten_capability_for(cfg.cpu_isa);
  std::string effective = at::get_cpu_capability();
  std::transform(effective.begin(), effective.end(), effective.begin(), ::tolower);
  if (!capability.empty() && effective != capability) {
    std::fprintf(stderr,
                 "warning: cpu-isa %s pins ATen's kernels to %s, but this process already runs "
                 "%s ones (ATen chose before the pin): bits may differ from a pinned run\n",
                 cfg.cpu_isa.c_str(), capability.c_str(), effective.c_str());
  }
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
      // cliprepro's CPU kernels for the ops whose LibTorch results depend on the CPU, and the
      // libm they compute with (portable_kernels.h); null when LibTorch's own run.
      {"portable_kernels",
       portable_kernels_enabled()
           ? nlohmann::json{{"ops", portable_kernel_ops()}, {"libm", "glibc " + libm_version()}}
           : nlohmann::json(nullptr)},
      {"intra_op_threads", at::get_num_threads()},
      {"aten_cpu_capability", at::get_cpu_capability()},
      {"inter_op_threads", at::get_num_interop_threads()},
      {"env",
       {{"ONEDNN_MAX_CPU_ISA", env("ONEDNN_MAX_CPU_ISA")},
        {"ATEN_CPU_CAPABILITY", env("ATEN_CPU_CAPABILITY")},
        {"MKL_CBWR", env("MKL_CBWR")},
        {"OMP_NUM_THREADS", env("OMP_NUM_THREADS")},
        {"OMP_WAIT_POLICY", env("OMP_WAIT_POLICY")},
        {"MKL_NUM_THREADS", env("MKL_NUM_THREADS")},
        {"CUBLAS_WORKSPACE_CONFIG", env("CUBLAS_WORKSPACE_CONFIG")}}},
  };
}

}  // namespace cliprepro
