// Goldens: blessed reference logs under golden/, written atomically, checked bitwise.
#pragma once
#include <filesystem>
#include <stdexcept>

#include "harness/compare.h"
#include "harness/run_scenario.h"
#include "harness/scenario.h"

namespace cliprepro {

class GoldenMissing : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws GoldenMissing when the scenario names no golden or its file does not exist.
void require_golden(const Scenario& s);

// Trains the scenario with the golden's selection into a temporary file beside the golden,
// then renames it into place: a golden is never half-written.
RunResult bless_golden(const Scenario& s, bool progress);

// Compares a run log against the scenario's golden (the golden may hold a subset).
CompareResult check_golden(const std::filesystem::path& log, const Scenario& s);

}  // namespace cliprepro
