// OpenCLIP's ClipLoss: one process, or gathered across a c10d process group with OpenCLIP's
// --local-loss / --gather-with-grad semantics.
#pragma once
#include <torch/torch.h>

namespace cliprepro {

namespace dist {
class ProcessGroup;
}

struct ClipLogits {
  torch::Tensor per_image, per_text;
};

struct ClipLossFlags {
  bool local_loss = false;        // logits of local features against all features
  bool gather_with_grad = false;  // autograd-aware all_gather (else: plain gather + local slice)
};

ClipLogits clip_logits(const torch::Tensor& image_features, const torch::Tensor& text_features,
                       const torch::Tensor& logit_scale);

// OpenCLIP's gather_features + get_logits for world_size > 1 (same op order, so same bits).
ClipLogits clip_logits_distributed(const torch::Tensor& image_features,
                                   const torch::Tensor& text_features,
                                   const torch::Tensor& logit_scale, const ClipLossFlags& flags,
                                   dist::ProcessGroup& pg);

// Labels offset by num_logits * rank under local loss (get_ground_truth).
int64_t clip_label_offset(const ClipLogits& logits, const ClipLossFlags& flags, int rank,
                          int world_size);

// (CE(per_image, labels) + CE(per_text, labels)) / 2, mean reduction,
// labels = arange(per_image.size(0)) + label_offset.
torch::Tensor clip_loss(const ClipLogits& logits, int64_t label_offset = 0);

}  // namespace cliprepro
