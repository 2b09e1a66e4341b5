#include "harness/compare/tensor_diff.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace cliprepro {
namespace {

// One pass over both tensors' bits (compare reads tensors only where digests differ; this is
// its cost). Elements are taken in fixed chunks whose partial results combine in chunk order,
// so every figure, the cosine's float64 sums included, is the same for any thread count.
constexpr int64_t kChunk = 1 << 16;

struct Partial {
  int64_t differing = 0, first = -1, max_ulp = 0;
  double max_abs = 0, max_rel = 0, dot = 0, aa = 0, bb = 0;
  bool one_nan = false;
};

// Position of a float's bit pattern on a line where adjacent floats are adjacent integers and
// -0 == +0 (sign-magnitude to two's complement). float64 is halved (floor) so that differences
// of positions cannot overflow int64.
template <typename Bits>
int64_t ordered(Bits bits) {
  using S = std::make_signed_t<Bits>;
  const auto i = int64_t(S(bits));
  if constexpr (sizeof(Bits) == 8) {
    return (i < 0 ? -(i & std::numeric_limits<int64_t>::max()) : i) >> 1;
  } else {
    constexpr int64_t mag = (int64_t(1) << (8 * sizeof(Bits) - 1)) - 1;
    return i < 0 ? -(i & mag) : i;
  }
}

// T: element type; Bits: the unsigned integer of its width; floating: ULPs on the float line,
// otherwise max |a - b| of the integer values.
template <typename T, typename Bits, bool floating>
Partial diff_chunk(const T* a, const T* b, int64_t begin, int64_t end) {
  Partial p;
  for (int64_t i = begin; i < end; ++i) {
    const double x = double(a[i]), y = double(b[i]);
    p.dot += x * y, p.aa += x * x, p.bb += y * y;
    Bits ba, bb;
    std::memcpy(&ba, &a[i], sizeof(Bits));
    std::memcpy(&bb, &b[i], sizeof(Bits));
    if (ba == bb) continue;
    if (p.first < 0) p.first = i;
    ++p.differing;
    const bool na = std::isnan(x), nb = std::isnan(y);
    if (na && nb) continue;  // differently encoded NaNs: equal values
    double abs_err, rel;
    if (na || nb) {
      p.one_nan = true;
      abs_err = rel = INFINITY;
    } else {
      abs_err = x == y ? 0.0 : std::fabs(x - y);  // -0 vs +0; inf - inf of one sign
      rel = abs_err == 0 ? 0.0 : abs_err / std::max(std::fabs(x), std::fabs(y));
      if (std::isnan(rel)) rel = INFINITY;  // inf / inf
    }
    p.max_abs = std::max(p.max_abs, abs_err);
    p.max_rel = std::max(p.max_rel, rel);
    int64_t ulp;
    if constexpr (floating) {
      ulp = ordered(ba) - ordered(bb);
    } else {
      ulp = int64_t(a[i]) - int64_t(b[i]);
    }
    p.max_ulp = std::max(p.max_ulp, ulp < 0 ? -ulp : ulp);
  }
  return p;
}

template <typename T, typename Bits, bool floating>
Partial diff_all(const torch::Tensor& a, const torch::Tensor& b) {
  const T* pa = a.const_data_ptr<T>();
  const T* pb = b.const_data_ptr<T>();
  const int64_t n = a.numel(), chunks = (n + kChunk - 1) / kChunk;
  std::vector<Partial> parts(static_cast<size_t>(chunks));
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      parts[size_t(c)] =
          diff_chunk<T, Bits, floating>(pa, pb, c * kChunk, std::min(n, (c + 1) * kChunk));
  });
  Partial r;
  for (const Partial& p : parts) {
    if (r.first < 0) r.first = p.first;
    r.differing += p.differing;
    r.max_ulp = std::max(r.max_ulp, p.max_ulp);
    r.max_abs = std::max(r.max_abs, p.max_abs);
    r.max_rel = std::max(r.max_rel, p.max_rel);
    r.dot += p.dot, r.aa += p.aa, r.bb += p.bb;
    r.one_nan = r.one_nan || p.one_nan;
  }
  return r;
}

Partial diff_any(const torch::Tensor& a, const torch::Tensor& b) {
  switch (a.scalar_type()) {
    case torch::kFloat64:
      return diff_all<double, uint64_t, true>(a, b);
    case torch::kFloat32:
      return diff_all<float, uint32_t, true>(a, b);
    case torch::kFloat16:
      return diff_all<at::Half, uint16_t, true>(a, b);
    case torch::kBFloat16:
      return diff_all<at::BFloat16, uint16_t, true>(a, b);
    case torch::kInt64:
      return diff_all<int64_t, uint64_t, false>(a, b);
    case torch::kInt32:
      return diff_all<int32_t, uint32_t, false>(a, b);
    case torch::kInt16:
      return diff_all<int16_t, uint16_t, false>(a, b);
    case torch::kInt8:
      return diff_all<int8_t, uint8_t, false>(a, b);
    case torch::kUInt8:
      return diff_all<uint8_t, uint8_t, false>(a, b);
    case torch::kBool:
      return diff_all<bool, uint8_t, false>(a, b);
    default:
      throw std::invalid_argument(std::string("diff_tensors: unsupported dtype ") +
                                  c10::toString(a.scalar_type()));
  }
}

}  // namespace

int64_t ulp_distance_f32(float a, float b) {
  auto ord = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? -int64_t(i & 0x7fffffff) : int64_t(i);
  };
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b) ? 0 : std::numeric_limits<int64_t>::max();
  }
  const int64_t d = ord(a) - ord(b);
  return d < 0 ? -d : d;
}

ElementwiseDiff diff_tensors(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  ElementwiseDiff r;
  auto a = a_in.detach().to(torch::kCPU).contiguous();
  auto b = b_in.detach().to(torch::kCPU).contiguous();
  r.numel = a.numel();
  if (a.sizes() != b.sizes()) {
    r.same_shape = false;
    r.bitwise_equal = false;
    return r;
  }
  if (a.numel() == 0) return r;
  if (a.scalar_type() != b.scalar_type()) {
    a = a.to(torch::kFloat64);
    b = b.to(torch::kFloat64);
  }
  const Partial p = diff_any(a, b);
  r.differing = p.differing;
  r.bitwise_equal = p.differing == 0;
  if (r.bitwise_equal) return r;
  r.first_differing = p.first;
  r.max_abs = p.max_abs;
  r.max_rel = p.max_rel;
  r.max_ulp = p.one_nan ? std::numeric_limits<int64_t>::max() : p.max_ulp;
  const double na = std::sqrt(p.aa), nb = std::sqrt(p.bb);
  r.cosine = na == 0 && nb == 0 ? 1.0 : (na == 0 || nb == 0) ? 0.0 : p.dot / (na * nb);
  if (!std::isfinite(p.dot) || !std::isfinite(na) || !std::isfinite(nb)) r.cosine = NAN;
  return r;
}

std::string format_diff_table(const std::vector<std::pair<std::string, ElementwiseDiff>>& rows,
                              const std::vector<std::string>& dtypes) {
  size_t w = 6;
  for (const auto& [name, d] : rows) w = std::max(w, name.size());
  std::ostringstream o;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-*s %-9s %10s %10s %11s %11s %10s\n", int(w), "tensor", "dtype",
                "numel", "differing", "max_abs", "max_rel", "max_ulp");
  o << buf;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& [name, d] = rows[i];
    if (!d.same_shape) {
      std::snprintf(buf, sizeof(buf), "%-*s shape mismatch\n", int(w), name.c_str());
    } else {
      std::snprintf(buf, sizeof(buf), "%-*s %-9s %10lld %10lld %11.3e %11.3e %10lld\n", int(w),
                    name.c_str(), i < dtypes.size() ? dtypes[i].c_str() : "", (long long)d.numel,
                    (long long)d.differing, d.max_abs, d.max_rel, (long long)d.max_ulp);
    }
    o << buf;
  }
  return o.str();
}

}  // namespace cliprepro
