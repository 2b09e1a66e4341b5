// Tolerance policies for comparing tensors that need not be bitwise equal (another machine,
// another precision): bitwise; ULP distance; rtol/atol as torch.allclose; torch.testing's
// per-dtype defaults; and Megatron-LM's depth-aware bound on relative error.
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace cliprepro {

struct Tolerance {
  enum class Kind { kBitwise, kUlp, kClose, kTorchDefaults, kDepth };
  Kind kind = Kind::kBitwise;
  int64_t ulp = 0;            // kUlp: max distance in ULPs of the tensors' own format
  double rtol = 0, atol = 0;  // kClose: |a - b| <= atol + rtol·|b| elementwise
  double k = 4.0, c = 1.03;   // kDepth: ‖a − b‖/‖b‖ <= k·c^depth·eps(dtype of a)
  std::string text() const;   // the spec it parses from, canonical
};

// "bitwise" | "ulp=N" | "rtol=R,atol=A" | "torch" (torch.testing.assert_close defaults per
// dtype) | "depth" or "depth:k=K,c=C". Throws std::invalid_argument naming the spec.
Tolerance parse_tolerance(const std::string& spec);

// One policy per tensor family: the first override whose glob matches the tensor name wins,
// else the fallback. Text form: "FALLBACK" then "; GLOB=SPEC" per override.
struct TolerancePolicy {
  Tolerance fallback;
  std::vector<std::pair<std::string, Tolerance>> overrides;  // (glob on tensor names, policy)
  const Tolerance& for_tensor(const std::string& name) const;
  bool all_bitwise() const;
  std::string text() const;
};

// "GLOB=SPEC" (split at the first '='), e.g. "optimizer/*=rtol=1e-5,atol=1e-8".
std::pair<std::string, Tolerance> parse_tolerance_override(const std::string& text);

struct ToleranceCheck {
  bool pass = true;
  double measure = 0;  // what the policy bounds: max ULP, max excess over the bound, or ratio
  double bound = 0;
};

// a = the run under test, b = the reference. NaN equals NaN, infinities must match exactly,
// -0 equals +0 except under `bitwise`. `depth`: layers between this tensor and the loss
// (Megatron's L + 1 − l), used by kDepth only. Shapes must match (else fail).
ToleranceCheck check_tolerance(const Tolerance& tol, const torch::Tensor& a, const torch::Tensor& b,
                               int64_t depth = 0);

// Machine epsilon of a floating dtype (fp64 2^-52, fp32 2^-23, fp16 2^-10, bf16 2^-7).
double dtype_eps(torch::ScalarType t);

}  // namespace cliprepro
