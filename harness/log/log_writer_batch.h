// The step batch LogWriter::write() prepares on the training thread (digests, statistics, copies
// of full tensors) and its writer thread turns into HDF5 rows: shared by log_writer.cpp and
// log_step_prepare.cpp only.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "harness/log/log_writer.h"

namespace cliprepro {

// One tensor of one step, prepared on the training thread.
struct LogWriter::Row {
  std::string name;
  Phase phase;
  torch::ScalarType dtype;
  std::vector<hsize_t> shape;
  int32_t order = 0;
  uint64_t digest = 0;
  StatRow stats{};
  bool may_full = false;
  torch::Tensor full;  // owned contiguous CPU copy, or undefined
};

struct LogWriter::StepBatch {
  int64_t step = 0;
  std::vector<Row> rows;
  std::vector<Row> declarations;  // tensors seen for the first time but not logged at this step
  size_t bytes = 0;
};

}  // namespace cliprepro
