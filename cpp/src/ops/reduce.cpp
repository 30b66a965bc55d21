// Reductions over dims: sum, mean, max / min (with indices), argmax / argmin,
// logsumexp, var (composite), and sum_to (the engine's inverse of
// broadcasting). Each op: its math, its forward, its backward, side by side.
//
// Note [Reduction layout]
// A reduction is planned as a mask of reduced dims over the input shape. The
// "keepdim shape" has 1 at every reduced dim; the result (keepdim or not) has
// the same dense layout, so kernels accumulate into a dense buffer of the
// result's numel, walking the input by its own strides with stride 0 on the
// reduced dims of the accumulator. Float sums accumulate in double.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "op_common.h"

namespace tg {

namespace {

template <class T>
inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

struct ReducePlan {
  Shape kd;            // keepdim shape: 1 at reduced dims
  Shape out;           // the result's shape
  uint32_t mask = 0;   // bit i set: dim i is reduced
  int64_t count = 1;   // input elements per result element
};

// Result shape for `mask` over `s`.
Shape reduced_shape(const Shape& s, uint32_t mask, bool keepdim) {
  Shape out;
  for (int i = 0; i < s.ndim; i++) {
    bool red = (mask >> i) & 1u;
    if (red && keepdim) out.push_back(1);
    else if (!red) out.push_back(s[i]);
  }
  return out;
}

Shape keepdim_shape(const Shape& s, uint32_t mask) {
  Shape kd = s;
  for (int i = 0; i < s.ndim; i++)
    if ((mask >> i) & 1u) kd[i] = 1;
  return kd;
}

// Empty `dims` reduces every dim. Out-of-range dims raise IndexError (via
// wrap_dim), repeated dims ValueError, both naming `op`.
ReducePlan plan_reduce(const Shape& s, const std::vector<int64_t>& dims, bool keepdim,
                       const char* op) {
  ReducePlan p;
  if (dims.empty()) {
    p.mask = s.ndim ? (uint32_t)((1u << s.ndim) - 1) : 0u;
  } else {
    for (int64_t d : dims) {
      int w = wrap_dim(d, s.ndim, op);
      TG_CHECK(!((p.mask >> w) & 1u), ValueError, op, ": dim ", w, " appears multiple times in "
               "the list of dims for a tensor of shape ", to_string(s));
      p.mask |= 1u << w;
    }
    if (s.ndim == 0) p.mask = 0;  // dim 0 / -1 of a 0-d tensor: nothing to reduce
  }
  p.kd = keepdim_shape(s, p.mask);
  p.out = reduced_shape(s, p.mask, keepdim);
  for (int i = 0; i < s.ndim; i++)
    if ((p.mask >> i) & 1u) p.count *= s[i];
  return p;
}

// `t` has the result shape of a reduction (keepdim or not); view it with the
// keepdim shape `kd` (reduced dims get size 1, stride 0).
Tensor keepdim_view(const Tensor& t, const Shape& kd, uint32_t mask, bool keepdim) {
  if (keepdim || t.shape() == kd) return t;
  Strides st;
  st.ndim = kd.ndim;
  int j = 0;
  for (int i = 0; i < kd.ndim; i++) st[i] = ((mask >> i) & 1u) ? 0 : t.strides()[j++];
  return strided_alias(t, kd, st);
}

// A fresh dense tensor of `shape` holding `t` broadcast to it, divided by
// `divisor` (1 = plain copy).
Tensor expand_copy(const Tensor& t, const Shape& shape, double divisor) {
  Tensor out = Tensor::empty(shape, t.dtype());
  dispatch_float(t.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    T inv = (T)(1.0 / divisor);
    bool scale = divisor != 1.0;
    Strides st[2] = {contiguous_strides(shape), broadcast_strides(t, shape)};
    StridedLoop loop(shape, 2, st);
    char* base[2] = {(char*)out.data<T>(), (char*)t.data<T>()};
    int64_t es[2] = {sizeof(T), sizeof(T)};
    loop.run(base, es, [&](char** p, const int64_t* s, int64_t n) {
      T* o = (T*)p[0];
      const T* a = (const T*)p[1];
      if (s[1] == 0) {
        T v = scale ? a[0] * inv : a[0];
        for (int64_t i = 0; i < n; i++) o[i * s[0]] = v;
      } else if (scale) {
        for (int64_t i = 0; i < n; i++) o[i * s[0]] = a[i * s[1]] * inv;
      } else {
        for (int64_t i = 0; i < n; i++) o[i * s[0]] = a[i * s[1]];
      }
    });
  });
  return out;
}

// Calls body(Acc* o, so, const T* a, sa, n) for every innermost run of `x`,
// where `o` points into the dense accumulator `acc` laid out over `kd` (same
// ndim as x, 1 at reduced dims) and so == 0 along reduced runs.
template <class T, class Acc, class F>
void reduce_runs(const Tensor& x, const Shape& kd, Acc* acc, F&& body) {
  const Shape& s = x.shape();
  Strides cs = contiguous_strides(kd);
  Strides os;
  os.ndim = s.ndim;
  for (int i = 0; i < s.ndim; i++) os[i] = kd[i] == 1 ? 0 : cs[i];
  Strides st[2] = {os, x.strides()};
  StridedLoop loop(s, 2, st);
  char* base[2] = {(char*)acc, (char*)x.data<T>()};
  int64_t es[2] = {sizeof(Acc), sizeof(T)};
  loop.run(base, es, [&](char** p, const int64_t* str, int64_t n) {
    body((Acc*)p[0], str[0], (const T*)p[1], str[1], n);
  });
}

// Sum of a run, with independent partial sums (faster, and a little more
// accurate than one running sum).
template <class Acc, class T>
inline Acc sum_run(const T* a, int64_t stride, int64_t n) {
  Acc s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  if (stride == 1) {
    for (; i + 4 <= n; i += 4) {
      s0 += (Acc)a[i];
      s1 += (Acc)a[i + 1];
      s2 += (Acc)a[i + 2];
      s3 += (Acc)a[i + 3];
    }
    for (; i < n; i++) s0 += (Acc)a[i];
  } else {
    for (; i < n; i++) s0 += (Acc)a[i * stride];
  }
  return (s0 + s1) + (s2 + s3);
}

// acc (dense over kd, zero-initialised) += x summed over the dims where kd is 1.
template <class T, class Acc>
void sum_kernel(const Tensor& x, const Shape& kd, Acc* acc) {
  const Shape& s = x.shape();
  if (x.numel() == 0) return;
  if (x.is_contiguous()) {
    // Classify the non-trivial dims as reduced (R) or kept (K). The patterns
    // K*R* (row sums) and R*K* (column sums) get dedicated loops.
    bool seen_r = false, seen_k = false, rows_ok = true, cols_ok = true;
    int64_t kept = 1;
    for (int i = 0; i < s.ndim; i++) {
      if (s[i] == 1) continue;
      bool red = kd[i] == 1;
      if (red) {
        seen_r = true;
        if (seen_k) cols_ok = false;  // K then R
      } else {
        seen_k = true;
        kept *= s[i];
        if (seen_r) rows_ok = false;  // R then K
      }
    }
    const T* a = x.data<T>();
    int64_t total = x.numel();
    if (rows_ok) {  // acc[r] = sum of a[r * cols, (r + 1) * cols)
      int64_t rows = kept, cols = total / kept;
      for (int64_t r = 0; r < rows; r++) acc[r] += sum_run<Acc>(a + r * cols, 1, cols);
      return;
    }
    if (cols_ok) {  // acc[j] = sum over r of a[r * cols + j]
      int64_t cols = kept, rows = total / kept;
      for (int64_t r = 0; r < rows; r++) {
        const T* row = a + r * cols;
        for (int64_t j = 0; j < cols; j++) acc[j] += (Acc)row[j];
      }
      return;
    }
  }
  reduce_runs<T, Acc>(x, kd, acc, [](Acc* o, int64_t so, const T* a, int64_t sa, int64_t n) {
    if (so == 0) {
      *o += sum_run<Acc>(a, sa, n);
    } else if (so == 1 && sa == 1) {
      for (int64_t i = 0; i < n; i++) o[i] += (Acc)a[i];
    } else {
      for (int64_t i = 0; i < n; i++) o[i * so] += (Acc)a[i * sa];
    }
  });
}

// Sums x (float64 / float32 / int64) over the dims where kd is 1, divided by
// `divisor`; the result has shape `out_shape` (same numel as kd) and x's dtype.
Tensor reduce_sum(const Tensor& x, const Shape& kd, const Shape& out_shape, double divisor,
                  const char* op) {
  Tensor out = Tensor::empty(out_shape, x.dtype());
  dispatch_numeric(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    int64_t m = out.numel();
    T* o = out.data<T>();
    if constexpr (std::is_same_v<T, Acc>) {
      std::memset((void*)o, 0, (size_t)m * sizeof(T));
      sum_kernel<T, Acc>(x, kd, o);
      if (divisor != 1.0)
        for (int64_t j = 0; j < m; j++) o[j] = (T)((double)o[j] / divisor);
    } else {
      memory::Scratch<Acc> acc((size_t)m, Acc(0));
      sum_kernel<T, Acc>(x, kd, acc.data());
      if (divisor != 1.0)
        for (int64_t j = 0; j < m; j++) o[j] = (T)((double)acc[j] / divisor);
      else
        for (int64_t j = 0; j < m; j++) o[j] = (T)acc[j];
    }
  });
  return out;
}

// The gradient of a sum / mean: g (result shape) broadcast back to the input
// shape, divided by `divisor`.
Tensor reduce_backward(const Record& r, const Tensor& g, bool mean) {
  const Shape& in = r.inputs[0].shape;
  bool keepdim = r.ints[0] != 0;
  uint32_t mask = (uint32_t)r.ints[1];
  Shape kd = keepdim_shape(in, mask);
  double divisor = 1.0;
  if (mean) {
    int64_t count = 1;
    for (int i = 0; i < in.ndim; i++)
      if ((mask >> i) & 1u) count *= in[i];
    if (count > 0) divisor = (double)count;
  }
  return expand_copy(keepdim_view(g, kd, mask, keepdim), in, divisor);
}

}  // namespace

// ================================================================ sum
// y = sum over dims of x       dx = g broadcast back to x's shape
// Integer and bool inputs sum to int64, as PyTorch.
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  TG_TRACE(sum, a, dims, keepdim);
  check_defined(a, "sum", "input");
  ReducePlan p = plan_reduce(a.shape(), dims, keepdim, "sum");
  DType dt = is_floating(a.dtype()) ? a.dtype() : DType::Int64;
  Tensor out = reduce_sum(cast_nograd(a, dt), p.kd, p.out, 1.0, "sum");
  if (auto r = record(OpId::Sum, a)) {
    r->ints.push_back(keepdim);
    r->ints.push_back(p.mask);
    finish(r, out);
  }
  return out;
}
void Sum_backward(const Record& r, Tensor& g, Tensor* gin) {
  gin[0] = reduce_backward(r, g, false);
}

// ================================================================ mean
// y = sum over dims of x / N   dx = g / N broadcast back to x's shape
// (N = number of reduced elements; the mean of nothing is NaN, as PyTorch)
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  TG_TRACE(mean, a, dims, keepdim);
  check_defined(a, "mean", "input");
  TG_CHECK(is_floating(a.dtype()), TypeError, "mean: could not infer the output dtype; the "
           "input must be float32 or float64, got ", a.describe(),
           " (cast it with .to(float32) first)");
  ReducePlan p = plan_reduce(a.shape(), dims, keepdim, "mean");
  Tensor out = reduce_sum(a, p.kd, p.out, (double)p.count, "mean");
  if (auto r = record(OpId::Mean, a)) {
    r->ints.push_back(keepdim);
    r->ints.push_back(p.mask);
    finish(r, out);
  }
  return out;
}
void Mean_backward(const Record& r, Tensor& g, Tensor* gin) {
  gin[0] = reduce_backward(r, g, true);
}

// ================================================================ sum_to
// The inverse of broadcasting: sums `a` over its leading extra dims and over
// the dims where `shape` has 1 but `a` has more. Never recorded (the engine
// calls it on gradients). `shape` may also carry extra leading 1s.
Tensor sum_to(const Tensor& a, const Shape& shape) {
  TG_TRACE(sum_to, a, shape);
  check_defined(a, "sum_to", "input");
  const Shape& s = a.shape();
  if (s == shape) return a;
  int nd = s.ndim > shape.ndim ? s.ndim : shape.ndim;
  Shape kd, xs;
  Strides xst;
  kd.ndim = xs.ndim = xst.ndim = nd;
  bool ok = true;
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - s.ndim), ib = i - (nd - shape.ndim);
    int64_t da = ia >= 0 ? s[ia] : 1, db = ib >= 0 ? shape[ib] : 1;
    xs[i] = da;
    xst[i] = ia >= 0 ? a.strides()[ia] : 0;
    if (db == da) kd[i] = da;
    else if (db == 1) kd[i] = 1;
    else ok = false;
  }
  TG_CHECK(ok, ValueError, "sum_to: cannot sum ", a.describe(), " down to shape ",
           to_string(shape), " (the shapes are not broadcast-compatible)");
  Tensor x = nd == s.ndim ? a : strided_alias(a, xs, xst);
  DType dt = is_floating(a.dtype()) ? a.dtype() : DType::Int64;
  if (dt != a.dtype()) x = cast_nograd(x, dt);
  return reduce_sum(x, kd, shape, 1.0, "sum_to");
}

// ================================================================ max / min over a dim
// (values, indices) = max over dim of x; the first index wins ties and a NaN
// wins over everything (its first occurrence).
// dx = g scattered into zeros at the saved indices
//
// Over all elements (no dim) the gradient is shared evenly among the elements
// equal to the result, as PyTorch.
namespace {

// vals[o, i] / idx[o, i] = extremum over r of x[o, r, i] (n > 0).
template <bool IsMax, class T>
void extremum_kernel(const T* x, const DimSplit& sp, T* vals, int64_t* idx) {
  int64_t n = sp.n, inner = sp.inner;
  for (int64_t o = 0; o < sp.outer; o++) {
    const T* xo = x + o * n * inner;
    T* vo = vals + o * inner;
    int64_t* io = idx + o * inner;
    if (inner == 1) {
      T best = xo[0];
      int64_t bi = 0;
      if (!is_nan(best))
        for (int64_t r = 1; r < n; r++) {
          T v = xo[r];
          if (is_nan(v)) {
            best = v;
            bi = r;
            break;
          }
          if (IsMax ? v > best : v < best) {
            best = v;
            bi = r;
          }
        }
      vo[0] = best;
      io[0] = bi;
      continue;
    }
    for (int64_t i = 0; i < inner; i++) {
      vo[i] = xo[i];
      io[i] = 0;
    }
    for (int64_t r = 1; r < n; r++) {
      const T* xr = xo + r * inner;
      for (int64_t i = 0; i < inner; i++) {
        T v = xr[i], cur = vo[i];
        if (is_nan(cur)) continue;
        if (is_nan(v) || (IsMax ? v > cur : v < cur)) {
          vo[i] = v;
          io[i] = r;
        }
      }
    }
  }
}

// Runs the kernel over `dim` of `a` (dim < 0: all elements, flattened).
// Fills vals (if defined) and idx, both dense with the result's numel.
template <bool IsMax>
void extremum_run(const Tensor& a, int dim, Tensor* vals, Tensor& idx) {
  Tensor x = a.is_contiguous() ? a : contiguous_copy(a);
  DimSplit sp = dim < 0 ? DimSplit(Shape{a.numel()}, 0) : DimSplit(a.shape(), dim);
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (vals) {
      extremum_kernel<IsMax, T>(x.data<T>(), sp, vals->data<T>(), idx.data<int64_t>());
    } else {
      Tensor tmp = Tensor::empty(Shape{sp.outer * sp.inner}, a.dtype());
      extremum_kernel<IsMax, T>(x.data<T>(), sp, tmp.data<T>(), idx.data<int64_t>());
    }
  });
}

int64_t dim_size(const Tensor& a, int d) { return a.ndim() ? a.shape()[d] : 1; }

template <bool IsMax>
std::pair<Tensor, Tensor> extremum_dim(const Tensor& a, int64_t dim, bool keepdim,
                                       const char* name, OpId op) {
  check_defined(a, name, "input");
  int d = wrap_dim(dim, a.ndim(), name);
  TG_CHECK(dim_size(a, d) > 0, IndexError, name, ": expected reduction dim ", d,
           " to have non-zero size, but the input is ", a.describe());
  Shape out_shape = reduced_shape(a.shape(), a.ndim() ? 1u << d : 0u, keepdim);
  Tensor vals = Tensor::empty(out_shape, a.dtype());
  Tensor idx = Tensor::empty(out_shape, DType::Int64);
  extremum_run<IsMax>(a, d, &vals, idx);
  if (auto r = record(op, a)) {
    r->ints.push_back(d);
    r->ints.push_back(keepdim);
    r->ints.push_back(0);  // over a dim
    r->save(idx);
    finish(r, vals);
  }
  return {vals, idx};
}

template <bool IsMax>
Tensor extremum_all(const Tensor& a, const char* name, OpId op) {
  check_defined(a, name, "input");
  TG_CHECK(a.numel() > 0, RuntimeError, name, "(): expected a non-empty tensor to reduce over "
           "all elements, got ", a.describe(), "; pass a dim to reduce an empty tensor");
  Tensor vals = Tensor::empty(Shape{}, a.dtype());
  Tensor idx = Tensor::empty(Shape{}, DType::Int64);
  extremum_run<IsMax>(a, -1, &vals, idx);
  if (auto r = record(op, a)) {
    r->ints.push_back(-1);
    r->ints.push_back(0);
    r->ints.push_back(1);  // over all elements
    r->save(a);
    r->save(vals);
    finish(r, vals);
  }
  return vals;
}

void extremum_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Shape& in = r.inputs[0].shape;
  DType dt = g.dtype();
  Tensor gx = Tensor::zeros(in, dt);
  if (gx.numel() == 0) {
    gin[0] = gx;
    return;
  }
  if (r.ints[2]) {
    // Over all elements: g / k to each of the k elements equal to the result
    // (NaN counts as equal to a NaN result).
    const Tensor& a = r.saved_tensor(0);
    Tensor x = a.is_contiguous() ? a : contiguous_copy(a);
    Tensor y = r.saved_tensor(1);
    dispatch_float(x.dtype(), "max backward", [&](auto xtag) {
      using X = decltype(xtag);
      const X* xp = x.data<X>();
      X yv = *y.data<X>();
      bool nan = is_nan(yv);
      int64_t n = x.numel(), k = 0;
      for (int64_t i = 0; i < n; i++) k += nan ? is_nan(xp[i]) : xp[i] == yv;
      dispatch_float(dt, "max backward", [&](auto gtag) {
        using T = decltype(gtag);
        T share = *g.data<T>() / (T)k;
        T* o = gx.data<T>();
        for (int64_t i = 0; i < n; i++)
          if (nan ? is_nan(xp[i]) : xp[i] == yv) o[i] = share;
      });
    });
    gin[0] = gx;
    return;
  }
  int d = (int)r.ints[0];
  const Tensor& idx = r.saved_tensor(0);
  Tensor ic = idx.is_contiguous() ? idx : contiguous_copy(idx);
  Tensor gc = g.is_contiguous() ? g : contiguous_copy(g);
  DimSplit sp(in, d);
  dispatch_float(dt, "max backward", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = gc.data<T>();
    const int64_t* ip = ic.data<int64_t>();
    T* o = gx.data<T>();
    for (int64_t a = 0; a < sp.outer; a++)
      for (int64_t i = 0; i < sp.inner; i++) {
        int64_t k = a * sp.inner + i;
        o[(a * sp.n + ip[k]) * sp.inner + i] = gp[k];
      }
  });
  gin[0] = gx;
}

template <bool IsMax>
Tensor arg_extremum(const Tensor& a, std::optional<int64_t> dim, bool keepdim,
                    const char* name) {
  check_defined(a, name, "input");
  if (!dim) {
    TG_CHECK(a.numel() > 0, RuntimeError, name, ": expected a non-empty tensor when no dim "
             "is given, got ", a.describe());
    Shape out;
    if (keepdim)
      for (int i = 0; i < a.ndim(); i++) out.push_back(1);
    Tensor idx = Tensor::empty(out, DType::Int64);
    extremum_run<IsMax>(a, -1, nullptr, idx);
    return idx;
  }
  int d = wrap_dim(*dim, a.ndim(), name);
  TG_CHECK(dim_size(a, d) > 0, IndexError, name, ": expected reduction dim ", d,
           " to have non-zero size, but the input is ", a.describe());
  Tensor idx = Tensor::empty(reduced_shape(a.shape(), a.ndim() ? 1u << d : 0u, keepdim),
                             DType::Int64);
  extremum_run<IsMax>(a, d, nullptr, idx);
  return idx;
}

}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& a, int64_t dim, bool keepdim) {
  TG_TRACE(max, a, dim, keepdim);
  return extremum_dim<true>(a, dim, keepdim, "max", OpId::MaxDim);
}
std::pair<Tensor, Tensor> min(const Tensor& a, int64_t dim, bool keepdim) {
  TG_TRACE(min, a, dim, keepdim);
  return extremum_dim<false>(a, dim, keepdim, "min", OpId::MinDim);
}
Tensor max(const Tensor& a) { TG_TRACE(max, a); return extremum_all<true>(a, "max", OpId::MaxDim); }
Tensor min(const Tensor& a) { TG_TRACE(min, a); return extremum_all<false>(a, "min", OpId::MinDim); }
void MaxDim_backward(const Record& r, Tensor& g, Tensor* gin) {
  extremum_backward(r, g, gin);
}
void MinDim_backward(const Record& r, Tensor& g, Tensor* gin) {
  extremum_backward(r, g, gin);
}

// ================================================================ argmax / argmin
// Index of the max / min (int64, no gradient); without a dim, the index into
// the flattened (row-major) tensor.
Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim) {
  TG_TRACE(argmax, a, dim, keepdim);
  return arg_extremum<true>(a, dim, keepdim, "argmax");
}
Tensor argmin(const Tensor& a, std::optional<int64_t> dim, bool keepdim) {
  TG_TRACE(argmin, a, dim, keepdim);
  return arg_extremum<false>(a, dim, keepdim, "argmin");
}

// ================================================================ logsumexp
// y = m + log(sum over dims of exp(x - m)), m = max over dims of x (taken as 0
// where it is infinite, as PyTorch, so all -inf gives -inf and +inf gives +inf)
// dx = g * exp((x - m) - log(sum exp(x - m)))   (the softmax of x)
// Note: not g * exp(x - y). With y = m + log(s) rounded, x - y loses log(s)
// next to a large m (|x| ~ 1e4 in float32, 1e300 in float64): ties would get
// gradient 1 each instead of 1/n. m and log(s) are saved separately instead.
Tensor logsumexp(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  TG_TRACE(logsumexp, a, dims, keepdim);
  check_defined(a, "logsumexp", "input");
  ReducePlan p = plan_reduce(a.shape(), dims, keepdim, "logsumexp");
  DType dt = float_result(a.dtype());
  Tensor x = cast_nograd(a, dt);
  Tensor out = Tensor::empty(p.out, dt);
  Tensor shift = Tensor::empty(p.out, dt), logs = Tensor::empty(p.out, dt);  // for backward
  dispatch_float(dt, "logsumexp", [&](auto tag) {
    using T = decltype(tag);
    int64_t m = out.numel();
    memory::Scratch<T> mx((size_t)m, -std::numeric_limits<T>::infinity());
    reduce_runs<T, T>(x, p.kd, mx.data(), [](T* o, int64_t so, const T* v, int64_t sv,
                                            int64_t n) {
      if (so == 0 && sv == 1) {
        T e = max_run(v, n);
        if (!is_nan(*o) && (is_nan(e) || e > *o)) *o = e;
        return;
      }
      for (int64_t i = 0; i < n; i++) {
        T& cur = o[i * so];
        T e = v[i * sv];
        if (!is_nan(cur) && (is_nan(e) || e > cur)) cur = e;
      }
    });
    for (int64_t j = 0; j < m; j++)
      if (std::isinf(mx[j])) mx[j] = 0;
    memory::Scratch<double> s((size_t)m, 0.0);
    double* sbase = s.data();
    const T* mbase = mx.data();
    reduce_runs<T, double>(x, p.kd, sbase, [&](double* o, int64_t so, const T* v, int64_t sv,
                                              int64_t n) {
      const T* mm = mbase + (o - sbase);
      if (so == 0 && sv == 1) {
        *o += exp_shifted_sum(v, n, *mm, (T*)nullptr);
      } else if (so == 0) {
        T shift = *mm;
        double t = 0;
        for (int64_t i = 0; i < n; i++) t += (double)std::exp(v[i * sv] - shift);
        *o += t;
      } else {
        for (int64_t i = 0; i < n; i++) o[i * so] += (double)std::exp(v[i * sv] - mm[i * so]);
      }
    });
    T* op = out.data<T>();
    T* sp = shift.data<T>();
    T* lp = logs.data<T>();
    for (int64_t j = 0; j < m; j++) {
      op[j] = (T)(std::log(s[j]) + (double)mx[j]);
      sp[j] = mx[j];
      lp[j] = (T)std::log(s[j]);
    }
  });
  if (auto r = record(OpId::LogSumExp, a)) {
    r->ints.push_back(keepdim);
    r->ints.push_back(p.mask);
    r->save(a);
    r->save(shift);
    r->save(logs);
    finish(r, out);
  }
  return out;
}
void LogSumExp_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Tensor &x = r.saved_tensor(0), &m = r.saved_tensor(1), &ls = r.saved_tensor(2);
  bool keepdim = r.ints[0] != 0;
  uint32_t mask = (uint32_t)r.ints[1];
  Shape kd = keepdim_shape(x.shape(), mask);
  Tensor gk = keepdim_view(g, kd, mask, keepdim);
  Tensor mk = keepdim_view(m, kd, mask, keepdim), lk = keepdim_view(ls, kd, mask, keepdim);
  // x may be an integer tensor (the result is float): compute in the result's dtype.
  Tensor xf = cast_nograd(x, m.dtype());
  Tensor e = grad_map(mk, xf, lk, [](auto mv, auto xv, auto lv) {
    return std::exp((xv - mv) - lv);
  });
  gin[0] = grad_map(gk, e, [](auto gv, auto ev) { return gv * ev; });
}

// ================================================================ var (composite)
// var = sum over dims of (x - mean)^2 / max(0, N - correction)
Tensor var(const Tensor& a, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  TG_TRACE(var, a, dims, correction, keepdim);
  check_defined(a, "var", "input");
  TG_CHECK(is_floating(a.dtype()), TypeError, "var: only float32 and float64 inputs are "
           "supported, got ", a.describe());
  ReducePlan p = plan_reduce(a.shape(), dims, keepdim, "var");
  Tensor dev = sub(a, mean(a, dims, true));
  Tensor ss = sum(square(dev), dims, keepdim);
  double denom = (double)p.count - correction;
  if (denom < 0) denom = 0;
  return div(ss, Tensor::scalar(denom, ss.dtype()));
}

// ================================================================ cumsum / cumprod
// Note [Scans]
// Both run along `dim` of a dense copy viewed as [outer, n, inner], one pass
// per row (O(n)), accumulating floats in double as the sums above do.
// cumprod's backward never divides by x, so zeros in the input are exact:
//   y_i = prod_{j<=i} x_j,  dx_k = P_k * S_k  with  P_k = prod_{j<k} x_j,
//   S_k = sum_{i>=k} g_i prod_{k<j<=i} x_j  =  g_k + x_{k+1} S_{k+1}.
namespace {

DType scan_dtype(DType dt) { return is_floating(dt) ? dt : DType::Int64; }

// y = running sum (Prod = false) or product along the row, reversed if Rev.
template <bool Prod, bool Rev>
Tensor scan(const Tensor& a, int d) {
  Tensor x = dense_as(a, scan_dtype(a.dtype()));
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  DimSplit sp(x.shape(), d);
  dispatch_numeric(x.dtype(), Prod ? "cumprod" : "cumsum", [&](auto tag) {
    using T = decltype(tag);
    using A = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    std::vector<A> acc((size_t)sp.inner);
    for (int64_t o = 0; o < sp.outer; o++) {
      for (auto& v : acc) v = A(Prod ? 1 : 0);
      for (int64_t k = 0; k < sp.n; k++) {
        int64_t r = Rev ? sp.n - 1 - k : k;
        int64_t base = (o * sp.n + r) * sp.inner;
        for (int64_t i = 0; i < sp.inner; i++) {
          if (Prod) acc[i] *= (A)xp[base + i];
          else acc[i] += (A)xp[base + i];
          yp[base + i] = (T)acc[i];
        }
      }
    }
  });
  return y;
}

int scan_dim(const Tensor& a, int64_t dim, const char* op) {
  check_defined(a, op, "input");
  return a.ndim() == 0 ? (wrap_dim(dim, 0, op), 0) : wrap_dim(dim, a.ndim(), op);
}

}  // namespace

// y_i = sum_{j<=i} x_j         dx = reverse cumsum of g
Tensor cumsum(const Tensor& a, int64_t dim) {
  TG_TRACE(cumsum, a, dim);
  int d = scan_dim(a, dim, "cumsum");
  Tensor out = scan<false, false>(a, d);
  if (auto r = record(OpId::Cumsum, a)) {
    r->ints.push_back(d);
    finish(r, out);
  }
  return out;
}
void Cumsum_backward(const Record& r, Tensor& g, Tensor* gin) {
  gin[0] = scan<false, true>(g, (int)r.ints[0]);
}

// y_i = prod_{j<=i} x_j        dx_k = P_k * S_k (Note [Scans])
Tensor cumprod(const Tensor& a, int64_t dim) {
  TG_TRACE(cumprod, a, dim);
  int d = scan_dim(a, dim, "cumprod");
  Tensor out = scan<true, false>(a, d);
  if (auto r = record(OpId::Cumprod, a)) {
    r->ints.push_back(d);
    r->save(a);
    finish(r, out);
  }
  return out;
}
void Cumprod_backward(const Record& r, Tensor& g, Tensor* gin) {
  int d = (int)r.ints[0];
  DType dt = g.dtype();
  Tensor x = dense_as(r.saved_tensor(0), dt), gc = dense_as(g, dt);
  Tensor dx = Tensor::empty(x.shape(), dt);
  DimSplit sp(x.shape(), d);
  dispatch_float(dt, "cumprod backward", [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data<T>(), *gp = gc.data<T>();
    T* out = dx.data<T>();
    std::vector<double> acc((size_t)sp.inner);
    for (int64_t o = 0; o < sp.outer; o++) {
      auto at = [&](int64_t k, int64_t i) { return (o * sp.n + k) * sp.inner + i; };
      // out <- S_k, from the end of the row
      for (int64_t k = sp.n - 1; k >= 0; k--)
        for (int64_t i = 0; i < sp.inner; i++) {
          double s = (double)gp[at(k, i)];
          if (k + 1 < sp.n) s += (double)xp[at(k + 1, i)] * acc[i];
          acc[i] = s;
          out[at(k, i)] = (T)s;
        }
      // out <- P_k * S_k, from the start of the row
      for (auto& v : acc) v = 1.0;
      for (int64_t k = 0; k < sp.n; k++)
        for (int64_t i = 0; i < sp.inner; i++) {
          out[at(k, i)] = (T)(acc[i] * (double)out[at(k, i)]);
          acc[i] *= (double)xp[at(k, i)];
        }
    }
  });
  gin[0] = dx;
}

}  // namespace tg
