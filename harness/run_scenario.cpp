#include "harness/run_scenario.h"

#include <chrono>
#include <ctime>

#include "harness/env_fingerprint.h"
#include "harness/log_writer.h"
#include "harness/progress.h"
#include "src/train/determinism.h"

namespace cliprepro {
namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::filesystem::path default_log_path(const Scenario& s, const std::filesystem::path& out_dir) {
  return out_dir / (s.name + ".h5");
}

RunResult train_and_log(const Scenario& s, const RunOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  apply_process_environment(s.train.determinism);
  apply_determinism(s.train.determinism, uint64_t(s.train.seed));
  Trainer trainer(s.train);

  const nlohmann::json provenance = {
      {"scenario_name", s.name},
      {"scenario_path", s.path.string()},
      {"scenario_toml", s.text},
      {"resolved_config", s.resolved().dump(2)},
      {"model_config", trainer.model_config().json_text},
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
  r.summary = trainer.run([&](const StepRecord& rec) { writer.write(rec); },
                          [&](int64_t step, int64_t n, double loss, double lr) {
                            progress.update(step, loss, lr);
                            (void)n;
                          });
  progress.finish();
  writer.close();
  r.log_path = opts.log_path;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace cliprepro
