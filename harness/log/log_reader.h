// Reads a cliprepro HDF5 log (or golden): provenance, per-tensor step series, full tensors.
#pragma once
#include <torch/types.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "harness/log/h5_types.h"
#include "src/log_schema.h"

namespace cliprepro {

struct TensorSeries {
  std::string name, dtype, phase;
  std::vector<int64_t> shape;
  std::vector<int64_t> steps;     // steps with a digest
  std::vector<uint64_t> digests;  // parallel to steps
  std::vector<int32_t> order;     // execution index within the step, parallel to steps
  std::vector<StatRow> stats;     // parallel to steps (kStatColumns); empty in old logs
  std::vector<int64_t> full_steps;
  // The row of `step` in steps/digests/order/stats; -1 when it has no digest at that step.
  int64_t row_at(int64_t step) const {
    const auto it = std::find(steps.begin(), steps.end(), step);
    return it == steps.end() ? -1 : int64_t(it - steps.begin());
  }
  bool has_full(int64_t step) const {
    return std::find(full_steps.begin(), full_steps.end(), step) != full_steps.end();
  }
};

class LogReader {
 public:
  // kCheck: a log whose text companion records a SHA-256 (a golden) must hash to it before HDF5
  // opens it (harness/log/log_companion.h); kIgnore only to rewrite that companion.
  enum class Companion { kCheck, kIgnore };
  explicit LogReader(const std::filesystem::path& path, Companion companion = Companion::kCheck);

  const std::filesystem::path& path() const { return path_; }
  // Root attribute as stored; "" when absent.
  std::string attr(const std::string& name) const;
  const std::map<std::string, std::string>& attrs() const { return attrs_; }
  const std::map<std::string, TensorSeries>& series() const { return series_; }
  const TensorSeries* find(const std::string& name) const;
  // Last step the writer completed (from /progress); -1 if none.
  int64_t last_complete_step() const { return last_complete_step_; }
  bool complete() const { return attr("status") == "complete"; }
  // /digests rows past /progress (a killed writer's unfinished flush): left out of series().
  int64_t rows_past_progress() const { return rows_past_progress_; }
  // Why this log may not hold its whole run ("" when closed cleanly with nothing past /progress):
  // compare and the golden check say it beside their verdict.
  std::string unclean_reason() const;

  // Full tensor of `name` at `step`, in its stored dtype (bits exactly as stored).
  torch::Tensor read_full(const std::string& name, int64_t step) const;
  // Rows [row0, row0 + rows) of the full dataset in one read: (rows, *shape).
  torch::Tensor read_full_rows(const std::string& name, int64_t row0, int64_t rows) const;

 private:
  void open(Companion companion);
  std::filesystem::path path_;
  H5Id file_;
  std::map<std::string, std::string> attrs_;
  std::map<std::string, TensorSeries> series_;
  int64_t last_complete_step_ = -1;
  int64_t rows_past_progress_ = 0;
};

}  // namespace cliprepro
