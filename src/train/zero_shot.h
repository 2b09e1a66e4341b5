// Zero-shot classification: class prompts -> normalised text classifier -> top-k on images.
#pragma once
#include <torch/torch.h>

#include "src/model/clip.h"

namespace cliprepro {

struct ZeroShotResult {
  double top1 = 0, top5 = 0;
  int64_t count = 0;
};

// `class_tokens`: (C, L) prompt tokens; `images`/`labels`: the evaluation set.
ZeroShotResult zero_shot_eval(Clip& model, const torch::Tensor& class_tokens,
                              const torch::Tensor& images, const torch::Tensor& labels,
                              int64_t batch_size);

}  // namespace cliprepro
