#include "src/train/grad_clip.h"

#include <ATen/native/ForeachUtils.h>

#include <utility>

#include "src/python_number.h"

namespace cliprepro {
namespace {

// torch.utils._foreach_utils._group_tensors_by_device_and_dtype: the same ATen function,
// so the groups come in the same (hash map) order. The order matters: the total norm reduces
// the per-tensor norms in group order.
std::vector<std::vector<torch::Tensor>> group_by_device_and_dtype(
    const std::vector<torch::Tensor>& tensors) {
  at::native::nested_optional_tensorvec_t nested(1);
  for (const auto& t : tensors) nested[0].emplace_back(t);
  std::vector<std::vector<torch::Tensor>> out;
  for (const auto& [key, group] : at::native::_group_tensors_by_first_tensors_device_and_dtype(
           nested, /*with_indices=*/false)) {
    (void)key;
    auto& g = out.emplace_back();
    for (const auto& t : group.first[0]) g.push_back(*t);
  }
  return out;
}

}  // namespace

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return torch::zeros({});
  const auto groups = group_by_device_and_dtype(grads);
  const auto first_device = grads.front().device();
  std::vector<torch::Tensor> norms;
  for (const auto& g : groups) {
    for (auto& n : at::_foreach_norm(g, 2.0)) norms.push_back(n.to(first_device));
  }
  auto total_norm = at::linalg_vector_norm(at::stack(norms), 2.0);
  // `max_norm / (total_norm + 1e-6)` in Python is Tensor.__rtruediv__: reciprocal() * max_norm.
  auto clip_coef = (total_norm + py_number(1e-6)).reciprocal() * py_number(max_norm);
  auto clip_coef_clamped = at::clamp(clip_coef, std::nullopt, 1.0);
  for (const auto& g : groups) {
    at::_foreach_mul_(g, clip_coef_clamped.to(g.front().device()));
  }
  return total_norm;
}

}  // namespace cliprepro
