#include "src/data/synthetic_shapes.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace cliprepro {
namespace {

constexpr float kPalette[4][3] = {{220, 40, 40}, {40, 180, 60}, {50, 80, 230}, {230, 210, 40}};

double uniform(uint64_t& s) { return double(splitmix64(s) >> 11) * 0x1.0p-53; }

bool inside(int shape, double dx, double dy, double r) {
  switch (shape) {
    case 0:  // circle
      return dx * dx + dy * dy <= r * r;
    case 1:  // square
      return std::max(std::abs(dx), std::abs(dy)) <= 0.8 * r;
    case 2:  // triangle, apex up
      return dy >= -r && dy <= r && std::abs(dx) <= (dy + r) * 0.5;
    default:  // cross
      return (std::abs(dx) <= r / 3 && std::abs(dy) <= r) ||
             (std::abs(dy) <= r / 3 && std::abs(dx) <= r);
  }
}

}  // namespace

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

const std::vector<std::string>& SyntheticShapes::colours() {
  static const std::vector<std::string> v{"red", "green", "blue", "yellow"};
  return v;
}
const std::vector<std::string>& SyntheticShapes::shapes() {
  static const std::vector<std::string> v{"circle", "square", "triangle", "cross"};
  return v;
}
int64_t SyntheticShapes::num_classes() { return int64_t(colours().size() * shapes().size()); }

std::string SyntheticShapes::class_prompt(int64_t c) {
  const int64_t n = int64_t(shapes().size());
  return "a " + colours()[c / n] + " " + shapes()[c % n];
}

std::vector<std::string> SyntheticShapes::vocabulary() {
  std::vector<std::string> v{"a", "on", "the", "left", "right", "small", "large"};
  for (const auto& c : colours()) v.push_back(c);
  for (const auto& s : shapes()) v.push_back(s);
  return v;
}

SyntheticShapes::SyntheticShapes(int64_t image_size, uint64_t seed, int split)
    : image_size_(image_size), seed_(seed), split_(split) {}

torch::Tensor SyntheticShapes::render(int64_t id, std::string* caption, int64_t* label) const {
  uint64_t s = seed_ * 0x100000001B3ull ^ (uint64_t(split_) << 62) ^ uint64_t(id);
  splitmix64(s);
  const int colour = int(splitmix64(s) % colours().size());
  const int shape = int(splitmix64(s) % shapes().size());
  const double S = double(image_size_);
  const double r = S * (0.14 + 0.14 * uniform(s));
  const double cx = S * (0.25 + 0.5 * uniform(s));
  const double cy = S * (0.3 + 0.4 * uniform(s));
  const double bg = 70 + 110 * uniform(s);
  float rgb[3];
  for (int k = 0; k < 3; ++k) rgb[k] = float(kPalette[colour][k] + 40 * (uniform(s) - 0.5));

  auto img = torch::empty({3, image_size_, image_size_}, torch::kUInt8);
  auto* p = img.data_ptr<uint8_t>();
  const int64_t plane = image_size_ * image_size_;
  for (int64_t y = 0; y < image_size_; ++y) {
    for (int64_t x = 0; x < image_size_; ++x) {
      const bool in = inside(shape, x + 0.5 - cx, y + 0.5 - cy, r);
      const double noise = 30 * (uniform(s) - 0.5);
      for (int k = 0; k < 3; ++k) {
        const double v = (in ? rgb[k] : bg) + noise;
        p[k * plane + y * image_size_ + x] = uint8_t(std::clamp(std::lround(v), 0l, 255l));
      }
    }
  }
  if (caption != nullptr) {
    *caption = "a " + std::string(r > S * 0.21 ? "large " : "small ") + colours()[colour] + " " +
               shapes()[shape] + " on the " + (cx < S / 2 ? "left" : "right");
  }
  if (label != nullptr) *label = colour * int64_t(shapes().size()) + shape;
  return img;
}

Batch SyntheticShapes::batch(const std::vector<int64_t>& ids, const WordTokenizer& tok) const {
  Batch b;
  std::vector<torch::Tensor> imgs;
  std::vector<int64_t> labels;
  for (int64_t id : ids) {
    std::string cap;
    int64_t label = 0;
    imgs.push_back(render(id, &cap, &label));
    b.captions.push_back(cap);
    labels.push_back(label);
  }
  b.images = normalize_openai(torch::stack(imgs));
  b.tokens = tok.encode_batch(b.captions);
  b.labels = torch::tensor(labels, torch::kInt64);
  b.sample_ids = torch::tensor(ids, torch::kInt64);
  return b;
}

torch::Tensor normalize_openai(const torch::Tensor& uint8_images) {
  const auto shape =
      uint8_images.dim() == 4 ? std::vector<int64_t>{1, 3, 1, 1} : std::vector<int64_t>{3, 1, 1};
  auto mean = torch::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view(shape);
  auto std = torch::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view(shape);
  return (uint8_images.to(torch::kFloat32).div(255.0f) - mean) / std;
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  uint64_t s = seed ^ 0xD1B54A32D192ED03ull;
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = int64_t(splitmix64(s) % uint64_t(i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

}  // namespace cliprepro
