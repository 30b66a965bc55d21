// Losses, each one fused record: cross_entropy, nll_loss,
// binary_cross_entropy_with_logits, mse_loss. Each op: its math, its forward,
// its backward, side by side.
//
// Class-index losses view the input as [N, C, inner] around the class dim
// (dim 1; dim 0 for a 1-D input of C scores with a 0-d target), the target as
// [N, inner]: (N, C) with target (N), (C) with target (), and
// (N, C, d1, ...) with target (N, d1, ...), as PyTorch.
#include <cmath>
#include <limits>

#include "op_common.h"

namespace tg {

namespace {


// ---------------------------------------------------------------- class targets
struct ClassLayout {
  DimSplit sp;         // input as [outer = N, n = C, inner]
  int64_t count = 0;   // targets that are not ignore_index
};

// Validates (input, target) for a class-index loss and the target values.
ClassLayout check_class_target(const Tensor& input, const Tensor& target, int64_t ignore_index,
                               const char* op) {
  check_defined(input, op, "input");
  check_defined(target, op, "target");
  TG_CHECK(is_floating(input.dtype()), TypeError, op, ": input must be float32 or float64, got ",
           input.describe());
  TG_CHECK(target.dtype() == DType::Int64, TypeError, op, ": target must be an int64 tensor of "
           "class indices, got ", target.describe());
  TG_CHECK(input.ndim() >= 1, ValueError, op, ": input must have at least 1 dimension (C) or "
           "2 (N, C), got ", input.describe());
  Shape expected;
  for (int i = 0; i < input.ndim(); i++)
    if (i != (input.ndim() == 1 ? 0 : 1)) expected.push_back(input.shape()[i]);
  TG_CHECK(target.shape() == expected, ValueError, op, ": expected target of shape ",
           to_string(expected), " for input ", input.describe(), ", got target ",
           target.describe(), " (input batch size and target batch size must match)");
  ClassLayout l{DimSplit(input.shape(), input.ndim() == 1 ? 0 : 1)};
  int64_t C = l.sp.n;
  Tensor t = target.is_contiguous() ? target : contiguous_copy(target);
  const int64_t* tp = t.data<int64_t>();
  int64_t m = t.numel();
  for (int64_t k = 0; k < m; k++) {
    int64_t v = tp[k];
    if (v == ignore_index) continue;
    TG_CHECK(v >= 0 && v < C, IndexError, op, ": target ", v, " is out of bounds for ", C,
             " classes (input ", input.describe(), ")");
    l.count++;
  }
  return l;
}

// The weight of position k's loss in the result: g[k] (none), g (sum), or
// g / count (mean).
template <class T>
struct LossWeight {
  const T* g = nullptr;  // per position (reduction none), else nullptr
  T scalar = 0;
  T operator()(int64_t k) const { return g ? g[k] : scalar; }
};

template <class T>
LossWeight<T> loss_weight(const Tensor& gc, Reduction red, int64_t count) {
  LossWeight<T> w;
  if (red == Reduction::None) {
    w.g = gc.data<T>();
  } else {
    T gv = *gc.data<T>();
    w.scalar = red == Reduction::Mean ? (T)((double)gv / (double)count) : gv;
  }
  return w;
}

// Finishes a loss from per-position values: the tensor itself (none), or its
// sum / mean as a 0-d tensor. `total` is the double-precision sum.
Tensor reduce_loss(Tensor& per, double total, Reduction red, int64_t count, DType dt) {
  if (red == Reduction::None) return per;
  double v = red == Reduction::Sum ? total : total / (double)count;  // 0 / 0 = NaN, as PyTorch
  return Tensor::scalar(v, dt);
}

}  // namespace

// Rows of at most this many classes take cross_entropy's block path.
constexpr int64_t kFewClasses = 16;

// cross_entropy's forward over rows of few classes (the NER tagger's 5): the
// rows' maxima and shifted logits, one vectorised exp over all of them, each
// row's sum in double, then log1p of all of them in one run (float32's is
// vectorised, Note [Vectorised log]), instead of a partly filled vector per
// row and a libm log per row, around which the loop also spilled its running
// sum (512 x 5, float32, C++ no-grad forward: 20.7 -> 11-12 us). Returns the
// sum of the losses.
template <class T>
double cross_entropy_few_classes(const T* __restrict x, const int64_t* __restrict t, int64_t rows,
                                 int64_t C, int64_t ignore_index, T* __restrict m,
                                 T* __restrict ls, T* __restrict e, int64_t* __restrict at_max,
                                 T* __restrict per) {
  for (int64_t o = 0; o < rows; o++) {
    const T* row = x + o * C;
    // max_run's answer, inline: at a few classes the call cost more than the row.
    T mx = row[0];
    int64_t at = 0;
    bool nan = mx != mx;
    for (int64_t c = 1; c < C; c++) {
      nan |= row[c] != row[c];
      at = row[c] > mx ? c : at;
      mx = row[c] > mx ? row[c] : mx;
    }
    if (nan) mx = std::numeric_limits<T>::quiet_NaN();
    m[o] = mx;
    at_max[o] = o * C + at;
    for (int64_t c = 0; c < C; c++) e[o * C + c] = row[c] - mx;
  }
  exp_inplace(e, rows * C);
  // log(sum) is taken as log1p(sum - 1): the max's term, exactly 1, is left
  // out, so that a row whose other terms are tiny keeps them, where the log of
  // the rounded float sum would give 0. (Not by a -inf before the exp: its
  // underflow through subnormals cost more than the whole pass.)
  for (int64_t o = 0; o < rows; o++) e[at_max[o]] = T(0);
  for (int64_t o = 0; o < rows; o++) {
    double r = 0;
    for (int64_t c = 0; c < C; c++) r += (double)e[o * C + c];
    ls[o] = (T)r;  // sum - 1, until the log1p below
  }
  log1p_run(ls, ls, rows);
  double sum = 0;
  for (int64_t o = 0; o < rows; o++) {
    if (t[o] == ignore_index) {
      m[o] = ls[o] = 0;
      if (per) per[o] = 0;
      continue;
    }
    T loss = (T)((double)(m[o] - x[o * C + t[o]]) + (double)ls[o]);
    if (per) per[o] = loss;
    sum += (double)loss;
  }
  return sum;
}

// ================================================================ cross_entropy
// loss[n] = logsumexp(x[n, :]) - x[n, t[n]]   (0 where t[n] == ignore_index)
// 'mean' divides by the number of non-ignored targets.
// dx[n, c] = (softmax(x[n])[c] - [c == t[n]]) * w[n]
//   w[n] = g[n] (none), g (sum), g / count (mean); 0 for ignored targets.
// Saves the logits and, per row, the max m and log(sum(exp(x - m))), kept
// apart so that float32 stays accurate for huge logits: softmax is recomputed
// in backward as exp((x - m) - log(sum)), as PyTorch's log_softmax does.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction,
                     int64_t ignore_index) {
  TG_TRACE(cross_entropy, logits, target, reduction, ignore_index);
  const char* op = "cross_entropy";
  ClassLayout l = check_class_target(logits, target, ignore_index, op);
  const DimSplit& sp = l.sp;
  DType dt = logits.dtype();
  Tensor x = dense_as(logits, dt);
  Tensor t = target.is_contiguous() ? target : contiguous_copy(target);
  Tensor rmax = Tensor::empty(target.shape(), dt), rlog = Tensor::empty(target.shape(), dt);
  Tensor per = Tensor::empty(reduction == Reduction::None ? target.shape() : Shape{}, dt);
  double total = 0;
  dispatch_float(dt, op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const int64_t* tp = t.data<int64_t>();
    T* mp = rmax.data<T>();
    T* lp = rlog.data<T>();
    T* pp = reduction == Reduction::None ? per.data<T>() : nullptr;
    int64_t C = sp.n, inner = sp.inner;
    if (inner == 1 && C <= kFewClasses && sp.outer > 1) {
      Tensor shifted = Tensor::empty({sp.outer * C}, dt);
      Tensor at_max = Tensor::empty({sp.outer}, DType::Int64);
      total = cross_entropy_few_classes(xp, tp, sp.outer, C, ignore_index, mp, lp,
                                        shifted.data<T>(), at_max.data<int64_t>(), pp);
      return;
    }
    double sum = 0;  // in a register, not through the captured `total`
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t k = o * inner + i;
        if (tp[k] == ignore_index) {
          mp[k] = lp[k] = 0;
          if (pp) pp[k] = 0;
          continue;
        }
        const T* row = xp + o * C * inner + i;  // row[c * inner]
        T mx;
        double s = 0;
        if (inner == 1) {
          mx = max_run(row, C);
          s = exp_shifted_sum(row, C, mx, (T*)nullptr);
        } else {
          mx = -std::numeric_limits<T>::infinity();
          for (int64_t c = 0; c < C; c++) {
            T v = row[c * inner];
            if (mx != mx) break;
            if (v > mx || v != v) mx = v;
          }
          for (int64_t c = 0; c < C; c++) s += (double)std::exp(row[c * inner] - mx);
        }
        double ls = std::log(s);
        mp[k] = mx;
        lp[k] = (T)ls;
        T loss = (T)((double)(mx - row[tp[k] * inner]) + ls);
        if (pp) pp[k] = loss;
        sum += (double)loss;
      }
    total = sum;
  });
  Tensor out = reduce_loss(per, total, reduction, l.count, dt);
  if (auto r = record(OpId::CrossEntropy, logits, target)) {
    r->ints.push_back((int64_t)reduction);
    r->ints.push_back(ignore_index);
    r->scalars[0] = (double)l.count;
    r->save(logits);
    r->save(target);
    r->save(rmax);
    r->save(rlog);
    finish(r, out);
  }
  return out;
}
void CrossEntropy_backward(const Record& r, Tensor& g, Tensor* gin) {
  if (!r.needs_input_grad(0)) return;
  Reduction red = (Reduction)r.ints[0];
  int64_t ignore_index = r.ints[1];
  int64_t count = (int64_t)r.scalars[0];
  const Tensor &logits = r.saved_tensor(0), &target = r.saved_tensor(1);
  DType dt = g.dtype();
  Tensor x = dense_as(logits, dt), gc = dense_as(g, dt);
  Tensor rmax = dense_as(r.saved_tensor(2), dt), rlog = dense_as(r.saved_tensor(3), dt);
  Tensor t = target.is_contiguous() ? target : contiguous_copy(target);
  DimSplit sp(logits.shape(), logits.ndim() == 1 ? 0 : 1);
  Tensor gx = Tensor::empty(logits.shape(), dt);
  dispatch_float(dt, "cross_entropy backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* mp = rmax.data<T>();
    const T* lp = rlog.data<T>();
    const int64_t* tp = t.data<int64_t>();
    T* op = gx.data<T>();
    LossWeight<T> w = loss_weight<T>(gc, red, count);
    int64_t C = sp.n, inner = sp.inner;
    if (inner == 1) {
      // softmax = exp((x - m) - log(sum)) for every row at once (one vectorised
      // exp over the block), then the weights and the one-hot term per row.
      for (int64_t o = 0; o < sp.outer; o++)
        for (int64_t c = 0; c < C; c++) op[o * C + c] = (xp[o * C + c] - mp[o]) - lp[o];
      exp_inplace(op, sp.outer * C);
      for (int64_t o = 0; o < sp.outer; o++) {
        T* grow = op + o * C;
        if (tp[o] == ignore_index) {
          for (int64_t c = 0; c < C; c++) grow[c] = T(0);
          continue;
        }
        T wk = w(o);
        for (int64_t c = 0; c < C; c++) grow[c] *= wk;
        grow[tp[o]] -= wk;
      }
      return;
    }
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t k = o * inner + i;
        const T* row = xp + o * C * inner + i;
        T* grow = op + o * C * inner + i;
        if (tp[k] == ignore_index) {
          for (int64_t c = 0; c < C; c++) grow[c * inner] = T(0);
          continue;
        }
        T wk = w(k), mk = mp[k], lk = lp[k];
        for (int64_t c = 0; c < C; c++)
          grow[c * inner] = std::exp((row[c * inner] - mk) - lk) * wk;
        grow[tp[k] * inner] -= wk;
      }
  });
  gin[0] = gx;
}

// ================================================================ nll_loss
// loss[n] = -x[n, t[n]]        (0 where t[n] == ignore_index)
// dx[n, c] = -w[n] at c == t[n], else 0   (w as for cross_entropy)
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction,
                int64_t ignore_index) {
  TG_TRACE(nll_loss, log_probs, target, reduction, ignore_index);
  const char* op = "nll_loss";
  ClassLayout l = check_class_target(log_probs, target, ignore_index, op);
  const DimSplit& sp = l.sp;
  DType dt = log_probs.dtype();
  Tensor x = dense_as(log_probs, dt);
  Tensor t = target.is_contiguous() ? target : contiguous_copy(target);
  Tensor per = Tensor::empty(reduction == Reduction::None ? target.shape() : Shape{}, dt);
  double total = 0;
  dispatch_float(dt, op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const int64_t* tp = t.data<int64_t>();
    T* pp = reduction == Reduction::None ? per.data<T>() : nullptr;
    int64_t C = sp.n, inner = sp.inner;
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t k = o * inner + i;
        T loss = tp[k] == ignore_index ? T(0) : -xp[(o * C + tp[k]) * inner + i];
        if (pp) pp[k] = loss;
        total += (double)loss;
      }
  });
  Tensor out = reduce_loss(per, total, reduction, l.count, dt);
  if (auto r = record(OpId::NllLoss, log_probs, target)) {
    r->ints.push_back((int64_t)reduction);
    r->ints.push_back(ignore_index);
    r->scalars[0] = (double)l.count;
    r->save(target);
    finish(r, out);
  }
  return out;
}
void NllLoss_backward(const Record& r, Tensor& g, Tensor* gin) {
  if (!r.needs_input_grad(0)) return;
  Reduction red = (Reduction)r.ints[0];
  int64_t ignore_index = r.ints[1];
  int64_t count = (int64_t)r.scalars[0];
  const Shape& in = r.inputs[0].shape;
  const Tensor& target = r.saved_tensor(0);
  DType dt = g.dtype();
  Tensor gc = dense_as(g, dt);
  Tensor t = target.is_contiguous() ? target : contiguous_copy(target);
  DimSplit sp(in, in.ndim == 1 ? 0 : 1);
  Tensor gx = Tensor::zeros(in, dt);
  dispatch_float(dt, "nll_loss backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t* tp = t.data<int64_t>();
    T* op = gx.data<T>();
    LossWeight<T> w = loss_weight<T>(gc, red, count);
    int64_t C = sp.n, inner = sp.inner;
    for (int64_t o = 0; o < sp.outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t k = o * inner + i;
        if (tp[k] != ignore_index) op[(o * C + tp[k]) * inner + i] = -w(k);
      }
  });
  gin[0] = gx;
}

// ================================================================ binary_cross_entropy_with_logits
// loss = max(x, 0) - x * y + log1p(exp(-|x|))     (stable for any x, infinite ones included)
// dx = (sigmoid(x) - y) * w,  dy = -x * w          (w = g, or g / numel for mean)
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction) {
  TG_TRACE(binary_cross_entropy_with_logits, logits, target, reduction);
  const char* op = "binary_cross_entropy_with_logits";
  check_defined(logits, op, "input");
  check_defined(target, op, "target");
  TG_CHECK(logits.shape() == target.shape(), ValueError, op, ": target size ",
           target.describe(), " must be the same as input size ", logits.describe());
  TG_CHECK(target.dtype() != DType::Bool, TypeError, op, ": target must be a float tensor, got ",
           target.describe());
  DType dt = float_result(promote(logits.dtype(), target.dtype()));
  Tensor x = dense_as(logits, dt), y = dense_as(target, dt);
  int64_t n = x.numel();
  Tensor per = Tensor::empty(reduction == Reduction::None ? logits.shape() : Shape{}, dt);
  double total = 0;
  dispatch_float(dt, op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    T* pp = reduction == Reduction::None ? per.data<T>() : nullptr;
    for (int64_t i = 0; i < n; i++) {
      T xv = xp[i];
      // x (1 - y) + log1p(e^-x) for x >= 0, -x y + log1p(e^x) below: the same
      // value, but a zero weight never meets an infinite logit (0 * inf = NaN).
      T yv = yp[i];
      T linear = xv >= T(0) ? (yv == T(1) ? T(0) : xv * (T(1) - yv)) : (yv == T(0) ? T(0) : -xv * yv);
      T loss = linear + std::log1p(std::exp(-std::abs(xv)));
      if (pp) pp[i] = loss;
      else total += (double)loss;
    }
  });
  Tensor out = reduce_loss(per, total, reduction, n, dt);
  if (auto r = record(OpId::BceWithLogits, logits, target)) {
    r->ints.push_back((int64_t)reduction);
    r->save(logits);
    r->save(target);
    finish(r, out);
  }
  return out;
}
void BceWithLogits_backward(const Record& r, Tensor& g, Tensor* gin) {
  Reduction red = (Reduction)r.ints[0];
  const Tensor &logits = r.saved_tensor(0), &target = r.saved_tensor(1);
  DType dt = g.dtype();
  Tensor x = dense_as(logits, dt), y = dense_as(target, dt), gc = dense_as(g, dt);
  int64_t n = x.numel();
  bool need_x = r.needs_input_grad(0), need_y = r.needs_input_grad(1);
  Tensor gx = need_x ? Tensor::empty(logits.shape(), dt) : Tensor();
  Tensor gy = need_y ? Tensor::empty(target.shape(), dt) : Tensor();
  dispatch_float(dt, "binary_cross_entropy_with_logits backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    LossWeight<T> w = loss_weight<T>(gc, red, n);
    T* gxp = need_x ? gx.data<T>() : nullptr;
    T* gyp = need_y ? gy.data<T>() : nullptr;
    for (int64_t i = 0; i < n; i++) {
      T xv = xp[i], wi = w(i);
      if (gxp) {
        T sig;
        if (xv >= T(0)) {
          sig = T(1) / (T(1) + std::exp(-xv));
        } else {
          T e = std::exp(xv);
          sig = e / (T(1) + e);
        }
        gxp[i] = (sig - yp[i]) * wi;
      }
      if (gyp) gyp[i] = -xv * wi;
    }
  });
  if (need_x) gin[0] = gx;
  if (need_y) gin[1] = gy;
}

// ================================================================ mse_loss
// loss = (x - y)^2             (x and y broadcast together)
// dx = 2 (x - y) * w,  dy = -dx  (w = g, or g / numel for mean)
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  TG_TRACE(mse_loss, input, target, reduction);
  const char* op = "mse_loss";
  check_defined(input, op, "input");
  check_defined(target, op, "target");
  Shape shape = broadcast_shapes(input.shape(), target.shape(), op);
  DType dt = promote(input.dtype(), target.dtype());
  TG_CHECK(is_floating(dt), TypeError, op, ": expected float inputs, got ", input.describe(),
           " and ", target.describe());
  Tensor x = cast_nograd(input, dt), y = cast_nograd(target, dt);
  int64_t n = numel(shape);
  Tensor out;
  if (reduction == Reduction::None) {
    out = Tensor::empty(shape, dt);
    dispatch_float(dt, op, [&](auto tag) {
      using T = decltype(tag);
      map_binary<T, T, T>(x, y, out, [](T u, T v) { return (u - v) * (u - v); });
    });
  } else {
    double total = 0;
    dispatch_float(dt, op, [&](auto tag) {
      using T = decltype(tag);
      Strides st[2] = {broadcast_strides(x, shape), broadcast_strides(y, shape)};
      StridedLoop loop(shape, 2, st);
      char* base[2] = {(char*)x.data<T>(), (char*)y.data<T>()};
      int64_t es[2] = {sizeof(T), sizeof(T)};
      loop.run(base, es, [&](char** p, const int64_t* s, int64_t m) {
        const T* u = (const T*)p[0];
        const T* v = (const T*)p[1];
        double acc = 0;
        if (s[0] == 1 && s[1] == 1) {
          for (int64_t i = 0; i < m; i++) {
            double d = (double)(u[i] - v[i]);
            acc += d * d;
          }
        } else {
          for (int64_t i = 0; i < m; i++) {
            double d = (double)(u[i * s[0]] - v[i * s[1]]);
            acc += d * d;
          }
        }
        total += acc;
      });
    });
    Tensor none;
    out = reduce_loss(none, total, reduction, n, dt);
  }
  if (auto r = record(OpId::MseLoss, input, target)) {
    r->ints.push_back((int64_t)reduction);
    r->save(input);
    r->save(target);
    finish(r, out);
  }
  return out;
}
void MseLoss_backward(const Record& r, Tensor& g, Tensor* gin) {
  Reduction red = (Reduction)r.ints[0];
  const Tensor &input = r.saved_tensor(0), &target = r.saved_tensor(1);
  DType dt = g.dtype();
  Tensor x = cast_nograd(input, dt), y = cast_nograd(target, dt);
  Shape shape = broadcast_shapes(x.shape(), y.shape(), "mse_loss backward");
  Tensor gx = Tensor::empty(shape, dt);
  dispatch_float(dt, "mse_loss backward", [&](auto tag) {
    using T = decltype(tag);
    if (red == Reduction::None) {
      map_ternary<T, T, T, T>(x, y, g, gx, [](T u, T v, T gv) { return T(2) * (u - v) * gv; });
    } else {
      T gv = *dense_as(g, dt).data<T>();
      T w = red == Reduction::Mean ? (T)(2.0 * (double)gv / (double)numel(shape)) : T(2) * gv;
      map_binary<T, T, T>(x, y, gx, [w](T u, T v) { return (u - v) * w; });
    }
  });
  if (r.needs_input_grad(0)) gin[0] = gx;
  if (r.needs_input_grad(1)) gin[1] = neg(gx);
}

}  // namespace tg
