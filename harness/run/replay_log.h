// dataset-type = "replay": a recorded log (a cliprepro run's, or one written by the Python
// recorder of OpenCLIP's own trainer; format version 2) as the trainer's ReplaySource.
#pragma once
#include <memory>
#include <string>

#include "src/train/replay.h"
#include "src/train/train_config.h"

namespace cliprepro {

// The log this rank replays: `train_data` itself (a `.h5`, world size 1), or `logs[rank]` of a
// `<name>.manifest.json` (any `.json`; paths relative to the manifest), whose world_size must be
// the run's. The log's resolved_config gives train-num-samples; its world-size, batch-size and
// accum-freq (where recorded) must be the run's. Throws std::runtime_error naming the file.
std::shared_ptr<const ReplaySource> open_replay_log(const TrainConfig& cfg, int rank);

}  // namespace cliprepro
