// Zero-shot classification: class prompts -> normalised text classifier -> top-k on images.
#pragma once
#include <torch/torch.h>

#include "src/model/clip.h"

namespace cliprepro {

struct ZeroShotResult {
  double top1 = 0, top5 = 0;
  int64_t count = 0;
  torch::Tensor classifier;  // (E, C): normalised class embeddings
  torch::Tensor logits;      // (N, C): what top-k ranked, every image
};

// How the classifier and the logits are formed. OpenCLIP's zero_shot_eval: 10 classes per
// encode_text, images in batches of --batch-size, logits 100 · features @ classifier.
struct ZeroShotOptions {
  int64_t templates_per_class = 1;
  int64_t classes_per_batch = 0;  // 0: every prompt in one encode_text
  int64_t image_batch_size = 256;
  double logit_multiplier = 1.0;  // applied to the image features before the matmul, as OpenCLIP
};

// `class_tokens`: (C·T, L) prompt tokens, class-major (T templates per class);
// `images`/`labels`: the evaluation set. With T > 1 the classifier is OpenCLIP's
// build_zero_shot_classifier: normalised text features averaged over templates, renormalised.
ZeroShotResult zero_shot_eval(Clip& model, const torch::Tensor& class_tokens,
                              const torch::Tensor& images, const torch::Tensor& labels,
                              const ZeroShotOptions& options);

}  // namespace cliprepro
