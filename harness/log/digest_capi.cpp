// The log's digest and statistics as a C library, for the Python recorder
// (python/cliprepro/native.py loads it with ctypes): the code the C++ log writer runs
// (host_digest.h), so a recording's digests and statistics are cliprepro's by construction.
// scripts/setup.sh builds it and installs it into the venv's cliprepro package.
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#include "harness/log/host_digest.h"

namespace {

using cliprepro::ElemKind;

bool known_kind(int32_t kind) { return kind >= 0 && kind <= int32_t(ElemKind::kBool); }

void put(const cliprepro::HostDigestStats& r, uint64_t* digest, double* stats) {
  *digest = r.digest;
  const auto& s = r.stats;
  const double row[8] = {s.min, s.max, s.mean, s.std, s.l2, s.nan, s.inf, s.zero};
  for (int i = 0; i < 8; ++i) stats[i] = row[i];
}

}  // namespace

extern "C" {

// One buffer of `numel` elements of `kind` (host_digest.h's ElemKind codes). Writes its digest,
// and 8 statistics in the log's column order (min,max,mean,std,l2,nan,inf,zero; zeros when
// with_stats is 0). baseline != 0 forces the SSE2 statistics pass. Returns 0; -1 for an unknown
// kind.
int cliprepro_digest_stats(const void* data, int64_t numel, int32_t kind, int32_t with_stats,
                           int32_t baseline, uint64_t* digest, double* stats) {
  if (!known_kind(kind) || numel < 0) return -1;
  put(cliprepro::host_digest_stats(
          data, numel, ElemKind(kind), with_stats != 0,
          baseline ? cliprepro::SimdPath::kBaseline : cliprepro::SimdPath::kAuto),
      digest, stats);
  return 0;
}

// `count` buffers at once on `threads` threads (bins of about equal bytes, as the C++ writer
// shares a step among its intra-op threads); digests[i] and stats[8 i .. 8 i + 7] as above.
// ctypes releases the GIL for the call. Returns 0; -1 for an unknown kind (nothing written).
int cliprepro_digest_stats_many(int64_t count, const void* const* data, const int64_t* numel,
                                const int32_t* kind, int32_t with_stats, int32_t threads,
                                uint64_t* digests, double* stats) {
  std::vector<size_t> bytes;
  for (int64_t i = 0; i < count; ++i) {
    if (!known_kind(kind[i]) || numel[i] < 0) return -1;
    bytes.push_back(size_t(numel[i]) * cliprepro::elem_size(ElemKind(kind[i])));
  }
  const auto bins = cliprepro::balanced_bins(bytes, threads);
  auto run = [&](const std::vector<size_t>& bin) {
    for (size_t i : bin)
      put(cliprepro::host_digest_stats(data[i], numel[i], ElemKind(kind[i]), with_stats != 0),
          &digests[i], &stats[8 * i]);
  };
  std::vector<std::thread> workers;
  for (size_t b = 1; b < bins.size(); ++b) workers.emplace_back(run, std::cref(bins[b]));
  run(bins[0]);
  for (auto& w : workers) w.join();
  return 0;
}

// host_digest.h's xxh3_block_keys and xxh3_from_lane_sums: the block route's host part, for
// lane sums a device reduced (python/cliprepro/native.py: device_digest).
void cliprepro_xxh3_block_keys(uint64_t* keys) { cliprepro::xxh3_block_keys(keys); }

uint64_t cliprepro_xxh3_from_lane_sums(const uint64_t* lane_sums, int64_t blocks,
                                       const uint8_t* tail, int64_t tail_start, int64_t len) {
  return cliprepro::xxh3_from_lane_sums(lane_sums, blocks, tail, tail_start, len);
}

}  // extern "C"
