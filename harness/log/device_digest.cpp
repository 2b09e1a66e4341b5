#include "harness/log/device_digest.h"

#include <algorithm>
#include <vector>

#include "harness/log/digest.h"

// The reference implementation's own constants and scalar kernels (default secret, seed 0), so
// this stays XXH3 by construction rather than by transcription.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace cliprepro {
namespace {

constexpr int64_t kStripe = XXH_STRIPE_LEN;  // 64 bytes, 8 lanes
constexpr int64_t kStripesPerBlock = (XXH_SECRET_DEFAULT_SIZE - kStripe) / XXH_SECRET_CONSUME_RATE;
constexpr int64_t kBlock = kStripe * kStripesPerBlock;  // 1024 bytes
constexpr int64_t kBlocksPerChunk = 8192;               // bounds device temporaries

// Secret words per (stripe, lane) of a block: stripe s uses the secret from byte 8·s.
torch::Tensor block_keys(const torch::Device& device) {
  std::vector<int64_t> keys;
  for (int64_t s = 0; s < kStripesPerBlock; ++s)
    for (int64_t lane = 0; lane < 8; ++lane)
      keys.push_back(int64_t(XXH_readLE64(XXH3_kSecret + s * 8 + lane * 8)));
  return torch::tensor(keys, torch::kInt64).view({kStripesPerBlock, 8}).to(device);
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
  if (len <= XXH3_MIDSIZE_MAX) return tensor_digest(flat);  // short inputs: another XXH3 path
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

  XXH_ALIGN(XXH_ACC_ALIGN) xxh_u64 acc[XXH_ACC_NB] = XXH3_INIT_ACC;
  const auto* sum = static_cast<const uint64_t*>(lane_sums.data_ptr());
  for (int64_t b = 0; b < blocks; ++b) {
    for (int lane = 0; lane < 8; ++lane) acc[lane] += sum[b * 8 + lane];
    XXH3_scrambleAcc_scalar(acc, XXH3_kSecret + XXH_SECRET_DEFAULT_SIZE - kStripe);
  }
  const auto* tail_bytes = static_cast<const xxh_u8*>(tail.data_ptr());
  const xxh_u8* block_start = tail_bytes + (blocks * kBlock - tail_start);
  const int64_t stripes = ((len - 1) - blocks * kBlock) / kStripe;
  for (int64_t s = 0; s < stripes; ++s)
    XXH3_accumulate_512_scalar(acc, block_start + s * kStripe, XXH3_kSecret + s * 8);
  XXH3_accumulate_512_scalar(
      acc, tail_bytes + (len - kStripe - tail_start),
      XXH3_kSecret + XXH_SECRET_DEFAULT_SIZE - kStripe - XXH_SECRET_LASTACC_START);
  return XXH3_mergeAccs(acc, XXH3_kSecret + XXH_SECRET_MERGEACCS_START,
                        xxh_u64(len) * XXH_PRIME64_1);
}

}  // namespace cliprepro
