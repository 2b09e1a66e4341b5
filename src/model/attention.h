// Multi-head attention with the op sequence of torch.nn.functional.multi_head_attention_forward
// (need_weights=False), so parameters and numerics follow OpenCLIP's use of it.
#pragma once
#include <torch/torch.h>

#include <optional>

#include "src/model/precision_sites.h"

namespace cliprepro {

// PyTorch's F.linear (at::linear). Not torch::nn::Linear::forward: LibTorch's C++ frontend
// computes matmul + bias for inputs that are not 2-D, which rounds differently from Python's
// fused path once the reduction dimension is blocked (seen at K = 512: a few ULP off).
inline torch::Tensor linear(const torch::nn::Linear& m, const torch::Tensor& x) {
  return at::linear(x, m->weight, m->bias);
}
// The same at a precision site (see precision_sites.h).
inline torch::Tensor linear(const torch::nn::Linear& m, const torch::Tensor& x, SitePrecision p) {
  SiteScope scope(p, x.device().type());
  return at::linear(site_input(p, x), m->weight, m->bias);
}

// q/k/v: (L, N, E) sequence-first. Projections already applied by the caller.
// Returns (L, N, E) before the output projection.
torch::Tensor multi_head_attention_core(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, int64_t num_heads,
                                        const std::optional<torch::Tensor>& attn_mask);

// nn.MultiheadAttention(d_model, n_head) with packed in_proj, parameter names as PyTorch's.
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads);
  // x: (L, N, E); attn_mask additive (L, L) or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask);

  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
  int64_t embed_dim, num_heads;
  PrecisionSites sites;  // "" (packed in_proj and attention core), out_proj
};
TORCH_MODULE(MultiheadAttention);

}  // namespace cliprepro
