// 64-bit digest of a tensor's raw bytes: XXH3_64bits (seed 0) over its elements in
// C-contiguous order, as stored in memory (little-endian). Recomputable from stored bits:
// `xxhash.xxh3_64_intdigest(np_array.tobytes())` in Python.
#pragma once
#include <torch/types.h>

#include <cstddef>
#include <cstdint>

#include "harness/log/host_digest.h"  // bytes_digest

namespace cliprepro {

uint64_t tensor_digest(const torch::Tensor& t);

// Contiguous CPU copy (no copy when already so): the bytes that are digested and stored.
torch::Tensor host_contiguous(const torch::Tensor& t);

}  // namespace cliprepro
