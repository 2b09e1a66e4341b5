#include "src/model/text_transformer.h"

namespace cliprepro {

torch::Tensor layer_norm(torch::nn::LayerNormImpl& ln, const torch::Tensor& x, bool in_fp32) {
  auto y = torch::layer_norm(in_fp32 ? x.to(torch::kFloat) : x, ln.options.normalized_shape(),
                             ln.weight, ln.bias, ln.options.eps());
  return y.to(x.scalar_type());
}

MlpImpl::MlpImpl(int64_t width, bool quick_gelu_) : quick_gelu(quick_gelu_) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, width * 4));
  c_proj = register_module("c_proj", torch::nn::Linear(width * 4, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto h = linear(c_fc, x, sites.of("c_fc"));
  h = quick_gelu ? h * torch::sigmoid(1.702 * h) : torch::gelu(h);
  return linear(c_proj, h, sites.of("c_proj"));
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width, int64_t heads,
                                                       bool quick_gelu) {
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  attn = register_module("attn", MultiheadAttention(width, heads));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  mlp = register_module("mlp", Mlp(width, quick_gelu));
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x,
                                                  const torch::Tensor& attn_mask) {
  // nn.MultiheadAttention(batch_first=True) transposes to sequence-first internally.
  auto a = attn->forward(layer_norm(*ln_1, x, layer_norm_fp32).transpose(0, 1), attn_mask)
               .transpose(0, 1);
  auto y = x + a;
  return y + mlp(layer_norm(*ln_2, y, layer_norm_fp32));
}

TransformerImpl::TransformerImpl(int64_t width, int64_t layers, int64_t heads, bool quick_gelu) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    resblocks->push_back(ResidualAttentionBlock(width, heads, quick_gelu));
  }
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& x_in, const torch::Tensor& attn_mask,
                                       CaptureTape* tape) {
  auto x = x_in;
  for (size_t i = 0; i < resblocks->size(); ++i) {
    x = resblocks->ptr<ResidualAttentionBlockImpl>(i)->forward(x, attn_mask);
    capture(tape, "transformer.resblocks." + std::to_string(i), x);
  }
  return x;
}

}  // namespace cliprepro
