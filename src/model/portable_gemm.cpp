#include "src/model/portable_gemm.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <vector>

namespace cliprepro {
namespace {

constexpr int64_t kTile = 64;  // columns per tile: 8 AVX2 accumulators

// One row of A times a packed B tile (k x kTile, zero-padded): acc[j] = sum_p a[p] * b[p][j],
// one fmadd per p, in order. Only this function uses AVX2/FMA instructions.
__attribute__((target("avx2,fma"))) void row_times_tile(const float* a, int64_t a_step,
                                                       const float* tile, int64_t k,
                                                       float* acc) {
  __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
         c7 = c0;
  for (int64_t p = 0; p < k; ++p) {
    const __m256 x = _mm256_set1_ps(a[p * a_step]);
    const float* b = tile + p * kTile;
    c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b), c0);
    c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 8), c1);
    c2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 16), c2);
    c3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 24), c3);
    c4 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 32), c4);
    c5 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 40), c5);
    c6 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 48), c6);
    c7 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + 56), c7);
  }
  _mm256_storeu_ps(acc, c0);
  _mm256_storeu_ps(acc + 8, c1);
  _mm256_storeu_ps(acc + 16, c2);
  _mm256_storeu_ps(acc + 24, c3);
  _mm256_storeu_ps(acc + 32, c4);
  _mm256_storeu_ps(acc + 40, c5);
  _mm256_storeu_ps(acc + 48, c6);
  _mm256_storeu_ps(acc + 56, c7);
}

}  // namespace

void portable_sgemm(int64_t m, int64_t n, int64_t k, float alpha, ConstMatrixRef a,
                    ConstMatrixRef b, float beta, MatrixRef c) {
  if (m <= 0 || n <= 0) return;
  std::vector<float> tile(size_t(std::max<int64_t>(k, 1) * kTile));
  for (int64_t j0 = 0; j0 < n; j0 += kTile) {
    const int64_t width = std::min(kTile, n - j0);
    for (int64_t p = 0; p < k; ++p) {  // packing moves values, it rounds nothing
      float* dst = tile.data() + p * kTile;
      const float* src = b.data + p * b.row_stride + j0 * b.col_stride;
      for (int64_t j = 0; j < width; ++j) dst[j] = src[j * b.col_stride];
      std::fill(dst + width, dst + kTile, 0.0f);
    }
    // Each element is written by one thread, from its own chain: any split gives these bits.
    const int64_t grain = std::max<int64_t>(1, 32768 / (std::max<int64_t>(k, 1) * kTile));
    at::parallel_for(0, m, grain, [&](int64_t begin, int64_t end) {
      alignas(32) float acc[kTile];
      for (int64_t i = begin; i < end; ++i) {
        row_times_tile(a.data + i * a.row_stride, a.col_stride, tile.data(), k, acc);
        float* out = c.data + i * c.row_stride + j0 * c.col_stride;
        for (int64_t j = 0; j < width; ++j) {
          float& y = out[j * c.col_stride];
          const float product = alpha == 1.0f ? acc[j] : alpha * acc[j];
          y = beta == 0.0f ? product : beta * y + product;  // two roundings, this order
        }
      }
    });
  }
}

}  // namespace cliprepro
