#include "harness/log/host_digest.h"

#include <xxh_x86dispatch.h>  // XXH3 with run-time SSE2/AVX2/AVX-512 choice: same digest

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace cliprepro {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
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

void slow_block(const float* p, int64_t n, double shift, Acc& a) {
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

HostStats finish(const Acc& a, double shift) {
  HostStats s;
  s.nan = a.nan;
  s.inf = a.inf;
  s.zero = a.zero;
  if (a.n == 0) {
    s.min = s.max = s.mean = s.std = kNaN;
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

// Exact widening of the 16-bit floats (every value is a float32).
float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
float bf16_value(uint16_t h) { return from_bits(uint32_t(h) << 16); }
float f16_value(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return from_bits(sign | 0x7f800000u | (man << 13));  // Inf, NaN
  if (exp != 0) return from_bits(sign | ((exp + 112) << 23) | (man << 13));
  const float sub = std::ldexp(float(man), -24);  // zero or subnormal: exact in float32
  return sign ? -sub : sub;
}

// Digest of the stored bytes and statistics of the values, block by block while the block is in
// cache. `widen` gives element i's exact float32 value: 16-bit floats are widened one block at a
// time into a buffer the same float pass reads (their two-pass float64 route was the amp
// recorder's bottleneck), float32 is read in place.
template <typename Elem, typename Widen>
HostDigestStats block_digest_stats(const Elem* p, int64_t n, SimdPath path, Widen widen) {
  // Shift by a finite element near the data so the variance does not cancel.
  float shift = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(widen(p[i]))) {
      shift = widen(p[i]);
      break;
    }
  }
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 XXH3_freeState);
  XXH3_64bits_reset(state.get());
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  const auto pass = path == SimdPath::kAuto && has_avx2 ? block_pass_avx2 : block_pass_baseline;
  constexpr bool kInPlace = std::is_same_v<Elem, float>;
  std::vector<float> widened(kInPlace ? 0 : size_t(kBlock));
  Acc a;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    XXH3_64bits_update_dispatch(state.get(), p + b, size_t(m) * sizeof(Elem));
    const float* f;
    if constexpr (kInPlace) {
      f = p + b;
    } else {
      for (int64_t i = 0; i < m; ++i) widened[size_t(i)] = widen(p[b + i]);
      f = widened.data();
    }
    Acc block;
    if (pass(f, m, shift, block)) {
      a.s1 += block.s1;
      a.s2 += block.s2;
      a.zero += block.zero;
      a.lo = std::min(a.lo, block.lo);
      a.hi = std::max(a.hi, block.hi);
      a.n += block.n;
    } else {
      slow_block(f, m, shift, a);
    }
  }
  return {XXH3_64bits_digest(state.get()), finish(a, shift)};
}

template <typename Load>
HostStats two_pass_stats(int64_t n, Load value) {
  HostStats s;
  double sum = 0, sumsq = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
  int64_t finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = value(i);
    if (std::isnan(v)) {
      ++s.nan;
      continue;
    }
    if (std::isinf(v)) {
      ++s.inf;
      continue;
    }
    s.zero += v == 0;
    ++finite;
    sum += v;
    sumsq += v * v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (finite == 0) {
    s.min = s.max = s.mean = s.std = kNaN;
    s.l2 = 0;
    return s;
  }
  s.min = lo;
  s.max = hi;
  s.mean = sum / double(finite);
  // Second pass for the variance: stable where sumsq/n - mean^2 would cancel.
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = value(i);
    if (std::isfinite(v)) ss += (v - s.mean) * (v - s.mean);
  }
  s.std = std::sqrt(ss / double(finite));  // population std
  s.l2 = std::sqrt(sumsq);
  return s;
}

template <typename T>
HostStats typed_stats(const void* data, int64_t n) {
  const auto* p = static_cast<const T*>(data);
  return two_pass_stats(n, [p](int64_t i) { return static_cast<double>(p[i]); });
}

}  // namespace

size_t elem_size(ElemKind kind) {
  switch (kind) {
    case ElemKind::kFloat32:
    case ElemKind::kInt32:
      return 4;
    case ElemKind::kFloat64:
    case ElemKind::kInt64:
      return 8;
    case ElemKind::kFloat16:
    case ElemKind::kBFloat16:
      return 2;
    case ElemKind::kUInt8:
    case ElemKind::kBool:
      return 1;
  }
  throw std::invalid_argument("unknown element kind " + std::to_string(int(kind)));
}

std::vector<std::vector<size_t>> balanced_bins(const std::vector<size_t>& bytes, int bins) {
  std::vector<size_t> by_size(bytes.size());
  for (size_t i = 0; i < by_size.size(); ++i) by_size[i] = i;
  std::stable_sort(by_size.begin(), by_size.end(),
                   [&](size_t a, size_t b) { return bytes[a] > bytes[b]; });
  std::vector<std::vector<size_t>> out(size_t(std::max(bins, 1)));
  std::vector<size_t> load(out.size(), 0);
  for (size_t i : by_size) {
    const size_t b = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    out[b].push_back(i);
    load[b] += bytes[i];
  }
  return out;
}

uint64_t bytes_digest(const void* data, size_t size) { return XXH3_64bits_dispatch(data, size); }

HostStats host_stats(const void* data, int64_t n, ElemKind kind) {
  switch (kind) {
    case ElemKind::kFloat32:
      return typed_stats<float>(data, n);
    case ElemKind::kFloat64:
      return typed_stats<double>(data, n);
    case ElemKind::kFloat16: {
      const auto* p = static_cast<const uint16_t*>(data);
      return two_pass_stats(n, [p](int64_t i) { return double(f16_value(p[i])); });
    }
    case ElemKind::kBFloat16: {
      const auto* p = static_cast<const uint16_t*>(data);
      return two_pass_stats(n, [p](int64_t i) { return double(bf16_value(p[i])); });
    }
    case ElemKind::kInt64:
      return typed_stats<int64_t>(data, n);
    case ElemKind::kInt32:
      return typed_stats<int32_t>(data, n);
    case ElemKind::kUInt8:
      return typed_stats<uint8_t>(data, n);
    case ElemKind::kBool:
      return typed_stats<bool>(data, n);
  }
  throw std::invalid_argument("unknown element kind " + std::to_string(int(kind)));
}

HostDigestStats host_digest_stats(const void* data, int64_t n, ElemKind kind, bool with_stats,
                                  SimdPath path) {
  if (with_stats && n > 0) {
    switch (kind) {
      case ElemKind::kFloat32:
        return block_digest_stats(static_cast<const float*>(data), n, path,
                                  [](float v) { return v; });
      case ElemKind::kBFloat16:
        return block_digest_stats(static_cast<const uint16_t*>(data), n, path, bf16_value);
      case ElemKind::kFloat16:
        return block_digest_stats(static_cast<const uint16_t*>(data), n, path, f16_value);
      default:
        break;
    }
  }
  HostDigestStats r;
  r.digest = bytes_digest(data, size_t(n) * elem_size(kind));
  if (with_stats) r.stats = host_stats(data, n, kind);
  return r;
}

}  // namespace cliprepro
