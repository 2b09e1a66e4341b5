#include "harness/run/run_scenario.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "harness/log/env_fingerprint.h"
#include "harness/log/log_writer.h"
#include "harness/run/interrupt.h"
#include "harness/run/output_lock.h"
#include "harness/run/progress.h"
#include "harness/run/replay_log.h"
#include "src/dist/process_group.h"
#include "src/safe_file.h"
#include "src/train/determinism.h"

namespace cliprepro {
namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string rank_suffix(int rank) { return ".rank" + std::to_string(rank); }

// This process's suffix: empty for a single process.
std::string rank_suffix() {
  return dist::launch_world_size() > 1 ? rank_suffix(dist::launch_rank()) : "";
}

// Rank 0 ties the per-rank logs together: <out>/<name>.manifest.json.
void write_manifest(const Scenario& s, const std::filesystem::path& log_path, int world_size) {
  nlohmann::json files = nlohmann::json::array();
  for (int r = 0; r < world_size; ++r) files.push_back(s.name + rank_suffix(r) + ".h5");
  const nlohmann::json m = {{"scenario", s.name},
                            {"world_size", world_size},
                            {"dist_backend", s.resolved()["dist-backend"]},
                            {"local_loss", s.train.dist.local_loss},
                            {"gather_with_grad", s.train.dist.gather_with_grad},
                            {"logs", files},
                            {"git_commit", git_commit()},
                            {"created_utc", utc_now()}};
  write_file_atomically(log_path.parent_path() / (s.name + ".manifest.json"), m.dump(2) + "\n",
                        "manifest");
}

}  // namespace

void apply_launch_environment(Scenario& s) {
  s.train.dist.world_size = dist::launch_world_size();
  if (s.train.dist.world_size > 1 && !s.golden.path.empty()) {
    auto p = s.golden.path;
    s.golden.path = p.parent_path() / (p.stem().string() + rank_suffix() + p.extension().string());
  }
}

std::filesystem::path default_log_path(const Scenario& s, const std::filesystem::path& out_dir) {
  return out_dir / (s.name + rank_suffix() + ".h5");
}

RunResult train_and_log(const Scenario& s, const RunOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  // Before anything is created or truncated: one writer per log, never through a link.
  const OutputLock lock(opts.log_path);
  require_output_target(opts.log_path, "log");
  apply_process_environment(s.train.determinism);
  apply_determinism(s.train.determinism, uint64_t(s.train.seed));
  TrainConfig cfg = s.train;
  if (cfg.checkpoint.save_every_steps > 0 || cfg.checkpoint.save_frequency > 0) {
    cfg.checkpoint.dir = (opts.log_path.parent_path() / (s.name + ".checkpoints")).string();
    require_output_directory(cfg.checkpoint.dir, "checkpoint directory");
  }
  std::shared_ptr<const ReplaySource> replay;
  if (cfg.data.dataset_type == DatasetType::kReplay)
    replay = open_replay_log(cfg, cfg.dist.world_size > 1 ? dist::launch_rank() : 0);
  Trainer trainer(cfg, std::move(replay));
  // The config as run: train-num-samples (and so the schedule) may come from the data.
  nlohmann::json resolved = s.resolved();
  resolved["train-num-samples"] = trainer.config().data.train_num_samples;
  resolved["steps-per-epoch"] = trainer.config().steps_per_epoch();
  resolved["total-steps"] = trainer.total_steps();

  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& sk : trainer.skipped_samples()) {
    skipped.push_back({{"source", sk.source}, {"reason", sk.reason}});
  }
  const nlohmann::json provenance = {
      {"scenario_name", s.name},
      {"scenario_path", s.path.string()},
      {"scenario_toml", s.text},
      {"resolved_config", resolved.dump(2)},
      {"model_config", trainer.model_config().json_text},
      {"skipped_samples", skipped},
      {"debug_flip", trainer.bit_flip().step > 0
                         ? nlohmann::json{{"step", trainer.bit_flip().step},
                                          {"tensor", trainer.bit_flip().tensor},
                                          {"element", trainer.bit_flip().element},
                                          {"bit", trainer.bit_flip().bit}}
                         : nlohmann::json(nullptr)},
      {"fingerprint", env_fingerprint().dump(2)},
      {"git_commit", git_commit()},
      {"created_utc", utc_now()},
      {"step_numbering",
       "step 0 = initial state; step s >= 1 = forward/backward on batch s-1 and the s-th optimizer "
       "update"},
  };
  const int64_t total = trainer.total_steps();
  LogWriter writer(opts.log_path, opts.selection, total, provenance, opts.mode);
  Progress progress(s.name, total, opts.progress);
  RunResult r;
  try {
    r.summary = trainer.run([&](const StepRecord& rec) { writer.write(rec); },
                            [&](int64_t step, int64_t n, double loss, double lr) {
                              progress.update(step, loss, lr);
                              (void)n;
                              // Between steps: everything of `step` is handed to the writer.
                              if (const int sig = stop_signal()) throw RunInterrupted(sig, step);
                            });
  } catch (const RunInterrupted& e) {
    progress.finish();
    writer.close(LogEnd::kInterrupted, e.what());
    throw RunInterrupted(e.signal(), e.step(), opts.log_path);
  } catch (const std::exception& e) {
    // The log says it failed, why, and the last step it holds; then the error goes on to the CLI.
    try {
      writer.close(LogEnd::kFailed, e.what());
    } catch (...) {
    }
    throw;
  }
  progress.finish();
  writer.close();
  if (trainer.world_size() > 1 && trainer.rank() == 0 && opts.mode == WriteMode::kStreaming) {
    write_manifest(s, opts.log_path, trainer.world_size());
  }
  r.log_path = opts.log_path;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace cliprepro
