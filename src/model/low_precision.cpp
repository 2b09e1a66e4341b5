#include "src/model/low_precision.h"

#include "src/model/attention.h"

namespace cliprepro {
namespace {

// `.data = .data.to(dtype)`: the same parameter object, now holding the converted values.
void convert(torch::Tensor& t, torch::ScalarType dtype) {
  if (t.defined()) t.set_data(t.to(dtype));
}

}  // namespace

void convert_weights_to_lp(ClipImpl& model, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (auto& m : model.modules()) {
    if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
      convert(c->weight, dtype);
      convert(c->bias, dtype);
    } else if (auto* l = m->as<torch::nn::LinearImpl>()) {
      convert(l->weight, dtype);
      convert(l->bias, dtype);
    } else if (auto* a = m->as<MultiheadAttentionImpl>()) {
      convert(a->in_proj_weight, dtype);
      convert(a->in_proj_bias, dtype);
    }
  }
  convert(model.text_projection, dtype);
}

void convert_floating_tensors(torch::nn::Module& model, torch::ScalarType dtype,
                              bool keep_batch_norm) {
  torch::NoGradGuard no_grad;
  for (auto& m : model.modules()) {
    if (keep_batch_norm && m->as<torch::nn::BatchNorm2dImpl>()) continue;
    for (auto& p : m->named_parameters(/*recurse=*/false)) {
      if (p.value().is_floating_point()) convert(p.value(), dtype);
    }
    for (auto& b : m->named_buffers(/*recurse=*/false)) {
      if (b.value().is_floating_point()) convert(b.value(), dtype);
    }
  }
}

}  // namespace cliprepro
