#include "src/model/portable_gemm.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <vector>

namespace cliprepro {
namespace {

constexpr int64_t kTile = 64;  // columns per packed tile, computed 32 at a time

// Rows of A times 32 columns of a packed B tile (k x kTile, zero-padded, row stride kTile):
// acc[r][j] = sum_p a[r][p] * b[p][j], one fmadd per p, in order. ROWS rows share each B load
// (2: 8 accumulators + 4 B vectors in registers). Only these functions use AVX2/FMA.
template <int ROWS>
__attribute__((target("avx2,fma"))) void rows_times_half_tile(const float* const* a, int64_t a_step,
                                                              const float* tile, int64_t k,
                                                              float* const* acc) {
  __m256 c[ROWS][4];
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < 4; ++v) c[r][v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const float* b = tile + p * kTile;
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16),
                 b3 = _mm256_loadu_ps(b + 24);
    for (int r = 0; r < ROWS; ++r) {
      const __m256 x = _mm256_set1_ps(a[r][p * a_step]);
      c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
      c[r][2] = _mm256_fmadd_ps(x, b2, c[r][2]);
      c[r][3] = _mm256_fmadd_ps(x, b3, c[r][3]);
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < 4; ++v) _mm256_storeu_ps(acc[r] + 8 * v, c[r][v]);
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
      alignas(32) float acc[2][kTile];
      for (int64_t i = begin; i < end; i += 2) {
        const int rows = i + 1 < end ? 2 : 1;
        const float* a_rows[2] = {a.data + i * a.row_stride,
                                  a.data + (i + rows - 1) * a.row_stride};
        for (int64_t half = 0; half < kTile; half += 32) {
          if (half >= width) break;
          float* acc_rows[2] = {acc[0] + half, acc[1] + half};
          if (rows == 2) {
            rows_times_half_tile<2>(a_rows, a.col_stride, tile.data() + half, k, acc_rows);
          } else {
            rows_times_half_tile<1>(a_rows, a.col_stride, tile.data() + half, k, acc_rows);
          }
        }
        for (int r = 0; r < rows; ++r) {
          float* out = c.data + (i + r) * c.row_stride + j0 * c.col_stride;
          for (int64_t j = 0; j < width; ++j) {
            float& y = out[j * c.col_stride];
            const float product = alpha == 1.0f ? acc[r][j] : alpha * acc[r][j];
            y = beta == 0.0f ? product : beta * y + product;  // two roundings, this order
          }
        }
      }
    });
  }
}

}  // namespace cliprepro
