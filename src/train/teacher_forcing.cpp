// Trainer::restore_state: a reference run's state put in place of the live one, so that one step
// of this run's numerics starts where the reference's did (cliprepro attribute).
#include "src/train/trainer.h"

#include <stdexcept>

namespace cliprepro {

namespace {

void restore_tensor(const StateOf& state_of, const std::string& name, const torch::Tensor& live) {
  const auto t = state_of(name);
  if (!t.defined()) throw std::runtime_error(name + " is not in the reference state");
  if (t.sizes() != live.sizes() || t.scalar_type() != live.scalar_type()) {
    throw std::runtime_error(
        name + ": the reference has " + std::string(c10::toString(t.scalar_type())) + " " +
        c10::str(t.sizes()) + ", this run " + std::string(c10::toString(live.scalar_type())) + " " +
        c10::str(live.sizes()) +
        " (teacher forcing needs the reference's weight dtypes: vary autocast "
        "and [numerics], not fp16/bf16/pure_* weights)");
  }
  live.copy_(t.to(live.device()));
}

}  // namespace

bool Trainer::restore_state(const StateOf& state_of, int64_t step) {
  if (pg_) throw std::runtime_error("teacher forcing runs at world size 1");
  torch::NoGradGuard no_grad;
  for (auto& kv : model_->named_parameters())
    restore_tensor(state_of, family::kParams + kv.key(), kv.value());
  for (auto& kv : model_->named_buffers())
    restore_tensor(state_of, family::kBuffers + kv.key(), kv.value());
  // Step 0 logs no moments: they are the optimizer's initial zeros, as here.
  if (step > 0) {
    for (auto& g : optimizer_->groups()) {
      for (auto& p : g.params) {
        restore_tensor(state_of, family::kExpAvg + p.name, p.exp_avg);
        restore_tensor(state_of, family::kExpAvgSq + p.name, p.exp_avg_sq);
        restore_tensor(state_of, family::kOptimizerStep + p.name, p.step);
      }
    }
  }
  start_step_ = step;
  if (!scaler_ || step == 0) return scaler_ != nullptr;
  const auto scale = state_of(tensor_name::kLossScale);
  const auto tracker = state_of(tensor_name::kGrowthTracker);
  if (!scale.defined() || !tracker.defined()) return false;
  scaler_->load(scale, tracker);
  return true;
}

}  // namespace cliprepro
