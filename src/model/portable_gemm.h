// cliprepro's own float32 matrix product for portable runs (src/model/portable_kernels.h).
// MKL's sgemm computes other bits on Intel and AMD CPUs for small products even under
// MKL_CBWR=AVX2,STRICT (`cliprepro trace`: the attention pool's 5x64x5 bmm; docs/trace.md).
// Here every element of the product is one fused multiply-add chain over k in order, so its
// bits depend on neither the CPU, the blocking nor the thread count. AVX2+FMA code (the
// portable pins require those); parallel over rows with ATen's threads.
#pragma once
#include <cstdint>

namespace cliprepro {

// A matrix by its first element and its row and column strides (in elements).
struct MatrixRef {
  float* data;
  int64_t row_stride, col_stride;
};
struct ConstMatrixRef {
  const float* data;
  int64_t row_stride, col_stride;
};

// C[m,n] = alpha * A[m,k] @ B[k,n] + beta * C (C is not read when beta == 0). k may be 0.
void portable_sgemm(int64_t m, int64_t n, int64_t k, float alpha, ConstMatrixRef a,
                    ConstMatrixRef b, float beta, MatrixRef c);

}  // namespace cliprepro
