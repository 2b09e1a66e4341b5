// Resolved training configuration; field names follow OpenCLIP's command-line flags.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/train/determinism.h"

namespace cliprepro {

// [debug] flip: compare's self-test. After step `step`'s update, one bit of one live state tensor
// (params/*, buffers/*, optimizer/exp_avg*/*) is flipped in place — so the run's log differs from
// that step on. Unset fields are drawn from `seed`.
struct BitFlip {
  int64_t step = 0;      // 0 = off
  std::string tensor;    // log name; "" = random
  int64_t element = -1;  // flat index; -1 = random
  int bit = -1;          // 0 = least significant; -1 = random
  uint64_t seed = 0;
};

struct TrainConfig {
  std::string model = "tiny";  // shipped config name or path to an OpenCLIP model-config JSON
  std::string precision = "fp32";
  std::string device = "cpu";  // "cpu" or "cuda"
  int64_t batch_size = 64;
  double lr = 5e-4;
  double wd = 0.2;
  int64_t warmup = 10000;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double grad_clip_norm = 0.0;  // 0 = off
  int64_t seed = 0;
  int64_t epochs = 32;
  int64_t steps = 0;  // cliprepro extension: total optimizer steps; 0 = from epochs
  bool local_loss = false, gather_with_grad = false;
  int64_t accum_freq = 1;    // OpenCLIP's --accum-freq: micro-batches per optimizer step
  std::string dist_backend;  // "gloo" | "nccl"; empty = gloo on CPU, nccl on CUDA
  int64_t world_size = 1;    // from the launcher (torchrun's WORLD_SIZE), not from the scenario
  std::string dataset_type = "synthetic";  // "synthetic" | "csv" | "webdataset"
  std::string train_data;                  // CSV file or WebDataset shard list (braces, "::")
  std::string csv_img_key = "filepath", csv_caption_key = "title", csv_separator = "\t";
  double aug_scale_min = 0.9, aug_scale_max = 1.0;  // aug-cfg scale: RandomResizedCrop's
  double aug_re_prob = 0.0;   // aug-cfg re_prob: ignored without use_timm, as by OpenCLIP
  bool aug_use_timm = false;  // aug-cfg use_timm: timm's pipeline (RRC + RandomErasing pixel)
  // cliprepro extension: leave out (and report) samples that cannot be read or decoded instead
  // of stopping with an error; they are found when the data is indexed, before training.
  bool skip_bad_samples = false;
  // [numerics], cliprepro extensions (see ModelNumerics).
  bool bn_fp32 = false;
  double bn_eps = 1e-5;
  int64_t train_num_samples = 1024;
  int64_t val_num_samples = 256;
  int64_t zeroshot_frequency = 1;  // epochs between zero-shot evals; 0 = off
  std::string imagenet_val;        // OpenCLIP's --imagenet-val: an ImageFolder for zero-shot
  std::vector<std::string> zeroshot_templates = {"a photo of a {}."};
  DeterminismConfig determinism;
  BitFlip flip;
  // Checkpoints (rank 0 writes <checkpoint_dir>/step_<s>.safetensors) and resume.
  std::string resume;            // OpenCLIP's --resume: a cliprepro training checkpoint
  int64_t save_frequency = 0;    // OpenCLIP's --save-frequency: every N epochs; 0 = off
  int64_t save_every_steps = 0;  // cliprepro extension: every N steps; 0 = off
  // > 0: end the run after this step (bisect re-runs); the lr schedule still spans
  // total_steps(), so the steps run are those of the full run. Not a trajectory setting.
  int64_t stop_after_step = 0;
  std::string checkpoint_dir;  // set by the harness: <out>/<name>.checkpoints

  // batch-size is per rank, as in OpenCLIP: one (micro-)batch consumes batch_size * world_size
  // samples, one optimizer step accum_freq of them.
  int64_t batches_per_epoch() const { return train_num_samples / (batch_size * world_size); }
  int64_t steps_per_epoch() const { return batches_per_epoch() / accum_freq; }
  int64_t total_steps() const { return steps > 0 ? steps : steps_per_epoch() * epochs; }
};

}  // namespace cliprepro
