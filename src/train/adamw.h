// AdamW with PyTorch's single-tensor op sequence (torch.optim.AdamW, foreach=False),
// and OpenCLIP's two parameter groups. Written out so every moment can be logged.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace cliprepro {

struct AdamWOptions {
  double lr = 5e-4;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.2;
};

struct AdamWParam {
  std::string name;
  torch::Tensor param;
  torch::Tensor exp_avg, exp_avg_sq;
  torch::Tensor step;  // float32 0-d, as PyTorch keeps it
};

struct AdamWGroup {
  std::vector<AdamWParam> params;
  double weight_decay = 0.0;
  double lr = 0.0;
};

// OpenCLIP: no weight decay for ndim<2 and names containing "bn", "ln", "bias", "logit_scale".
bool openclip_excludes_weight_decay(const std::string& name, const torch::Tensor& p);

class AdamW {
 public:
  // Group 0: excluded params (wd 0); group 1: the rest (wd = opts.weight_decay).
  AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& named_params, AdamWOptions opts);
  void set_lr(double lr);
  void zero_grad();
  void step();
  std::vector<AdamWGroup>& groups() { return groups_; }
  const std::vector<AdamWGroup>& groups() const { return groups_; }

 private:
  std::vector<AdamWGroup> groups_;
  AdamWOptions opts_;
};

}  // namespace cliprepro
