// The training configuration, nested by concern. Every scenario key that sets a member here is
// defined once, in src/train/train_config_keys.cpp (TOML name, doc, default, validator,
// trajectory flag); enumerations arrive parsed, so the trainer receives a valid config.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/data/dataset_type.h"
#include "src/train/config_key.h"
#include "src/train/determinism.h"

namespace cliprepro {

// OpenCLIP's --precision modes (src/train/precision.h says what each does).
enum class Precision { kFp32, kAmp, kAmpBf16, kFp16, kBf16, kPureFp16, kPureBf16 };
enum class Device { kCpu, kCuda };
enum class DistBackend { kGloo, kNccl };
// Where a run's random draws come from (scenario key `seeding`): cliprepro's own scheme (one
// generator per sample, so batches do not depend on the loader's workers), or OpenCLIP's
// (its initialisation order, sampler and per-worker generators: the run OpenCLIP makes).
enum class Seeding { kCliprepro, kOpenClip };
// Where the zero-shot classes and prompts come from (scenario key `zeroshot-classes`): the
// ImageFolder's folder names with `zeroshot-templates`, or OpenCLIP's zero_shot_eval (ImageNet's
// 1000 class names and OpenAI's 80 templates from the installed wheel, classes by folder index).
enum class ZeroShotClasses { kFolderNames, kOpenClipImagenet };

struct OptimConfig {
  double lr = 5e-4;
  double wd = 0.2;
  int64_t warmup = 10000;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double grad_clip_norm = 0.0;  // 0 = off
  int64_t accum_freq = 1;       // OpenCLIP's --accum-freq: micro-batches per optimizer step
};

struct AugConfig {                           // OpenCLIP's --aug-cfg
  std::array<double, 2> scale = {0.9, 1.0};  // RandomResizedCrop's
  double re_prob = 0.0;                      // ignored without use_timm, as by OpenCLIP
  bool use_timm = false;                     // timm's pipeline (RRC + RandomErasing pixel)
};

struct DataConfig {
  DatasetType dataset_type = DatasetType::kSynthetic;
  std::string train_data;  // CSV file or WebDataset shard list (braces, "::")
  std::string csv_img_key = "filepath", csv_caption_key = "title", csv_separator = "\t";
  AugConfig aug;
  bool skip_bad_samples = false;
  int64_t max_image_pixels = kDefaultMaxImagePixels;
  int64_t workers = 0;  // OpenCLIP's --workers: loader threads (0: decode in the training step)
  int64_t train_num_samples = 1024;
  int64_t val_num_samples = 256;
};

struct EvalConfig {
  int64_t zeroshot_frequency = 1;  // epochs between zero-shot evals; 0 = off
  std::string imagenet_val;        // OpenCLIP's --imagenet-val: an ImageFolder for zero-shot
  std::vector<std::string> zeroshot_templates = {"a photo of a {}."};
  ZeroShotClasses zeroshot_classes = ZeroShotClasses::kFolderNames;
};

struct DistConfig {
  bool local_loss = false, gather_with_grad = false;
  std::optional<DistBackend> dist_backend;  // unset: gloo on CPU, nccl on CUDA
  int64_t world_size = 1;  // from the launcher (torchrun's WORLD_SIZE), not from the scenario
};

struct NumericsConfig {  // [numerics], cliprepro extensions (see ModelNumerics)
  bool bn_fp32 = false;
  double bn_eps = 1e-5;
  std::vector<std::string> fp32_modules, low_precision_modules;  // module-name globs
};

struct CheckpointConfig {
  std::string resume;            // OpenCLIP's --resume: a cliprepro training checkpoint
  int64_t save_frequency = 0;    // OpenCLIP's --save-frequency: every N epochs; 0 = off
  int64_t save_every_steps = 0;  // cliprepro extension: every N steps; 0 = off
  // > 0: end the run after this step (bisect re-runs); the lr schedule still spans
  // total_steps(), so the steps run are those of the full run. Not a scenario key.
  int64_t stop_after_step = 0;
  std::string dir;  // set by the harness: <out>/<name>.checkpoints
};

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
  Precision precision = Precision::kFp32;
  Device device = Device::kCpu;
  int64_t batch_size = 64;
  int64_t seed = 0;
  Seeding seeding = Seeding::kCliprepro;
  int64_t epochs = 32;
  int64_t steps = 0;  // cliprepro extension: total optimizer steps; 0 = from epochs
  OptimConfig optim;
  DataConfig data;
  EvalConfig eval;
  DistConfig dist;
  NumericsConfig numerics;
  DeterminismConfig determinism;
  CheckpointConfig checkpoint;
  BitFlip flip;

  // batch-size is per rank, as in OpenCLIP: one (micro-)batch consumes batch_size * world_size
  // samples, one optimizer step accum_freq of them.
  int64_t batches_per_epoch() const {
    return data.train_num_samples / (batch_size * dist.world_size);
  }
  int64_t steps_per_epoch() const { return batches_per_epoch() / optim.accum_freq; }
  int64_t total_steps() const { return steps > 0 ? steps : steps_per_epoch() * epochs; }
};

// Every scenario key that sets a TrainConfig member, in the order docs list them.
const std::vector<ConfigKey<TrainConfig>>& train_config_keys();

// The settings that must match for a checkpoint to continue a run: every trajectory key
// ("section.key" names) plus the derived total-steps and world-size.
nlohmann::json trajectory_json(const TrainConfig& cfg);

template <>
struct EnumNames<Precision> {
  static const std::vector<std::pair<std::string_view, Precision>>& get();
};
template <>
struct EnumNames<Device> {
  static const std::vector<std::pair<std::string_view, Device>>& get();
};
template <>
struct EnumNames<DistBackend> {
  static const std::vector<std::pair<std::string_view, DistBackend>>& get();
};
template <>
struct EnumNames<Seeding> {
  static const std::vector<std::pair<std::string_view, Seeding>>& get();
};
template <>
struct EnumNames<ZeroShotClasses> {
  static const std::vector<std::pair<std::string_view, ZeroShotClasses>>& get();
};
template <>
struct EnumNames<DatasetType> {
  static const std::vector<std::pair<std::string_view, DatasetType>>& get();
};

}  // namespace cliprepro
