// The noise floor of a precision report: a run that is the reference under a change of no
// semantics (the shipped studies use lr × (1 + 2^-20), docs/scenario-schema.md "Noise floor").
// Any perturbation grows chaotically through training (the butterfly effect), so a variant's
// drift means something only against the drift such a perturbation causes by the same step.
// Every other run's drift is restated as a multiple of the floor's, per family and step.
#pragma once
#include <string>
#include <vector>

#include "harness/report/precision_report.h"

namespace cliprepro {

// Rows of the multiple tables besides report_families(): the norm drifts of every logged step.
inline constexpr const char* kBnRunningVarNorm = "BN running_var norm";
inline constexpr const char* kAdamExpAvgSqNorm = "Adam exp_avg_sq norm";

// drift / floor; NaN where both are 0 (neither moved), +inf where only the floor is 0.
double floor_multiple(double drift, double floor);

// Fills every non-reference, non-floor run's `floor_multiple` and its finding's multiples from
// run `floor_index` (1 … runs - 1), and marks that run's finding as the floor.
void apply_noise_floor(PrecisionReport& rep, size_t floor_index);

// "0.52×", "3.1×", "57×", "5.4e+05×"; "∞" (non-finite drift, or the floor did not move), "—"
// (neither moved).
std::string format_multiple(double m);

}  // namespace cliprepro
