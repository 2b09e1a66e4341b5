#include "src/model/portable_kernels.h"

#include <ATen/CPUFunctions.h>
#include <ATen/TensorIterator.h>
#include <c10/util/Exception.h>
#include <gnu/libc-version.h>
#include <torch/library.h>

#include <cmath>

#include "src/model/portable_gemm.h"

namespace cliprepro {
namespace {

enum class Op { kSqrt, kExp, kLog, kErf };

// Not vectorised by hand: sqrt is exact (any width gives the same bits), and exp/log/erf are
// glibc's scalar functions (std::exp(float) is expf), the same code on every x86-64 CPU with FMA.
template <typename T>
T apply(Op op, T x) {
  switch (op) {
    case Op::kSqrt:
      return std::sqrt(x);
    case Op::kExp:
      return std::exp(x);
    case Op::kLog:
      return std::log(x);
    case Op::kErf:
      return std::erf(x);
  }
  return x;
}

template <typename T>
void loop(at::TensorIteratorBase& iter, Op op) {
  iter.for_each(
      [op](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
        for (int64_t j = 0; j < n1; ++j) {
          char* out = data[0] + j * strides[2];
          const char* in = data[1] + j * strides[3];
          if (strides[0] == sizeof(T) && strides[1] == sizeof(T)) {
            T* o = reinterpret_cast<T*>(out);
            const T* x = reinterpret_cast<const T*>(in);
            for (int64_t i = 0; i < n0; ++i) o[i] = apply<T>(op, x[i]);
          } else {
            for (int64_t i = 0; i < n0; ++i) {
              *reinterpret_cast<T*>(out + i * strides[0]) =
                  apply<T>(op, *reinterpret_cast<const T*>(in + i * strides[1]));
            }
          }
        }
      },
      /*grain_size=*/32768);
}

bool handles(const at::Tensor& self) {
  return self.is_cpu() && self.layout() == at::kStrided &&
         (self.scalar_type() == at::kFloat || self.scalar_type() == at::kDouble);
}

// `out` undefined: allocated as TensorIterator lays out a unary op's result.
at::Tensor run(at::Tensor out, const at::Tensor& self, Op op) {
  auto iter = at::TensorIteratorConfig().add_output(out).add_const_input(self).build();
  if (self.scalar_type() == at::kFloat) {
    loop<float>(iter, op);
  } else {
    loop<double>(iter, op);
  }
  return iter.output();
}

#define CLIPREPRO_PORTABLE_UNARY(name, OP)                           \
  at::Tensor name##_functional(const at::Tensor& self) {             \
    if (!handles(self)) return at::cpu::name(self);                  \
    return run(at::Tensor(), self, OP);                              \
  }                                                                  \
  at::Tensor& name##_inplace(at::Tensor& self) {                     \
    if (!handles(self)) return at::cpu::name##_(self);               \
    run(self, self, OP);                                             \
    return self;                                                     \
  }                                                                  \
  at::Tensor& name##_out(const at::Tensor& self, at::Tensor& out) {  \
    if (!handles(self) || out.scalar_type() != self.scalar_type()) { \
      return at::cpu::name##_outf(self, out);                        \
    }                                                                \
    run(out, self, OP);                                              \
    return out;                                                      \
  }

CLIPREPRO_PORTABLE_UNARY(sqrt, Op::kSqrt)
CLIPREPRO_PORTABLE_UNARY(exp, Op::kExp)
CLIPREPRO_PORTABLE_UNARY(log, Op::kLog)
CLIPREPRO_PORTABLE_UNARY(erf, Op::kErf)
#undef CLIPREPRO_PORTABLE_UNARY

// Matrix products (float32): cliprepro's own GEMM, one FMA chain per element (portable_gemm.h).
bool gemm_operand(const at::Tensor& t, int64_t dim) {
  return t.is_cpu() && t.layout() == at::kStrided && t.scalar_type() == at::kFloat &&
         t.dim() == dim;
}

bool gemm_operands(const at::Tensor& a, const at::Tensor& b, int64_t dim) {
  return gemm_operand(a, dim) && gemm_operand(b, dim) && a.size(dim - 1) == b.size(dim - 2) &&
         (dim == 2 || a.size(0) == b.size(0));
}

// `c` (m x n, or batch x m x n) = alpha * a @ b + beta * c.
void gemm_into(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, float beta, float alpha) {
  const int64_t d = a.dim();
  const int64_t m = a.size(d - 2), k = a.size(d - 1), n = b.size(d - 1);
  auto one = [&](int64_t i) {
    const float* pa = a.const_data_ptr<float>() + (d == 3 ? i * a.stride(0) : 0);
    const float* pb = b.const_data_ptr<float>() + (d == 3 ? i * b.stride(0) : 0);
    float* pc = c.mutable_data_ptr<float>() + (d == 3 ? i * c.stride(0) : 0);
    portable_sgemm(m, n, k, alpha, {pa, a.stride(d - 2), a.stride(d - 1)},
                   {pb, b.stride(d - 2), b.stride(d - 1)}, beta,
                   {pc, c.stride(d - 2), c.stride(d - 1)});
  };
  if (d == 2) {
    one(0);
    return;
  }
  // Batches in parallel (each one's rows then run on its thread): no bit depends on the split.
  at::parallel_for(0, a.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) one(i);
  });
}

at::Tensor product_shape(const at::Tensor& a, const at::Tensor& b) {
  return a.dim() == 2 ? at::empty({a.size(0), b.size(1)}, a.options())
                      : at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
}

at::Tensor& copy_into(at::Tensor& out, const at::Tensor& result) {
  out.resize_(result.sizes());
  out.copy_(result);
  return out;
}

bool aliases(const at::Tensor& self, const at::Tensor& a, const at::Tensor& b) {
  return self.storage().is_alias_of(a.storage()) || self.storage().is_alias_of(b.storage());
}

#define CLIPREPRO_PORTABLE_PRODUCT(mm, addmm, DIM)                                            \
  at::Tensor mm##_functional(const at::Tensor& self, const at::Tensor& mat2) {                \
    if (!gemm_operands(self, mat2, DIM)) return at::cpu::mm(self, mat2);                      \
    at::Tensor out = product_shape(self, mat2);                                               \
    gemm_into(out, self, mat2, 0.0f, 1.0f);                                                   \
    return out;                                                                               \
  }                                                                                           \
  at::Tensor& mm##_out(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out) {     \
    if (!gemm_operands(self, mat2, DIM) || out.scalar_type() != at::kFloat)                   \
      return at::cpu::mm##_outf(self, mat2, out);                                             \
    return copy_into(out, mm##_functional(self, mat2));                                       \
  }                                                                                           \
  at::Tensor addmm##_functional(const at::Tensor& self, const at::Tensor& m1,                 \
                                const at::Tensor& m2, const at::Scalar& beta,                 \
                                const at::Scalar& alpha) {                                    \
    if (!gemm_operands(m1, m2, DIM) || !gemm_operand(self, self.dim()))                       \
      return at::cpu::addmm(self, m1, m2, beta, alpha);                                       \
    at::Tensor out = product_shape(m1, m2);                                                   \
    const float b = beta.to<float>();                                                         \
    if (b != 0.0f) out.copy_(self.expand(out.sizes()));                                       \
    gemm_into(out, m1, m2, b, alpha.to<float>());                                             \
    return out;                                                                               \
  }                                                                                           \
  at::Tensor& addmm##_inplace(at::Tensor& self, const at::Tensor& m1, const at::Tensor& m2,   \
                              const at::Scalar& beta, const at::Scalar& alpha) {              \
    if (!gemm_operands(m1, m2, DIM) || !gemm_operand(self, DIM) ||                            \
        self.sizes() != product_shape(m1, m2).sizes() || aliases(self, m1, m2))               \
      return at::cpu::addmm##_(self, m1, m2, beta, alpha);                                    \
    gemm_into(self, m1, m2, beta.to<float>(), alpha.to<float>());                             \
    return self;                                                                              \
  }                                                                                           \
  at::Tensor& addmm##_out(const at::Tensor& self, const at::Tensor& m1, const at::Tensor& m2, \
                          const at::Scalar& beta, const at::Scalar& alpha, at::Tensor& out) { \
    if (!gemm_operands(m1, m2, DIM) || !gemm_operand(self, self.dim()) ||                     \
        out.scalar_type() != at::kFloat)                                                      \
      return at::cpu::addmm##_outf(self, m1, m2, beta, alpha, out);                           \
    return copy_into(out, addmm##_functional(self, m1, m2, beta, alpha));                     \
  }

CLIPREPRO_PORTABLE_PRODUCT(mm, addmm, 2)
CLIPREPRO_PORTABLE_PRODUCT(bmm, baddbmm, 3)
#undef CLIPREPRO_PORTABLE_PRODUCT

// Replacing a registered CPU kernel makes the dispatcher warn once per op; this is on purpose.
class SilentWarnings : public c10::WarningHandler {
 public:
  void process(const c10::Warning&) override {}
};

// Never destroyed at exit (the dispatcher may be gone by then); reset only to disable.
torch::Library* g_library = nullptr;

}  // namespace

const std::vector<std::string>& portable_kernel_ops() {
  static const std::vector<std::string> ops{"aten::sqrt", "aten::exp",    "aten::log",
                                            "aten::erf",  "aten::mm",     "aten::addmm",
                                            "aten::bmm",  "aten::baddbmm"};
  return ops;
}

bool portable_kernels_enabled() { return g_library != nullptr; }

void set_portable_kernels(bool enabled) {
  if (enabled == portable_kernels_enabled()) return;
  SilentWarnings silent;
  c10::WarningUtils::WarningHandlerGuard guard(&silent);
  if (!enabled) {
    delete g_library;  // deregisters: LibTorch's kernels are back
    g_library = nullptr;
    return;
  }
  auto* lib =
      new torch::Library(torch::Library::IMPL, "aten", c10::DispatchKey::CPU, __FILE__, __LINE__);
  lib->impl("sqrt", TORCH_FN(sqrt_functional));
  lib->impl("sqrt_", TORCH_FN(sqrt_inplace));
  lib->impl("sqrt.out", TORCH_FN(sqrt_out));
  lib->impl("exp", TORCH_FN(exp_functional));
  lib->impl("exp_", TORCH_FN(exp_inplace));
  lib->impl("exp.out", TORCH_FN(exp_out));
  lib->impl("log", TORCH_FN(log_functional));
  lib->impl("log_", TORCH_FN(log_inplace));
  lib->impl("log.out", TORCH_FN(log_out));
  lib->impl("erf", TORCH_FN(erf_functional));
  lib->impl("erf_", TORCH_FN(erf_inplace));
  lib->impl("erf.out", TORCH_FN(erf_out));
  lib->impl("mm", TORCH_FN(mm_functional));
  lib->impl("mm.out", TORCH_FN(mm_out));
  lib->impl("addmm", TORCH_FN(addmm_functional));
  lib->impl("addmm_", TORCH_FN(addmm_inplace));
  lib->impl("addmm.out", TORCH_FN(addmm_out));
  lib->impl("bmm", TORCH_FN(bmm_functional));
  lib->impl("bmm.out", TORCH_FN(bmm_out));
  lib->impl("baddbmm", TORCH_FN(baddbmm_functional));
  lib->impl("baddbmm_", TORCH_FN(baddbmm_inplace));
  lib->impl("baddbmm.out", TORCH_FN(baddbmm_out));
  g_library = lib;
}

std::string libm_version() { return gnu_get_libc_version(); }

}  // namespace cliprepro
