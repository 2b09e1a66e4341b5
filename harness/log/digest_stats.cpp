#include "harness/log/digest_stats.h"

#include <xxh_x86dispatch.h>  // XXH3 with run-time SSE2/AVX2/AVX-512 choice: same digest

#include <cmath>
#include <limits>
#include <memory>

#include "harness/log/digest.h"

namespace cliprepro {
namespace {

constexpr int64_t kBlock = 16384;  // floats per block: 64 KiB, stays in L2 between both uses
constexpr int kLanes = 16;

struct Acc {
  double s1 = 0, s2 = 0;  // sums of (x - shift) and (x - shift)^2 over finite elements
  double lo = std::numeric_limits<double>::infinity(),
         hi = -std::numeric_limits<double>::infinity();
  double n = 0, nan = 0, inf = 0, zero = 0;
};

// Branch-free, vectorisable pass over one float32 block; false if it met a NaN/Inf or overflow.
// Inlined into a baseline (SSE2) and an AVX2 copy: the same float operations in the same
// per-lane order and no FMA ("avx2" does not enable it), so both give the same bits.
[[gnu::always_inline]] inline bool block_pass(const float* p, int64_t n, float shift, Acc& a) {
  float s1[kLanes] = {}, s2[kLanes] = {}, zeros[kLanes] = {};
  float lo[kLanes], hi[kLanes];
  for (int l = 0; l < kLanes; ++l) lo[l] = hi[l] = p[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float v = p[i + l], d = v - shift;
      s1[l] += d;
      s2[l] += d * d;
      zeros[l] += v == 0.0f ? 1.0f : 0.0f;
      lo[l] = v < lo[l] ? v : lo[l];
      hi[l] = v > hi[l] ? v : hi[l];
    }
  }
  double b1 = 0, b2 = 0, bz = 0, blo = lo[0], bhi = hi[0];
  for (int l = 0; l < kLanes; ++l) {
    b1 += s1[l];
    b2 += s2[l];
    bz += zeros[l];
    blo = std::min<double>(blo, lo[l]);
    bhi = std::max<double>(bhi, hi[l]);
  }
  for (; i < n; ++i) {
    const double v = p[i], d = v - shift;
    b1 += d;
    b2 += d * d;
    bz += v == 0;
    blo = std::min(blo, v);
    bhi = std::max(bhi, v);
  }
  if (!std::isfinite(b1) || !std::isfinite(b2) || !std::isfinite(blo) || !std::isfinite(bhi))
    return false;
  a.s1 += b1;
  a.s2 += b2;
  a.zero += bz;
  a.lo = std::min(a.lo, blo);
  a.hi = std::max(a.hi, bhi);
  a.n += double(n);
  return true;
}

bool block_pass_baseline(const float* p, int64_t n, float shift, Acc& a) {
  return block_pass(p, n, shift, a);
}

__attribute__((target("avx2"))) bool block_pass_avx2(const float* p, int64_t n, float shift,
                                                     Acc& a) {
  return block_pass(p, n, shift, a);
}

template <typename T>
void slow_block(const T* p, int64_t n, double shift, Acc& a) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(p[i]);
    if (std::isnan(v)) {
      ++a.nan;
    } else if (std::isinf(v)) {
      ++a.inf;
    } else {
      const double d = v - shift;
      a.s1 += d;
      a.s2 += d * d;
      a.zero += v == 0;
      a.lo = std::min(a.lo, v);
      a.hi = std::max(a.hi, v);
      a.n += 1;
    }
  }
}

TensorStats finish(const Acc& a, double shift) {
  TensorStats s;
  s.nan = a.nan;
  s.inf = a.inf;
  s.zero = a.zero;
  if (a.n == 0) {
    s.min = s.max = s.mean = s.std = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  const double m1 = a.s1 / a.n;
  s.min = a.lo;
  s.max = a.hi;
  s.mean = shift + m1;
  s.std = std::sqrt(std::max(0.0, a.s2 / a.n - m1 * m1));  // shifted data: little cancellation
  // sum x^2 = sum (d + shift)^2 = s2 + 2 shift s1 + n shift^2
  s.l2 = std::sqrt(std::max(0.0, a.s2 + 2 * shift * a.s1 + a.n * shift * shift));
  return s;
}

}  // namespace

DigestStats digest_and_stats(const torch::Tensor& host, bool with_stats, SimdPath path) {
  DigestStats r;
  if (!with_stats || host.scalar_type() != torch::kFloat32 || host.numel() == 0) {
    r.digest = bytes_digest(host.data_ptr(), host.nbytes());
    if (with_stats) r.stats = tensor_stats(host);
    return r;
  }
  const auto* p = host.data_ptr<float>();
  const int64_t n = host.numel();
  // Shift by a finite element near the data so the variance does not cancel.
  float shift = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(p[i])) {
      shift = p[i];
      break;
    }
  }
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 XXH3_freeState);
  XXH3_64bits_reset(state.get());
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  const auto pass = path == SimdPath::kAuto && has_avx2 ? block_pass_avx2 : block_pass_baseline;
  Acc a;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    XXH3_64bits_update_dispatch(state.get(), p + b, size_t(m) * sizeof(float));
    Acc block;
    if (pass(p + b, m, shift, block)) {
      a.s1 += block.s1;
      a.s2 += block.s2;
      a.zero += block.zero;
      a.lo = std::min(a.lo, block.lo);
      a.hi = std::max(a.hi, block.hi);
      a.n += block.n;
    } else {
      slow_block(p + b, m, shift, a);
    }
  }
  r.digest = XXH3_64bits_digest(state.get());
  r.stats = finish(a, shift);
  return r;
}

}  // namespace cliprepro
