// The one place that talks to BLAS.
//
// Note [BLAS symbols]
// The default BLAS is the scipy-openblas32 wheel, whose symbols carry a
// `scipy_` prefix (scipy_cblas_sgemm). CMake passes TG_BLAS_PREFIX (empty for
// a system BLAS) and TG_BLAS_OPENBLAS when openblas_set_num_threads exists.
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
// by 250 x 100) costs several times the arithmetic. Those shapes go to GEMV /
// GER instead. With beta == 0 GEMV's output is cleared first (GEMV reads C,
// and a reused buffer may hold NaN; GEMM does not), and an outer product is
// written directly rather than cleared and then accumulated by GER. Products
// with another dimension of at most kSmallGemmDim go to the core's own kernels
// (Note [Small-dimension products] in small_gemm.cpp).
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
    if (beta == T(0)) clear_or_scale(c, 1, n, ldc, beta);
    // op(B) is K x N. Stored N x K (trans_b): c = B a; stored K x N: c = B^T a.
    Blas<T>::gemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? N : K,
                  trans_b ? K : N, alpha, b, LDB, a, trans_a ? LDA : 1, beta, c, 1);
    return;
  }
  if (n == 1) {  // c[:, 0] = alpha * op(A) b[:, 0] + beta c
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
  Blas<T>::gemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, a, LDA, b, LDB, beta, c,
                LDC);
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
  TG_BLAS(openblas_set_num_threads)(n);
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
