// A Python number the way PyTorch's Python bindings hand it to an op: a 0-d double tensor
// marked as a wrapped number, which selects the `.Tensor` overload. C++ code that passes a
// plain double selects the `.Scalar` overload instead, which Python never calls, and on
// fp16/bf16 the in-place `mul_.Scalar` rounds differently from `mul_.Tensor` (torch 2.11, CPU:
// half(75 subnormal ulps).mul_(0.98) gives 73 ulps, Python's `t.mul_(0.98)` 74). Use it where
// the bits must follow a Python reference (AdamW, DDP's gradient division, ...).
#pragma once
#include <torch/torch.h>

namespace cliprepro {

inline torch::Tensor py_number(double v) {
  auto t = torch::scalar_tensor(v, torch::kDouble);
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

}  // namespace cliprepro
