// dataset-type = "replay": the trainer is fed exactly the batches a recorded run logged, and
// starts from the weights it logged at step 0. The log is read by the harness
// (harness/run/replay_log.h implements ReplaySource with the log reader); this layer only
// splits a step's tensors into micro-batches, checks them against the run, and loads the state.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "src/data/synthetic_shapes.h"
#include "src/model/clip.h"

namespace cliprepro {

// The full data/* tensors of one optimizer step, bits as stored: with accum-freq A the step's A
// micro-batches concatenated (A·B rows).
struct ReplayStepData {
  torch::Tensor sample_ids;   // (A·B,) int64
  torch::Tensor images;       // (A·B, 3, S, S) float32, as the model received them
  torch::Tensor texts;        // (A·B, context) int64
  torch::Tensor sample_keys;  // (A·B, 256) uint8 where the log has data/sample_keys, else undefined
};

// A recorded run's batches and initial state. Errors are std::runtime_error naming the log.
class ReplaySource {
 public:
  virtual ~ReplaySource() = default;
  // The log read (for messages).
  virtual std::string origin() const = 0;
  // Samples per epoch of the recorded run (its train-num-samples).
  virtual int64_t train_num_samples() const = 0;
  // Throws, naming the first step and tensor missing and how to record them, unless every
  // optimizer step first..last has its full data/* tensors.
  virtual void require_steps(int64_t first, int64_t last) const = 0;
  // Optimizer step `step` (1-based) as recorded.
  virtual ReplayStepData step_data(int64_t step) const = 0;
  // The full tensor `log_name` (params/…, buffers/…) at step 0; throws naming it when absent.
  virtual torch::Tensor initial_tensor(const std::string& log_name) const = 0;
};

// What the run expects of each step's tensors.
struct ReplayShape {
  int64_t batch_size = 0;  // per rank
  int64_t accum_freq = 1;
  int64_t image_size = 0;
  int64_t context_length = 0;
  // The dtype the model receives images in (fp16/bf16 under the low precisions). Images are
  // float32 (cliprepro and the recorder log the loader's batch, before the cast) or already in
  // it (a log of the model's input): the cast of either gives the same bits.
  torch::ScalarType input_dtype = torch::kFloat32;
};

// Micro-batch `m` (0-based over the run) = rows [j·B, (j+1)·B) of optimizer step m / A + 1,
// j = m % A; shapes and dtypes checked against `shape`. Labels are -1 (no classes).
Batch replay_batch(const ReplaySource& source, int64_t m, const ReplayShape& shape);

// Before training: every optimizer step first..last is recorded (ReplaySource::require_steps)
// and step `first`'s tensors are what the run needs (no-op when first > last).
void check_replay(const ReplaySource& source, int64_t first, int64_t last,
                  const ReplayShape& shape);

// Replaces every parameter and buffer of `model` by the recorded step-0 tensor of the same name
// (same shape and dtype required; a missing one is an error naming it).
void load_replay_state(const ReplaySource& source, Clip& model);

}  // namespace cliprepro
