// The log format (docs/hdf5-layout.md): its version and the /digests table, one row per tensor
// per logged step for every tensor of the run in one dataset, so that a flush appends to one
// dataset instead of four per tensor.
#pragma once
#include <array>
#include <cstdint>

#include "harness/log/h5_types.h"
#include "src/log_schema.h"

namespace cliprepro {

// 2: one /digests table for all tensors. 1: steps/digest/order/stats datasets in each tensor's
// group, which made each flush touch four datasets per tensor; LogReader still reads it.
inline constexpr int kLogFormatVersion = 2;
inline constexpr const char* kDigestTable = "digests";

struct DigestRow {
  int64_t step = 0;
  int32_t series = 0;  // the tensor: its group's `series` attribute under /tensors
  int32_t order = 0;   // execution index of the tensor within its step
  uint64_t digest = 0;
  StatRow stats{};  // kStatColumns; only when the log has statistics
};

// Compound types for DigestRow: little-endian and packed on disk, native in memory. Without
// `stats` the types have no stats member (goldens, which keep digests only).
H5Id digest_row_file_type(bool stats);
H5Id digest_row_mem_type(bool stats);

}  // namespace cliprepro
