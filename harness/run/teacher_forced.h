// One teacher-forced step (cliprepro attribute): a variant's numerics run for one step from a
// reference run's exact state, on the reference's batch, so its error is that step's rounding
// alone, with no trajectory drift.
#pragma once
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/log/log_reader.h"
#include "harness/scenario/scenario.h"

namespace cliprepro {

class Trainer;

struct TeacherForcedStep {
  int64_t step = 0;
  // The variant's step-`step` record by log name, detached CPU copies.
  std::map<std::string, torch::Tensor> tensors;
  bool has_scaler = false;       // the variant runs `amp` (a GradScaler)
  bool scaler_restored = false;  // its loss scale came from the reference (else: initial scale)
};

// What a reference log must hold for teacher forcing at `step`: every parameter and buffer (and
// after step 1 every AdamW moment and step count) in full at `step - 1`, and the parameters and
// gradients in full at `step`. Throws std::runtime_error naming the first missing tensor and the
// [log] settings that record them.
void require_reference_state(const LogReader& ref, int64_t step);

// The variant's trainer, built once (zero-shot, checkpoints and loader threads off; world size 1)
// with `extra_fp32` appended to its [numerics] fp32-modules, and stepped from the reference's
// state as often as asked. Throws std::runtime_error (or a scenario's std::invalid_argument).
class TeacherForcer {
 public:
  TeacherForcer(const LogReader& ref, const Scenario& variant,
                const std::vector<std::string>& extra_fp32 = {});
  ~TeacherForcer();
  TeacherForcer(const TeacherForcer&) = delete;
  TeacherForcer& operator=(const TeacherForcer&) = delete;

  // Step `step` (1-based) from the reference's state after step - 1. The variant's batch and
  // learning rate must be the reference's (their digests are compared: a variant of the
  // reference's scenario that changes precision or numerics has them).
  TeacherForcedStep step(int64_t step);

 private:
  const LogReader& ref_;
  std::string variant_;  // scenario_argument, for messages
  std::unique_ptr<Trainer> trainer_;
};

}  // namespace cliprepro
