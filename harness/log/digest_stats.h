// Digest and statistics of a host tensor in one pass over its bytes (block by block, while the
// block is in cache): the log writer's per-tensor cost on the training thread.
#pragma once
#include <torch/types.h>

#include <cstdint>

#include "harness/log/tensor_stats.h"

namespace cliprepro {

struct DigestStats {
  uint64_t digest = 0;
  TensorStats stats;
};

// kAuto: the float32 statistics pass runs as AVX2 code where the CPU has it; kBaseline forces
// the SSE2 copy. Both give the same bits (tests check it); the digest chooses its own path.
enum class SimdPath { kAuto, kBaseline };

// `host` must be a contiguous CPU tensor. Same digest as tensor_digest(), same statistics as
// tensor_stats() up to float rounding for float32 (block sums in float, merged in float64).
DigestStats digest_and_stats(const torch::Tensor& host, bool with_stats,
                             SimdPath path = SimdPath::kAuto);

}  // namespace cliprepro
