// The environment a run's bits depend on: library versions, device, CPU (CPUID's vendor, brand
// and ISA flags), threads, determinism switches, and the git commit of the source tree.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cliprepro {

nlohmann::json env_fingerprint();

// The part of a fingerprint that decides whether two runs can be bitwise equal: torch version,
// device (and GPU, cuDNN, CUDA runtime), CPU vendor and architecture, ISA/threading pins in the
// environment, ATen's capability, intra-op threads; the CPU's ISA flags only when oneDNN is not
// pinned. Not: CPU model, git commit, compiler, OS release, time.
nlohmann::json fingerprint_key(const nlohmann::json& fingerprint);

// "field: a vs b" for every key field that differs (empty: same key).
std::vector<std::string> fingerprint_differences(const nlohmann::json& a, const nlohmann::json& b);

// "<sha>" or "<sha>-dirty"; "unknown" outside a git checkout.
std::string git_commit();

}  // namespace cliprepro
