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
};

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
