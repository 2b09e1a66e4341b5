// `cliprepro report RUN...`: how far runs drift from a reference run (the first one), layer by
// layer and step by step: overlaid loss and zero-shot curves, per-family error growth where both
// logs hold full tensors, a step x tensor heat map, BatchNorm running-stat and Adam moment drift
// from the per-step statistics, and loss-scale events. Rendered as self-contained HTML (inline
// SVG) and markdown; output depends only on the logs' contents, so it regenerates byte for byte.
#pragma once
#include <cstdint>
#include <filesystem>
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
};

struct PrecisionReport {
  std::string title, heat_family;
  std::vector<RunReport> runs;  // runs[0] is the reference
  std::vector<std::string> findings;
};

struct ReportOptions {
  std::string title = "cliprepro precision report";
  std::vector<std::string> labels;  // default: each log's scenario name
  std::string heat_family = "params";
};

PrecisionReport build_precision_report(const std::vector<std::filesystem::path>& logs,
                                       const ReportOptions& opts = {});
std::string precision_report_html(const PrecisionReport& r);
std::string precision_report_markdown(const PrecisionReport& r);

// Families whose error growth the report follows, in the order it shows them.
const std::vector<std::string>& report_families();

}  // namespace cliprepro
