#include "harness/log/digest.h"

namespace cliprepro {

torch::Tensor host_contiguous(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU).contiguous();
}

uint64_t tensor_digest(const torch::Tensor& t) {
  auto h = host_contiguous(t);
  return bytes_digest(h.data_ptr(), h.nbytes());
}

}  // namespace cliprepro
