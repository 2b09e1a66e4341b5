#include "src/train/precision.h"

#include <ATen/autocast_mode.h>

#include <stdexcept>

namespace cliprepro {

PrecisionMode precision_mode(Precision p) {
  PrecisionMode m;
  m.name = std::string(enum_name(p));
  switch (p) {
    case Precision::kFp32:
      break;
    case Precision::kAmp:
      m.autocast_dtype = torch::kHalf;
      m.grad_scaler = true;
      break;
    case Precision::kAmpBf16:
      m.autocast_dtype = torch::kBFloat16;
      break;
    case Precision::kFp16:
    case Precision::kPureFp16:
      m.weight_dtype = torch::kHalf;
      break;
    case Precision::kBf16:
    case Precision::kPureBf16:
      m.weight_dtype = torch::kBFloat16;
      break;
  }
  m.pure = p == Precision::kPureFp16 || p == Precision::kPureBf16;
  return m;
}

PrecisionMode parse_precision(const std::string& name) {
  return precision_mode(parse_enum<Precision>(name, "precision"));
}

AutocastGuard::AutocastGuard(torch::DeviceType device, std::optional<torch::ScalarType> dtype)
    : device_(device) {
  if (!dtype) return;  // fp32: OpenCLIP's get_autocast returns contextlib.suppress
  active_ = true;
  prev_cache_enabled_ = at::autocast::is_autocast_cache_enabled();
  prev_enabled_ = at::autocast::is_autocast_enabled(device_);
  prev_dtype_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, *dtype);
  at::autocast::increment_nesting();
  at::autocast::set_autocast_cache_enabled(prev_cache_enabled_);
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, prev_enabled_);
  at::autocast::set_autocast_dtype(device_, prev_dtype_);
  at::autocast::set_autocast_cache_enabled(prev_cache_enabled_);
}

GradScaler::GradScaler(torch::Device device, GradScalerOptions opts) : opts_(opts) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  scale_ = torch::full({}, opts_.init_scale, f32);
  growth_tracker_ = torch::zeros({}, f32.dtype(torch::kInt32));
  found_inf_ = torch::zeros({}, f32);
}

torch::Tensor GradScaler::scale(const torch::Tensor& loss) const {
  return loss * scale_.to(loss.device());
}

void GradScaler::unscale_(AdamW& optimizer) {
  if (unscaled_) throw std::logic_error("GradScaler::unscale_ called twice in one step");
  torch::NoGradGuard no_grad;
  // PyTorch inverts in double, then rounds to float32.
  const auto inv_scale = scale_.to(torch::kFloat64).reciprocal().to(torch::kFloat32);
  found_inf_ = torch::zeros({}, scale_.options());
  // Gradients grouped by dtype in parameter-group order, as _unscale_grads_ does (one device).
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (auto& g : optimizer.groups()) {
    for (auto& p : g.params) {
      const auto& grad = p.param.grad();
      if (!grad.defined()) continue;
      if (grad.scalar_type() == torch::kHalf)
        throw std::runtime_error("Attempting to unscale FP16 gradients.");
      by_dtype[grad.scalar_type()].push_back(grad);
    }
  }
  for (auto& [dtype, grads] : by_dtype) {
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, inv_scale);
  }
  unscaled_ = true;
}

bool GradScaler::step(AdamW& optimizer) {
  if (!unscaled_) unscale_(optimizer);
  if (found_inf_.item<float>() != 0.0f) return false;
  optimizer.step();
  return true;
}

void GradScaler::update() {
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, opts_.growth_factor,
                         opts_.backoff_factor, opts_.growth_interval);
  unscaled_ = false;
}

void GradScaler::load(const torch::Tensor& scale, const torch::Tensor& growth_tracker) {
  scale_.copy_(scale);
  growth_tracker_.copy_(growth_tracker);
}

}  // namespace cliprepro
