#include "src/model/attention.h"

#include "src/model/portable_kernels.h"

namespace cliprepro {

torch::Tensor multi_head_attention_core(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, int64_t num_heads,
                                        const std::optional<torch::Tensor>& attn_mask) {
  const int64_t tgt_len = q.size(0), bsz = q.size(1), embed_dim = q.size(2);
  const int64_t src_len = k.size(0);
  const int64_t head_dim = embed_dim / num_heads;
  // (L, N, E) -> (N*H, L, D) -> (N, H, L, D), as F.multi_head_attention_forward does.
  auto qh = q.view({tgt_len, bsz * num_heads, head_dim}).transpose(0, 1);
  auto kh = k.view({src_len, bsz * num_heads, head_dim}).transpose(0, 1);
  auto vh = v.view({src_len, bsz * num_heads, head_dim}).transpose(0, 1);
  qh = qh.view({bsz, num_heads, tgt_len, head_dim});
  kh = kh.view({bsz, num_heads, src_len, head_dim});
  vh = vh.view({bsz, num_heads, src_len, head_dim});
  std::optional<torch::Tensor> mask;
  if (attn_mask.has_value() && attn_mask->defined()) {
    mask = attn_mask->view({1, 1, tgt_len, src_len});
  }
  // Portable CPU runs take ATen's math path (matmul, softmax, matmul): the CPU flash-attention
  // kernel SDPA picks computes other bits on Intel and AMD CPUs under every pin (`cliprepro
  // trace` names it: docs/trace.md). OpenCLIP's own runs take SDPA's kernel, as below.
  auto out = portable_kernels_enabled() && q.is_cpu()
                 ? std::get<0>(at::_scaled_dot_product_attention_math(qh, kh, vh, mask, 0.0, false))
                 : at::scaled_dot_product_attention(qh, kh, vh, mask, 0.0, false);
  return out.permute({2, 0, 1, 3}).contiguous().view({tgt_len, bsz, embed_dim});
}

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t embed_dim_, int64_t num_heads_)
    : embed_dim(embed_dim_), num_heads(num_heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * embed_dim, embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * embed_dim}));
  out_proj = register_module("out_proj", torch::nn::Linear(embed_dim, embed_dim));
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(in_proj_weight);
  out_proj->bias.zero_();
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x,
                                              const torch::Tensor& attn_mask) {
  const auto own = sites.of("");
  torch::Tensor out;
  {
    SiteScope scope(own, x.device().type());
    // Packed projection, split as PyTorch's _in_projection_packed (self-attention case).
    auto proj = at::linear(site_input(own, x), in_proj_weight, in_proj_bias);
    proj =
        proj.unflatten(-1, {3, embed_dim}).unsqueeze(0).transpose(0, -2).squeeze(-2).contiguous();
    const auto mask = site_input(own, attn_mask);
    out = multi_head_attention_core(
        proj[0], proj[1], proj[2], num_heads,
        mask.defined() ? std::optional<torch::Tensor>(mask) : std::nullopt);
  }
  const auto L = x.size(0), N = x.size(1);
  out = out.view({L * N, embed_dim});
  return linear(out_proj, out, sites.of("out_proj")).view({L, N, embed_dim});
}

}  // namespace cliprepro
