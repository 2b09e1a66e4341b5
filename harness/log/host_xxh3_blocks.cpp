// xxh3_from_lane_sums (host_digest.h): the sequential end of XXH3-64 for the block route. Its
// own file: it includes xxhash.h inline, apart from the dispatching library host_digest.cpp uses.
#include "harness/log/host_digest.h"

// The reference implementation's own constants and scalar kernels (default secret, seed 0), so
// this stays XXH3 by construction rather than by transcription.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace cliprepro {

static_assert(kXxh3Block == XXH_STRIPE_LEN * ((XXH_SECRET_DEFAULT_SIZE - XXH_STRIPE_LEN) /
                                              XXH_SECRET_CONSUME_RATE));
static_assert(kXxh3MidsizeMax == XXH3_MIDSIZE_MAX);

void xxh3_block_keys(uint64_t* keys) {
  constexpr int64_t kStripes = kXxh3Block / XXH_STRIPE_LEN;
  for (int64_t s = 0; s < kStripes; ++s)
    for (int64_t lane = 0; lane < 8; ++lane)
      keys[s * 8 + lane] = XXH_readLE64(XXH3_kSecret + s * 8 + lane * 8);
}

uint64_t xxh3_from_lane_sums(const uint64_t* lane_sums, int64_t blocks, const uint8_t* tail,
                             int64_t tail_start, int64_t len) {
  constexpr int64_t kStripe = XXH_STRIPE_LEN;
  XXH_ALIGN(XXH_ACC_ALIGN) xxh_u64 acc[XXH_ACC_NB] = XXH3_INIT_ACC;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int lane = 0; lane < 8; ++lane) acc[lane] += lane_sums[b * 8 + lane];
    XXH3_scrambleAcc_scalar(acc, XXH3_kSecret + XXH_SECRET_DEFAULT_SIZE - kStripe);
  }
  // The last partial block's stripes and the last 64 bytes (which may overlap them).
  const xxh_u8* block_start = tail + (blocks * kXxh3Block - tail_start);
  const int64_t stripes = ((len - 1) - blocks * kXxh3Block) / kStripe;
  for (int64_t s = 0; s < stripes; ++s)
    XXH3_accumulate_512_scalar(acc, block_start + s * kStripe, XXH3_kSecret + s * 8);
  XXH3_accumulate_512_scalar(
      acc, tail + (len - kStripe - tail_start),
      XXH3_kSecret + XXH_SECRET_DEFAULT_SIZE - kStripe - XXH_SECRET_LASTACC_START);
  return XXH3_mergeAccs(acc, XXH3_kSecret + XXH_SECRET_MERGEACCS_START,
                        xxh_u64(len) * XXH_PRIME64_1);
}

}  // namespace cliprepro
