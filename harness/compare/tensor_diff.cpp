#include "harness/compare/tensor_diff.h"

#include <torch/torch.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace cliprepro {
namespace {

// Maps float bit patterns onto a line where adjacent floats are adjacent integers and
// -0 == +0: sign-magnitude to two's complement.
torch::Tensor ordered_bits(const torch::Tensor& t) {
  torch::Tensor i;
  int64_t mag_mask = 0;
  switch (t.scalar_type()) {
    case torch::kFloat32:
      i = t.view(torch::kInt32).to(torch::kInt64);
      mag_mask = 0x7fffffff;
      break;
    case torch::kFloat16:
    case torch::kBFloat16:
      i = t.view(torch::kInt16).to(torch::kInt64);
      mag_mask = 0x7fff;
      break;
    case torch::kFloat64:
      // Halved so that differences of ordered values cannot overflow int64.
      i = t.view(torch::kInt64);
      return torch::where(i < 0, -(i.bitwise_and(std::numeric_limits<int64_t>::max())), i)
          .div(2, "floor");
    default:
      return t.to(torch::kInt64);
  }
  return torch::where(i < 0, -(i.bitwise_and(mag_mask)), i);
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
  const bool is_float = a.is_floating_point();
  // Bitwise: compare raw bytes as integers of the element width.
  const auto width = a.element_size();
  const auto int_type = width == 8   ? torch::kInt64
                        : width == 4 ? torch::kInt32
                        : width == 2 ? torch::kInt16
                                     : torch::kUInt8;
  auto bits_differ = a.view(int_type).ne(b.view(int_type));
  r.differing = bits_differ.sum().item<int64_t>();
  r.bitwise_equal = r.differing == 0;
  if (r.bitwise_equal) return r;
  r.first_differing = bits_differ.flatten().nonzero()[0][0].item<int64_t>();

  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  auto a_nan = a64.isnan(), b_nan = b64.isnan();
  auto both_nan = a_nan.logical_and(b_nan), one_nan = a_nan.logical_xor(b_nan);
  auto abs_err = (a64 - b64).abs();
  // inf - inf of the same sign is NaN: equal values, error 0.
  abs_err = torch::where(a64.eq(b64).logical_or(both_nan), torch::zeros_like(abs_err), abs_err);
  abs_err = torch::where(one_nan, torch::full_like(abs_err, INFINITY), abs_err);
  r.max_abs = abs_err.max().item<double>();
  auto denom = torch::maximum(a64.abs(), b64.abs());
  auto rel = torch::where(abs_err.eq(0), torch::zeros_like(abs_err), abs_err / denom);
  rel = torch::where(rel.isnan(), torch::full_like(rel, INFINITY), rel);
  r.max_rel = rel.max().item<double>();
  {
    const double dot = (a64 * b64).sum().item<double>();
    const double na = a64.norm().item<double>(), nb = b64.norm().item<double>();
    r.cosine = na == 0 && nb == 0 ? 1.0 : (na == 0 || nb == 0) ? 0.0 : dot / (na * nb);
    if (!std::isfinite(dot) || !std::isfinite(na) || !std::isfinite(nb)) r.cosine = NAN;
  }
  if (is_float) {
    auto d = (ordered_bits(a) - ordered_bits(b)).abs();
    d = torch::where(both_nan, torch::zeros_like(d), d);
    r.max_ulp =
        one_nan.any().item<bool>() ? std::numeric_limits<int64_t>::max() : d.max().item<int64_t>();
  } else {
    r.max_ulp = (a.to(torch::kInt64) - b.to(torch::kInt64)).abs().max().item<int64_t>();
  }
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
