// Zero-shot classification: class prompts -> normalised text classifier -> top-k on images.
#pragma once
#include <torch/torch.h>

#include "src/model/clip.h"

namespace cliprepro {

struct ZeroShotResult {
  double top1 = 0, top5 = 0;
  int64_t count = 0;
};

// `class_tokens`: (C·T, L) prompt tokens, class-major (T templates per class);
// `images`/`labels`: the evaluation set. With T > 1 the classifier is OpenCLIP's
// build_zero_shot_classifier: normalised text features averaged over templates, renormalised.
ZeroShotResult zero_shot_eval(Clip& model, const torch::Tensor& class_tokens,
                              const torch::Tensor& images, const torch::Tensor& labels,
                              int64_t batch_size, int64_t templates_per_class = 1);

}  // namespace cliprepro
