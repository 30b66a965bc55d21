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

#define TG_GEMM_BODY(fn)                                                                   \
  if (m == 0 || n == 0) return;                                                            \
  TG_BLAS(fn)(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,                          \
              trans_b ? CblasTrans : CblasNoTrans, check_int(m, "m"), check_int(n, "n"),   \
              check_int(k, "k"), alpha, a, check_int(lda < 1 ? 1 : lda, "lda"), b,         \
              check_int(ldb < 1 ? 1 : ldb, "ldb"), beta, c, check_int(ldc < 1 ? 1 : ldc, "ldc"))

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  TG_GEMM_BODY(cblas_sgemm);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  TG_GEMM_BODY(cblas_dgemm);
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
