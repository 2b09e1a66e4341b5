#include "harness/log/tensor_stats.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace cliprepro {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

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

std::optional<ElemKind> elem_kind(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return ElemKind::kFloat32;
    case torch::kFloat64:
      return ElemKind::kFloat64;
    case torch::kFloat16:
      return ElemKind::kFloat16;
    case torch::kBFloat16:
      return ElemKind::kBFloat16;
    case torch::kInt64:
      return ElemKind::kInt64;
    case torch::kInt32:
      return ElemKind::kInt32;
    case torch::kUInt8:
      return ElemKind::kUInt8;
    case torch::kBool:
      return ElemKind::kBool;
    default:
      return std::nullopt;
  }
}

TensorStats tensor_stats(const torch::Tensor& t) {
  const auto kind = elem_kind(t.scalar_type());
  if (!t.is_cpu() || !kind) return device_stats(t);
  return TensorStats(host_stats(t.data_ptr(), t.numel(), *kind));
}

}  // namespace cliprepro
