// torch.nn.utils.clip_grad_norm_ as PyTorch's Python implements it, which libtorch's C++ port
// does not: with gradients of several dtypes (the fp16/bf16 precisions) the norms are taken per
// dtype group and the coefficient is multiplied into each group in the group's dtype.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace cliprepro {

// Clips the gradients of `params` in place to total 2-norm `max_norm`; returns the total norm.
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace cliprepro
