#include "harness/log/digest_stats.h"

namespace cliprepro {

DigestStats digest_and_stats(const torch::Tensor& host, bool with_stats, SimdPath path) {
  const auto kind = elem_kind(host.scalar_type());
  if (!kind) {  // not a log dtype: digest the bytes, reduce with tensor ops
    DigestStats r{bytes_digest(host.data_ptr(), host.nbytes()), {}};
    if (with_stats) r.stats = tensor_stats(host);
    return r;
  }
  const auto r = host_digest_stats(host.data_ptr(), host.numel(), *kind, with_stats, path);
  return {r.digest, TensorStats(r.stats)};
}

}  // namespace cliprepro
