// Scenario -> deterministic training run -> HDF5 log with full provenance.
#pragma once
#include <filesystem>

#include "harness/log/log_selection.h"
#include "harness/log/log_writer.h"
#include "harness/scenario/scenario.h"
#include "src/train/trainer.h"

namespace cliprepro {

struct RunOptions {
  std::filesystem::path log_path;
  LogSelection selection;
  bool progress = true;
  WriteMode mode = WriteMode::kStreaming;
};

struct RunResult {
  std::filesystem::path log_path;
  TrainSummary summary;
  double seconds = 0;
};

// Under torchrun (world size > 1): world size into the config, and one golden per rank
// (<golden stem>.rank<R>.h5). No-op for a single process.
void apply_launch_environment(Scenario& s);

// `out_dir`/<scenario name>.h5, or <scenario name>.rank<R>.h5 under a multi-rank launch.
std::filesystem::path default_log_path(const Scenario& s, const std::filesystem::path& out_dir);

// Sets the process environment and determinism switches, trains, and writes the log.
RunResult train_and_log(const Scenario& s, const RunOptions& opts);

}  // namespace cliprepro
