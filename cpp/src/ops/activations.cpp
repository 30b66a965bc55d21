// Activations: pointwise nonlinearities, prelu, and softmax / log_softmax over
// a dim. Each op: its math, its forward, its backward, side by side.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "op_common.h"

namespace tg {

namespace {

// A dense tensor of dtype `dt` holding a's values (no copy when a already is).
Tensor dense_as(const Tensor& a, DType dt) {
  Tensor x = cast_nograd(a, dt);
  return x.is_contiguous() ? x : contiguous_copy(x);
}

}  // namespace

// ================================================================ batch kernels
// Note [Vectorised exp]
// softmax, log_softmax, logsumexp and cross_entropy spend their time in exp
// and in the row max. GCC will not auto-vectorise either without -ffast-math
// (float compares may trap, so it refuses to if-convert them; libm's expf is
// scalar), so these run on GCC/Clang vector extensions: branch-free selects by
// explicit masks, lowered to AVX / SSE / NEON as the target allows.
//
// exp (float32): Cephes' expf. n = round(x / ln2), r = x - n ln2 (Cody-Waite,
// |r| <= ln2/2), e^r by a degree-6 polynomial, times 2^n applied as two
// factors 2^(n/2) 2^(n - n/2) so that overflow (inf above 88.72) and gradual
// underflow (subnormals down to -103.97, then 0) round as IEEE does. Measured
// against exp in double over a sweep of all floats: at most 1.004 ulp; NaN
// propagates, exp(-inf) = 0, exp(inf) = inf. float64 uses std::exp.
//
// These are shared with reduce.cpp and loss.cpp, which declare them.
#if defined(__GNUC__)
#define TG_HAVE_VEC 1
namespace {
#if defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef float VF __attribute__((vector_size(kVecBytes)));
typedef int32_t VI __attribute__((vector_size(kVecBytes)));
typedef double VD __attribute__((vector_size(kVecBytes)));
constexpr int kWF = kVecBytes / 4, kWD = kVecBytes / 8;

template <class V, class S, int W>
inline V splat(S c) {
  V v;
  for (int k = 0; k < W; k++) v[k] = c;
  return v;
}
inline VF splatf(float c) { return splat<VF, float, kWF>(c); }
inline VI splati(int32_t c) { return splat<VI, int32_t, kWF>(c); }
template <class V, class M>
inline V select(M mask, V a, V b) {  // mask ? a : b, lane by lane
  return (V)((mask & (M)a) | (~mask & (M)b));
}

inline VF exp_vec(VF x) {
  x = select(x < splatf(-110.f), splatf(-110.f), x);  // NaN compares false: stays NaN
  x = select(x > splatf(100.f), splatf(100.f), x);
  const VF magic = splatf(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  VF t = x * splatf(1.44269504088896341f) + magic;
  VF nf = t - magic;
  VI n = (VI)t - splati(0x4B400000);  // the integer in t's mantissa
  VF r = x - nf * splatf(0.693359375f);
  r = r - nf * splatf(-2.12194440e-4f);
  VF z = r * r;
  VF p = splatf(1.9875691500e-4f);
  p = p * r + splatf(1.3981999507e-3f);
  p = p * r + splatf(8.3334519073e-3f);
  p = p * r + splatf(4.1665795894e-2f);
  p = p * r + splatf(1.6666665459e-1f);
  p = p * r + splatf(5.0000001201e-1f);
  p = p * z + r + splatf(1.0f);
  VI n1 = n >> 1, n2 = n - n1;
  return p * (VF)((n1 + 127) << 23) * (VF)((n2 + 127) << 23);
}

// Max of x[0, n) with NaN winning; -inf for n == 0.
template <class T, class V, int W>
T max_vec(const T* x, int64_t n) {
  V m = splat<V, T, W>(-std::numeric_limits<T>::infinity());
  auto nan = m != m;  // all lanes false
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    m = select(v > m, v, m);
    nan |= (v != v);
  }
  T best = -std::numeric_limits<T>::infinity();
  bool any_nan = false;
  for (int k = 0; k < W; k++) {
    any_nan |= nan[k] != 0;
    if (m[k] > best) best = m[k];
  }
  for (; i < n; i++) {
    any_nan |= x[i] != x[i];
    if (x[i] > best) best = x[i];
  }
  return any_nan ? std::numeric_limits<T>::quiet_NaN() : best;
}
}  // namespace
#endif

float max_run(const float* x, int64_t n) {
#ifdef TG_HAVE_VEC
  return max_vec<float, VF, kWF>(x, n);
#else
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; i++) {
    if (x[i] != x[i]) return x[i];
    if (x[i] > m) m = x[i];
  }
  return m;
#endif
}

double max_run(const double* x, int64_t n) {
#ifdef TG_HAVE_VEC
  return max_vec<double, VD, kWD>(x, n);
#else
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; i++) {
    if (x[i] != x[i]) return x[i];
    if (x[i] > m) m = x[i];
  }
  return m;
#endif
}

// out[i] = exp(x[i] - shift) (out may be null); returns the sum of the
// exponentials, accumulated in float lanes over short blocks and in double
// across blocks.
double exp_shifted_sum(const float* x, int64_t n, float shift, float* out) {
#ifdef TG_HAVE_VEC
  double total = 0;
  VF sv = splatf(shift);
  int64_t i = 0;
  while (i < n) {
    int64_t end = std::min(n, i + 16 * kWF);
    VF acc = splatf(0.f);
    for (; i + kWF <= end; i += kWF) {
      VF v;
      std::memcpy(&v, x + i, sizeof v);
      v = exp_vec(v - sv);
      if (out) std::memcpy(out + i, &v, sizeof v);
      acc += v;
    }
    if (i < end) {  // the last, partial vector
      int64_t m = end - i;
      VF v = splatf(0.f);
      std::memcpy(&v, x + i, (size_t)m * sizeof(float));
      v = exp_vec(v - sv);
      for (int k = (int)m; k < kWF; k++) v[k] = 0.f;
      if (out) std::memcpy(out + i, &v, (size_t)m * sizeof(float));
      acc += v;
      i = end;
    }
    for (int k = 0; k < kWF; k++) total += (double)acc[k];
  }
  return total;
#else
  double total = 0;
  for (int64_t i = 0; i < n; i++) {
    float e = std::exp(x[i] - shift);
    if (out) out[i] = e;
    total += (double)e;
  }
  return total;
#endif
}

double exp_shifted_sum(const double* x, int64_t n, double shift, double* out) {
  double s0 = 0, s1 = 0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    double e0 = std::exp(x[i] - shift), e1 = std::exp(x[i + 1] - shift);
    if (out) {
      out[i] = e0;
      out[i + 1] = e1;
    }
    s0 += e0;
    s1 += e1;
  }
  for (; i < n; i++) {
    double e = std::exp(x[i] - shift);
    if (out) out[i] = e;
    s0 += e;
  }
  return s0 + s1;
}

// x[i] = exp(x[i]).
void exp_inplace(float* x, int64_t n) {
#ifdef TG_HAVE_VEC
  int64_t i = 0;
  for (; i + kWF <= n; i += kWF) {
    VF v;
    std::memcpy(&v, x + i, sizeof v);
    v = exp_vec(v);
    std::memcpy(x + i, &v, sizeof v);
  }
  if (i < n) {
    VF v = splatf(0.f);
    std::memcpy(&v, x + i, (size_t)(n - i) * sizeof(float));
    v = exp_vec(v);
    std::memcpy(x + i, &v, (size_t)(n - i) * sizeof(float));
  }
#else
  for (int64_t i = 0; i < n; i++) x[i] = std::exp(x[i]);
#endif
}

void exp_inplace(double* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = std::exp(x[i]);
}

// ================================================================ sigmoid
// y = 1 / (1 + exp(-x))        dx = g * y * (1 - y)
// Evaluated as exp(x) / (1 + exp(x)) for x < 0 so that neither branch
// overflows.
// float32 runs 1 / (1 + exp(-x)) on the vectorised exp (exp(-x) = inf gives
// exactly 0, so no branch is needed).
Tensor sigmoid(const Tensor& a) {
  check_defined(a, "sigmoid", "input");
  Tensor out;
  if (float_result(a.dtype()) == DType::Float32) {
    Tensor x = dense_as(a, DType::Float32);
    out = Tensor::empty(a.shape(), DType::Float32);
    const float* xp = x.data<float>();
    float* yp = out.data<float>();
    int64_t n = x.numel();
    for (int64_t i = 0; i < n; i++) yp[i] = -xp[i];
    exp_inplace(yp, n);
    for (int64_t i = 0; i < n; i++) yp[i] = 1.0f / (1.0f + yp[i]);
  } else {
    out = unary_float(a, "sigmoid", [](auto x) {
      using T = decltype(x);
      if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
      T e = std::exp(x);
      return e / (T(1) + e);
    });
  }
  if (Record* r = record(OpId::Sigmoid, a)) {
    r->save(out.detach());  // detached: no cycle through the output
    finish(r, out);
  }
  return out;
}
void Sigmoid_backward(const Record& r, const Tensor& g, Tensor* gin) {
  gin[0] = grad_map(g, r.saved_tensor(0), [](auto gv, auto y) {
    using T = decltype(gv);
    return gv * y * (T(1) - y);
  });
}

// ================================================================ tanh
// y = tanh(x)                  dx = g * (1 - y^2)
Tensor tanh(const Tensor& a) {
  Tensor out = unary_float(a, "tanh", [](auto x) { return std::tanh(x); });
  if (Record* r = record(OpId::Tanh, a)) {
    r->save(out.detach());  // detached: no cycle through the output
    finish(r, out);
  }
  return out;
}
void Tanh_backward(const Record& r, const Tensor& g, Tensor* gin) {
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
  if (Record* r = record(OpId::Relu, a)) {
    r->save(out.detach());  // detached: no cycle through the output
    finish(r, out);
  }
  return out;
}
void Relu_backward(const Record& r, const Tensor& g, Tensor* gin) {
  gin[0] = grad_map(g, r.saved_tensor(0), [](auto gv, auto y) {
    using T = decltype(gv);
    return y <= T(0) ? T(0) : gv;
  });
}

// ================================================================ leaky_relu
// y = x > 0 ? x : s * x        dx = x > 0 ? g : s * g
Tensor leaky_relu(const Tensor& a, double negative_slope) {
  Tensor out = unary_float(a, "leaky_relu", [negative_slope](auto x) {
    using T = decltype(x);
    return x > T(0) ? x : x * (T)negative_slope;
  });
  if (Record* r = record(OpId::LeakyRelu, a)) {
    r->scalars[0] = negative_slope;
    r->save(a);
    finish(r, out);
  }
  return out;
}
void LeakyRelu_backward(const Record& r, const Tensor& g, Tensor* gin) {
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
  TG_CHECK(!(min_val > max_val), ValueError, "hardtanh: min_val (", min_val,
           ") cannot be greater than max_val (", max_val, ")");
  Tensor out = unary_float(a, "hardtanh", [min_val, max_val](auto x) {
    using T = decltype(x);
    if (x != x) return x;
    T lo = (T)min_val, hi = (T)max_val;
    return x < lo ? lo : (x > hi ? hi : x);
  });
  if (Record* r = record(OpId::Hardtanh, a)) {
    r->scalars[0] = min_val;
    r->scalars[1] = max_val;
    r->save(a);
    finish(r, out);
  }
  return out;
}
void Hardtanh_backward(const Record& r, const Tensor& g, Tensor* gin) {
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
  if (Record* r = record(OpId::Prelu, a, weight)) {
    r->save(a);
    r->save(weight);
    finish(r, out);
  }
  return out;
}
void Prelu_backward(const Record& r, const Tensor& g, Tensor* gin) {
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
  if (Record* r = record(op, a)) {
    r->ints.push_back(d);
    r->save(out.detach());  // detached: no cycle through the output
    finish(r, out);
  }
  return out;
}

template <bool Log>
void softmax_backward(const Record& r, const Tensor& g, Tensor* gin) {
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
  return softmax_forward<false>(a, dim, "softmax", OpId::Softmax);
}
void Softmax_backward(const Record& r, const Tensor& g, Tensor* gin) {
  softmax_backward<false>(r, g, gin);
}

// ================================================================ log_softmax
// y = x - max - log(sum(exp(x - max)))     (over `dim`)
// dx = g - exp(y) * sum(g)
Tensor log_softmax(const Tensor& a, int64_t dim) {
  return softmax_forward<true>(a, dim, "log_softmax", OpId::LogSoftmax);
}
void LogSoftmax_backward(const Record& r, const Tensor& g, Tensor* gin) {
  softmax_backward<true>(r, g, gin);
}

}  // namespace tg
