// OpenCLIP's ModifiedResNet image tower: 3-conv stem with avg-pool, anti-aliased
// bottlenecks (avg-pool before strided convs), and an attention-pool head.
#pragma once
#include <torch/torch.h>

#include "src/model/capture.h"
#include "src/model/model_config.h"
#include "src/model/precision_sites.h"

namespace cliprepro {

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int kExpansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x, CaptureTape* tape, const std::string& path);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  int64_t stride;
  bool batch_norm_fp32 = false;  // bn-fp32 (see ModelNumerics)
  PrecisionSites sites;          // conv1 … bn3, downsample.0, downsample.1
};
TORCH_MODULE(Bottleneck);

class AttentionPool2dImpl : public torch::nn::Module {
 public:
  AttentionPool2dImpl(int64_t spacial_dim, int64_t embed_dim, int64_t num_heads,
                      int64_t output_dim);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor positional_embedding;
  torch::nn::Linear k_proj{nullptr}, q_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};
  int64_t num_heads;
  PrecisionSites sites;  // "" (positional add and attention core), q_proj, k_proj, v_proj, c_proj
};
TORCH_MODULE(AttentionPool2d);

class ModifiedResNetImpl : public torch::nn::Module {
 public:
  ModifiedResNetImpl(const VisionConfig& cfg, int64_t output_dim);
  torch::Tensor forward(const torch::Tensor& x, CaptureTape* tape);
  void init_parameters();

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::AvgPool2d avgpool{nullptr};
  std::vector<torch::nn::Sequential> layers;  // layer1..layer4
  AttentionPool2d attnpool{nullptr};
  bool batch_norm_fp32 = false;  // bn-fp32 (see ModelNumerics)
  PrecisionSites sites;          // the stem: conv1 … bn3
};
TORCH_MODULE(ModifiedResNet);

}  // namespace cliprepro
