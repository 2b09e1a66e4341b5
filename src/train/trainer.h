// The training loop, OpenCLIP's order of operations per step:
// scheduler -> zero_grad -> forward -> loss -> backward -> [clip] -> AdamW step -> clamp
// logit_scale. Step numbering: step 0 is the initial state; step s >= 1 is the s-th optimizer
// update (forward/backward on batch s-1, then the update).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/data/batch_prefetcher.h"
#include "src/data/openclip_loader.h"
#include "src/data/real_data.h"
#include "src/data/synthetic_shapes.h"
#include "src/data/word_tokenizer.h"
#include "src/dist/process_group.h"
#include "src/log_schema.h"
#include "src/model/clip.h"
#include "src/train/adamw.h"
#include "src/train/bit_flip.h"
#include "src/train/precision.h"
#include "src/train/replay.h"
#include "src/train/train_config.h"
#include "src/train/train_data.h"
#include "src/train/zero_shot.h"

namespace cliprepro {

using ProgressFn = std::function<void(int64_t step, int64_t total, double loss, double lr)>;
// Told where train_step is: "forward" (forward and loss), "backward", "optimizer" (unscale,
// clip, AdamW, clamp), then "" when the step's numerics are done (cliprepro trace).
using PhaseObserver = std::function<void(const char* phase)>;
// A state tensor by log name (params/…, buffers/…, optimizer/…, scaler/…); undefined if absent.
using StateOf = std::function<torch::Tensor(const std::string& log_name)>;

struct TrainSummary {
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0;
  ZeroShotResult zero_shot_before, zero_shot_after;
};

class Trainer {
 public:
  // `replay` feeds dataset-type "replay" (required then, unused otherwise): the recorded batches
  // and step-0 state (src/train/replay.h).
  explicit Trainer(const TrainConfig& cfg, std::shared_ptr<const ReplaySource> replay = nullptr);

  int64_t total_steps() const { return cfg_.total_steps(); }
  // The step the run continues from: 0, or the checkpoint's step when resuming.
  int64_t start_step() const { return start_step_; }
  // The settings that must match for a checkpoint to continue this run (JSON text).
  std::string trajectory() const;
  void save_checkpoint(const std::string& path, int64_t step) const;
  TrainSummary run(const StepObserver& observe, const ProgressFn& progress);

  // Optimizer step `b` (0-based) on micro-batches b*accum_freq ...; returns the (last
  // micro-batch's) loss. Used by run() and benchmarks.
  double train_step(int64_t b, StepRecord* record);
  void set_phase_observer(PhaseObserver observer) { phase_observer_ = std::move(observer); }
  // Teacher forcing (cliprepro attribute): the live state (parameters, buffers, AdamW moments
  // and step counts, loss scale) replaced by `state_of`, a reference run's state after step
  // `step`, so that train_step(step) runs step `step + 1` from it. Step 0 has no moments (they
  // stay zero). Throws naming a missing tensor or one of another shape or dtype. Returns
  // whether the loss scale was restored: false under `amp` when the reference logged none (the
  // scaler keeps its initial scale) and in every precision without a scaler.
  bool restore_state(const StateOf& state_of, int64_t step);
  // Global (micro-)batch `m` of the run: epoch m / batches_per_epoch, this rank's slice.
  // With `workers` > 0 (csv, webdataset) it comes from the loader's threads, made ahead;
  // under seeding = "openclip" from OpenCLIP's loader order (in order only).
  Batch batch_for(int64_t m);
  Clip& model() { return model_; }
  AdamW& optimizer() { return *optimizer_; }
  GradScaler* scaler() { return scaler_.get(); }  // `amp` only
  const ModelConfig& model_config() const { return model_cfg_; }
  int rank() const { return pg_ ? pg_->rank() : 0; }
  // Samples the epoch permutation runs over: the data set's size (synthetic: train-num-samples).
  int64_t dataset_size() const { return real_ ? real_->size() : cfg_.data.train_num_samples; }
  // Zero-shot runs on `imagenet-val` when given, else on the synthetic set's classes; real or
  // replayed training data without imagenet-val has none (OpenCLIP skips it too).
  // `imagenet-val` on rank 0 only, as OpenCLIP's evaluate() on the master.
  bool zero_shot_enabled() const {
    return cfg_.eval.zeroshot_frequency > 0 && (cfg_.data.dataset_type == DatasetType::kSynthetic ||
                                                (!cfg_.eval.imagenet_val.empty() && rank() == 0));
  }
  // The config as run: train-num-samples from the data (csv) or the replayed log.
  const TrainConfig& config() const { return cfg_; }
  int world_size() const { return pg_ ? pg_->world_size() : 1; }
  // [debug] flip with every field resolved (random ones drawn); step 0 when off.
  const BitFlip& bit_flip() const { return flip_; }
  // Training samples left out when the data was indexed (see RealData::skipped).
  std::vector<SkippedSample> skipped_samples() const {
    return real_ ? real_->skipped() : std::vector<SkippedSample>{};
  }

 private:
  void record_state(StepRecord& rec, bool with_moments) const;
  void record_eval(StepRecord& rec, const ZeroShotResult& r) const;
  void maybe_save_checkpoint(int64_t step) const;
  // The CLIP BPE tokenizer, created once; `user` names what needs it when the model's
  // vocabulary is not CLIP's.
  std::shared_ptr<const ClipTokenizer> clip_tokenizer(const std::string& user);
  // DDP's forward: rank 0's buffers are broadcast first when the previous forward had grad on.
  ClipOutput ddp_forward(const Batch& batch, CaptureTape* tape);
  torch::Tensor loss_of(const torch::Tensor& image_features, const torch::Tensor& text_features,
                        const torch::Tensor& logit_scale, CaptureTape* tape) const;
  struct StepResult {
    ClipOutput out;      // of the (last) micro-batch
    torch::Tensor loss;  // of the (last) micro-batch
  };
  // Forward, loss and backward of one optimizer step's micro-batches (accum-freq).
  StepResult forward_backward(const std::vector<Batch>& micro, CaptureTape* tape);
  void optimizer_step();
  void enter_phase(const char* phase) const {
    if (phase_observer_) phase_observer_(phase);
  }
  // The step's log record, built in one place: data, captures, loss, gradients, lr, state.
  void record_step(StepRecord& rec, const std::vector<Batch>& micro, const CaptureTape& tape,
                   const StepResult& r, double lr) const;
  ZeroShotResult evaluate();
  LiveState live_state() const;
  // Constructor parts: what only the launch and the data can tell, the process group, resume.
  void check_schedule() const;
  void join_process_group();
  void resume_from(const std::string& checkpoint);
  ReplayShape replay_shape() const {
    return {cfg_.batch_size, cfg_.optim.accum_freq, model_cfg_.vision.image_size,
            model_cfg_.text.context_length, precision_.weight_dtype.value_or(torch::kFloat32)};
  }
  // Micro-batch m's dataset positions (this rank's slice of the epoch's permutation).
  BatchPrefetcher::Plan batch_plan(int64_t m) const;
  // A batch's images on the device, in the dtype the precision feeds the model.
  torch::Tensor input_images(const torch::Tensor& images) const;

  TrainConfig cfg_;
  std::unique_ptr<dist::ProcessGroup> pg_;  // world_size > 1 only
  ModelConfig model_cfg_;
  torch::Device device_;
  Clip model_{nullptr};
  std::unique_ptr<AdamW> optimizer_;
  PrecisionMode precision_;
  std::unique_ptr<GradScaler> scaler_;
  PhaseObserver phase_observer_;
  int64_t start_step_ = 0;
  bool ddp_sync_buffers_ = true;  // DDP's require_forward_param_sync
  WordTokenizer tokenizer_;
  SyntheticShapes train_set_, val_set_;
  std::unique_ptr<RealData> real_;                   // dataset-type csv / webdataset
  std::shared_ptr<const ReplaySource> replay_;       // dataset-type replay
  std::unique_ptr<BatchPrefetcher> prefetch_;        // workers > 0; after real_: destroyed first
  std::unique_ptr<OpenClipLoader> openclip_loader_;  // seeding = openclip; after real_ too
  std::shared_ptr<const ClipTokenizer> clip_tokenizer_;
  ZeroShotSet zero_shot_;
  BitFlip flip_;
};

}  // namespace cliprepro
