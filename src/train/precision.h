// OpenCLIP's --precision modes, PyTorch's autocast context and GradScaler, written out so the
// same op sequence runs in C++ and every piece of scaler state can be logged.
#pragma once
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/train/adamw.h"
#include "src/train/train_config.h"

namespace cliprepro {

struct PrecisionMode {
  std::string name;                                 // canonical: amp_bfloat16 reads as amp_bf16
  std::optional<torch::ScalarType> autocast_dtype;  // amp: kHalf; amp_bf16: kBFloat16
  bool grad_scaler = false;                         // only `amp`, as open_clip_train/main.py
  // fp16/bf16 and pure_fp16/pure_bf16: the low-precision dtype of the weights, which is also
  // the dtype images are cast to before the forward (open_clip's get_input_dtype).
  std::optional<torch::ScalarType> weight_dtype;
  // pure_*: every floating parameter and buffer in weight_dtype (model.to(dtype)); otherwise
  // only what open_clip's convert_weights_to_lp converts.
  bool pure = false;
  // fp16/bf16 build the text tower with LayerNormFp32 (open_clip's get_cast_dtype).
  bool layer_norm_fp32() const { return weight_dtype.has_value() && !pure; }
};

PrecisionMode precision_mode(Precision p);
// By OpenCLIP's name; throws std::invalid_argument naming the accepted values for anything else.
PrecisionMode parse_precision(const std::string& name);

// torch.amp.autocast(device_type, dtype) as a scope: the same switches set and restored in the
// same order as its __enter__/__exit__, the cast cache dropped when the outermost scope ends.
class AutocastGuard {
 public:
  AutocastGuard(torch::DeviceType device, std::optional<torch::ScalarType> dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  torch::DeviceType device_;
  bool active_ = false, prev_enabled_ = false, prev_cache_enabled_ = false;
  torch::ScalarType prev_dtype_ = torch::kFloat;
};

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

// torch.amp.GradScaler for one optimizer: scale the loss, unscale the gradients in place (once
// per step, before clipping if asked), skip the optimizer step when any gradient is inf/NaN,
// then update the scale with torch._amp_update_scale_.
class GradScaler {
 public:
  GradScaler(torch::Device device, GradScalerOptions opts = {});
  torch::Tensor scale(const torch::Tensor& loss) const;
  void unscale_(AdamW& optimizer);
  // Unscales if not done yet; steps unless a non-finite gradient was found. True if it stepped.
  bool step(AdamW& optimizer);
  void update();

  const torch::Tensor& scale_tensor() const { return scale_; }             // float32 0-d
  const torch::Tensor& growth_tracker() const { return growth_tracker_; }  // int32 0-d
  // float32 0-d: 1 when the last unscale found inf/NaN (kept after update() for logging).
  const torch::Tensor& found_inf() const { return found_inf_; }
  void load(const torch::Tensor& scale, const torch::Tensor& growth_tracker);

 private:
  GradScalerOptions opts_;
  torch::Tensor scale_, growth_tracker_, found_inf_;
  bool unscaled_ = false;
};

}  // namespace cliprepro
