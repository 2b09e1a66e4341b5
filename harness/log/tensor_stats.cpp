#include "harness/log/tensor_stats.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace cliprepro {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename T>
TensorStats cpu_stats(const T* p, int64_t n) {
  TensorStats s;
  double sum = 0, sumsq = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
  int64_t finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(p[i]);
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
    const double v = static_cast<double>(p[i]);
    if (std::isfinite(v)) ss += (v - s.mean) * (v - s.mean);
  }
  s.std = std::sqrt(ss / double(finite));  // population std
  s.l2 = std::sqrt(sumsq);
  return s;
}

TensorStats device_stats(const torch::Tensor& t) {
  auto x = t.detach().to(torch::kFloat64).flatten();
  auto finite = x.isfinite();
  auto nan = x.isnan().sum();
  auto inf = x.isinf().sum();
  auto zero = x.eq(0).sum();
  auto xf = x.masked_select(finite);
  torch::Tensor packed;
  if (xf.numel() > 0) {
    auto mean = xf.mean();
    packed = torch::stack({xf.min(), xf.max(), mean, (xf - mean).pow(2).mean().sqrt(),
                           xf.pow(2).sum().sqrt(), nan.to(torch::kFloat64), inf.to(torch::kFloat64),
                           zero.to(torch::kFloat64)});
  } else {
    auto nanv = torch::full({}, kNaN, x.options());
    packed =
        torch::stack({nanv, nanv, nanv, nanv, torch::zeros({}, x.options()),
                      nan.to(torch::kFloat64), inf.to(torch::kFloat64), zero.to(torch::kFloat64)});
  }
  auto h = packed.cpu();
  const double* v = h.data_ptr<double>();
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

}  // namespace

TensorStats tensor_stats(const torch::Tensor& t) {
  if (!t.is_cpu()) return device_stats(t);
  const int64_t n = t.numel();
  switch (t.scalar_type()) {
    case torch::kFloat32:
      return cpu_stats(t.data_ptr<float>(), n);
    case torch::kFloat64:
      return cpu_stats(t.data_ptr<double>(), n);
    case torch::kFloat16:
      return cpu_stats(t.data_ptr<at::Half>(), n);
    case torch::kBFloat16:
      return cpu_stats(t.data_ptr<at::BFloat16>(), n);
    case torch::kInt64:
      return cpu_stats(t.data_ptr<int64_t>(), n);
    case torch::kInt32:
      return cpu_stats(t.data_ptr<int32_t>(), n);
    case torch::kUInt8:
      return cpu_stats(t.data_ptr<uint8_t>(), n);
    case torch::kBool:
      return cpu_stats(t.data_ptr<bool>(), n);
    default:
      return device_stats(t);
  }
}

}  // namespace cliprepro
