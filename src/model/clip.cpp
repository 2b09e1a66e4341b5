#include "src/model/clip.h"

#include <cmath>
#include <limits>
#include <map>
#include <string>

namespace cliprepro {

ClipImpl::ClipImpl(const ModelConfig& cfg, InitOrder order) : cfg_(cfg) {
  visual = register_module("visual", ModifiedResNet(cfg.vision, cfg.embed_dim));
  const auto& t = cfg.text;
  // Construction draws (nn.Embedding's normal, nn.Linear's uniform) in the order asked for; the
  // modules are registered in OpenCLIP's state_dict order either way.
  torch::nn::Embedding embedding{nullptr};
  if (order == InitOrder::kOpenClip) embedding = torch::nn::Embedding(t.vocab_size, t.width);
  transformer =
      register_module("transformer", Transformer(t.width, t.layers, t.heads, cfg.quick_gelu));
  if (order == InitOrder::kCliprepro) embedding = torch::nn::Embedding(t.vocab_size, t.width);
  token_embedding = register_module("token_embedding", embedding);
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({t.context_length, t.width}));
  ln_final =
      register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({t.width})));
  text_projection = register_parameter("text_projection", torch::empty({t.width, cfg.embed_dim}));
  logit_scale = register_parameter("logit_scale", torch::ones({}) * std::log(1.0 / 0.07));
  attn_mask =
      torch::full({t.context_length, t.context_length}, -std::numeric_limits<float>::infinity())
          .triu_(1);
  init_text_parameters();
}

void ClipImpl::init_text_parameters() {
  torch::NoGradGuard no_grad;
  const auto& t = cfg_.text;
  token_embedding->weight.normal_(0.0, 0.02);
  positional_embedding.normal_(0.0, 0.01);
  const double width = t.width;
  const double proj_std = std::pow(width, -0.5) * std::pow(2.0 * t.layers, -0.5);
  const double attn_std = std::pow(width, -0.5);
  const double fc_std = std::pow(2.0 * width, -0.5);
  for (auto& m : *transformer->resblocks) {
    auto* block = m->as<ResidualAttentionBlockImpl>();
    block->attn->in_proj_weight.normal_(0.0, attn_std);
    block->attn->out_proj->weight.normal_(0.0, proj_std);
    block->mlp->c_fc->weight.normal_(0.0, fc_std);
    block->mlp->c_proj->weight.normal_(0.0, proj_std);
  }
  text_projection.normal_(0.0, std::pow(width, -0.5));
}

namespace {

// Hands each module that runs sites itself its share of `precision`, by name relative to it:
// its own ops as "", its direct submodules (and a Bottleneck's downsample.N) by their names.
void distribute_sites(ClipImpl& model, const std::map<std::string, SitePrecision>& precision) {
  auto assign = [&](PrecisionSites& sites, const std::string& path) {
    sites.clear();
    const std::string prefix = path.empty() ? "" : path + ".";
    for (const auto& [site, p] : precision) {
      if (site == path) sites.set("", p);
      if (site.size() <= prefix.size() || site.compare(0, prefix.size(), prefix) != 0) continue;
      const auto local = site.substr(prefix.size());
      if (local.find('.') == std::string::npos || local.rfind("downsample.", 0) == 0)
        sites.set(local, p);
    }
  };
  assign(model.sites, "");
  for (const auto& kv : model.named_modules("", /*include_self=*/false)) {
    const auto& m = kv.value();
    if (auto* r = m->as<ModifiedResNetImpl>()) assign(r->sites, kv.key());
    if (auto* b = m->as<BottleneckImpl>()) assign(b->sites, kv.key());
    if (auto* a = m->as<AttentionPool2dImpl>()) assign(a->sites, kv.key());
    if (auto* a = m->as<MultiheadAttentionImpl>()) assign(a->sites, kv.key());
    if (auto* p = m->as<MlpImpl>()) assign(p->sites, kv.key());
  }
}

}  // namespace

void ClipImpl::set_numerics(const ModelNumerics& n) {
  distribute_sites(*this, resolve_site_precision(precision_site_names(cfg_), n.overrides));
  numerics_ = n;
  for (auto& m : *transformer->resblocks) {
    m->as<ResidualAttentionBlockImpl>()->layer_norm_fp32 = n.layer_norm_fp32;
  }
  visual->batch_norm_fp32 = n.batch_norm_fp32;
  for (auto& m : visual->modules()) {
    if (auto* b = m->as<BottleneckImpl>()) b->batch_norm_fp32 = n.batch_norm_fp32;
    if (auto* b = m->as<torch::nn::BatchNorm2dImpl>()) b->options.eps(n.batch_norm_eps);
  }
}

torch::Tensor ClipImpl::encode_image(const torch::Tensor& images, bool normalize,
                                     CaptureTape* tape) {
  auto f = visual->forward(images, tape);
  if (normalize)
    f = torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  return f;
}

torch::Tensor ClipImpl::encode_text(const torch::Tensor& tokens, bool normalize,
                                    CaptureTape* tape) {
  // open_clip's cast dtype: the text tower's weight dtype (low under fp16/bf16/pure_*).
  const auto cast_dtype =
      transformer->resblocks->ptr<ResidualAttentionBlockImpl>(0)->mlp->c_fc->weight.scalar_type();
  auto x = token_embedding(tokens).to(cast_dtype);
  capture(tape, "token_embedding", x);
  x = x + positional_embedding.to(cast_dtype);
  x = transformer->forward(x, attn_mask.to(x.device(), x.scalar_type()), tape);
  x = layer_norm(*ln_final, x, numerics_.layer_norm_fp32);
  capture(tape, "ln_final", x);
  // Pool at the EOT token: it has the largest id in the vocabulary.
  auto eot = tokens.argmax(-1);
  x = x.index({torch::arange(x.size(0), eot.options()), eot});
  {
    const auto p = sites.of(kTextProjectionSite);
    SiteScope scope(p, x.device().type());
    x = site_input(p, x).matmul(text_projection);
  }
  if (normalize)
    x = torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  return x;
}

ClipOutput ClipImpl::forward(const torch::Tensor& images, const torch::Tensor& tokens,
                             CaptureTape* tape) {
  ClipOutput out;
  out.image_features = encode_image(images, true, tape);
  capture(tape, "image_features", out.image_features);
  out.text_features = encode_text(tokens, true, tape);
  capture(tape, "text_features", out.text_features);
  out.logit_scale = logit_scale.exp();
  return out;
}

}  // namespace cliprepro
