#include "src/train/adamw.h"

#include <cmath>

#include "src/python_number.h"

namespace cliprepro {

bool openclip_excludes_weight_decay(const std::string& name, const torch::Tensor& p) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  return p.dim() < 2 || has("bn") || has("ln") || has("bias") || has("logit_scale");
}

AdamW::AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& named_params,
             AdamWOptions opts)
    : groups_(2), opts_(opts) {
  groups_[0].weight_decay = 0.0;
  groups_[1].weight_decay = opts.weight_decay;
  for (const auto& [name, p] : named_params) {
    if (!p.requires_grad()) continue;
    AdamWParam ap;
    ap.name = name;
    ap.param = p;
    ap.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    ap.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    ap.step = torch::zeros({}, torch::kFloat32);
    groups_[openclip_excludes_weight_decay(name, p) ? 0 : 1].params.push_back(std::move(ap));
  }
  set_lr(opts.lr);
}

void AdamW::set_lr(double lr) {
  for (auto& g : groups_) g.lr = lr;
}

void AdamW::zero_grad() {
  for (auto& g : groups_) {
    for (auto& p : g.params) p.param.mutable_grad() = torch::Tensor();  // set_to_none
  }
}

void AdamW::step() {
  torch::NoGradGuard no_grad;
  const double beta1 = opts_.beta1, beta2 = opts_.beta2, eps = opts_.eps;
  for (auto& g : groups_) {
    const double lr = g.lr;
    for (auto& p : g.params) {
      const auto& grad = p.param.grad();
      if (!grad.defined()) continue;
      p.step.add_(1);
      // Python numbers, as torch.optim's _single_tensor_adam passes them (see py_number).
      p.param.mul_(py_number(1 - lr * g.weight_decay));
      p.exp_avg.lerp_(grad, 1 - beta1);
      p.exp_avg_sq.mul_(py_number(beta2)).addcmul_(grad, grad, 1 - beta2);
      const double step = p.step.item<float>();
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      const double step_size = lr / bias_correction1;
      const double bias_correction2_sqrt = std::sqrt(bias_correction2);
      auto denom = (p.exp_avg_sq.sqrt() / py_number(bias_correction2_sqrt)).add_(py_number(eps));
      p.param.addcdiv_(p.exp_avg, denom, -step_size);
    }
  }
}

}  // namespace cliprepro
