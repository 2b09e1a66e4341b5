// OpenCLIP's ClipLoss for one process (the distributed gather lands with c10d support).
#pragma once
#include <torch/torch.h>

namespace cliprepro {

struct ClipLogits {
  torch::Tensor per_image, per_text;
};

ClipLogits clip_logits(const torch::Tensor& image_features, const torch::Tensor& text_features,
                       const torch::Tensor& logit_scale);

// (CE(per_image, arange) + CE(per_text, arange)) / 2, mean reduction.
torch::Tensor clip_loss(const ClipLogits& logits);

}  // namespace cliprepro
