// Digest and statistics of a host tensor in one pass over its bytes (block by block, while the
// block is in cache): the log writer's per-tensor cost on the training thread.
#pragma once
#include <torch/types.h>

#include <cstdint>

#include "harness/log/host_digest.h"
#include "harness/log/tensor_stats.h"

namespace cliprepro {

struct DigestStats {
  uint64_t digest = 0;
  TensorStats stats;
};

// `host` must be a contiguous CPU tensor. Same digest as tensor_digest(), same statistics as
// tensor_stats() up to float rounding for float32, bfloat16 and float16 (block sums in float,
// merged in float64).
// The work is host_digest_stats(), which the Python recorder calls too.
DigestStats digest_and_stats(const torch::Tensor& host, bool with_stats,
                             SimdPath path = SimdPath::kAuto);

}  // namespace cliprepro
