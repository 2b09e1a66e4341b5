// The environment a run's bits depend on: library versions, device, CPU model and ISA flags,
// threads, determinism switches, and the git commit of the source tree.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace cliprepro {

nlohmann::json env_fingerprint();

// "<sha>" or "<sha>-dirty"; "unknown" outside a git checkout.
std::string git_commit();

}  // namespace cliprepro
