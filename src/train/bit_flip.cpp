#include "src/train/bit_flip.h"

#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>

namespace cliprepro {

BitFlip resolve_bit_flip(BitFlip flip, const LiveState& state, int64_t total_steps) {
  if (flip.step <= 0) return flip;
  if (flip.step > total_steps) {
    throw std::runtime_error("[debug] flip-step " + std::to_string(flip.step) +
                             " is after the last step (" + std::to_string(total_steps) + ")");
  }
  std::mt19937_64 rng(flip.seed);
  std::vector<const std::pair<std::string, torch::Tensor>*> candidates;
  for (const auto& s : state) {
    if (s.second.is_floating_point() && s.second.numel() > 0) candidates.push_back(&s);
  }
  const std::pair<std::string, torch::Tensor>* target = nullptr;
  if (flip.tensor.empty()) {
    target = candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng)];
    flip.tensor = target->first;
  } else {
    for (const auto* c : candidates) {
      if (c->first == flip.tensor) target = c;
    }
    if (target == nullptr) {
      throw std::runtime_error("[debug] flip-tensor '" + flip.tensor +
                               "' is not a floating-point params/, buffers/ or optimizer/exp_avg* "
                               "tensor of this model");
    }
  }
  const auto& t = target->second;
  if (flip.element < 0)
    flip.element = std::uniform_int_distribution<int64_t>(0, t.numel() - 1)(rng);
  const int bits = int(t.element_size() * 8);
  if (flip.bit < 0) flip.bit = std::uniform_int_distribution<int>(0, bits - 1)(rng);
  if (flip.element >= t.numel() || flip.bit >= bits) {
    throw std::runtime_error("[debug] flip of " + flip.tensor + ": element " +
                             std::to_string(flip.element) + " / bit " + std::to_string(flip.bit) +
                             " outside its " + std::to_string(t.numel()) + " elements of " +
                             std::to_string(bits) + " bits");
  }
  return flip;
}

void apply_bit_flip(const BitFlip& flip, const LiveState& state) {
  for (const auto& [name, t] : state) {
    if (name != flip.tensor) continue;
    torch::NoGradGuard no_grad;
    const auto int_type = t.element_size() == 8   ? torch::kInt64
                          : t.element_size() == 4 ? torch::kInt32
                                                  : torch::kInt16;
    auto element = t.detach().view({-1}).view(int_type)[flip.element];
    // The top bit of a signed integer view is its minimum value (two's complement).
    const int bits = int(t.element_size() * 8);
    const int64_t mask = flip.bit == bits - 1 ? (bits == 64 ? std::numeric_limits<int64_t>::min()
                                                            : -(int64_t(1) << (bits - 1)))
                                              : int64_t(1) << flip.bit;
    element.bitwise_xor_(torch::scalar_tensor(mask, int_type));
    std::fprintf(stderr, "debug: flipped bit %d of %s[%lld] after step %lld\n", flip.bit,
                 name.c_str(), (long long)flip.element, (long long)flip.step);
    return;
  }
}

}  // namespace cliprepro
