// The fused linear's passes over its GEMM output: bias + activation forward,
// activation derivative + bias-gradient column sums backward. Raw pointers
// only; the op itself is in cpp/src/ops/matmul.cpp (Note [Fused linear]).
#include <algorithm>
#include <vector>

#include "tapegrad/kernels.h"

namespace tg {

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Tanh: return "tanh";
    case Activation::Sigmoid: return "sigmoid";
  }
  return "?";
}

namespace {

// The same expressions as the relu op's forward and backward (activations.cpp):
// NaN propagates, and the gradient passes unless y <= 0.
template <class T>
inline void relu_run(T* y, int64_t n) {
  for (int64_t j = 0; j < n; j++) y[j] = y[j] < T(0) ? T(0) : y[j];
}

template <class T>
void apply_act(T* y, int64_t n, Activation act) {
  switch (act) {
    case Activation::None: break;
    case Activation::Relu: relu_run(y, n); break;
    case Activation::Tanh: tanh_run(y, y, n); break;
    case Activation::Sigmoid: sigmoid_run(y, y, n); break;
  }
}

// Elements per block of bias_act_rows: 16 KB of float32, half of L1.
constexpr int64_t kBiasActBlock = 4096;

int64_t grain_for(Activation act) {
  return act == Activation::Tanh || act == Activation::Sigmoid ? kGrainMath : kGrainCheap;
}

// Threads split the rows (Note [Core threads]); every element's value is the
// same whatever the split.
template <class T>
void bias_act_rows_impl(T* c, int64_t rows, int64_t n, const T* b, Activation act) {
  if (!b) {
    if (act == Activation::Relu) {
      parallel_for(rows * n, kGrainCheap, [&](int64_t lo, int64_t hi) { relu_run(c + lo, hi - lo); });
    } else {
      apply_act(c, rows * n, act);  // tanh_run / sigmoid_run split themselves
    }
    return;
  }
  int64_t grain_rows = std::max<int64_t>(1, grain_for(act) / std::max<int64_t>(n, 1));
  // The bias over a block of rows, then the activation over the whole block
  // at once: one long run, not a short one per row whose last vector is
  // partly filled (at 100 columns, 7 tanh vectors for 6.25 of data, plus a
  // call each). The block stays in L1 between the two passes. Linear(250,
  // 100) + tanh on 512 rows, C++, medians of 200: 302-324 -> 283-287 us,
  // where the plain linear takes 261-263 and linear then the tanh op 284-291
  // (before, the fused op was slower than the composite).
  int64_t block_rows = std::max<int64_t>(1, kBiasActBlock / std::max<int64_t>(n, 1));
  parallel_for(rows, grain_rows, [&](int64_t r0, int64_t r1) {
    for (int64_t i0 = r0; i0 < r1; i0 += block_rows) {
      int64_t i1 = std::min(r1, i0 + block_rows);
      for (int64_t i = i0; i < i1; i++) {
        T* row = c + i * n;
        for (int64_t j = 0; j < n; j++) row[j] = row[j] + b[j];
      }
      apply_act(c + i0 * n, (i1 - i0) * n, act);
    }
  }, 1);
}

// dpre = g * act'(y) over one run of m elements (the formulas of the
// standalone ops' backward: relu y <= 0 ? 0 : g, tanh g (1 - y^2),
// sigmoid g y (1 - y)).
template <class T>
inline void act_grad_run(const T* g, const T* y, T* d, int64_t m, Activation act) {
  switch (act) {
    case Activation::None:
      if (d != g) std::copy(g, g + m, d);
      break;
    case Activation::Relu:
      for (int64_t j = 0; j < m; j++) d[j] = y[j] <= T(0) ? T(0) : g[j];
      break;
    case Activation::Tanh:
      for (int64_t j = 0; j < m; j++) d[j] = g[j] * (T(1) - y[j] * y[j]);
      break;
    case Activation::Sigmoid:
      for (int64_t j = 0; j < m; j++) d[j] = g[j] * y[j] * (T(1) - y[j]);
      break;
  }
}

// Rows per block of the bias-gradient column sums: about 16K elements, so a
// block's partial sums stay in cache; fixed (never derived from the thread
// count), so the sums do not depend on it.
int64_t sum_block_rows(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

// acc[j] += sum of x[i, j] over the rows, in double, row by row (the order
// of the plain loop), sixteen columns at a time so that their sums stay in
// registers rather than going through memory for every element.
template <class T>
void column_sums(const T* x, int64_t rows, int64_t n, double* acc) {
  constexpr int64_t W = 16;
  int64_t j0 = 0;
  for (; j0 + W <= n; j0 += W) {
    double a[W];
    for (int64_t k = 0; k < W; k++) a[k] = acc[j0 + k];
    for (int64_t i = 0; i < rows; i++) {
      const T* xr = x + i * n + j0;
      for (int64_t k = 0; k < W; k++) a[k] += (double)xr[k];
    }
    for (int64_t k = 0; k < W; k++) acc[j0 + k] = a[k];
  }
  for (int64_t i = 0; i < rows && j0 < n; i++)
    for (int64_t j = j0; j < n; j++) acc[j] += (double)x[i * n + j];
}

template <class T>
void act_backward_rows_impl(const T* g, const T* y, T* d, int64_t rows, int64_t n,
                            Activation act, T* db) {
  if (!db) {
    parallel_for(rows * n, kGrainCheap, [&](int64_t lo, int64_t hi) {
      act_grad_run(g + lo, y ? y + lo : nullptr, d + lo, hi - lo, act);
    });
    return;
  }
  int64_t br = sum_block_rows(n);
  int64_t nblocks = (rows + br - 1) / br;
  // The blocks' partial sums, from the caching allocator (no heap once warm).
  Tensor part_buf = Tensor::zeros({nblocks * n}, DType::Float64);
  double* part = part_buf.data<double>();
  // blocks of ~16K elements, kGrainCheap's worth per thread
  parallel_for(nblocks, std::max<int64_t>(1, kGrainCheap / (br * std::max<int64_t>(n, 1))),
               [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; blk++) {
      int64_t r0 = blk * br, r1 = std::min(rows, (blk + 1) * br);
      if (act != Activation::None || d != g)
        act_grad_run(g + r0 * n, y ? y + r0 * n : nullptr, d + r0 * n, (r1 - r0) * n, act);
      column_sums(d + r0 * n, r1 - r0, n, part + blk * n);
    }
  }, 1);
  for (int64_t j = 0; j < n; j++) {
    double s = 0;
    for (int64_t blk = 0; blk < nblocks; blk++) s += part[blk * n + j];
    db[j] = (T)s;
  }
}

}  // namespace

void bias_act_rows(float* c, int64_t rows, int64_t n, const float* b, Activation act) {
  bias_act_rows_impl(c, rows, n, b, act);
}
void bias_act_rows(double* c, int64_t rows, int64_t n, const double* b, Activation act) {
  bias_act_rows_impl(c, rows, n, b, act);
}
void act_backward_rows(const float* g, const float* y, float* dpre, int64_t rows, int64_t n,
                       Activation act, float* db) {
  act_backward_rows_impl(g, y, dpre, rows, n, act, db);
}
void act_backward_rows(const double* g, const double* y, double* dpre, int64_t rows, int64_t n,
                       Activation act, double* db) {
  act_backward_rows_impl(g, y, dpre, rows, n, act, db);
}

}  // namespace tg
