// Deterministic, learnable image-caption pairs: a coloured shape on a noisy background,
// captioned "a red circle on the left". Every sample is a pure function of (seed, id),
// rendered to uint8 like a decoded image, then normalised with OpenAI's mean/std.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "src/data/word_tokenizer.h"

namespace cliprepro {

struct Batch {
  torch::Tensor images;       // (B, 3, S, S) float32, normalised
  torch::Tensor tokens;       // (B, context_length) int64
  torch::Tensor labels;       // (B,) int64 class id = colour * kShapes + shape
  torch::Tensor sample_ids;   // (B,) int64
  torch::Tensor sample_keys;  // (B, 256) uint8 source keys (tensor_name::kSampleKeys) or undefined
  std::vector<std::string> captions;
};

class SyntheticShapes {
 public:
  static const std::vector<std::string>& colours();
  static const std::vector<std::string>& shapes();
  static int64_t num_classes();
  // Zero-shot prompt of class c: "a {colour} {shape}".
  static std::string class_prompt(int64_t c);
  static std::vector<std::string> vocabulary();

  // `split` separates train (0) from held-out (1) ids so they never overlap.
  SyntheticShapes(int64_t image_size, uint64_t seed, int split);

  // uint8 (3, S, S) image, caption and class of sample `id`.
  torch::Tensor render(int64_t id, std::string* caption, int64_t* label) const;
  Batch batch(const std::vector<int64_t>& ids, const WordTokenizer& tok) const;

 private:
  int64_t image_size_;
  uint64_t seed_;
  int split_;
};

// OpenAI CLIP normalisation of a uint8 (B, 3, H, W) or (3, H, W) tensor.
torch::Tensor normalize_openai(const torch::Tensor& uint8_images);

// Fisher-Yates permutation of [0, n) from a portable PRNG (same on every platform).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

// splitmix64: the portable PRNG behind all synthetic data.
uint64_t splitmix64(uint64_t& state);

}  // namespace cliprepro
