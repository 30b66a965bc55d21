// Matrix-vector products in float32, for the GEMMs with one row or one column
// (Note [Skinny products] in blas.cpp).
//
// Note [Core GEMV]
// At batch 1 a Linear's forward is y = W x and its input gradient dx = W^T dy,
// W one 100 x 250 float32 matrix (100 KB, in L2): the product streams W once
// and does two flops per element, so its speed is how fast W comes through
// L2. Against OpenBLAS's sgemv (its SkylakeX kernels on this Zen 4), C++,
// medians of 21 blocks of 2,000 calls, 10 alternating runs on one core: W x
// 1.14-1.54 us against 1.14-1.83 (faster in 8 of the 10 runs), W^T v
// 1.03-1.44 against 1.17-1.67 (9 of 10), ~15% at the median. With AVX-512:
//   rows form,    y[i] = sum_k A[i, k] x[k]: four rows at a time, 16 lanes
//                 along k, the last partial vector by masked loads (nothing
//                 past a row is read), the lanes summed once per row;
//   columns form, y[j] = sum_i v[i] A[i, j]: up to 256 columns of y in 16
//                 register accumulators while A streams row by row, two rows
//                 per iteration, the last partial vector masked.
// Both run in order i (or k) within a lane, so a result depends only on the
// shape, never on a thread count or alignment. Sums run in float32 like
// BLAS's, in a different order: results agree with BLAS to rounding, not bit
// for bit (tests/test_skinny_products.py). Without AVX-512 they decline and
// BLAS runs.
#include <cstdint>
#include <utility>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "tapegrad/kernels.h"

namespace tg {

#if defined(__AVX512F__)
namespace {

inline __mmask16 tail_mask(int64_t m) { return (__mmask16)((1u << m) - 1u); }

// The sum of v's 16 lanes by in-register shuffles. The all-lanes masked forms
// name their pass-through operand: GCC 12's unmasked ones (and
// _mm512_reduce_add_ps) pass an undefined vector and trip
// -Wmaybe-uninitialized inside its own header.
inline float lane_sum(__m512 v) {
  const __mmask16 all = 0xffff;
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, all, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, all, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, all, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, all, v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}

// y[i * incy] = alpha * dot(A[i, :], x) (+ beta * y[i * incy])
void rows_form(int64_t rows, int64_t cols, float alpha, const float* A, int64_t lda,
               const float* x, float beta, float* y, int64_t incy) {
  const int64_t full = cols / 16 * 16;
  const __mmask16 last = tail_mask(cols - full);
  auto store = [&](int64_t i, __m512 acc) {
    float s = alpha * lane_sum(acc);
    float* out = y + i * incy;
    *out = beta == 0.f ? s : s + beta * *out;
  };
  int64_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const float* r0 = A + i * lda;
    const float* r1 = r0 + lda;
    const float* r2 = r1 + lda;
    const float* r3 = r2 + lda;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < full; k += 16) {
      __m512 xv = _mm512_loadu_ps(x + k);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + k), xv, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + k), xv, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + k), xv, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + k), xv, a3);
    }
    if (full < cols) {
      __m512 xv = _mm512_maskz_loadu_ps(last, x + full);
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(last, r0 + full), xv, a0);
      a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(last, r1 + full), xv, a1);
      a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(last, r2 + full), xv, a2);
      a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(last, r3 + full), xv, a3);
    }
    store(i, a0);
    store(i + 1, a1);
    store(i + 2, a2);
    store(i + 3, a3);
  }
  for (; i < rows; i++) {
    const float* r = A + i * lda;
    __m512 a = _mm512_setzero_ps();
    for (int64_t k = 0; k < full; k += 16)
      a = _mm512_fmadd_ps(_mm512_loadu_ps(r + k), _mm512_loadu_ps(x + k), a);
    if (full < cols)
      a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(last, r + full),
                          _mm512_maskz_loadu_ps(last, x + full), a);
    store(i, a);
  }
}

// y[c0 + j] = alpha * sum_i v[i] A[i, c0 + j] (+ beta y) for NV vectors of
// columns starting at c0, the NV-th covering `tail` columns (1..16).
template <int NV>
void columns_block(int64_t rows, const float* A, int64_t lda, const float* v, float alpha,
                   float beta, float* y, __mmask16 last) {
  __m512 acc[NV];
  for (int q = 0; q < NV; q++) acc[q] = _mm512_setzero_ps();
  auto row = [&](const float* r, __m512 s) {
    for (int q = 0; q < NV - 1; q++) acc[q] = _mm512_fmadd_ps(_mm512_loadu_ps(r + 16 * q), s, acc[q]);
    acc[NV - 1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(last, r + 16 * (NV - 1)), s, acc[NV - 1]);
  };
  int64_t i = 0;
  for (; i + 2 <= rows; i += 2) {
    row(A + i * lda, _mm512_set1_ps(v[i]));
    row(A + (i + 1) * lda, _mm512_set1_ps(v[i + 1]));
  }
  if (i < rows) row(A + i * lda, _mm512_set1_ps(v[i]));
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int q = 0; q < NV; q++) {
    const __mmask16 m = q == NV - 1 ? last : (__mmask16)0xffff;
    __m512 r = _mm512_mul_ps(acc[q], va);
    if (beta != 0.f) r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, y + 16 * q), vb, r);
    _mm512_mask_storeu_ps(y + 16 * q, m, r);
  }
}

using ColumnsBlock = void (*)(int64_t, const float*, int64_t, const float*, float, float, float*,
                              __mmask16);

// Blocks of up to 256 columns, each by the kernel unrolled for its vector count.
template <int... N>
void columns_form_impl(std::integer_sequence<int, N...>, int64_t rows, int64_t cols, float alpha,
                       const float* A, int64_t lda, const float* v, float beta, float* y) {
  static constexpr ColumnsBlock blocks[] = {columns_block<N + 1>...};
  for (int64_t c0 = 0; c0 < cols; c0 += 256) {
    const int64_t width = cols - c0 < 256 ? cols - c0 : 256;
    const int64_t nv = (width + 15) / 16;
    const __mmask16 last = tail_mask(width - 16 * (nv - 1));
    blocks[nv - 1](rows, A + c0, lda, v, alpha, beta, y + c0, last);
  }
}

}  // namespace
#endif

bool core_gemv(bool transpose, int64_t rows, int64_t cols, float alpha, const float* A,
               int64_t lda, const float* x, int64_t incx, float beta, float* y, int64_t incy) {
#if defined(__AVX512F__)
  if (incx != 1) return false;
  if (!transpose) {
    rows_form(rows, cols, alpha, A, lda, x, beta, y, incy);
    return true;
  }
  if (incy != 1) return false;
  columns_form_impl(std::make_integer_sequence<int, 16>{}, rows, cols, alpha, A, lda, x, beta, y);
  return true;
#else
  (void)transpose, (void)rows, (void)cols, (void)alpha, (void)A, (void)lda, (void)x, (void)incx,
      (void)beta, (void)y, (void)incy;
  return false;
#endif
}

}  // namespace tg
