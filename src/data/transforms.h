// OpenCLIP's image transforms (open_clip/transform.py image_transform, no timm) on decoded
// images, bit for bit with torchvision 0.26 on PIL images:
//   train: RandomResizedCrop(S, scale, ratio, BICUBIC) -> convert('RGB') -> ToTensor -> Normalize
//   eval:  Resize(S, BICUBIC) (shortest side) -> CenterCrop(S) -> convert('RGB') -> ToTensor
//          -> Normalize
// Crop/resize happen in the image's own PIL mode, before the RGB conversion, as in OpenCLIP.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <array>
#include <cstdint>

#include "src/data/image_decode.h"

namespace cliprepro {

struct CropParams {
  int64_t top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropParams&) const = default;
};

inline constexpr std::array<double, 2> kOpenClipScale{0.9, 1.0};
inline constexpr std::array<double, 2> kDefaultRatio{3.0 / 4.0, 4.0 / 3.0};

// torchvision RandomResizedCrop.get_params: the same tensor ops on `gen`, so a CPU generator
// seeded like torch.manual_seed(k) yields the same draws (up to 10 tries, then a centre crop).
CropParams random_resized_crop_params(int64_t height, int64_t width,
                                      const std::array<double, 2>& scale,
                                      const std::array<double, 2>& ratio, at::Generator& gen);

// float32 (3, S, S), OpenAI-normalised.
torch::Tensor train_transform(const PilImage& img, int64_t image_size, at::Generator& gen,
                              const std::array<double, 2>& scale = kOpenClipScale,
                              const std::array<double, 2>& ratio = kDefaultRatio);
// Same for a decoded uint8 (H, W, 3) RGB tensor.
torch::Tensor train_transform(const torch::Tensor& rgb_hwc, int64_t image_size, at::Generator& gen,
                              const std::array<double, 2>& scale = kOpenClipScale,
                              const std::array<double, 2>& ratio = kDefaultRatio);

torch::Tensor eval_transform(const PilImage& img, int64_t image_size);
torch::Tensor eval_transform(const torch::Tensor& rgb_hwc, int64_t image_size);

// convert('RGB') -> ToTensor -> Normalize(OpenAI mean/std).
torch::Tensor to_normalized_tensor(const PilImage& img);

PilImage rgb_image(const torch::Tensor& rgb_hwc);

}  // namespace cliprepro
