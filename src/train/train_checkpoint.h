// Training checkpoints: everything a run needs to continue bit for bit — model parameters and
// buffers, AdamW moments and step counts, GradScaler state, the default generators' states —
// in one safetensors file whose metadata holds the step and the settings that shape the
// trajectory. The scheduler and the data position are functions of the step.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "src/train/adamw.h"
#include "src/train/precision.h"

namespace cliprepro {

struct TrainState {
  torch::nn::Module* model = nullptr;
  AdamW* optimizer = nullptr;
  GradScaler* scaler = nullptr;  // null unless `amp`
};

inline constexpr const char* kTrainCheckpointFormat = "cliprepro-train-checkpoint";

// Writes atomically. `trajectory` (JSON text) names the settings a resumed run must share.
void save_train_checkpoint(const std::string& path, const TrainState& state, int64_t step,
                           const std::string& trajectory);

// Restores `state` in place and returns the step the checkpoint was written after. Throws
// naming the file when it is not a cliprepro training checkpoint, when its tensors do not fit
// the model/optimizer, or when its trajectory settings differ from `trajectory` (listing them).
int64_t load_train_checkpoint(const std::string& path, const TrainState& state,
                              const std::string& trajectory);

}  // namespace cliprepro
