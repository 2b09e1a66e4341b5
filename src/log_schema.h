// The contract between the trainer and the log: what a step record holds, the tensor families
// its names start with, and the statistics columns logged beside each digest. The trainer
// produces it (src/train), the writer, reader, compare and report consume it (harness); neither
// side spells a family or a column any other way. Layout on disk: docs/hdf5-layout.md.
#pragma once
#include <torch/types.h>

#include <array>
#include <functional>
#include <string>
#include <vector>

namespace cliprepro {

// Phase of a tensor within a step, in execution order.
enum class Phase { kData, kForward, kBackward, kOptimizer, kEval };

inline const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kData:
      return "data";
    case Phase::kForward:
      return "forward";
    case Phase::kBackward:
      return "backward";
    case Phase::kOptimizer:
      return "optimizer";
    case Phase::kEval:
      return "eval";
  }
  return "?";
}

struct NamedTensor {
  std::string name;  // family/name, e.g. "params/visual.conv1.weight"
  Phase phase;
  torch::Tensor tensor;
};

// Step 0 is the initial state; step s >= 1 the s-th optimizer update.
struct StepRecord {
  int64_t step = 0;
  std::vector<NamedTensor> tensors;  // in execution order
};

using StepObserver = std::function<void(const StepRecord&)>;

// Tensor families: the prefix of every logged name.
namespace family {
inline constexpr const char* kData = "data/";
inline constexpr const char* kActivations = "activations/";  // module outputs (capture points)
inline constexpr const char* kBnBatch = "bn_batch/";  // BatchNorm batch statistics (.mean, .invstd)
inline constexpr const char* kScalars = "scalars/";
inline constexpr const char* kGrads = "grads/";
inline constexpr const char* kParams = "params/";
inline constexpr const char* kBuffers = "buffers/";  // BatchNorm running statistics
inline constexpr const char* kExpAvg = "optimizer/exp_avg/";
inline constexpr const char* kExpAvgSq = "optimizer/exp_avg_sq/";
inline constexpr const char* kOptimizerStep = "optimizer/step/";
inline constexpr const char* kGroupLr = "optimizer/lr/";  // per parameter group
inline constexpr const char* kScaler = "scaler/";
inline constexpr const char* kEval = "eval/";
}  // namespace family

// Tensors with fixed names.
namespace tensor_name {
inline constexpr const char* kSampleIds = "data/sample_ids";
// (B, 256) uint8: each sample's WebDataset __key__, UTF-8 and NUL-padded, in recordings of
// OpenCLIP's WebDataset pipeline (python/cliprepro/record_wds.py); a replay logs them as read.
inline constexpr const char* kSampleKeys = "data/sample_keys";
inline constexpr const char* kImages = "data/images";
inline constexpr const char* kTexts = "data/texts";
inline constexpr const char* kLogitScale = "scalars/logit_scale";
inline constexpr const char* kLoss = "scalars/loss";
inline constexpr const char* kLr = "scalars/lr";
inline constexpr const char* kLossScale = "scaler/scale";
inline constexpr const char* kGrowthTracker = "scaler/growth_tracker";
inline constexpr const char* kFoundInf = "scaler/found_inf";
inline constexpr const char* kZeroShotTop1 = "eval/zeroshot_top1";
inline constexpr const char* kZeroShotTop5 = "eval/zeroshot_top5";
inline constexpr const char* kZeroShotClassifier = "eval/zeroshot_classifier";
inline constexpr const char* kZeroShotLogits = "eval/zeroshot_logits";
}  // namespace tensor_name

// Columns of the per-tensor statistics beside each digest (the `stats` column of /digests).
enum class StatColumn { kMin, kMax, kMean, kStd, kL2, kNan, kInf, kZero };
inline constexpr std::array<const char*, 8> kStatColumns{"min", "max", "mean", "std",
                                                         "l2",  "nan", "inf",  "zero"};
inline constexpr size_t stat_index(StatColumn c) { return size_t(c); }
using StatRow = std::array<double, kStatColumns.size()>;

}  // namespace cliprepro
