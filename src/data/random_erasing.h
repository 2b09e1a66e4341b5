// timm's RandomErasing(probability, mode='pixel') as OpenCLIP's `--aug-cfg use_timm=True
// re_prob=p` applies it (after Normalize, one region, area 2%..1/3, aspect 0.3..1/0.3, filled
// with N(0, 1) noise per pixel and channel). timm draws from Python's `random`, reseeded per
// dataloader worker, which no run can reproduce; cliprepro draws the same quantities in the
// same order from the sample's own seeded generator.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace cliprepro {

// Erases in place one region of `img` (C, H, W) with probability `probability`; true if it did.
bool random_erasing_(torch::Tensor& img, double probability, at::Generator& gen);

}  // namespace cliprepro
