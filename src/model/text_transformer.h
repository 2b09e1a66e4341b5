// OpenCLIP's text transformer: pre-LN residual attention blocks with a causal mask.
#pragma once
#include <torch/torch.h>

#include "src/model/attention.h"
#include "src/model/capture.h"

namespace cliprepro {

// open_clip's LayerNorm (`in_fp32` false) and LayerNormFp32 (true, built for the fp16/bf16
// precisions): F.layer_norm on the input (or its fp32 copy), returned in the input's dtype.
torch::Tensor layer_norm(torch::nn::LayerNormImpl& ln, const torch::Tensor& x, bool in_fp32);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t width, bool quick_gelu);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
  bool quick_gelu;
  PrecisionSites sites;  // c_fc, c_proj
};
TORCH_MODULE(Mlp);

class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  ResidualAttentionBlockImpl(int64_t width, int64_t heads, bool quick_gelu);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  MultiheadAttention attn{nullptr};
  Mlp mlp{nullptr};
  bool layer_norm_fp32 = false;
};
TORCH_MODULE(ResidualAttentionBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, bool quick_gelu);
  // x: (N, L, E) batch-first, as OpenCLIP's Transformer.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask, CaptureTape* tape);
  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(Transformer);

}  // namespace cliprepro
