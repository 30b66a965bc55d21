// Raw-pointer kernels and the loops that feed them. Kernels know nothing about
// tapes; the helpers here only turn tensors into (pointer, stride, count).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tapegrad/tensor.h"

namespace tg {

// ---------------------------------------------------------------- dispatch
// TG_DISPATCH_FLOAT(dt, "op", [&](auto tag) { using T = decltype(tag); ... });
template <class F>
decltype(auto) dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default:
      throw TypeError(str(op, ": expected a float32 or float64 tensor, got ", dtype_name(dt)));
  }
}

template <class F>
decltype(auto) dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(int64_t{});
    case DType::Bool: return f(bool{});
  }
  return f(float{});
}

// Numeric types (no bool arithmetic: bools are promoted to int64 first).
template <class F>
decltype(auto) dispatch_numeric(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(int64_t{});
    default:
      throw TypeError(str(op, ": expected a numeric tensor, got ", dtype_name(dt)));
  }
}

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }

// ---------------------------------------------------------------- rows at random
// Gathers and updates of rows at arbitrary indices (embedding lookups, sparse
// optimizer steps) wait on memory for every row: the rows of a large table are
// seldom in cache. Asking for the row kRowsAhead iterations later overlaps
// those misses (measured: the batch-512 NER step's sparse SGD update ran 2x
// faster). 16 rows ahead rather than 8: 5-10% faster again on the NER
// table's 200-byte rows, gather and update alike, once the prefetch covered
// every line of a row (interleaved microbenchmark, L2 flushed between calls).
constexpr int64_t kRowsAhead = 16;
// Those passes split across the core's threads from 2 * kGrainRowElems
// elements (Note [Core threads]): each core keeps its own misses in flight,
// so the wait on memory halves (the batch-512 NER gather is 128,000
// elements; batch 32's 8,000 stay on one thread).
constexpr int64_t kGrainRowElems = 32768;
// The grain, in rows of row_elems elements, of such a pass.
constexpr int64_t row_grain(int64_t row_elems) {
  return row_elems >= kGrainRowElems ? 1 : kGrainRowElems / (row_elems > 0 ? row_elems : 1);
}
// Every cache line the row touches: a row that does not start on a line
// boundary spans one line more than bytes / 64.
template <bool ForWrite>
inline void prefetch_row(const void* row, int64_t bytes) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(row) & ~uintptr_t(63);
  const uintptr_t end = reinterpret_cast<uintptr_t>(row) + (uintptr_t)bytes;
  for (uintptr_t line = first; line < end; line += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(line), ForWrite ? 1 : 0, 3);
}

// Copies one row of `bytes` between non-overlapping buffers, inline. memcpy
// is a call into libc that, at a row of a few hundred bytes, costs as much as
// the copy: the NER gather (2,560 rows of 200 bytes) took 42 us through memcpy
// and 26 us copied here (microbenchmark, table in L3; in the whole NER step,
// where most rows come from memory, within noise). Whole 32-byte chunks,
// then the last 32 bytes again (overlapping the chunk before: same values).
// The empty asm keeps each chunk in a register, as otherwise GCC recognises
// the loop as a copy and calls memcpy after all.
inline void copy_row(void* dst, const void* src, size_t bytes) {
#if defined(__GNUC__) && defined(__AVX__)
  typedef char Chunk __attribute__((vector_size(32), aligned(1), may_alias));
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  if (bytes >= sizeof(Chunk)) {
    const size_t last = bytes - sizeof(Chunk);
    for (size_t i = 0; i < last; i += sizeof(Chunk)) {
      Chunk c = *reinterpret_cast<const Chunk*>(s + i);
      __asm__("" : "+x"(c));
      *reinterpret_cast<Chunk*>(d + i) = c;
    }
    Chunk c = *reinterpret_cast<const Chunk*>(s + last);
    __asm__("" : "+x"(c));
    *reinterpret_cast<Chunk*>(d + last) = c;
    return;
  }
#endif
  std::memcpy(dst, src, bytes);
}

// ---------------------------------------------------------------- threads
// parallel_for(n, grain, f): calls f(begin, end) over [0, n), split into up to
// get_num_threads() contiguous pieces (boundaries multiples of `align`) run
// on the core's thread pool when n >= 2 * grain, else inline as f(0, n). f must
// only write its own range (Note [Core threads] in cpp/src/kernels/parallel.cpp).
using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end);
int parallel_threads_for(int64_t n, int64_t grain);  // 1: run inline
void parallel_run(int64_t n, int nthreads, int64_t align, RangeFn fn, void* ctx);
// Per-element work: elementwise loops of a few flops, and vectorised exp /
// tanh / sigmoid (measured break-even on 2 cores; see the Note).
constexpr int64_t kGrainCheap = 131072;
constexpr int64_t kGrainMath = 16384;

template <class F>
inline void parallel_for(int64_t n, int64_t grain, F&& f, int64_t align = 64) {
  if (n < 2 * grain) {
    f(int64_t(0), n);
    return;
  }
  int nt = parallel_threads_for(n, grain);
  if (nt <= 1) {
    f(int64_t(0), n);
    return;
  }
  using Fn = std::remove_reference_t<F>;
  parallel_run(
      n, nt, align, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// For tests: regions run on the pool so far, and the threads the last one used.
int64_t parallel_regions();
int parallel_last_threads();

// ---------------------------------------------------------------- iteration
// Strided N-ary loop over `shape`: calls f(ptrs..., inner strides..., n) on
// each innermost run. Strides are in elements per operand; a broadcast
// operand has stride 0 on its broadcast dims. Contiguous inputs collapse into
// one run, so the common case is a single call with unit strides.
struct StridedLoop {
  static constexpr int kMaxOperands = 4;
  int nops = 0;
  int ndim = 0;  // after collapsing
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxOperands][kMaxDims] = {};

  // `op_strides[k]` are operand k's strides aligned to `shape` (0 where broadcast).
  StridedLoop(const Shape& shape, int nops, const Strides* op_strides);

  template <class F>
  void run(char** base, const int64_t* elem_size, F&& f) const;
  // run() split across the core's threads (Note [Core threads]): only for
  // loops whose operand 0 is a fresh output written once per element (the
  // map_* helpers), never for accumulating or scattering loops.
  template <class F>
  void run_elementwise(char** base, const int64_t* elem_size, F&& f) const;
};

// Operand k's strides for iterating over `out_shape` (trailing alignment,
// stride 0 on broadcast dims).
Strides broadcast_strides(const Tensor& t, const Shape& out_shape);

template <class F>
void StridedLoop::run(char** base, const int64_t* elem_size, F&& f) const {
  int64_t inner = ndim ? shape[ndim - 1] : 1;
  int64_t inner_strides[kMaxOperands];
  for (int k = 0; k < nops; k++) inner_strides[k] = ndim ? strides[k][ndim - 1] : 0;
  int64_t outer = 1;
  for (int i = 0; i + 1 < ndim; i++) outer *= shape[i];
  if (inner == 0 || outer == 0) return;
  int64_t idx[kMaxDims] = {};
  // Zeroed: the callers read only the nops operands set below, which GCC 12
  // cannot see (it warned, -Wmaybe-uninitialized, in every instantiation).
  char* ptrs[kMaxOperands] = {};
  for (int64_t o = 0; o < outer; o++) {
    for (int k = 0; k < nops; k++) {
      int64_t off = 0;
      for (int i = 0; i + 1 < ndim; i++) off += idx[i] * strides[k][i];
      ptrs[k] = base[k] + off * elem_size[k];
    }
    f(ptrs, inner_strides, inner);
    for (int i = ndim - 2; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
}

template <class F>
void StridedLoop::run_elementwise(char** base, const int64_t* elem_size, F&& f) const {
  int64_t inner = ndim ? shape[ndim - 1] : 1;
  int64_t inner_strides[kMaxOperands];
  for (int k = 0; k < nops; k++) inner_strides[k] = ndim ? strides[k][ndim - 1] : 0;
  int64_t outer = 1;
  for (int i = 0; i + 1 < ndim; i++) outer *= shape[i];
  if (inner == 0 || outer == 0) return;
  if (outer == 1) {  // one run: split it (each element is written once, by one piece)
    parallel_for(inner, kGrainCheap, [&](int64_t b, int64_t e) {
      char* ptrs[kMaxOperands] = {};
      for (int k = 0; k < nops; k++) ptrs[k] = base[k] + b * inner_strides[k] * elem_size[k];
      f(ptrs, inner_strides, e - b);
    });
    return;
  }
  // Split the runs: a piece starts at run o0 (its index unravelled once).
  int64_t grain_runs = std::max<int64_t>(1, kGrainCheap / inner);
  parallel_for(outer, grain_runs, [&](int64_t o0, int64_t o1) {
    int64_t idx[kMaxDims] = {};
    for (int64_t i = ndim - 2, rest = o0; i >= 0; i--) {
      idx[i] = rest % shape[i];
      rest /= shape[i];
    }
    char* ptrs[kMaxOperands] = {};
    for (int64_t o = o0; o < o1; o++) {
      for (int k = 0; k < nops; k++) {
        int64_t off = 0;
        for (int i = 0; i + 1 < ndim; i++) off += idx[i] * strides[k][i];
        ptrs[k] = base[k] + off * elem_size[k];
      }
      f(ptrs, inner_strides, inner);
      for (int i = ndim - 2; i >= 0; i--) {
        if (++idx[i] < shape[i]) break;
        idx[i] = 0;
      }
    }
  }, 1);
}

// out[i] = f(a[i]) for a tensor `a` of type A into a fresh contiguous
// `out` of type O (same shape). Non-contiguous `a` is walked by strides.
template <class A, class O, class F>
void map_unary(const Tensor& a, Tensor& out, F f) {
  int64_t n = a.numel();
  O* o = out.data<O>();
  if (a.is_contiguous()) {
    const A* x = a.data<A>();
    parallel_for(n, kGrainCheap, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) o[i] = f(x[i]);
    });
    return;
  }
  Strides s[2] = {contiguous_strides(out.shape()), a.strides()};
  StridedLoop loop(out.shape(), 2, s);
  char* base[2] = {(char*)o, (char*)a.data<A>()};
  int64_t es[2] = {sizeof(O), sizeof(A)};
  loop.run_elementwise(base, es, [&](char** p, const int64_t* st, int64_t m) {
    O* op = (O*)p[0];
    const A* ap = (const A*)p[1];
    for (int64_t i = 0; i < m; i++) op[i * st[0]] = f(ap[i * st[1]]);
  });
}

// out = f(a, b) with broadcasting; out is contiguous with the broadcast shape.
template <class A, class B, class O, class F>
void map_binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  int64_t n = out.numel();
  O* o = out.data<O>();
  const A* x = a.data<A>();
  const B* y = b.data<B>();
  bool ca = a.is_contiguous(), cb = b.is_contiguous();
  if (ca && cb && a.numel() == n && b.numel() == n) {
    parallel_for(n, kGrainCheap, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) o[i] = f(x[i], y[i]);
    });
    return;
  }
  if (ca && b.numel() == 1 && a.numel() == n) {
    B s = *y;
    parallel_for(n, kGrainCheap, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) o[i] = f(x[i], s);
    });
    return;
  }
  if (cb && a.numel() == 1 && b.numel() == n) {
    A s = *x;
    parallel_for(n, kGrainCheap, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; i++) o[i] = f(s, y[i]);
    });
    return;
  }
  Strides s[3] = {contiguous_strides(out.shape()), broadcast_strides(a, out.shape()),
                  broadcast_strides(b, out.shape())};
  StridedLoop loop(out.shape(), 3, s);
  char* base[3] = {(char*)o, (char*)x, (char*)y};
  int64_t es[3] = {sizeof(O), sizeof(A), sizeof(B)};
  loop.run_elementwise(base, es, [&](char** p, const int64_t* st, int64_t m) {
    O* op = (O*)p[0];
    const A* ap = (const A*)p[1];
    const B* bp = (const B*)p[2];
    for (int64_t i = 0; i < m; i++) op[i * st[0]] = f(ap[i * st[1]], bp[i * st[2]]);
  });
}

// Three inputs (where, prelu backward, ...), same rules.
template <class A, class B, class C, class O, class F>
void map_ternary(const Tensor& a, const Tensor& b, const Tensor& c, Tensor& out, F f) {
  Strides s[4] = {contiguous_strides(out.shape()), broadcast_strides(a, out.shape()),
                  broadcast_strides(b, out.shape()), broadcast_strides(c, out.shape())};
  StridedLoop loop(out.shape(), 4, s);
  char* base[4] = {(char*)out.data<O>(), (char*)a.data<A>(), (char*)b.data<B>(),
                   (char*)c.data<C>()};
  int64_t es[4] = {sizeof(O), sizeof(A), sizeof(B), sizeof(C)};
  loop.run_elementwise(base, es, [&](char** p, const int64_t* st, int64_t m) {
    O* op = (O*)p[0];
    const A* ap = (const A*)p[1];
    const B* bp = (const B*)p[2];
    const C* cp = (const C*)p[3];
    for (int64_t i = 0; i < m; i++)
      op[i * st[0]] = f(ap[i * st[1]], bp[i * st[2]], cp[i * st[3]]);
  });
}

// A tensor viewed as [outer, n, inner] around `dim` (for reductions, softmax,
// gather, cat): element (o, r, i) lives at o * n * inner + r * inner + i.
struct DimSplit {
  int64_t outer = 1, n = 1, inner = 1;
  DimSplit(const Shape& s, int dim) {
    for (int i = 0; i < dim; i++) outer *= s[i];
    n = s.ndim ? s[dim] : 1;
    for (int i = dim + 1; i < s.ndim; i++) inner *= s[i];
  }
};

// ---------------------------------------------------------------- batch math
// (cpp/src/kernels/vec_math.cpp; see Note [Vectorised exp] there)
// Largest element of x[0, n), NaN if any element is NaN.
float max_run(const float* x, int64_t n);
double max_run(const double* x, int64_t n);
// out[i] = exp(x[i] - shift) (out may be null) and returns the sum, in double.
double exp_shifted_sum(const float* x, int64_t n, float shift, float* out);
double exp_shifted_sum(const double* x, int64_t n, double shift, double* out);
void exp_inplace(float* x, int64_t n);
void exp_inplace(double* x, int64_t n);

// ---------------------------------------------------------------- activations
// The pointwise activations the fused linear applies to its GEMM output, and
// the kernels behind the standalone exp / tanh / sigmoid ops (one function per
// activation, shared by both, so that the fused op and its composite compute
// the same bits; see Note [Fused linear] in cpp/src/ops/matmul.cpp).
enum class Activation : uint8_t { None, Relu, Tanh, Sigmoid };
const char* activation_name(Activation act);

// y[i] = f(x[i]) over contiguous runs (y may alias x). float32 runs are
// vectorised (Note [Vectorised exp], Note [Vectorised tanh and sigmoid], Note
// [Vectorised log] in cpp/src/kernels/vec_math.cpp); float64 runs call libm. Large runs split
// across the core's threads (Note [Core threads]); the split never changes a
// value.
void exp_run(const float* x, float* y, int64_t n);
void exp_run(const double* x, double* y, int64_t n);
void tanh_run(const float* x, float* y, int64_t n);
void tanh_run(const double* x, double* y, int64_t n);
void sigmoid_run(const float* x, float* y, int64_t n);
void sigmoid_run(const double* x, double* y, int64_t n);
void log_run(const float* x, float* y, int64_t n);  // Note [Vectorised log]
void log_run(const double* x, double* y, int64_t n);
void log1p_run(const float* x, float* y, int64_t n);  // <= 2.47 ulp (the Note)
void log1p_run(const double* x, double* y, int64_t n);

// The fused linear's one pass over its GEMM output c (rows x n, contiguous):
// c[i, j] = act(c[i, j] + b[j]) (b may be null: no bias). The addition and
// the activation are the same operations, in the same order, as add() then
// the activation op, so the result is bit-identical to the composite.
void bias_act_rows(float* c, int64_t rows, int64_t n, const float* b, Activation act);
void bias_act_rows(double* c, int64_t rows, int64_t n, const double* b, Activation act);
// Its backward pass: dpre[i, j] = g[i, j] * act'(y[i, j]) from the saved
// output y (unused for None), and, when db is not null, db[j] = sum_i
// dpre[i, j], the bias gradient, in the same pass. dpre may alias g. The
// column sums are deterministic: fixed blocks of rows (independent of the
// thread count), each summed in double, then the blocks in order.
void act_backward_rows(const float* g, const float* y, float* dpre, int64_t rows, int64_t n,
                       Activation act, float* db);
void act_backward_rows(const double* g, const double* y, double* dpre, int64_t rows, int64_t n,
                       Activation act, double* db);

// ---------------------------------------------------------------- BLAS
// Row-major C = alpha * op(A) @ op(B) + beta * C, with op = transpose when
// trans_* is set. The one entry point to BLAS (sgemm / dgemm).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc);

// The same product when one of m, n, k is at most kSmallGemmDim, by the
// core's own kernels (Note [Small-dimension products] in small_gemm.cpp);
// returns false, doing nothing, for the shapes it leaves to BLAS.
constexpr int kSmallGemmDim = 6;
bool small_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc);
bool small_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                double* c, int64_t ldc);

// y = alpha op(A) x + beta y for float32 A (rows x cols, row-major, lda): op(A) = A
// (transpose false: y has rows elements, stride incy) or A^T (y has cols, stride
// 1). By the core's kernels (Note [Core GEMV] in gemv.cpp); returns false,
// doing nothing, where it leaves the product to BLAS (x not contiguous, a
// strided y for A^T, no AVX-512). beta == 0 never reads y.
bool core_gemv(bool transpose, int64_t rows, int64_t cols, float alpha, const float* A,
               int64_t lda, const float* x, int64_t incx, float beta, float* y, int64_t incy);

void set_num_threads(int n);  // the core's loops and GEMM splits (OpenBLAS then runs 1 thread)
int get_num_threads();        // as set, or BLAS's default until set
int core_num_threads();       // the core's loops: as set, or 1 until set
const char* blas_name();

}  // namespace tg
