#include "src/train/clip_loss.h"

#include "src/dist/process_group.h"

namespace cliprepro {

ClipLogits clip_logits(const torch::Tensor& image_features, const torch::Tensor& text_features,
                       const torch::Tensor& logit_scale) {
  // Python evaluates `logit_scale * a @ b.T` left to right: (logit_scale * a) @ b.T.
  return {(logit_scale * image_features).matmul(text_features.t()),
          (logit_scale * text_features).matmul(image_features.t())};
}

ClipLogits clip_logits_distributed(const torch::Tensor& image_features,
                                   const torch::Tensor& text_features,
                                   const torch::Tensor& logit_scale, const ClipLossFlags& flags,
                                   dist::ProcessGroup& pg) {
  std::vector<torch::Tensor> img, txt;
  if (flags.gather_with_grad) {
    img = dist::all_gather_with_grad(pg, image_features);
    txt = dist::all_gather_with_grad(pg, text_features);
  } else {
    img = pg.all_gather(image_features.detach());
    txt = pg.all_gather(text_features.detach());
    if (!flags.local_loss) {
      // The live local slice carries the gradient; the other slices are constants.
      img[pg.rank()] = image_features;
      txt[pg.rank()] = text_features;
    }
  }
  auto all_img = torch::cat(img, 0), all_txt = torch::cat(txt, 0);
  if (flags.local_loss) {
    return {(logit_scale * image_features).matmul(all_txt.t()),
            (logit_scale * text_features).matmul(all_img.t())};
  }
  auto per_image = (logit_scale * all_img).matmul(all_txt.t());
  return {per_image, per_image.t()};
}

int64_t clip_label_offset(const ClipLogits& logits, const ClipLossFlags& flags, int rank,
                          int world_size) {
  return world_size > 1 && flags.local_loss ? logits.per_image.size(0) * rank : 0;
}

torch::Tensor clip_loss(const ClipLogits& logits, int64_t label_offset) {
  auto labels =
      torch::arange(logits.per_image.size(0),
                    torch::TensorOptions().dtype(torch::kInt64).device(logits.per_image.device()));
  if (label_offset != 0) labels = labels + label_offset;
  namespace F = torch::nn::functional;
  return (F::cross_entropy(logits.per_image, labels) + F::cross_entropy(logits.per_text, labels)) /
         2;
}

}  // namespace cliprepro
