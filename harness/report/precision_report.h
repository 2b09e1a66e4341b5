// `cliprepro report RUN...`, the analysis: how far runs drift from a reference run (the first
// one), layer by layer and step by step: loss and zero-shot curves, per-family error growth where
// both logs hold full tensors, a step x tensor heat map, BatchNorm running-stat and Adam moment
// drift from the per-step statistics, loss-scale events, and per-run findings as numbers.
// Rendering (HTML, markdown) is harness/report/precision_render.h; both depend only on the logs'
// contents, so a report regenerates byte for byte.
#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace cliprepro {

struct StepValue {
  int64_t step;
  double value;
};
using Curve = std::vector<StepValue>;

struct RunReport {
  std::string label, file;  // file: the log's file name (no directory: reports stay relocatable)
  Curve loss, zeroshot_top1, loss_scale;
  std::vector<int64_t> skipped_steps;  // scaler/found_inf = 1: the optimizer step was skipped
  // Against the reference, at steps where both logs hold full tensors: relative L2 error
  // ||x - ref|| / ||ref|| over all tensors of a family ("params", "grads", ...).
  std::map<std::string, Curve> family_error;
  // Heat map of `heat_family`: one row per tensor (execution order), one column per step.
  std::vector<std::string> heat_rows;
  std::vector<int64_t> heat_steps;
  std::vector<std::vector<double>> heat;
  // Every logged step, from the stored L2 norms: |norm / norm_ref - 1| of the total L2 norm of
  // all layers' tensors.
  Curve bn_running_mean_drift, bn_running_var_drift, adam_exp_avg_drift, adam_exp_avg_sq_drift;
  int64_t first_param_difference = -1;  // first step whose parameter digests differ; -1 never
  // With a noise floor (harness/report/noise_floor.h): each family's error and each norm drift
  // divided by the floor run's at the same step, keyed by family or kBnRunningVarNorm / ...
  std::map<std::string, Curve> floor_multiple;
};

// What the report concludes about one run, as numbers (NaN / step -1 where there is none); the
// renderers phrase it.
struct RunFinding {
  std::string label;
  bool is_reference = false;
  bool has_top1 = false;                 // the run has zero-shot evaluations
  double final_loss = 0, tail_loss = 0;  // tail: mean over the last 10% of steps
  double reference_tail_loss = 0;
  double final_top1 = 0;       // NaN without zero-shot evaluations
  StepValue best_top1{-1, 0};  // step -1 unless the best beat the final value
  // Largest rise of the smoothed loss above its running minimum; step -1 unless above 10%.
  StepValue loss_spike{-1, 0};
  int64_t first_param_difference = -1;
  StepValue params_error{-1, 0};  // last full-tensor step's relative L2 error of all params
  StepValue max_bn_running_var_drift{-1, 0}, max_adam_exp_avg_sq_drift{-1, 0};
  bool has_loss_scale = false;
  double first_loss_scale = 0, last_loss_scale = 0;
  size_t skipped_steps = 0;
  // With a noise floor: this run is it, or the multiples of the floor's drift (NaN where none).
  bool is_noise_floor = false;
  double params_floor_multiple = std::numeric_limits<double>::quiet_NaN();
  double bn_running_var_floor_multiple = std::numeric_limits<double>::quiet_NaN();
  double adam_exp_avg_sq_floor_multiple = std::numeric_limits<double>::quiet_NaN();
};

struct PrecisionReport {
  std::string title, heat_family;
  std::string noise_floor;           // the floor run's label; empty without one
  std::vector<RunReport> runs;       // runs[0] is the reference
  std::vector<RunFinding> findings;  // one per run, in the same order
};

struct ReportOptions {
  std::string title = "cliprepro precision report";
  std::vector<std::string> labels;  // default: each log's scenario name
  std::string heat_family = "params";
  std::string noise_floor;  // the label of the run that is the noise floor (not the reference)
};

PrecisionReport build_precision_report(const std::vector<std::filesystem::path>& logs,
                                       const ReportOptions& opts = {});

// Families whose error growth the report follows, in the order it shows them.
const std::vector<std::string>& report_families();

}  // namespace cliprepro
