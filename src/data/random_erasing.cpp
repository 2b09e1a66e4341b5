#include "src/data/random_erasing.h"

#include <cmath>

namespace cliprepro {
namespace {

// random.random() / random.uniform(a, b) / random.randint(a, b) from `gen`.
double uniform(at::Generator& gen, double a = 0.0, double b = 1.0) {
  return torch::empty({1}, torch::kFloat64).uniform_(a, b, gen).item<double>();
}
int64_t randint_inclusive(at::Generator& gen, int64_t a, int64_t b) {
  return torch::randint(a, b + 1, {1}, gen, torch::kInt64).item<int64_t>();
}

}  // namespace

bool random_erasing_(torch::Tensor& img, double probability, at::Generator& gen) {
  // timm: `if random.random() > self.probability: return`.
  if (probability <= 0.0 || uniform(gen) > probability) return false;
  const int64_t chan = img.size(0), img_h = img.size(1), img_w = img.size(2);
  const double area = double(img_h * img_w);
  constexpr double kMinArea = 0.02, kMaxArea = 1.0 / 3.0, kMinAspect = 0.3;
  const double log_lo = std::log(kMinAspect), log_hi = std::log(1.0 / kMinAspect);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = uniform(gen, kMinArea, kMaxArea) * area;
    const double aspect_ratio = std::exp(uniform(gen, log_lo, log_hi));
    // Python's round(): half to even, as std::nearbyint in the default rounding mode.
    const auto h = int64_t(std::nearbyint(std::sqrt(target_area * aspect_ratio)));
    const auto w = int64_t(std::nearbyint(std::sqrt(target_area / aspect_ratio)));
    if (w < img_w && h < img_h) {
      const int64_t top = randint_inclusive(gen, 0, img_h - h);
      const int64_t left = randint_inclusive(gen, 0, img_w - w);
      img.slice(1, top, top + h)
          .slice(2, left, left + w)
          .copy_(torch::empty({chan, h, w}, img.options()).normal_(0.0, 1.0, gen));
      return true;
    }
  }
  return false;
}

}  // namespace cliprepro
