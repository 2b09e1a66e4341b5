#include "harness/trace/trace_run.h"

#include <algorithm>
#include <stdexcept>

#include "harness/log/env_fingerprint.h"
#include "harness/run/replay_log.h"
#include "src/dist/process_group.h"
#include "src/train/determinism.h"
#include "src/train/trainer.h"

namespace cliprepro {
namespace {

// Parameters and AdamW state by storage, so that optimizer ops say which tensor they update.
std::map<const void*, std::string> optimizer_tensor_names(Trainer& trainer) {
  std::map<const void*, std::string> names;
  for (const auto& g : trainer.optimizer().groups()) {
    for (const auto& p : g.params) {
      names[p.param.data_ptr()] = family::kParams + p.name;
      names[p.exp_avg.data_ptr()] = family::kExpAvg + p.name;
      names[p.exp_avg_sq.data_ptr()] = family::kExpAvgSq + p.name;
      names[p.step.data_ptr()] = family::kOptimizerStep + p.name;
    }
  }
  return names;
}

}  // namespace

Trace trace_scenario(const Scenario& s, std::vector<int64_t> steps) {
  if (dist::launch_world_size() > 1)
    throw std::runtime_error("cliprepro trace runs at world size 1 (not under torchrun)");
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  if (steps.empty() || steps.front() < 1)
    throw std::invalid_argument("--steps: optimizer steps 1, 2, … (step 0 is the initial state)");
  TrainConfig cfg = s.train;
  cfg.eval.zeroshot_frequency = 0;
  cfg.checkpoint = CheckpointConfig{};
  cfg.data.workers = 0;
  apply_process_environment(cfg.determinism);
  apply_determinism(cfg.determinism, uint64_t(cfg.seed));
  std::shared_ptr<const ReplaySource> replay;
  if (cfg.data.dataset_type == DatasetType::kReplay) replay = open_replay_log(cfg, 0);
  Trainer trainer(cfg, std::move(replay));
  if (steps.back() > trainer.total_steps()) {
    throw std::invalid_argument("--steps: " + scenario_argument(s) + " has " +
                                std::to_string(trainer.total_steps()) + " steps, not " +
                                std::to_string(steps.back()));
  }
  Trace trace;
  trace.attrs = {{"scenario_name", s.name},
                 {"scenario_path", s.path.string()},
                 {"scenario_toml", s.text},
                 {"resolved_config", s.resolved().dump(2)},
                 {"fingerprint", env_fingerprint().dump(2)},
                 {"git_commit", git_commit()}};
  OpTracer tracer(optimizer_tensor_names(trainer));
  bool tracing = false;
  trainer.set_phase_observer([&](const char* phase) {
    if (tracing) tracer.set_phase(phase);
  });
  for (int64_t step = 1; step <= steps.back(); ++step) {
    tracing = std::binary_search(steps.begin(), steps.end(), step);
    trainer.train_step(step - 1, nullptr);
    if (tracing) trace.steps.push_back({step, tracer.take()});
    tracing = false;
    tracer.set_phase("");
  }
  trainer.set_phase_observer(nullptr);
  return trace;
}

}  // namespace cliprepro
