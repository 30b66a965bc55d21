// Activations: pointwise nonlinearities, prelu, and softmax / log_softmax over
// a dim. Each op: its math, its forward, its backward, side by side.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "op_common.h"

namespace tg {

// ================================================================ sigmoid
// y = 1 / (1 + exp(-x))        dx = g * y * (1 - y)
// sigmoid_run (kernels.h): float32 vectorised (Note [Vectorised tanh and
// sigmoid]), float64 exp(x) / (1 + exp(x)) for x < 0 so that neither branch
// overflows. The fused linear runs the same kernel.
Tensor sigmoid(const Tensor& a) {
  TG_TRACE(sigmoid, a);
  check_defined(a, "sigmoid", "input");
  Tensor out = run_unary(a, "sigmoid", [](auto* x, auto* y, int64_t n) { sigmoid_run(x, y, n); });
  if (auto r = record(OpId::Sigmoid, a)) {
    r->save(out);
    finish(r, out);
  }
  return out;
}
void Sigmoid_backward(const Record& r, Tensor& g, Tensor* gin) {
  gin[0] = grad_map(g, r.saved_tensor(0), [](auto gv, auto y) {
    using T = decltype(gv);
    return gv * y * (T(1) - y);
  });
}

// ================================================================ tanh
// y = tanh(x)                  dx = g * (1 - y^2)
// tanh_run (kernels.h): float32 vectorised (Note [Vectorised tanh and
// sigmoid]), float64 libm. The fused linear runs the same kernel.
Tensor tanh(const Tensor& a) {
  TG_TRACE(tanh, a);
  check_defined(a, "tanh", "input");
  Tensor out = run_unary(a, "tanh", [](auto* x, auto* y, int64_t n) { tanh_run(x, y, n); });
  if (auto r = record(OpId::Tanh, a)) {
    r->save(out);
    finish(r, out);
  }
  return out;
}
void Tanh_backward(const Record& r, Tensor& g, Tensor* gin) {
  gin[0] = grad_map(g, r.saved_tensor(0), [](auto gv, auto y) {
    using T = decltype(gv);
    return gv * (T(1) - y * y);
  });
}

// ================================================================ relu
// y = max(x, 0)                dx = g where y > 0, else 0
// NaN propagates (as PyTorch's clamp_min); the backward follows PyTorch's
// threshold_backward, which passes g through unless y <= 0. Integer tensors
// keep their dtype, as PyTorch (they never need grad).
Tensor relu(const Tensor& a) {
  TG_TRACE(relu, a);
  check_defined(a, "relu", "input");
  if (!is_floating(a.dtype())) {
    Tensor out = Tensor::empty(a.shape(), a.dtype());
    dispatch_numeric(a.dtype(), "relu", [&](auto tag) {
      using T = decltype(tag);
      map_unary<T, T>(a, out, [](T v) { return v < T(0) ? T(0) : v; });
    });
    return out;
  }
  Tensor out = unary_float(a, "relu", [](auto x) {
    using T = decltype(x);
    return x < T(0) ? T(0) : x;
  });
  if (auto r = record(OpId::Relu, a)) {
    r->save(out);
    finish(r, out);
  }
  return out;
}
void Relu_backward(const Record& r, Tensor& g, Tensor* gin) {
  gin[0] = grad_map(g, r.saved_tensor(0), [](auto gv, auto y) {
    using T = decltype(gv);
    return y <= T(0) ? T(0) : gv;
  });
}

// ================================================================ leaky_relu
// y = x > 0 ? x : s * x        dx = x > 0 ? g : s * g
Tensor leaky_relu(const Tensor& a, double negative_slope) {
  TG_TRACE(leaky_relu, a, negative_slope);
  Tensor out = unary_float(a, "leaky_relu", [negative_slope](auto x) {
    using T = decltype(x);
    return x > T(0) ? x : x * (T)negative_slope;
  });
  if (auto r = record(OpId::LeakyRelu, a)) {
    r->scalars[0] = negative_slope;
    r->save(a);
    finish(r, out);
  }
  return out;
}
void LeakyRelu_backward(const Record& r, Tensor& g, Tensor* gin) {
  double s = r.scalars[0];
  gin[0] = grad_map(g, r.saved_tensor(0), [s](auto gv, auto x) {
    using T = decltype(gv);
    return x > T(0) ? gv : gv * (T)s;
  });
}

// ================================================================ hardtanh
// y = min(max(x, lo), hi)      dx = g where lo < x < hi, else 0
// (as PyTorch: the gradient is 0 at the boundaries, and NaN lets g through)
Tensor hardtanh(const Tensor& a, double min_val, double max_val) {
  TG_TRACE(hardtanh, a, min_val, max_val);
  TG_CHECK(!(min_val > max_val), ValueError, "hardtanh: min_val (", min_val,
           ") cannot be greater than max_val (", max_val, ")");
  Tensor out = unary_float(a, "hardtanh", [min_val, max_val](auto x) {
    using T = decltype(x);
    if (x != x) return x;
    T lo = (T)min_val, hi = (T)max_val;
    return x < lo ? lo : (x > hi ? hi : x);
  });
  if (auto r = record(OpId::Hardtanh, a)) {
    r->scalars[0] = min_val;
    r->scalars[1] = max_val;
    r->save(a);
    finish(r, out);
  }
  return out;
}
void Hardtanh_backward(const Record& r, Tensor& g, Tensor* gin) {
  double lo = r.scalars[0], hi = r.scalars[1];
  gin[0] = grad_map(g, r.saved_tensor(0), [lo, hi](auto gv, auto x) {
    using T = decltype(gv);
    return (x <= (T)lo || x >= (T)hi) ? T(0) : gv;
  });
}

// ================================================================ prelu
// y = x > 0 ? x : w[c] * x     dx = x > 0 ? g : w[c] * g
//                              dw[c] = sum over all but the channel dim of
//                                      (x > 0 ? 0 : x * g)
// The channel dim c is dim 1 (dim 0 for a 1-D input); w has 1 element (shared
// by all channels) or one per channel.
namespace {

struct PreluLayout {
  int cdim = 0;
  int64_t channels = 1;
};

PreluLayout prelu_layout(const Tensor& a, const Tensor& weight) {
  PreluLayout l;
  l.cdim = a.ndim() >= 2 ? 1 : 0;
  l.channels = a.ndim() == 0 ? 1 : a.shape()[l.cdim];
  int64_t wn = weight.numel();
  TG_CHECK(weight.ndim() <= 1, ValueError, "prelu: weight must be 0-D or 1-D, got ",
           weight.describe(), " for input ", a.describe());
  TG_CHECK(wn == 1 || wn == l.channels, ValueError, "prelu: weight ", weight.describe(),
           " must have 1 element or one per channel, but input ", a.describe(), " has ",
           l.channels, " channels (dim ", l.cdim, ")");
  return l;
}

}  // namespace

Tensor prelu(const Tensor& a, const Tensor& weight) {
  TG_TRACE(prelu, a, weight);
  check_defined(a, "prelu", "input");
  check_defined(weight, "prelu", "weight");
  PreluLayout l = prelu_layout(a, weight);
  DType dt = float_result(promote(a.dtype(), weight.dtype()));
  Tensor x = dense_as(a, dt), w = dense_as(weight, dt);
  Tensor out = Tensor::empty(a.shape(), dt);
  DimSplit sp(a.shape(), l.cdim);
  bool shared = weight.numel() == 1 && l.channels != 1;
  dispatch_float(dt, "prelu", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* wp = w.data<T>();
    T* yp = out.data<T>();
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t c = 0; c < sp.n; c++) {
        T wc = wp[shared ? 0 : c];
        int64_t base = (o * sp.n + c) * sp.inner;
        for (int64_t i = 0; i < sp.inner; i++) {
          T v = xp[base + i];
          yp[base + i] = v > T(0) ? v : wc * v;
        }
      }
  });
  if (auto r = record(OpId::Prelu, a, weight)) {
    r->save(a);
    r->save(weight);
    finish(r, out);
  }
  return out;
}
void Prelu_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Tensor &a = r.saved_tensor(0), &weight = r.saved_tensor(1);
  PreluLayout l = prelu_layout(a, weight);
  DType dt = g.dtype();
  Tensor x = dense_as(a, dt), w = dense_as(weight, dt), gc = dense_as(g, dt);
  DimSplit sp(a.shape(), l.cdim);
  bool shared = weight.numel() == 1 && l.channels != 1;
  bool need_x = r.needs_input_grad(0), need_w = r.needs_input_grad(1);
  Tensor gx = need_x ? Tensor::empty(a.shape(), dt) : Tensor();
  Tensor gw = need_w ? Tensor::empty(weight.shape(), dt) : Tensor();
  dispatch_float(dt, "prelu", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* wp = w.data<T>();
    const T* gp = gc.data<T>();
    T* gxp = need_x ? gx.data<T>() : nullptr;
    std::vector<double> acc(need_w ? (size_t)weight.numel() : 0, 0.0);
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t c = 0; c < sp.n; c++) {
        int64_t wi = shared ? 0 : c;
        T wc = wp[wi];
        int64_t base = (o * sp.n + c) * sp.inner;
        if (gxp)
          for (int64_t i = 0; i < sp.inner; i++) {
            T v = xp[base + i], gv = gp[base + i];
            gxp[base + i] = v > T(0) ? gv : wc * gv;
          }
        if (need_w) {
          double s = 0;
          for (int64_t i = 0; i < sp.inner; i++) {
            T v = xp[base + i];
            if (!(v > T(0))) s += (double)v * (double)gp[base + i];
          }
          acc[wi] += s;
        }
      }
    if (need_w) {
      T* gwp = gw.data<T>();
      for (size_t k = 0; k < acc.size(); k++) gwp[k] = (T)acc[k];
    }
  });
  if (need_x) gin[0] = gx;
  if (need_w) gin[1] = gw;
}

// ================================================================ softmax
// y = exp(x - max) / sum(exp(x - max))     (over `dim`)
// dx = y * (g - sum(g * y))
//
// Note [Softmax loops]
// The input is viewed as [outer, n, inner] around `dim`. With inner == 1 each
// row is contiguous; otherwise the per-(o, i) running values live in small
// buffers of length `inner` so that the loops still walk memory in order.
namespace {

// Row maxima over n, NaN-propagating: m[i] = max_r x[r * inner + i].
template <class T>
void row_max(const T* x, int64_t n, int64_t inner, T* m) {
  for (int64_t i = 0; i < inner; i++) m[i] = -std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < n; r++) {
    const T* row = x + r * inner;
    for (int64_t i = 0; i < inner; i++) {
      T v = row[i];
      if (m[i] != m[i]) continue;  // already NaN
      if (v > m[i] || v != v) m[i] = v;
    }
  }
}

// Forward of softmax (Log = false) or log_softmax (Log = true) on dense x.
template <class T, bool Log>
void softmax_kernel(const T* x, T* y, const DimSplit& sp) {
  int64_t n = sp.n, inner = sp.inner;
  if (n == 0 || inner == 0) return;
  std::vector<T> m((size_t)inner);
  std::vector<double> s((size_t)inner);
  std::vector<T> sbuf(Log ? (size_t)inner : 0);
  for (int64_t o = 0; o < sp.outer; o++) {
    const T* xo = x + o * n * inner;
    T* yo = y + o * n * inner;
    if (inner == 1) {
      T mx = max_run(xo, n);
      double sum = exp_shifted_sum(xo, n, mx, Log ? nullptr : yo);
      if (Log) {  // (x - max) - log(sum): exact where x == max, even for huge x
        T ls = (T)std::log(sum);
        for (int64_t r = 0; r < n; r++) yo[r] = (xo[r] - mx) - ls;
      } else {
        T inv = (T)(1.0 / sum);
        for (int64_t r = 0; r < n; r++) yo[r] *= inv;
      }
      continue;
    }
    row_max(xo, n, inner, m.data());
    for (int64_t i = 0; i < inner; i++) s[i] = 0;
    for (int64_t r = 0; r < n; r++) {  // y (scratch for log_softmax) = exp(x - m)
      const T* xr = xo + r * inner;
      T* yr = yo + r * inner;
      for (int64_t i = 0; i < inner; i++) yr[i] = xr[i] - m[i];
      exp_inplace(yr, inner);
      for (int64_t i = 0; i < inner; i++) s[i] += (double)yr[i];
    }
    if (Log) {
      std::vector<T>& ls = sbuf;
      for (int64_t i = 0; i < inner; i++) ls[i] = (T)std::log(s[i]);
      for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < inner; i++)
          yo[r * inner + i] = (xo[r * inner + i] - m[i]) - ls[i];
    } else {
      for (int64_t i = 0; i < inner; i++) s[i] = 1.0 / s[i];
      for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < inner; i++) yo[r * inner + i] *= (T)s[i];
    }
  }
}

// Backward of softmax (Log = false): dx = y * (g - sum(g * y)); of
// log_softmax (Log = true): dx = g - exp(y) * sum(g).
template <class T, bool Log>
void softmax_backward_kernel(const T* y, const T* g, T* dx, const DimSplit& sp) {
  int64_t n = sp.n, inner = sp.inner;
  if (n == 0 || inner == 0) return;
  std::vector<double> s((size_t)inner);
  for (int64_t o = 0; o < sp.outer; o++) {
    const T* yo = y + o * n * inner;
    const T* go = g + o * n * inner;
    T* dxo = dx + o * n * inner;
    if (inner == 1) {
      double a0 = 0, a1 = 0;
      int64_t r = 0;
      for (; r + 2 <= n; r += 2) {
        a0 += Log ? (double)go[r] : (double)go[r] * yo[r];
        a1 += Log ? (double)go[r + 1] : (double)go[r + 1] * yo[r + 1];
      }
      if (r < n) a0 += Log ? (double)go[r] : (double)go[r] * yo[r];
      T sv = (T)(a0 + a1);
      if (Log) {
        std::memcpy(dxo, yo, (size_t)n * sizeof(T));
        exp_inplace(dxo, n);
        for (int64_t k = 0; k < n; k++) dxo[k] = go[k] - dxo[k] * sv;
      } else {
        for (int64_t k = 0; k < n; k++) dxo[k] = yo[k] * (go[k] - sv);
      }
      continue;
    }
    for (int64_t i = 0; i < inner; i++) s[i] = 0;
    for (int64_t r = 0; r < n; r++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t k = r * inner + i;
        s[i] += Log ? (double)go[k] : (double)go[k] * yo[k];
      }
    if (Log) {
      std::memcpy(dxo, yo, (size_t)(n * inner) * sizeof(T));
      exp_inplace(dxo, n * inner);
    }
    for (int64_t r = 0; r < n; r++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t k = r * inner + i;
        T sv = (T)s[i];
        dxo[k] = Log ? go[k] - dxo[k] * sv : yo[k] * (go[k] - sv);
      }
  }
}

template <bool Log>
Tensor softmax_forward(const Tensor& a, int64_t dim, const char* name, OpId op) {
  check_defined(a, name, "input");
  int d = wrap_dim(dim, a.ndim(), name);
  Tensor x = dense_as(a, float_result(a.dtype()));
  Tensor out = Tensor::empty(a.shape(), x.dtype());
  DimSplit sp(a.shape(), d);
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    softmax_kernel<T, Log>(x.data<T>(), out.data<T>(), sp);
  });
  if (auto r = record(op, a)) {
    r->ints.push_back(d);
    r->save(out);
    finish(r, out);
  }
  return out;
}

template <bool Log>
void softmax_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Tensor& y = r.saved_tensor(0);
  int d = (int)r.ints[0];
  DType dt = g.dtype();
  Tensor yc = dense_as(y, dt), gc = dense_as(g, dt);
  Tensor dx = Tensor::empty(y.shape(), dt);
  DimSplit sp(y.shape(), d);
  dispatch_float(dt, "softmax backward", [&](auto tag) {
    using T = decltype(tag);
    softmax_backward_kernel<T, Log>(yc.data<T>(), gc.data<T>(), dx.data<T>(), sp);
  });
  gin[0] = dx;
}

}  // namespace

Tensor softmax(const Tensor& a, int64_t dim) {
  TG_TRACE(softmax, a, dim);
  return softmax_forward<false>(a, dim, "softmax", OpId::Softmax);
}
void Softmax_backward(const Record& r, Tensor& g, Tensor* gin) {
  softmax_backward<false>(r, g, gin);
}

// ================================================================ log_softmax
// y = x - max - log(sum(exp(x - max)))     (over `dim`)
// dx = g - exp(y) * sum(g)
Tensor log_softmax(const Tensor& a, int64_t dim) {
  TG_TRACE(log_softmax, a, dim);
  return softmax_forward<true>(a, dim, "log_softmax", OpId::LogSoftmax);
}
void LogSoftmax_backward(const Record& r, Tensor& g, Tensor* gin) {
  softmax_backward<true>(r, g, gin);
}

}  // namespace tg
