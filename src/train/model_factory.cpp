#include "src/train/model_factory.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "src/model/low_precision.h"

namespace cliprepro {

torch::Device make_device(Device device) {
  if (device == Device::kCpu) return torch::kCPU;
  if (!torch::cuda::is_available())
    throw std::runtime_error("device = \"cuda\" but no CUDA device is available");
  const char* local = std::getenv("LOCAL_RANK");
  const int index = local != nullptr ? std::atoi(local) : 0;
  if (index >= int(torch::cuda::device_count())) {
    throw std::runtime_error("LOCAL_RANK " + std::to_string(index) + " but only " +
                             std::to_string(torch::cuda::device_count()) + " CUDA devices");
  }
  return torch::Device(torch::kCUDA, c10::DeviceIndex(index));
}

PrecisionOverrides precision_overrides(const PrecisionMode& precision,
                                       const NumericsConfig& numerics) {
  PrecisionOverrides o{numerics.fp32_modules, numerics.low_precision_modules};
  if (!o.empty() && !precision.autocast_dtype) {
    throw std::invalid_argument(
        "[numerics] fp32-modules / low-precision-modules set a module's precision inside "
        "autocast: they need precision \"amp\" or \"amp_bf16\", not \"" +
        precision.name + "\"");
  }
  return o;
}

Clip make_model(const ModelConfig& cfg, const PrecisionMode& precision,
                const NumericsConfig& numerics, torch::Device device, uint64_t seed,
                Seeding seeding) {
  torch::manual_seed(seed);
  Clip model(cfg, seeding == Seeding::kOpenClip ? InitOrder::kOpenClip : InitOrder::kCliprepro);
  model->to(device);
  model->train();
  ModelNumerics n;
  n.layer_norm_fp32 = precision.layer_norm_fp32();
  n.batch_norm_fp32 = numerics.bn_fp32;
  n.batch_norm_eps = numerics.bn_eps;
  n.overrides = precision_overrides(precision, numerics);
  model->set_numerics(n);
  if (precision.weight_dtype) {
    if (precision.pure) {
      convert_floating_tensors(*model, *precision.weight_dtype, numerics.bn_fp32);
    } else {
      convert_weights_to_lp(*model, *precision.weight_dtype);
    }
  }
  return model;
}

}  // namespace cliprepro
