#include "src/data/transforms.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "src/data/pil_resample.h"
#include "src/data/synthetic_shapes.h"

namespace cliprepro {
namespace {

// Python's round(): half to even, as std::nearbyint in the default rounding mode.
int64_t py_round(double v) { return int64_t(std::nearbyint(v)); }

}  // namespace

CropParams random_resized_crop_params(int64_t height, int64_t width,
                                      const std::array<double, 2>& scale,
                                      const std::array<double, 2>& ratio, at::Generator& gen) {
  const double area = double(height * width);
  // torch.log(torch.tensor(ratio)): float32, then widened back to double by uniform_.
  const auto log_ratio = torch::log(torch::tensor({ratio[0], ratio[1]}, torch::kFloat32));
  const double log_lo = log_ratio[0].item<double>(), log_hi = log_ratio[1].item<double>();
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area =
        area * torch::empty({1}, torch::kFloat32).uniform_(scale[0], scale[1], gen).item<double>();
    const double aspect_ratio =
        torch::exp(torch::empty({1}, torch::kFloat32).uniform_(log_lo, log_hi, gen)).item<double>();
    const int64_t w = py_round(std::sqrt(target_area * aspect_ratio));
    const int64_t h = py_round(std::sqrt(target_area / aspect_ratio));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int64_t i = torch::randint(0, height - h + 1, {1}, gen, torch::kInt64).item<int64_t>();
      const int64_t j = torch::randint(0, width - w + 1, {1}, gen, torch::kInt64).item<int64_t>();
      return {i, j, h, w};
    }
  }
  const double in_ratio = double(width) / double(height);
  const double rmin = std::min(ratio[0], ratio[1]), rmax = std::max(ratio[0], ratio[1]);
  int64_t w = width, h = height;
  if (in_ratio < rmin) {
    h = py_round(double(w) / rmin);
  } else if (in_ratio > rmax) {
    w = py_round(double(h) * rmax);
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

PilImage rgb_image(const torch::Tensor& rgb_hwc) {
  if (rgb_hwc.scalar_type() != torch::kUInt8 || rgb_hwc.dim() != 3 || rgb_hwc.size(2) != 3) {
    throw std::invalid_argument("expected a (H, W, 3) uint8 RGB tensor");
  }
  PilImage img;
  img.mode = PilMode::kRGB;
  img.pixels = rgb_hwc.contiguous();
  return img;
}

torch::Tensor to_normalized_tensor(const PilImage& img) {
  return normalize_openai(pil_to_rgb(img).permute({2, 0, 1}).contiguous());
}

torch::Tensor train_transform(const PilImage& img, int64_t image_size, at::Generator& gen,
                              const std::array<double, 2>& scale,
                              const std::array<double, 2>& ratio) {
  const auto p = random_resized_crop_params(img.height(), img.width(), scale, ratio, gen);
  // torchvision's F.resized_crop on PIL: img.crop(box).resize((S, S), BICUBIC).
  const auto cropped = pil_crop(img, p.left, p.top, p.left + p.width, p.top + p.height);
  return to_normalized_tensor(pil_resize_bicubic(cropped, image_size, image_size));
}

torch::Tensor train_transform(const torch::Tensor& rgb_hwc, int64_t image_size, at::Generator& gen,
                              const std::array<double, 2>& scale,
                              const std::array<double, 2>& ratio) {
  return train_transform(rgb_image(rgb_hwc), image_size, gen, scale, ratio);
}

torch::Tensor eval_transform(const PilImage& img, int64_t image_size) {
  // Resize(S): shortest side to S, the other int(S * long / short); skipped when already there.
  const int64_t h = img.height(), w = img.width();
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  const int64_t new_short = image_size;
  const auto new_long = int64_t(double(image_size * longer) / double(shorter));
  const int64_t new_w = w <= h ? new_short : new_long, new_h = w <= h ? new_long : new_short;
  PilImage resized = (new_h == h && new_w == w) ? img : pil_resize_bicubic(img, new_w, new_h);
  // CenterCrop(S): resized sides are >= S, so no padding.
  const int64_t top = py_round(double(new_h - image_size) / 2.0);
  const int64_t left = py_round(double(new_w - image_size) / 2.0);
  return to_normalized_tensor(pil_crop(resized, left, top, left + image_size, top + image_size));
}

torch::Tensor eval_transform(const torch::Tensor& rgb_hwc, int64_t image_size) {
  return eval_transform(rgb_image(rgb_hwc), image_size);
}

}  // namespace cliprepro
