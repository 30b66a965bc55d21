// The one place that talks to BLAS.
//
// Note [BLAS symbols]
// The default BLAS is the scipy-openblas32 wheel, whose symbols carry a
// `scipy_` prefix (scipy_cblas_sgemm). CMake passes TG_BLAS_PREFIX (empty for
// a system BLAS) and TG_BLAS_OPENBLAS when openblas_set_num_threads exists.
#include <algorithm>
#include <climits>

#include <cblas.h>

#include "tapegrad/kernels.h"

#ifndef TG_BLAS_PREFIX
#define TG_BLAS_PREFIX
#endif
#define TG_CAT2(a, b) a##b
#define TG_CAT(a, b) TG_CAT2(a, b)
#define TG_BLAS(name) TG_CAT(TG_BLAS_PREFIX, name)

#ifdef TG_BLAS_OPENBLAS
extern "C" {
void TG_BLAS(openblas_set_num_threads)(int);
int TG_BLAS(openblas_get_num_threads)(void);
}
#endif

namespace tg {

static int check_int(int64_t v, const char* what) {
  if (v > INT_MAX)
    throw ValueError(str("matmul: ", what, " = ", v, " exceeds the 32-bit BLAS limit of ", INT_MAX));
  return (int)v;
}

// Note [Skinny products]
// A GEMM with one row, one column or an inner size of one is a matrix-vector
// product or a rank-1 update; BLAS's GEMM still packs both operands for it,
// which for the small models this library is for (batch 1: x @ W^T is 1 x 250
// by 250 x 100) costs several times the arithmetic. Those shapes go to a
// matrix-vector product instead, the core's own for float32 where it takes
// the layout (Note [Core GEMV] in gemv.cpp), else BLAS's GEMV, or to GER.
// With beta == 0 BLAS's GEMV output is cleared first (GEMV reads C,
// and a reused buffer may hold NaN; GEMM does not), and an outer product is
// written directly rather than cleared and then accumulated by GER. Products
// with another dimension of at most kSmallGemmDim go to the core's own kernels
// (Note [Small-dimension products] in small_gemm.cpp).
//
// Note [GEMMs on the core's threads]
// With tg.set_num_threads(n > 1), OpenBLAS runs single-threaded and a product
// of at least kGemmSplitMacs multiply-adds is split across the core's own
// pool instead (Note [Core threads] in parallel.cpp): the longer of C's two
// dimensions into n contiguous blocks of rows (or columns), one OpenBLAS call
// each. Why not OpenBLAS's threads: a step interleaves GEMMs with the core's
// kernels (bias, tanh, gathers, optimizer updates), and two pools then take
// turns at the second core. OpenBLAS's workers spin after each GEMM while the
// core's worker wants to run the next kernel, and the core's worker has gone
// to sleep by the next GEMM, so every hand-over waits for a wake-up or a
// time slice. With one pool the same worker runs both and stays warm. On
// the 2-core dev box (Zen 4 VM), 2 threads, interleaved A/B runs, the C++ NER
// step went 1,400 -> 1,710 steps/s at batch 512 and 11,600 -> 17,900 at
// batch 32; the Python MLP step (784-1024-1024-10, batch 256) stayed at 61.
// Values: each element is still one OpenBLAS dot product over all of k, but
// OpenBLAS picks its kernel by the block's size, so the last bits may differ
// between thread counts, as they did with OpenBLAS's threads (README,
// Determinism). OpenBLAS's own threads would split both dimensions,
// which scales better to many cores than these 1-D blocks; here the blocks
// are at least 16 rows or columns, so a product only takes as many threads
// as it has such blocks. Other BLAS libraries keep their own threading: the
// split needs openblas_set_num_threads to keep OpenBLAS single-threaded, and
// it checks that setting before each split (another user of the same
// library may have changed it).
// When k is longer than both of C's dimensions (a weight's gradient dY^T X
// over a batch larger than the layer), the blocks are of k instead: block j
// multiplies rows [k_j, k_j+1) of the batch into a private partial, block 0
// straight into C, and the partials are added to C in order afterwards. The
// batch's rows were written by kernels split the same way (the gather, the
// row-split forward GEMM and dx), so each thread reads only the rows its own
// core wrote, where blocks of C's columns had every thread read every row:
// the NER step's first-layer input ended up in both cores' caches, and the
// next write into that buffer waited for the other core to drop its copy. The
// batch-512 NER step ran 2-4% faster on two threads (interleaved A/B in one
// process, 4 runs of 21 paired rounds); the product alone is the same within
// noise. Sums of partials round like OpenBLAS's own blocking of k, which at
// these sizes adds the same blocks in the same order (the NER product's bits
// did not change), but in general the last bits may differ.
// kGemmSplitMacs: 2^19 (~5 us on one core) keeps a 64^3 product inline, where a
// worker's wake-up could cost more than the split saves, and splits the NER
// step's batch-32 products (800K): 15.2k -> 16.3k steps/s there against a
// threshold of 2^20 (C++, 2 threads, 3 interleaved runs).
#ifdef TG_BLAS_OPENBLAS
constexpr int64_t kGemmSplitMacs = 1 << 19;
#endif
template <class T>
struct Blas;
template <>
struct Blas<float> {
  static constexpr auto gemm = TG_BLAS(cblas_sgemm);
  static constexpr auto gemv = TG_BLAS(cblas_sgemv);
  static constexpr auto ger = TG_BLAS(cblas_sger);
};
template <>
struct Blas<double> {
  static constexpr auto gemm = TG_BLAS(cblas_dgemm);
  static constexpr auto gemv = TG_BLAS(cblas_dgemv);
  static constexpr auto ger = TG_BLAS(cblas_dger);
};

template <class T>
static void clear_or_scale(T* c, int64_t m, int64_t n, int64_t ldc, T beta) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == T(0) ? T(0) : c[i * ldc + j] * beta;
}

#ifdef TG_BLAS_OPENBLAS
// C = alpha op(A) op(B) + beta C in blocks of k on the pool (Note [GEMMs on the
// core's threads]); the blocks are at least 16 long, aligned to 16.
template <class T>
static void gemm_k_blocks(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n,
                          int64_t k, T alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
                          T beta, T* c, int64_t ldc, int nt) {
  const int64_t grain = std::max<int64_t>(16, k / nt);
  const int threads = parallel_threads_for(k, grain);
  const int64_t len = ((k + threads - 1) / threads + 15) / 16 * 16;
  const int blocks = (int)((k + len - 1) / len);
  Tensor partials = Tensor::empty({std::max(blocks - 1, 1), m, n}, dtype_of<T>());
  T* pp = partials.data<T>();
  const bool a_t = ta == CblasTrans, b_t = tb == CblasTrans;
  parallel_for(blocks, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j++) {
      const int64_t lo = j * len, hi = std::min(k, lo + len);
      const T* ap = a_t ? a + lo * lda : a + lo;  // columns [lo, hi) of op(A)
      const T* bp = b_t ? b + lo : b + lo * ldb;  // rows [lo, hi) of op(B)
      T* cp = j == 0 ? c : pp + (j - 1) * m * n;
      Blas<T>::gemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)(hi - lo), alpha, ap, (int)lda,
                    bp, (int)ldb, j == 0 ? beta : T(0), cp, j == 0 ? (int)ldc : (int)n);
    }
  }, 1);
  for (int j = 1; j < blocks; j++) {
    const T* q = pp + (j - 1) * m * n;
    for (int64_t i = 0; i < m; i++) {
      T* ci = c + i * ldc;
      const T* qi = q + i * n;
      for (int64_t x = 0; x < n; x++) ci[x] += qi[x];
    }
  }
}
#endif

// The core's GEMV is float32 only (Note [Core GEMV]): double goes to BLAS.
static bool core_gemv(bool, int64_t, int64_t, double, const double*, int64_t, const double*,
                      int64_t, double, double*, int64_t) {
  return false;
}

template <class T>
static void gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                      const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                      int64_t ldc) {
  if (m == 0 || n == 0) return;
  lda = lda < 1 ? 1 : lda;
  ldb = ldb < 1 ? 1 : ldb;
  ldc = ldc < 1 ? 1 : ldc;
  int M = check_int(m, "m"), N = check_int(n, "n"), K = check_int(k, "k");
  int LDA = check_int(lda, "lda"), LDB = check_int(ldb, "ldb"), LDC = check_int(ldc, "ldc");
  if (k == 0) {  // C = beta C (BLAS may not touch C when k == 0 and beta == 1)
    if (beta != T(1)) clear_or_scale(c, m, n, ldc, beta);
    return;
  }
  if (m == 1) {  // c[0, :] = alpha * a[0, :] op(B) + beta c: op(B)^T times a
    // op(B) is K x N. Stored N x K (trans_b): c = B a; stored K x N: c = B^T a.
    if (core_gemv(!trans_b, trans_b ? n : k, trans_b ? k : n, alpha, b, ldb, a,
                  trans_a ? lda : 1, beta, c, 1))
      return;
    if (beta == T(0)) clear_or_scale(c, 1, n, ldc, beta);
    Blas<T>::gemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? N : K,
                  trans_b ? K : N, alpha, b, LDB, a, trans_a ? LDA : 1, beta, c, 1);
    return;
  }
  if (n == 1) {  // c[:, 0] = alpha * op(A) b[:, 0] + beta c
    if (core_gemv(trans_a, trans_a ? k : m, trans_a ? m : k, alpha, a, lda, b,
                  trans_b ? 1 : ldb, beta, c, ldc))
      return;
    if (beta == T(0)) clear_or_scale(c, m, 1, ldc, beta);
    Blas<T>::gemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_a ? K : M,
                  trans_a ? M : K, alpha, a, LDA, b, trans_b ? 1 : LDB, beta, c, LDC);
    return;
  }
  if (k == 1 && beta == T(0)) {  // C = alpha a b^T, written in one pass (no clear, no GER)
    const int64_t inc_a = trans_a ? 1 : lda, inc_b = trans_b ? ldb : 1;
    for (int64_t i = 0; i < m; i++) {
      const T ai = alpha * a[i * inc_a];
      T* ci = c + i * ldc;
      if (inc_b == 1)
        for (int64_t j = 0; j < n; j++) ci[j] = ai * b[j];
      else
        for (int64_t j = 0; j < n; j++) ci[j] = ai * b[j * inc_b];
    }
    return;
  }
  if (k == 1 && beta == T(1)) {  // C += alpha a b^T
    Blas<T>::ger(CblasRowMajor, M, N, alpha, a, trans_a ? 1 : LDA, b, trans_b ? LDB : 1, c, LDC);
    return;
  }
  if (small_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
  const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
#ifdef TG_BLAS_OPENBLAS
  const int nt = core_num_threads();
  if (nt > 1 && m * n * k >= kGemmSplitMacs) {
    if (TG_BLAS(openblas_get_num_threads)() != 1) TG_BLAS(openblas_set_num_threads)(1);
    if (k > std::max(m, n)) {
      gemm_k_blocks(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nt);
      return;
    }
    // Blocks of rows of C (and of op(A)), or of its columns (and of op(B)).
    const bool by_rows = m >= n;
    const int64_t len = by_rows ? m : n;
    parallel_for(len, std::max<int64_t>(16, len / nt), [&](int64_t lo, int64_t hi) {
      const T* ap = by_rows ? (trans_a ? a + lo : a + lo * lda) : a;
      const T* bp = by_rows ? b : (trans_b ? b + lo * ldb : b + lo);
      const int rows = by_rows ? (int)(hi - lo) : M, cols = by_rows ? N : (int)(hi - lo);
      Blas<T>::gemm(CblasRowMajor, ta, tb, rows, cols, K, alpha, ap, LDA, bp, LDB, beta,
                    c + (by_rows ? lo * ldc : lo), LDC);
    }, 16);
    return;
  }
#endif
  Blas<T>::gemm(CblasRowMajor, ta, tb, M, N, K, alpha, a, LDA, b, LDB, beta, c, LDC);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static int g_num_threads = 0;

void set_num_threads(int n) {
  TG_CHECK(n >= 1, ValueError, "set_num_threads: expected a positive number, got ", n);
  g_num_threads = n;
#ifdef TG_BLAS_OPENBLAS
  // The core's pool runs the threads of a GEMM (Note [GEMMs on the core's threads]).
  TG_BLAS(openblas_set_num_threads)(1);
#endif
}

// The core's own loops (Note [Core threads]): the count set_num_threads()
// gave, or 1 until it is called.
int core_num_threads() { return g_num_threads ? g_num_threads : 1; }

int get_num_threads() {
#ifdef TG_BLAS_OPENBLAS
  if (g_num_threads == 0) return TG_BLAS(openblas_get_num_threads)();
#endif
  return g_num_threads ? g_num_threads : 1;
}

const char* blas_name() {
#ifdef TG_BLAS_NAME
  return TG_BLAS_NAME;
#else
  return "BLAS";
#endif
}

}  // namespace tg
