// What a step puts in the log (StepRecord, src/log_schema.h): the batch, capture points,
// gradients, lr, optimizer and model state, zero-shot results. Trainer members, kept apart from
// the training loop in trainer.cpp.
#include "src/train/trainer.h"

namespace cliprepro {

namespace {

torch::Tensor f64_scalar(double v) { return torch::tensor(v, torch::kFloat64); }

}  // namespace

void Trainer::record_state(StepRecord& rec, bool with_moments) const {
  // BatchNorm running statistics change in the forward pass; parameters in the optimizer step.
  // Step 0 records the same families with the same phases, holding the initial state.
  for (const auto& kv : model_->named_buffers()) {
    rec.tensors.push_back({family::kBuffers + kv.key(), Phase::kForward, kv.value()});
  }
  if (with_moments) {
    for (const auto& g : optimizer_->groups()) {
      for (const auto& p : g.params) {
        rec.tensors.push_back({family::kExpAvg + p.name, Phase::kOptimizer, p.exp_avg});
        rec.tensors.push_back({family::kExpAvgSq + p.name, Phase::kOptimizer, p.exp_avg_sq});
        rec.tensors.push_back({family::kOptimizerStep + p.name, Phase::kOptimizer, p.step});
      }
    }
  }
  for (const auto& kv : model_->named_parameters()) {
    rec.tensors.push_back({family::kParams + kv.key(), Phase::kOptimizer, kv.value()});
  }
  if (scaler_) {
    rec.tensors.push_back({tensor_name::kLossScale, Phase::kOptimizer, scaler_->scale_tensor()});
    rec.tensors.push_back(
        {tensor_name::kGrowthTracker, Phase::kOptimizer, scaler_->growth_tracker()});
  }
}

void Trainer::record_eval(StepRecord& rec, const ZeroShotResult& r) const {
  rec.tensors.push_back({tensor_name::kZeroShotTop1, Phase::kEval, f64_scalar(r.top1)});
  rec.tensors.push_back({tensor_name::kZeroShotTop5, Phase::kEval, f64_scalar(r.top5)});
  rec.tensors.push_back({tensor_name::kZeroShotClassifier, Phase::kEval, r.classifier});
  rec.tensors.push_back({tensor_name::kZeroShotLogits, Phase::kEval, r.logits});
}

void Trainer::record_step(StepRecord& rec, const std::vector<Batch>& micro, const CaptureTape& tape,
                          const StepResult& r, double lr) const {
  // What this step consumed: every micro-batch, in order.
  auto consumed = [&](torch::Tensor Batch::*field) {
    if (micro.size() == 1) return micro[0].*field;
    std::vector<torch::Tensor> parts;
    for (const auto& mb : micro) parts.push_back(mb.*field);
    return torch::cat(parts);
  };
  rec.tensors.push_back({tensor_name::kSampleIds, Phase::kData, consumed(&Batch::sample_ids)});
  if (micro[0].sample_keys.defined())
    rec.tensors.push_back({tensor_name::kSampleKeys, Phase::kData, consumed(&Batch::sample_keys)});
  rec.tensors.push_back({tensor_name::kImages, Phase::kData, consumed(&Batch::images)});
  rec.tensors.push_back({tensor_name::kTexts, Phase::kData, consumed(&Batch::tokens)});
  for (const auto& [name, t] : tape.entries()) {
    rec.tensors.push_back({capture_log_name(name), Phase::kForward, t});
  }
  rec.tensors.push_back({tensor_name::kLogitScale, Phase::kForward, r.out.logit_scale.detach()});
  rec.tensors.push_back({tensor_name::kLoss, Phase::kForward, r.loss.detach()});
  // Backward visits parameters roughly in reverse registration order.
  auto params = model_->named_parameters();
  for (auto it = params.end(); it != params.begin();) {
    --it;
    if (it->value().grad().defined()) {
      rec.tensors.push_back({family::kGrads + it->key(), Phase::kBackward, it->value().grad()});
    }
  }
  rec.tensors.push_back({tensor_name::kLr, Phase::kOptimizer, f64_scalar(lr)});
  if (scaler_)
    rec.tensors.push_back({tensor_name::kFoundInf, Phase::kOptimizer, scaler_->found_inf()});
  const char* group_names[] = {"no_decay", "decay"};
  for (size_t g = 0; g < optimizer_->groups().size(); ++g) {
    rec.tensors.push_back({std::string(family::kGroupLr) + group_names[g], Phase::kOptimizer,
                           f64_scalar(optimizer_->groups()[g].lr)});
  }
  record_state(rec, true);
}

}  // namespace cliprepro
