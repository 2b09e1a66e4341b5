#include "src/model/modified_resnet.h"

#include <ATen/autocast_mode.h>

#include <array>
#include <cmath>

#include "src/model/attention.h"

namespace cliprepro {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(padding).bias(false));
}

// BatchNorm that, in training mode, also records the batch statistics it normalises with: the
// per-channel mean and 1/sqrt(var + eps) the kernel saves for backward, from the one forward
// call. It takes BatchNormImplBase::forward's steps (num_batches_tracked, momentum) and calls
// the op at::batch_norm dispatches to, so output, running stats and autograd node
// (NativeBatchNormBackward0, or cuDNN's) are those of m.forward(x).
torch::Tensor bn_native(torch::nn::BatchNorm2dImpl& m, const torch::Tensor& x, CaptureTape* tape,
                        const std::string& path) {
  if (tape == nullptr || !m.is_training()) return m.forward(x);
  TORCH_CHECK(x.dim() == 4, "BatchNorm2d expects 4-D input, got ", x.dim(), "-D");
  double factor = m.options.momentum().value_or(0.0);
  if (m.options.track_running_stats() && m.num_batches_tracked.defined()) {
    m.num_batches_tracked += 1;
    if (!m.options.momentum()) factor = 1.0 / m.num_batches_tracked.item<double>();
  }
  auto [out, mean, invstd, reserve, backend] = at::_batch_norm_impl_index(
      x, m.weight, m.bias, m.running_mean, m.running_var, /*training=*/true, factor,
      m.options.eps(), at::globalContext().userEnabledCuDNN());
  tape->record(family::kBnBatch + path + ".mean", mean);
  tape->record(family::kBnBatch + path + ".invstd", invstd);
  return out;
}

// `in_fp32` (bn-fp32, or an fp32 site): normalise an fp32 copy of the input with fp32 parameters
// and statistics. Under autocast the result stays fp32 (the add and ReLU after it too; the next
// conv casts); without autocast it returns to the input's dtype, as the next conv's weights are
// in it. A low site (and bn-fp32 off) normalises the input in the autocast dtype.
torch::Tensor bn(torch::nn::BatchNorm2dImpl& m, const torch::Tensor& x_in, CaptureTape* tape,
                 const std::string& path, bool bn_fp32, SitePrecision p) {
  if (bn_fp32) p = SitePrecision::kFp32;  // bn-fp32 is BatchNorm's own key: it wins
  const bool in_fp32 = p == SitePrecision::kFp32;
  const auto x = in_fp32 ? x_in : site_input(p, x_in);
  if (!in_fp32 || x.scalar_type() == torch::kFloat) return bn_native(m, x, tape, path);
  auto y = bn_native(m, x.to(torch::kFloat), tape, path);
  return at::autocast::is_autocast_enabled(x.device().type()) ? y : y.to(x.scalar_type());
}

torch::Tensor conv_at(torch::nn::Conv2dImpl& m, const torch::Tensor& x, SitePrecision p) {
  SiteScope scope(p, x.device().type());
  return m.forward(site_input(p, x));
}

}  // namespace

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride_)
    : stride(stride_) {
  conv1 = register_module("conv1", conv(inplanes, planes, 1, 0));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1, 0));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * kExpansion));
  if (stride > 1 || inplanes != planes * kExpansion) {
    // OpenCLIP names the pool "-1" so that state-dict keys stay downsample.0 / downsample.1.
    downsample = torch::nn::Sequential();
    downsample->push_back("-1", torch::nn::AvgPool2d(stride));
    downsample->push_back("0", conv(inplanes, planes * kExpansion, 1, 0));
    downsample->push_back("1", torch::nn::BatchNorm2d(planes * kExpansion));
    register_module("downsample", downsample);
  }
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x, CaptureTape* tape,
                                      const std::string& path) {
  const bool f = batch_norm_fp32;
  auto out = conv_at(*conv1, x, sites.of("conv1"));
  out = torch::relu(bn(*bn1, out, tape, path + ".bn1", f, sites.of("bn1")));
  out = conv_at(*conv2, out, sites.of("conv2"));
  out = torch::relu(bn(*bn2, out, tape, path + ".bn2", f, sites.of("bn2")));
  if (stride > 1) out = torch::avg_pool2d(out, stride);
  out = conv_at(*conv3, out, sites.of("conv3"));
  out = bn(*bn3, out, tape, path + ".bn3", f, sites.of("bn3"));
  auto identity = x;
  if (downsample) {
    // Sequential {"-1": AvgPool2d, "0": conv, "1": BatchNorm}, unrolled to capture the BN.
    identity = conv_at(*(*downsample)[1]->as<torch::nn::Conv2dImpl>(),
                       (*downsample)[0]->as<torch::nn::AvgPool2dImpl>()->forward(x),
                       sites.of("downsample.0"));
    identity = bn(*(*downsample)[2]->as<torch::nn::BatchNorm2dImpl>(), identity, tape,
                  path + ".downsample.1", f, sites.of("downsample.1"));
  }
  out = torch::relu(out + identity);
  capture(tape, path, out);
  return out;
}

AttentionPool2dImpl::AttentionPool2dImpl(int64_t spacial_dim, int64_t embed_dim, int64_t heads,
                                         int64_t output_dim)
    : num_heads(heads) {
  positional_embedding = register_parameter(
      "positional_embedding",
      torch::randn({spacial_dim * spacial_dim + 1, embed_dim}) / std::sqrt(double(embed_dim)));
  k_proj = register_module("k_proj", torch::nn::Linear(embed_dim, embed_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(embed_dim, embed_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(embed_dim, embed_dim));
  c_proj = register_module("c_proj", torch::nn::Linear(embed_dim, output_dim));
}

torch::Tensor AttentionPool2dImpl::forward(const torch::Tensor& x_in) {
  const auto N = x_in.size(0), C = x_in.size(1);
  const auto own = sites.of("");
  torch::Tensor x, out;
  {
    SiteScope scope(own, x_in.device().type());
    x = site_input(own, x_in).reshape({N, C, -1}).permute({2, 0, 1});  // (HW, N, C)
    x = torch::cat({x.mean(0, /*keepdim=*/true), x}, 0);               // (HW+1, N, C)
    x = x + positional_embedding.unsqueeze(1).to(x.dtype());
  }
  auto q = linear(q_proj, x, sites.of("q_proj")), k = linear(k_proj, x, sites.of("k_proj")),
       v = linear(v_proj, x, sites.of("v_proj"));
  {
    SiteScope scope(own, x_in.device().type());
    out = multi_head_attention_core(site_input(own, q), site_input(own, k), site_input(own, v),
                                    num_heads, std::nullopt);
  }
  const auto L = out.size(0);
  out = linear(c_proj, out.view({L * N, C}), sites.of("c_proj")).view({L, N, -1});
  return out[0];
}

ModifiedResNetImpl::ModifiedResNetImpl(const VisionConfig& cfg, int64_t output_dim) {
  const int64_t width = cfg.width;
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(
                   torch::nn::Conv2dOptions(3, width / 2, 3).stride(2).padding(1).bias(false)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(width / 2));
  conv2 = register_module("conv2", conv(width / 2, width / 2, 3, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(width / 2));
  conv3 = register_module("conv3", conv(width / 2, width, 3, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(width));
  avgpool = register_module("avgpool", torch::nn::AvgPool2d(2));

  int64_t inplanes = width;
  for (int i = 0; i < 4; ++i) {
    const int64_t planes = width << i;
    const int64_t stride = i == 0 ? 1 : 2;
    torch::nn::Sequential layer;
    layer->push_back(Bottleneck(inplanes, planes, stride));
    inplanes = planes * BottleneckImpl::kExpansion;
    for (int b = 1; b < cfg.layers[i]; ++b) layer->push_back(Bottleneck(inplanes, planes, 1));
    layers.push_back(register_module("layer" + std::to_string(i + 1), layer));
  }
  const int64_t embed_dim = width * 32;
  attnpool = register_module(
      "attnpool", AttentionPool2d(cfg.image_size / 32, embed_dim, cfg.heads, output_dim));
  init_parameters();
}

void ModifiedResNetImpl::init_parameters() {
  torch::NoGradGuard no_grad;
  const double std = std::pow(double(attnpool->c_proj->weight.size(1)), -0.5);
  for (auto* lin : {&attnpool->q_proj, &attnpool->k_proj, &attnpool->v_proj, &attnpool->c_proj}) {
    (*lin)->weight.normal_(0.0, std);
  }
  // Zero-init the last BN of each residual branch (OpenCLIP init_parameters).
  for (auto& layer : layers) {
    for (auto& p : layer->named_parameters()) {
      const auto& key = p.key();
      if (key.size() >= 10 && key.compare(key.size() - 10, 10, "bn3.weight") == 0)
        p.value().zero_();
    }
  }
}

torch::Tensor ModifiedResNetImpl::forward(const torch::Tensor& input, CaptureTape* tape) {
  // The stem, captured at every OpenCLIP module output (conv1, bn1, act1, ..., avgpool).
  auto x = input;
  const std::array<std::pair<torch::nn::Conv2dImpl*, torch::nn::BatchNorm2dImpl*>, 3> stem = {
      {{conv1.get(), bn1.get()}, {conv2.get(), bn2.get()}, {conv3.get(), bn3.get()}}};
  for (size_t i = 0; i < stem.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    x = conv_at(*stem[i].first, x, sites.of("conv" + n));
    capture(tape, "visual.conv" + n, x);
    x = bn(*stem[i].second, x, tape, "visual.bn" + n, batch_norm_fp32, sites.of("bn" + n));
    capture(tape, "visual.bn" + n, x);
    x = torch::relu(x);
    capture(tape, "visual.act" + n, x);
  }
  x = avgpool(x);
  capture(tape, "visual.avgpool", x);
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string stage = "visual.layer" + std::to_string(i + 1);
    for (size_t b = 0; b < layers[i]->size(); ++b) {
      x = layers[i]->ptr<BottleneckImpl>(b)->forward(x, tape, stage + "." + std::to_string(b));
    }
  }
  x = attnpool(x);
  capture(tape, "visual.attnpool", x);
  return x;
}

}  // namespace cliprepro
