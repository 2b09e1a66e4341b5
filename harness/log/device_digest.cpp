#include "harness/log/device_digest.h"

#include <algorithm>
#include <vector>

#include "harness/log/digest.h"

namespace cliprepro {
namespace {

constexpr int64_t kStripe = 64;  // 8 lanes of 8 bytes
constexpr int64_t kStripesPerBlock = kXxh3Block / kStripe;
constexpr int64_t kBlock = kXxh3Block;
constexpr int64_t kBlocksPerChunk = 8192;  // bounds device temporaries

// Secret words per (stripe, lane) of a block: stripe s uses the secret from byte 8·s.
torch::Tensor block_keys(const torch::Device& device) {
  auto keys = torch::empty({kStripesPerBlock, 8}, torch::kInt64);
  xxh3_block_keys(static_cast<uint64_t*>(keys.data_ptr()));
  return keys.to(device);
}

// Per block, what XXH3_accumulate_512 adds to each lane over the block's stripes: the
// 32x32->64 product of the keyed word's halves, plus the neighbouring lane's raw word. uint64
// arithmetic is done in int64 tensors (two's complement: the same bits, wrapping).
torch::Tensor block_lane_sums(const torch::Tensor& words, const torch::Tensor& keys) {
  const int64_t n = words.size(0);
  auto w = words.view({n, kStripesPerBlock, 8});
  auto keyed = torch::bitwise_xor(w, keys);
  auto lo = torch::bitwise_and(keyed, 0xFFFFFFFFLL);
  auto hi = torch::bitwise_and(torch::bitwise_right_shift(keyed, 32), 0xFFFFFFFFLL);
  auto swapped = w.view({n, kStripesPerBlock, 4, 2}).flip(-1).reshape({n, kStripesPerBlock, 8});
  return (lo * hi + swapped).sum(1);  // (n, 8)
}

}  // namespace

uint64_t device_digest(const torch::Tensor& t) {
  return t.is_cpu() ? tensor_digest(t) : xxh3_by_blocks(t);
}

uint64_t xxh3_by_blocks(const torch::Tensor& t) {
  auto flat = t.detach().contiguous().reshape({-1});
  const int64_t len = int64_t(flat.nbytes());
  if (len <= kXxh3MidsizeMax) return tensor_digest(flat);  // short inputs: another XXH3 path
  auto bytes = flat.view(torch::kUInt8);
  // XXH3 processes (len - 1) / 1 KiB whole blocks; the rest (at least one byte) is the tail.
  const int64_t blocks = (len - 1) / kBlock;
  auto words = bytes.slice(0, 0, blocks * kBlock).view(torch::kInt64).view({blocks, kBlock / 8});
  const auto keys = block_keys(flat.device());
  std::vector<torch::Tensor> sums;
  for (int64_t b = 0; b < blocks; b += kBlocksPerChunk)
    sums.push_back(block_lane_sums(words.slice(0, b, std::min(blocks, b + kBlocksPerChunk)), keys));
  // The tail: the last partial block's stripes and the last 64 bytes (which may overlap it).
  const int64_t tail_start = std::min(blocks * kBlock, len - kStripe);
  auto tail = bytes.slice(0, tail_start, len).to(torch::kCPU);
  auto lane_sums = sums.empty() ? torch::empty({0, 8}, torch::kInt64)
                                : torch::cat(sums).to(torch::kCPU).contiguous();

  return xxh3_from_lane_sums(static_cast<const uint64_t*>(lane_sums.data_ptr()), blocks,
                             static_cast<const uint8_t*>(tail.data_ptr()), tail_start, len);
}

}  // namespace cliprepro
