// Portable CPU kernels: the elementwise math ops whose float32/float64 results depend on the
// CPU's vendor or model under every pin ([determinism] portable, docs/compare.md "Goldens").
// LibTorch's CPU kernels for them call MKL's vector math (vsSqrt, vsExp, vsLn, vsErf), which
// picks its code by CPUID vendor and model whatever MKL_CBWR says: float32 sqrt is not even
// correctly rounded on AMD. While enabled, the CPU kernels of aten::sqrt, exp, log and erf
// (functional, in-place and out=) are replaced by cliprepro's: sqrt correctly rounded (IEEE,
// as Intel's MKL gives it), exp/log/erf glibc's libm, element by element (its FMA code path
// on every CPU with AVX2 and FMA, which the pins require). Other dtypes keep LibTorch's own
// kernels (bf16 and fp16 do not go through MKL). Process-wide: the dispatcher's table is global.
// The attention core (src/model/attention.cpp) reads the switch too: it leaves the CPU
// flash-attention kernel for ATen's math path.
#pragma once
#include <string>
#include <vector>

namespace cliprepro {

// Enables (or disables, restoring LibTorch's kernels) the portable kernels; idempotent.
void set_portable_kernels(bool enabled);
bool portable_kernels_enabled();

// The ops replaced, as "aten::sqrt" etc. (docs, the log's provenance).
const std::vector<std::string>& portable_kernel_ops();

// glibc's version ("2.36"): the portable exp/log/erf are its libm's, so it belongs to the key.
std::string libm_version();

}  // namespace cliprepro
