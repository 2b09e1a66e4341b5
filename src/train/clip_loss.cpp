#include "src/train/clip_loss.h"

namespace cliprepro {

ClipLogits clip_logits(const torch::Tensor& image_features, const torch::Tensor& text_features,
                       const torch::Tensor& logit_scale) {
  // Python evaluates `logit_scale * a @ b.T` left to right: (logit_scale * a) @ b.T.
  return {(logit_scale * image_features).matmul(text_features.t()),
          (logit_scale * text_features).matmul(image_features.t())};
}

torch::Tensor clip_loss(const ClipLogits& logits) {
  auto labels =
      torch::arange(logits.per_image.size(0),
                    torch::TensorOptions().dtype(torch::kInt64).device(logits.per_image.device()));
  namespace F = torch::nn::functional;
  return (F::cross_entropy(logits.per_image, labels) + F::cross_entropy(logits.per_text, labels)) /
         2;
}

}  // namespace cliprepro
