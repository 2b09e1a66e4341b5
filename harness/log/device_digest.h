// The log's digest (XXH3-64 of the raw bytes, harness/log/digest.h) of a tensor where it lives, so
// a CUDA tensor is not copied to the host to be digested.
//
// XXH3 folds its 8 lane accumulators once per 1 KiB block (a "scramble"), and within a block it
// only adds to them. So the bulk is data-parallel: tensor ops on the tensor's device reduce each
// block to its 8 lane sums (64 bytes per 1 KiB), and the host runs the short sequential part
// over those sums: the scrambles, the last partial block, and the final merge. Bit-identical to
// XXH3_64bits for every length (test DigestStats.DeviceDigestIsXxh3); 1/16 of the bytes, and
// the last block, cross to the host.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace cliprepro {

// The digest of a tensor on any device: on the CPU, XXH3 over its bytes; elsewhere
// xxh3_by_blocks.
uint64_t device_digest(const torch::Tensor& t);
// The block-parallel route, on the tensor's own device (the CPU included, which is how the CPU
// tests check it against XXH3_64bits).
uint64_t xxh3_by_blocks(const torch::Tensor& t);

}  // namespace cliprepro
