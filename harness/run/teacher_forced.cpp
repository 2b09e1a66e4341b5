#include "harness/run/teacher_forced.h"

#include <stdexcept>

#include "harness/log/digest.h"
#include "harness/run/replay_log.h"
#include "src/dist/process_group.h"
#include "src/train/determinism.h"
#include "src/train/trainer.h"

namespace cliprepro {

namespace {

std::string how_to_log(int64_t step) {
  return "; log the reference with [log] full-tensors = [\"*\"] and full-steps including " +
         std::to_string(step - 1) + " and " + std::to_string(step) + " (e.g. full-steps = [\"" +
         std::to_string(step - 1) + ":" + std::to_string(step + 1) + "\"])";
}

}  // namespace

void require_reference_state(const LogReader& ref, int64_t step) {
  if (step < 1 || step > ref.last_complete_step()) {
    throw std::runtime_error(ref.path().string() + ": step " + std::to_string(step) +
                             " is not a logged optimizer step (1 … " +
                             std::to_string(ref.last_complete_step()) + ")");
  }
  bool any_param = false, any_grad = false;
  for (const auto& entry : ref.series()) {
    const std::string& name = entry.first;  // not a structured binding: the lambda captures it
    const TensorSeries& s = entry.second;
    const bool param = name.rfind(family::kParams, 0) == 0;
    const bool state = param || name.rfind(family::kBuffers, 0) == 0 ||
                       (step > 1 && (name.rfind(family::kExpAvg, 0) == 0 ||
                                     name.rfind(family::kExpAvgSq, 0) == 0 ||
                                     name.rfind(family::kOptimizerStep, 0) == 0));
    auto need = [&](int64_t at, const char* what) {
      if (!s.has_full(at)) {
        throw std::runtime_error(ref.path().string() + ": teacher forcing at step " +
                                 std::to_string(step) + " needs the full " + what + " " + name +
                                 " at step " + std::to_string(at) + how_to_log(step));
      }
    };
    if (state) need(step - 1, "state tensor");
    if (param) {
      need(step, "parameter");
      any_param = true;
    }
    if (name.rfind(family::kGrads, 0) == 0) {
      need(step, "gradient");
      any_grad = true;
    }
  }
  if (!any_param || !any_grad) {
    throw std::runtime_error(ref.path().string() + ": no parameters or gradients logged" +
                             how_to_log(step));
  }
}

TeacherForcer::TeacherForcer(const LogReader& ref, const Scenario& variant,
                             const std::vector<std::string>& extra_fp32)
    : ref_(ref), variant_(scenario_argument(variant)) {
  if (dist::launch_world_size() > 1)
    throw std::runtime_error("cliprepro attribute runs at world size 1 (not under torchrun)");
  TrainConfig cfg = variant.train;
  auto& fp32 = cfg.numerics.fp32_modules;
  fp32.insert(fp32.end(), extra_fp32.begin(), extra_fp32.end());
  cfg.eval.zeroshot_frequency = 0;
  cfg.checkpoint = CheckpointConfig{};
  cfg.flip = BitFlip{};
  if (cfg.seeding == Seeding::kOpenClip && cfg.data.dataset_type != DatasetType::kSynthetic &&
      cfg.data.dataset_type != DatasetType::kReplay) {
    throw std::runtime_error(variant_ +
                             ": seeding = \"openclip\" reads real data in loader order only; "
                             "teacher forcing needs one step's batch alone (replay the "
                             "reference's log instead: dataset-type = \"replay\")");
  }
  cfg.data.workers = 0;  // the batch of one step, made here (the same bits as the loader's)
  apply_process_environment(cfg.determinism);
  apply_determinism(cfg.determinism, uint64_t(cfg.seed));
  std::shared_ptr<const ReplaySource> replay;
  if (cfg.data.dataset_type == DatasetType::kReplay) replay = open_replay_log(cfg, 0);
  trainer_ = std::make_unique<Trainer>(cfg, std::move(replay));
}

TeacherForcer::~TeacherForcer() = default;

TeacherForcedStep TeacherForcer::step(int64_t step) {
  require_reference_state(ref_, step);
  if (step > trainer_->total_steps()) {
    throw std::runtime_error(variant_ + " has " + std::to_string(trainer_->total_steps()) +
                             " steps, not " + std::to_string(step));
  }
  TeacherForcedStep out;
  out.step = step;
  out.has_scaler = trainer_->scaler() != nullptr;
  out.scaler_restored = trainer_->restore_state(
      [&](const std::string& name) -> torch::Tensor {
        const auto* s = ref_.find(name);
        if (s == nullptr || !s->has_full(step - 1)) return {};
        return ref_.read_full(name, step - 1);
      },
      step - 1);
  StepRecord rec;
  trainer_->train_step(step - 1, &rec);
  for (const auto& t : rec.tensors) {
    out.tensors[t.name] = t.tensor.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true);
  }
  // Same batch, same learning rate: otherwise the difference is not this step's rounding.
  for (const char* name :
       {tensor_name::kSampleIds, tensor_name::kImages, tensor_name::kTexts, tensor_name::kLr}) {
    const auto* s = ref_.find(name);
    const int64_t row = s == nullptr ? -1 : s->row_at(step);
    const bool found = row >= 0;
    if (found && tensor_digest(out.tensors.at(name)) == s->digests[size_t(row)]) continue;
    throw std::runtime_error(
        variant_ + ": step " + std::to_string(step) + "'s " + name +
        (found ? " differs from the reference's (" + ref_.path().string() + ")"
               : " is not in the reference log") +
        ": teacher forcing compares one step on the same batch and schedule; use a variant of "
        "the reference's scenario that changes precision or [numerics] (or replay its log)");
  }
  return out;
}

}  // namespace cliprepro
