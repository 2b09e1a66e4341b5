// OpenCLIP's low-precision model setups (open_clip.factory._set_model_device_and_precision).
#pragma once
#include <torch/torch.h>

#include "src/model/clip.h"

namespace cliprepro {

// `fp16`/`bf16`: open_clip.model.convert_weights_to_lp: conv and linear weights and biases
// (attention projections included), the packed in_proj of every multi-head attention, and
// text_projection go to `dtype`; embeddings, LayerNorm, BatchNorm and logit_scale stay fp32.
void convert_weights_to_lp(ClipImpl& model, torch::ScalarType dtype);

// `pure_fp16`/`pure_bf16`: model.to(dtype), which converts floating-point parameters and buffers
// only (num_batches_tracked stays int64, unlike libtorch's Module::to). With `keep_batch_norm`
// (bn-fp32) the BatchNorm parameters and running statistics stay fp32.
void convert_floating_tensors(torch::nn::Module& model, torch::ScalarType dtype,
                              bool keep_batch_norm);

}  // namespace cliprepro
