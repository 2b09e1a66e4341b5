// Every determinism switch, set explicitly and read back for the log.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace cliprepro {

struct DeterminismConfig {
  bool deterministic = true;  // torch deterministic algorithms + cuDNN deterministic, no benchmark
  int threads = 0;            // intra-op threads; 0 keeps LibTorch's default
  std::string cpu_isa;        // ONEDNN_MAX_CPU_ISA, e.g. "AVX2"; empty = unpinned
  std::string mkl_cbwr;       // MKL_CBWR, e.g. "AVX2"; empty = unpinned
  bool allow_tf32 = false;    // TF32 in cuBLAS/cuDNN (CUDA only)
  // The same bits on every x86-64 CPU with AVX2 and FMA: the pins below (unless set to them
  // already) plus cliprepro's kernels for the ops whose results depend on the CPU
  // (src/train/portable_kernels.h). Off: LibTorch's kernels, as OpenCLIP runs them.
  bool portable = true;
};

// What `portable` pins: oneDNN and ATen to AVX2, MKL to its strict AVX2 code path (without
// STRICT, MKL's sgemm differs between vendors even under MKL_CBWR=AVX2).
inline constexpr const char* kPortableCpuIsa = "AVX2";
inline constexpr const char* kPortableMklCbwr = "AVX2,STRICT";

// `cfg` with portable's pins where it sets none (unchanged when not portable).
DeterminismConfig with_portable_pins(const DeterminismConfig& cfg);

// Throws std::runtime_error when `cfg.portable` and this CPU lacks AVX2 or FMA (the pins'
// kernels and glibc's FMA code path would not run: its bits would be another CPU's).
void require_portable_cpu(const DeterminismConfig& cfg);

// libgomp reads OMP_WAIT_POLICY when it loads, before main. Its default (spin) makes LibTorch's
// OpenMP workers burn every core between parallel regions, starving the log writer thread.
// Unless the variable is set, re-executes the program with OMP_WAIT_POLICY=PASSIVE (call first
// thing in main; returns only when set already or when exec fails). Timing only, never bits.
void reexec_with_passive_omp_wait(char** argv);

// Environment variables read by oneDNN, MKL and cuBLAS at first use: call before any tensor op.
void apply_process_environment(const DeterminismConfig& cfg);

// Sets the ATen context switches and thread count, seeds torch; returns the read-back state.
nlohmann::json apply_determinism(const DeterminismConfig& cfg, uint64_t seed);

// The switches as the ATen context reports them now.
nlohmann::json read_determinism_switches();

}  // namespace cliprepro
