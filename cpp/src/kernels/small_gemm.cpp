// GEMMs with one small dimension, done here instead of in BLAS.
//
// Note [Small-dimension products]
// A classifier's last Linear has a handful of outputs (the NER model's 100 ->
// 5), so its three products each have one dimension of at most 6: the forward
// x @ W^T (n = 5), the weight gradient dy^T @ x (m = 5) and the input gradient
// dy @ W (k = 5). OpenBLAS packs both operands into panels sized for large
// blocks and runs these at a quarter or less of the rate it reaches on the
// model's 512 x 250 x 100 products. These kernels keep the small operand in
// registers or L1 instead:
//   - small k: C[i, :] = sum_k A(i, k) B(k, :), vectors along C's rows;
//   - small n with A contiguous along k: n dot products per row of A, their
//     lanes summed for 8 outputs at once by a shuffle tree;
//   - small n with A contiguous along m: vectors along A's columns, the n
//     scalars of the small operand broadcast;
//   - small m: the transposed problem C^T = op(B)^T op(A)^T, small n.
// The small operand is first copied into a zero-padded panel (at most 6 rows
// or columns, so O(k (m + n)) work against the product's O(mnk)); a thread's
// panel buffer grows once and is reused, so a warm training step allocates
// nothing here. Partial vectors at the edges are read with AVX's masked
// loads and written lane by lane, so nothing past the data is touched (no
// padding lane can turn an inf into NaN). AVX's masked store would do the
// same, but it is microcoded on AMD cores: with it the NER forward
// (512 x 5 x 100) ran ~25% slower.
//
// Measured on the 2-core EPYC against scipy-openblas32's sgemm, medians of
// interleaved runs (a C++ loop): the NER shapes at batch 512 2.4-2.6x
// (forward), 1.65-1.9x (weight gradient), 1.05-1.5x (input gradient) on one
// thread; k <= 4 with large m and n 2.5-3.8x. The limit
// is 6: at 7 and 8 the register blocking runs out and OpenBLAS wins some
// shapes. Small k runs on one thread once C outgrows L2 (writing C is then
// the bottleneck, and a second core made it slower).
//
// Each element of C is a sum in an order fixed by the shape, whatever the
// thread split, so results do not depend on the thread count. Sums run in
// the operands' precision, as BLAS's do, in a different order, so results
// agree with BLAS to rounding, not bit for bit (tests/test_skinny_products.py).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "tapegrad/kernels.h"
#include "vec_width.h"

namespace tg {

#if defined(__GNUC__)
namespace {

constexpr int kVecBytes = vec::kBytes;
template <class T>
using VecOf = vec::Of<T>;
template <class T>  // the integer vectors __builtin_shuffle takes as masks
using IndexOf = vec::Of<std::conditional_t<sizeof(T) == 4, int32_t, int64_t>>;

template <class T>
struct Kernels {
  using V = typename VecOf<T>::type;
  static constexpr int W = kVecBytes / sizeof(T);

  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  // The first n < W lanes at p, the rest 0, reading nothing past p + n: AVX's
  // masked load (a copy through a buffer would stall on store forwarding).
  static V load_partial(const T* p, int64_t n) {
#if defined(__AVX__)
    if constexpr (sizeof(T) == 4)
      return (V)_mm256_maskload_ps((const float*)p, (__m256i)lane_mask(n));
    else
      return (V)_mm256_maskload_pd((const double*)p, (__m256i)lane_mask(n));
#else
    T buf[W] = {};
    for (int64_t l = 0; l < n; l++) buf[l] = p[l];
    return load(buf);
#endif
  }
#if defined(__AVX__)
  using I = typename IndexOf<T>::type;
  static I lane_mask(int64_t n) {  // all ones in the lanes below n
    using E = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
    I iota;
    for (int l = 0; l < W; l++) iota[l] = l;
    return iota < (I{} + (E)n);
  }
#endif
  static V splat(T s) { return V{} + s; }
  // c = alpha * s (+ beta * c when accumulating; c is not read otherwise, as
  // it may hold NaN).
  static void put(T* c, T s, T alpha, T beta, bool acc) {
    *c = acc ? alpha * s + beta * *c : alpha * s;
  }
  [[gnu::always_inline]] static void put_vec(T* c, int64_t step, V s, int64_t n, T alpha, T beta,
                                             bool acc) {
    if (step == 1 && n == W) {
      V out = acc ? splat(alpha) * s + splat(beta) * load(c) : alpha == T(1) ? s : splat(alpha) * s;
      std::memcpy(c, &out, sizeof out);
    } else if (step == 1) {
      V out = acc ? splat(alpha) * s + splat(beta) * load_partial(c, n) : splat(alpha) * s;
      // Lane by lane, not a masked store (see the Note).
      for (int64_t l = 0; l < n; l++) c[l] = out[l];
    } else {
      for (int64_t l = 0; l < n; l++) put(c + l * step, s[l], alpha, beta, acc);
    }
  }
  static int64_t padded(int64_t k) { return (k + W - 1) / W * W; }

  // Lane j of the result is the sum of the lanes of v[j] (v has W entries):
  // log2(W) levels of pairwise shuffles and adds, instead of one horizontal
  // sum per vector.
  [[gnu::always_inline]] static V sum_lanes(V* v) {
#if defined(__clang__)
    V out;
    for (int j = 0; j < W; j++) {
      T s = 0;
      for (int l = 0; l < W; l++) s += v[j][l];
      out[j] = s;
    }
    return out;
#else
    using I = typename IndexOf<T>::type;
    if constexpr (W == 8) {
      for (int p = 0; p < 4; p++)
        v[p] = __builtin_shuffle(v[2 * p], v[2 * p + 1], I{0, 8, 2, 10, 4, 12, 6, 14}) +
               __builtin_shuffle(v[2 * p], v[2 * p + 1], I{1, 9, 3, 11, 5, 13, 7, 15});
      for (int p = 0; p < 2; p++)
        v[p] = __builtin_shuffle(v[2 * p], v[2 * p + 1], I{0, 1, 8, 9, 4, 5, 12, 13}) +
               __builtin_shuffle(v[2 * p], v[2 * p + 1], I{2, 3, 10, 11, 6, 7, 14, 15});
      v[0] = __builtin_shuffle(v[0], v[1], I{0, 1, 2, 3, 8, 9, 10, 11}) +
             __builtin_shuffle(v[0], v[1], I{4, 5, 6, 7, 12, 13, 14, 15});
    } else if constexpr (W == 4) {
      for (int p = 0; p < 2; p++)
        v[p] = __builtin_shuffle(v[2 * p], v[2 * p + 1], I{0, 4, 2, 6}) +
               __builtin_shuffle(v[2 * p], v[2 * p + 1], I{1, 5, 3, 7});
      v[0] = __builtin_shuffle(v[0], v[1], I{0, 1, 4, 5}) +
             __builtin_shuffle(v[0], v[1], I{2, 3, 6, 7});
    } else {
      static_assert(W == 2, "vectors of 2, 4 or 8 lanes");
      v[0] = __builtin_shuffle(v[0], v[1], I{0, 2}) + __builtin_shuffle(v[0], v[1], I{1, 3});
    }
    return v[0];
#endif
  }
};

// A strided matrix view: element (i, j) at p[i * ri + j * rj].
template <class T>
struct View {
  const T* p;
  int64_t ri, rj;
  T operator()(int64_t i, int64_t j) const { return p[i * ri + j * rj]; }
};

// The rows x cols matrix x as rows of `padded` elements (zeros past cols) in
// the calling thread's panel buffer.
template <class T>
const T* pack_panel(int64_t rows, int64_t cols, int64_t padded, View<T> x) {
  thread_local std::vector<T> buf;
  if ((int64_t)buf.size() < rows * padded) buf.resize(rows * padded);
  for (int64_t r = 0; r < rows; r++) {
    T* row = buf.data() + r * padded;
    for (int64_t c = 0; c < cols; c++) row[c] = x(r, c);
    std::fill(row + cols, row + padded, T(0));
  }
  return buf.data();
}

// Rows per task: enough multiply-adds that the pool's wake-up is worth it.
int64_t grain_rows(int64_t work_per_row) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(work_per_row, 1));
}

constexpr int64_t kSmallKThreadedBytes = 256 * 1024;

// The kernels below take everything by value (a lambda's captures would be
// reloaded after every store to C) and run over rows [r0, r1).

// Small K: C(i, :) = sum_k A(i, k) Bp[k, :], Bp the K x Np zero-padded panel.
// Two rows at a time share each load of the panel.
template <class T, int K>
void small_k_rows(int64_t r0, int64_t r1, int64_t n, View<T> a, const T* bp, int64_t np, T alpha,
                  T beta, bool acc, T* c, int64_t ldc) {
  using Kn = Kernels<T>;
  using V = typename Kn::V;
  constexpr int W = Kn::W;
  const int64_t nv = n / W * W;
  int64_t i = r0;
  for (; i + 2 <= r1; i += 2) {
    V x0[K], x1[K];
    for (int k = 0; k < K; k++) x0[k] = Kn::splat(a(i, k)), x1[k] = Kn::splat(a(i + 1, k));
    T* c0 = c + i * ldc;
    T* c1 = c0 + ldc;
    for (int64_t j = 0; j < n; j += W) {
      V s0 = x0[0] * Kn::load(bp + j), s1 = x1[0] * Kn::load(bp + j);
      for (int k = 1; k < K; k++) {
        V b = Kn::load(bp + k * np + j);
        s0 += x0[k] * b;
        s1 += x1[k] * b;
      }
      int64_t w = j < nv ? W : n - j;
      Kn::put_vec(c0 + j, 1, s0, w, alpha, beta, acc);
      Kn::put_vec(c1 + j, 1, s1, w, alpha, beta, acc);
    }
  }
  for (; i < r1; i++) {
    V x0[K];
    for (int k = 0; k < K; k++) x0[k] = Kn::splat(a(i, k));
    for (int64_t j = 0; j < n; j += W) {
      V s0 = x0[0] * Kn::load(bp + j);
      for (int k = 1; k < K; k++) s0 += x0[k] * Kn::load(bp + k * np + j);
      Kn::put_vec(c + i * ldc + j, 1, s0, j < nv ? W : n - j, alpha, beta, acc);
    }
  }
}

// Small N, A contiguous along K: C(i, j) = dot(A[i, :], Bp[j, :]) with Bp the
// N x Kp zero-padded panel. R rows of A share each load of the panel. The
// R * N sums are reduced W at a time (one shuffle tree for W dot products),
// in the order (row, column), so a C whose rows are N apart and unit-stride
// takes them as whole vectors.
template <class T, int N, int R>
[[gnu::always_inline]] inline void small_n_dot_block(int64_t i, int64_t k, const T* a,
                                                     int64_t lda, const T* bp, int64_t kp,
                                                     T alpha, T beta, bool acc, T* c,
                                                     int64_t ci, int64_t cj) {
  using Kn = Kernels<T>;
  using V = typename Kn::V;
  constexpr int W = Kn::W;
  constexpr int S = R * N;                 // sums in this block
  constexpr int G = (S + W - 1) / W * W;   // whole groups of W
  const int64_t kv = k / W * W;
  V s[G] = {};                             // s[r * N + j]
  const T* ar = a + i * lda;
  for (int64_t p = 0; p < kv; p += W) {
    V x[R];
    for (int r = 0; r < R; r++) x[r] = Kn::load(ar + r * lda + p);
    for (int j = 0; j < N; j++) {
      V b = Kn::load(bp + j * kp + p);
      for (int r = 0; r < R; r++) s[r * N + j] += x[r] * b;
    }
  }
  if (kv < k) {  // the panel's padding is zero, so the lanes past k add 0
    V x[R];
    for (int r = 0; r < R; r++) x[r] = Kn::load_partial(ar + r * lda + kv, k - kv);
    for (int j = 0; j < N; j++) {
      V b = Kn::load(bp + j * kp + kv);
      for (int r = 0; r < R; r++) s[r * N + j] += x[r] * b;
    }
  }
  V sums[G / W];
  for (int g = 0; g < G / W; g++) sums[g] = Kn::sum_lanes(s + g * W);
  T* c0 = c + i * ci;
  if (cj == 1 && ci == N) {  // the block's outputs are S consecutive elements
    for (int g = 0; g < G / W; g++)
      Kn::put_vec(c0 + g * W, 1, sums[g], std::min(W, S - g * W), alpha, beta, acc);
    return;
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < N; j++)
      Kn::put(c0 + r * ci + j * cj, sums[(r * N + j) / W][(r * N + j) % W], alpha, beta, acc);
}

template <class T, int N>
void small_n_dot_rows(int64_t r0, int64_t r1, int64_t k, const T* a, int64_t lda, const T* bp,
                      int64_t kp, T alpha, T beta, bool acc, T* c, int64_t ci, int64_t cj) {
  constexpr int R = N <= 2 ? 4 : 2;  // R * N accumulators, in registers
  int64_t i = r0;
  for (; i + R <= r1; i += R)
    small_n_dot_block<T, N, R>(i, k, a, lda, bp, kp, alpha, beta, acc, c, ci, cj);
  for (; i < r1; i++) small_n_dot_block<T, N, 1>(i, k, a, lda, bp, kp, alpha, beta, acc, c, ci, cj);
}

// Small N, A contiguous along M: C(i.., j) = sum_k A[k, i..] Bp[j, k], vectors
// along i, the panel's scalars broadcast. A(i, k) = a[k * lda + i]. Blocks of
// R vectors of rows.
template <class T, int N>
void small_n_axpy_blocks(int64_t b0, int64_t b1, int64_t m, int64_t k, const T* a, int64_t lda,
                         const T* bp, int64_t kp, T alpha, T beta, bool acc, T* c, int64_t ci,
                         int64_t cj) {
  using Kn = Kernels<T>;
  using V = typename Kn::V;
  constexpr int W = Kn::W;
  constexpr int R = 2;
  constexpr int64_t kBlock = W * R;
  for (int64_t blk = b0; blk < b1; blk++) {
    const int64_t i = blk * kBlock, rows = std::min<int64_t>(kBlock, m - i);
    V s[R][N] = {};
    if (rows == kBlock) {
      for (int64_t p = 0; p < k; p++) {
        V x[R];
        for (int r = 0; r < R; r++) x[r] = Kn::load(a + p * lda + i + r * W);
        for (int j = 0; j < N; j++) {
          V b = Kn::splat(bp[j * kp + p]);
          for (int r = 0; r < R; r++) s[r][j] += x[r] * b;
        }
      }
    } else {
      for (int64_t p = 0; p < k; p++) {
        V x[R];
        for (int r = 0; r < R; r++) {
          int64_t lanes = std::clamp<int64_t>(rows - r * W, 0, W);
          x[r] = lanes == W ? Kn::load(a + p * lda + i + r * W)
                 : lanes > 0 ? Kn::load_partial(a + p * lda + i + r * W, lanes)
                             : V{};
        }
        for (int j = 0; j < N; j++) {
          V b = Kn::splat(bp[j * kp + p]);
          for (int r = 0; r < R; r++) s[r][j] += x[r] * b;
        }
      }
    }
    for (int r = 0; r < R; r++) {
      int64_t lanes = std::clamp<int64_t>(rows - r * W, 0, W);
      for (int j = 0; j < N; j++)
        Kn::put_vec(c + (i + r * W) * ci + j * cj, ci, s[r][j], lanes, alpha, beta, acc);
    }
  }
}

// f(std::integral_constant<int, v>()) for v in [1, kSmallGemmDim]; false otherwise.
template <class F, int... Ns>
bool dispatch_small_seq(int64_t v, F& f, std::integer_sequence<int, Ns...>) {
  return ((v == Ns + 1 ? (f(std::integral_constant<int, Ns + 1>()), true) : false) || ...);
}
template <class F>
bool dispatch_small(int64_t v, F&& f) {
  return dispatch_small_seq(v, f, std::make_integer_sequence<int, kSmallGemmDim>());
}

// C(i, j) (at c[i * ci + j * cj]) = alpha * sum_k A(i, k) B(k, j) + beta C(i, j), n <= kSmallGemmDim.
template <class T>
bool small_n(int64_t m, int64_t n, int64_t k, T alpha, View<T> a, View<T> b, T beta, T* c,
             int64_t ci, int64_t cj) {
  if (a.rj != 1 && a.ri != 1) return false;
  using Kn = Kernels<T>;
  const int64_t kp = Kn::padded(k);
  const T* bp = pack_panel<T>(n, k, kp, View<T>{b.p, b.rj, b.ri});  // row j: B(:, j)
  const bool acc = beta != T(0);
  return dispatch_small(n, [&](auto n_const) {
    constexpr int N = decltype(n_const)::value;
    if (a.rj == 1) {
      parallel_for(m, grain_rows(N * k), [&](int64_t r0, int64_t r1) {
        small_n_dot_rows<T, N>(r0, r1, k, a.p, a.ri, bp, kp, alpha, beta, acc, c, ci, cj);
      });
    } else {
      constexpr int64_t kBlock = Kn::W * 2;
      parallel_for((m + kBlock - 1) / kBlock, grain_rows(kBlock * N * k), [&](int64_t b0, int64_t b1) {
        small_n_axpy_blocks<T, N>(b0, b1, m, k, a.p, a.rj, bp, kp, alpha, beta, acc, c, ci, cj);
      });
    }
  });
}

template <class T>
bool small_gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                     const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                     int64_t ldc) {
  // BLAS does not read A and B when alpha == 0 (an inf there gives no NaN).
  if (alpha == T(0)) return false;
  const View<T> A{a, trans_a ? 1 : lda, trans_a ? lda : 1};  // A(i, k)
  const View<T> B{b, trans_b ? 1 : ldb, trans_b ? ldb : 1};  // B(k, j)
  if (k <= kSmallGemmDim) {
    const int64_t np = Kernels<T>::padded(n);
    const T* bp = pack_panel<T>(k, n, np, B);
    const bool acc = beta != T(0);
    return dispatch_small(k, [&](auto k_const) {
      constexpr int K = decltype(k_const)::value;
      // Writing C is the bottleneck once C outgrows L2, and a second thread
      // does not widen it (measured: 512 x 250 x 6, 1.0-1.6x slower on two).
      const int64_t grain = m * n * (int64_t)sizeof(T) > kSmallKThreadedBytes ? m : grain_rows(n * K);
      parallel_for(m, grain, [&](int64_t r0, int64_t r1) {
        small_k_rows<T, K>(r0, r1, n, A, bp, np, alpha, beta, acc, c, ldc);
      });
    });
  }
  if (n <= kSmallGemmDim) return small_n<T>(m, n, k, alpha, A, B, beta, c, ldc, 1);
  if (m <= kSmallGemmDim) {  // C^T (n x m) = op(B)^T op(A)^T
    const View<T> At{b, B.rj, B.ri}, Bt{a, A.rj, A.ri};
    return small_n<T>(n, m, k, alpha, At, Bt, beta, c, 1, ldc);
  }
  return false;
}

}  // namespace

bool small_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc) {
  return small_gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

bool small_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                double* c, int64_t ldc) {
  return small_gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#else  // no vector extensions: BLAS does them all

bool small_gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                const float*, int64_t, float, float*, int64_t) {
  return false;
}
bool small_gemm(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                const double*, int64_t, double, double*, int64_t) {
  return false;
}
#endif

}  // namespace tg
