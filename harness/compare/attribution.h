// Precision attribution (cliprepro attribute): the error of a variant's teacher-forced step
// against the reference's own step, per tensor, per layer and per family, and — with --rank —
// how much of it disappears when one module group alone is lifted to fp32.
#pragma once
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "harness/log/log_reader.h"
#include "harness/run/teacher_forced.h"
#include "harness/scenario/scenario.h"

namespace cliprepro {

inline constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

// Sums in float64 over a tensor's elements: the error is sqrt(diff_sq / ref_sq).
struct ErrorSums {
  double diff_sq = 0, ref_sq = 0;
  void add(const ErrorSums& o) { diff_sq += o.diff_sq, ref_sq += o.ref_sq; }
  // Relative L2 error; 0 when nothing differs, inf when the reference is all zero and v is not.
  double rel() const;
};

struct TensorError {
  std::string name;  // log name
  ErrorSums sums;    // variant vs reference at the step
  double max_abs = 0;
  bool bitwise = true;
  // params/ only: the error relative to the reference's own update, ||v_s - r_s|| / ||r_s -
  // r_{s-1}||.
  ErrorSums update;
};

// What is compared, in the order reports show it; `update` reads TensorError::update.
struct ErrorFamily {
  const char* key;     // JSON key and table column
  const char* prefix;  // log-name family
  const char* label;
  bool update;
};
const std::vector<ErrorFamily>& error_families();
const ErrorFamily& error_family(const std::string& key);  // throws std::out_of_range

struct StepErrors {
  int64_t step = 0;
  std::vector<TensorError> tensors;
  bool has_scaler = false, scaler_restored = false;
  ErrorSums family(const ErrorFamily& f) const;
  // Per layer (the module a tensor belongs to: `layer_of`), in first-seen order.
  std::vector<std::pair<std::string, ErrorSums>> layers(const ErrorFamily& f) const;
};

// The module of a log name: "grads/visual.layer1.0.bn1.weight" -> "visual.layer1.0.bn1",
// "bn_batch/visual.bn1.mean" -> "visual.bn1", "activations/visual.layer1.0" -> itself.
std::string layer_of(const std::string& log_name);

// The variant's step against the reference's logged step (full tensors of the same names).
StepErrors step_errors(const LogReader& ref, const TeacherForcedStep& v);

// --rank: a group of precision sites, lifted to fp32 together (docs/design.md lists them).
struct SiteGroup {
  std::string name;
  std::vector<std::string> globs;  // [numerics] fp32-modules globs
};
// stem, layerN.bn, layerN.conv (N = 1 … 4), attnpool, text.blocks, projections, loss: every
// precision site of a ModifiedResNet CLIP in exactly one group.
std::vector<SiteGroup> attribution_groups();

struct GroupEffect {
  std::string group;
  double update_error = kNoValue, grad_error = kNoValue;  // with the group in fp32
  // Fraction of the variant's error that disappears: 1 - lifted / variant.
  double update_removed = kNoValue, grad_removed = kNoValue;
};

struct StepAttribution {
  StepErrors errors;
  std::vector<GroupEffect> groups;  // --rank, largest update_removed first
};

struct Attribution {
  std::string reference, variant;  // the log's and the scenario's file names (and --variant)
  std::string variant_name;        // the study variant's name, else the scenario's
  std::vector<StepAttribution> steps;
};

using AttributionProgress = std::function<void(const std::string& what)>;

// Teacher-forced error of `variant` at every step of `steps`; with `rank`, once more per group.
Attribution attribute(const LogReader& ref, const Scenario& variant,
                      const std::vector<int64_t>& steps, bool rank,
                      const AttributionProgress& progress = {});

}  // namespace cliprepro
