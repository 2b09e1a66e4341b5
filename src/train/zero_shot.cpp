#include "src/train/zero_shot.h"

#include <algorithm>
#include <vector>

namespace cliprepro {

namespace {

// build_zero_shot_classifier's _process_batch over prompts of whole classes: (E, classes).
torch::Tensor class_embeddings(Clip& model, const torch::Tensor& tokens, int64_t templates) {
  auto text = model->encode_text(tokens, true);
  if (templates > 1) {
    text = text.reshape({-1, templates, text.size(-1)}).mean(1);
    text = text / text.norm(2, {1}, true);
  }
  return text.t();
}

}  // namespace

ZeroShotResult zero_shot_eval(Clip& model, const torch::Tensor& class_tokens,
                              const torch::Tensor& images, const torch::Tensor& labels,
                              const ZeroShotOptions& o) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  auto device = model->logit_scale.device();
  const auto tokens = class_tokens.to(device);
  const int64_t t = o.templates_per_class;
  const int64_t per_batch = o.classes_per_batch > 0 ? o.classes_per_batch * t : tokens.size(0);
  std::vector<torch::Tensor> columns;
  for (int64_t i = 0; i < tokens.size(0); i += per_batch)
    columns.push_back(class_embeddings(model, tokens.slice(0, i, i + per_batch), t));
  ZeroShotResult r;
  r.classifier = torch::cat(columns, 1);  // (E, C)
  std::vector<torch::Tensor> logits;
  const int64_t n = images.size(0);
  const int64_t k = std::min<int64_t>(5, r.classifier.size(1));
  for (int64_t i = 0; i < n; i += o.image_batch_size) {
    const int64_t j = std::min(n, i + o.image_batch_size);
    auto feats = model->encode_image(images.slice(0, i, j).to(device), true);
    if (o.logit_multiplier != 1.0) feats = feats * o.logit_multiplier;
    {
      // The logits matmul is the loss's (the `loss` precision site, src/model/precision_sites.h).
      const auto site = model->sites.of(kLossSite);
      SiteScope scope(site, feats.device().type());
      logits.push_back(site_input(site, feats).matmul(site_input(site, r.classifier)));
    }
    auto topk = std::get<1>(logits.back().topk(k, 1)).cpu();
    auto target = labels.slice(0, i, j).unsqueeze(1);
    auto hits = topk.eq(target);
    r.top1 += hits.select(1, 0).sum().item<double>();
    r.top5 += hits.any(1).sum().item<double>();
  }
  r.logits = torch::cat(logits);
  r.count = n;
  r.top1 /= double(n);
  r.top5 /= double(n);
  model->train(was_training);
  return r;
}

}  // namespace cliprepro
