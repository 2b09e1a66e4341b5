// The log's digest and statistics of raw host memory, without LibTorch: the one implementation
// behind the C++ log writer (digest_stats.h, tensor_stats.h, device_digest.h) and the Python
// recorder, which loads it as a C library (digest_capi.cpp, python/cliprepro/native.py).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cliprepro {

// Element types a log holds (the C API's `kind` codes: keep the numbers).
enum class ElemKind : int32_t {
  kFloat32 = 0,
  kFloat64 = 1,
  kFloat16 = 2,
  kBFloat16 = 3,
  kInt64 = 4,
  kInt32 = 5,
  kUInt8 = 6,
  kBool = 7,
};
size_t elem_size(ElemKind kind);

struct HostStats {
  double min = 0, max = 0, mean = 0, std = 0, l2 = 0;  // over finite elements; NaN if none
  double nan = 0, inf = 0, zero = 0;                   // counts
};

// kAuto: the float32 statistics pass runs as AVX2 code where the CPU has it; kBaseline forces
// the SSE2 copy. Both give the same bits (tests check it); the digest chooses its own path.
enum class SimdPath { kAuto, kBaseline };

struct HostDigestStats {
  uint64_t digest = 0;
  HostStats stats;
};

// XXH3-64 (seed 0) of the bytes; with_stats: the statistics in the same pass for float32,
// bfloat16 and float16 (values widened exactly to float32; block sums in float, merged in
// float64), host_stats() for every other kind.
HostDigestStats host_digest_stats(const void* data, int64_t numel, ElemKind kind, bool with_stats,
                                  SimdPath path = SimdPath::kAuto);
// Two passes in float64 over the finite elements (the reference the float32 pass is tested on).
HostStats host_stats(const void* data, int64_t numel, ElemKind kind);
uint64_t bytes_digest(const void* data, size_t size);

// The sequential end of XXH3-64 over `len` bytes (> XXH3_MIDSIZE_MAX) whose whole 1 KiB blocks
// were reduced elsewhere to 8 lane sums each (device_digest.h): `lane_sums` holds blocks x 8
// words; `tail` the bytes from `tail_start` = min(blocks * 1024, len - 64) to the end.
uint64_t xxh3_from_lane_sums(const uint64_t* lane_sums, int64_t blocks, const uint8_t* tail,
                             int64_t tail_start, int64_t len);
// Splits items of these sizes over `bins` bins of about equal bytes (largest first onto the
// lightest bin): how a step's tensors are shared among the threads that digest them.
std::vector<std::vector<size_t>> balanced_bins(const std::vector<size_t>& bytes, int bins);

// The default secret's word for each (stripe, lane) of a block: 16 x 8 words, stripe s keyed
// from byte 8 s. What the block route xors each word with.
void xxh3_block_keys(uint64_t* keys);
// 1 KiB: the block of xxh3_from_lane_sums; XXH3's lengths at most this many bytes take
// another path and are digested whole.
constexpr int64_t kXxh3Block = 1024;
constexpr int64_t kXxh3MidsizeMax = 240;

}  // namespace cliprepro
