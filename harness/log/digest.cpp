#include "harness/log/digest.h"

#include <xxh_x86dispatch.h>  // XXH3 with run-time SSE2/AVX2/AVX-512 choice: same digest

namespace cliprepro {

uint64_t bytes_digest(const void* data, size_t size) { return XXH3_64bits_dispatch(data, size); }

torch::Tensor host_contiguous(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU).contiguous();
}

uint64_t tensor_digest(const torch::Tensor& t) {
  auto h = host_contiguous(t);
  return bytes_digest(h.data_ptr(), h.nbytes());
}

}  // namespace cliprepro
