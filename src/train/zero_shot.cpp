#include "src/train/zero_shot.h"

#include <algorithm>

namespace cliprepro {

ZeroShotResult zero_shot_eval(Clip& model, const torch::Tensor& class_tokens,
                              const torch::Tensor& images, const torch::Tensor& labels,
                              int64_t batch_size, int64_t templates_per_class) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  auto device = model->logit_scale.device();
  auto text = model->encode_text(class_tokens.to(device), true);
  if (templates_per_class > 1) {
    text = text.reshape({-1, templates_per_class, text.size(-1)}).mean(1);
    text = text / text.norm(2, {1}, true);
  }
  auto classifier = text.t();  // (E, C)
  ZeroShotResult r;
  const int64_t n = images.size(0);
  const int64_t k = std::min<int64_t>(5, classifier.size(1));
  for (int64_t i = 0; i < n; i += batch_size) {
    const int64_t j = std::min(n, i + batch_size);
    auto feats = model->encode_image(images.slice(0, i, j).to(device), true);
    auto topk = std::get<1>(feats.matmul(classifier).topk(k, 1)).cpu();
    auto target = labels.slice(0, i, j).unsqueeze(1);
    auto hits = topk.eq(target);
    r.top1 += hits.select(1, 0).sum().item<double>();
    r.top5 += hits.any(1).sum().item<double>();
  }
  r.count = n;
  r.top1 /= double(n);
  r.top5 /= double(n);
  model->train(was_training);
  return r;
}

}  // namespace cliprepro
