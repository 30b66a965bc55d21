// Elementwise ops: arithmetic with broadcasting, scalar forms, unary math.
// Each op: its math, its forward, its backward, side by side.
#include <cmath>
#include <limits>

#include "op_common.h"

namespace tg {

// ---------------------------------------------------------------- helpers
Tensor cast_nograd(const Tensor& t, DType dt) {
  if (t.dtype() == dt) return t;
  Tensor out = Tensor::empty(t.shape(), dt);
  dispatch_all(t.dtype(), [&](auto from) {
    using A = decltype(from);
    dispatch_all(dt, [&](auto to_tag) {
      using O = decltype(to_tag);
      map_unary<A, O>(t, out, [](A v) { return (O)v; });
    });
  });
  return out;
}

Tensor strided_alias(const Tensor& t, const Shape& shape, const Strides& strides) {
  Ref<TensorImpl> v = Ref<TensorImpl>::adopt(new TensorImpl);
  v->storage = t.impl()->storage;
  v->offset = t.impl()->offset;
  v->shape = shape;
  v->strides = strides;
  v->dtype = t.dtype();
  return Tensor(std::move(v));
}

DType result_type(const Tensor& a, const Tensor& b) {
  bool za = a.ndim() == 0, zb = b.ndim() == 0;
  if (za == zb) return promote(a.dtype(), b.dtype());
  auto category = [](DType d) { return d == DType::Bool ? 0 : d == DType::Int64 ? 1 : 2; };
  const Tensor& dimensioned = za ? b : a;
  const Tensor& zero_dim = za ? a : b;
  return category(zero_dim.dtype()) > category(dimensioned.dtype()) ? zero_dim.dtype()
                                                                    : dimensioned.dtype();
}

void throw_undefined(const char* op, const char* what) {
  throw ValueError(str(op, ": ", what, " is undefined (None)"));
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  TG_CHECK(a.dtype() == b.dtype(), TypeError, op, ": expected both operands to have the same "
           "dtype, got ", a.describe(), " and ", b.describe());
}

// Note [In-place ops with autograd]
// self.op_(other) in grad mode, when self or other requires grad, is recorded
// as its out-of-place op on a recorded copy of self: result = op(clone(self),
// other) (cast back to self's dtype), whose values are then written into
// self's buffer, and self takes over result's tape record (Tape::move_history)
// while its old value stays reachable through the clone. So the gradient is
// the out-of-place op's, the write is visible through every handle of self,
// and a backward rule that saved the old value (mul_ saves it for other's
// gradient) reads the clone, which nothing writes. The clone costs a copy;
// without autograd (optimizer updates, no_grad) the op writes in place
// directly. As in PyTorch, a leaf that requires grad is refused, and a record
// that saved self itself (x * x, then x.mul_(2)) sees self's version counter
// move and raises at backward. PyTorch also rebases the history of views;
// here a self whose memory another tensor shares (a view, the tensor it
// views, a detached alias) is refused instead, since that tensor's recorded
// graph would not see the write.
bool inplace_records(const Tensor& t, const char* op, std::initializer_list<const Tensor*> others) {
  check_defined(t, op, "tensor");
  if (!grad_enabled()) return false;
  if (t.requires_grad() && t.is_leaf())
    throw RuntimeError(str(op, ": a leaf tensor that requires grad (", t.describe(),
                           ") is being used in an in-place operation; wrap it in "
                           "tapegrad.no_grad() (as optimizers do)"));
  bool any = t.requires_grad();
  for (const Tensor* o : others) any |= o->defined() && o->requires_grad();
  if (!any) return false;
  TG_CHECK(is_floating(t.dtype()), RuntimeError, op, ": the result requires grad but the "
           "tensor written in place is ", t.describe(), "; only float tensors can hold it");
  TG_CHECK(t.impl()->storage->refcount_.load(std::memory_order_acquire) == 1, RuntimeError, op,
           ": ", t.describe(), " shares its memory with another tensor (a view of it, the tensor "
           "it is a view of, or a detached alias), so an in-place write would change values that "
           "tensor's recorded graph does not know about; use the out-of-place op, or clone() "
           "first");
  return true;
}

void inplace_recorded(Tensor& self, const char* op, bool reads_self,
                      const std::function<Tensor(const Tensor&)>& f) {
  Tensor src = reads_self ? clone(self) : Tensor();
  Tensor result = f(src);
  if (result.dtype() != self.dtype()) result = to(result, self.dtype());
  TG_CHECK(result.shape() == self.shape(), ValueError, op, ": the result's shape ",
           to_string(result.shape()), " does not match the shape of the tensor written in place, ",
           self.describe());
  {
    NoGradGuard no_grad;
    copy_(self, result);
  }
  Tape::current().move_history(self.impl(), result.impl());
}

// ================================================================ add
// y = a + b                    da = g, db = g ("+" distributes)
Tensor add(const Tensor& a, const Tensor& b) {
  TG_TRACE(add, a, b);
  Tensor out = binary_numeric(a, b, "add", [](auto x, auto y) { return x + y; });
  if (auto r = record(OpId::Add, a, b)) finish(r, out);
  return out;
}
void Add_backward(const Record& r, Tensor& g, Tensor* gin) {
  gin[0] = g;
  gin[1] = std::move(g);
}

// ================================================================ sub
// y = a - b                    da = g, db = -g
Tensor sub(const Tensor& a, const Tensor& b) {
  TG_TRACE(sub, a, b);
  Tensor out = binary_numeric(a, b, "sub", [](auto x, auto y) { return x - y; });
  if (auto r = record(OpId::Sub, a, b)) finish(r, out);
  return out;
}
void Sub_backward(const Record& r, Tensor& g, Tensor* gin) {
  if (r.needs_input_grad(1)) gin[1] = neg(g);
  gin[0] = std::move(g);
}

// ================================================================ mul
// y = a * b                    da = g * b, db = g * a ("*" switches)
Tensor mul(const Tensor& a, const Tensor& b) {
  TG_TRACE(mul, a, b);
  Tensor out = binary_numeric(a, b, "mul", [](auto x, auto y) { return x * y; });
  if (auto r = record(OpId::Mul, a, b)) {
    if (r->needs_input_grad(0)) r->save(b);
    if (r->needs_input_grad(1)) r->save(a);
    finish(r, out);
  }
  return out;
}
void Mul_backward(const Record& r, Tensor& g, Tensor* gin) {
  size_t k = 0;
  if (r.needs_input_grad(0)) gin[0] = mul(g, r.saved_tensor(k++));
  if (r.needs_input_grad(1)) gin[1] = mul(g, r.saved_tensor(k));
}

// ================================================================ div
// y = a / b                    da = g / b, db = -g * (a / b) / b
Tensor div(const Tensor& a, const Tensor& b) {
  TG_TRACE(div, a, b);
  Tensor out = binary_numeric(a, b, "div", [](auto x, auto y) { return x / y; }, true);
  if (auto r = record(OpId::Div, a, b)) {
    r->save(a);
    r->save(b);
    finish(r, out);
  }
  return out;
}
void Div_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Tensor &a = r.saved_tensor(0), &b = r.saved_tensor(1);
  if (r.needs_input_grad(0)) gin[0] = grad_map(g, b, [](auto gv, auto bv) { return gv / bv; });
  if (r.needs_input_grad(1))
    // (a / b) / b, not a / b^2: b^2 underflows for tiny b (as PyTorch's formula)
    gin[1] = grad_map(g, a, b, [](auto gv, auto av, auto bv) { return -gv * ((av / bv) / bv); });
}

// ================================================================ pow
// y = a ^ b                    da = g * b * a^(b-1), db = g * y * log(a)
Tensor pow(const Tensor& a, const Tensor& b) {
  TG_TRACE(pow, a, b);
  Tensor out = binary_numeric(a, b, "pow", [](auto x, auto y) { return std::pow(x, y); }, true);
  if (auto r = record(OpId::Pow, a, b)) {
    r->save(a);
    r->save(b);
    r->save(out);
    finish(r, out);
  }
  return out;
}
void Pow_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Tensor &a = r.saved_tensor(0), &b = r.saved_tensor(1), &y = r.saved_tensor(2);
  if (r.needs_input_grad(0))
    gin[0] = grad_map(g, a, b, [](auto gv, auto av, auto bv) {
      // grad * (b a^(b-1)), grouped as PyTorch does: (g b) underflows to 0 for a
      // subnormal b, and 0 * inf would give NaN where the product is +-inf.
      return bv == 0 ? 0 * gv : gv * (bv * std::pow(av, bv - 1));
    });
  if (r.needs_input_grad(1))
    // Where a == 0 and b >= 0 the derivative is taken as 0, as PyTorch does.
    gin[1] = grad_map(g, a, y, [](auto gv, auto av, auto yv) {
      return av == 0 ? 0 * gv : gv * (yv * std::log(av));
    });
}

// ================================================================ maximum / minimum
// y = max(a, b)                the gradient is routed to the larger input;
//                              ties split it in half (as PyTorch)
template <bool IsMax>
static Tensor extremum(const Tensor& a, const Tensor& b, const char* name, OpId op) {
  Tensor out = binary_numeric(a, b, name, [](auto x, auto y) {
    if (x != x || y != y) return x != x ? x : y;  // NaN propagates
    return IsMax ? (x > y ? x : y) : (x < y ? x : y);
  });
  if (auto r = record(op, a, b)) {
    r->save(a);
    r->save(b);
    finish(r, out);
  }
  return out;
}
template <bool IsMax>
static void extremum_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Tensor &a = r.saved_tensor(0), &b = r.saved_tensor(1);
  auto share = [](auto gv, auto mine, auto other) {
    bool wins = IsMax ? mine > other : mine < other;
    return wins ? gv : (mine == other ? gv / 2 : 0 * gv);
  };
  if (r.needs_input_grad(0)) gin[0] = grad_map(g, a, b, share);
  if (r.needs_input_grad(1)) gin[1] = grad_map(g, b, a, share);
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  TG_TRACE(maximum, a, b);
  return extremum<true>(a, b, "maximum", OpId::Maximum);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  TG_TRACE(minimum, a, b);
  return extremum<false>(a, b, "minimum", OpId::Minimum);
}
void Maximum_backward(const Record& r, Tensor& g, Tensor* gin) {
  extremum_backward<true>(r, g, gin);
}
void Minimum_backward(const Record& r, Tensor& g, Tensor* gin) {
  extremum_backward<false>(r, g, gin);
}

// ================================================================ where
// y = cond ? a : b             da = cond ? g : 0, db = cond ? 0 : g
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  TG_TRACE(where, cond, a, b);
  check_defined(cond, "where", "condition");
  check_defined(a, "where", "first input");
  check_defined(b, "where", "second input");
  TG_CHECK(cond.dtype() == DType::Bool, TypeError, "where: condition must be a bool tensor, got ",
           cond.describe());
  DType dt = result_type(a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(),
                                 "where");
  Tensor x = cast_nograd(a, dt), y = cast_nograd(b, dt);
  Tensor out = Tensor::empty(shape, dt);
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    map_ternary<bool, T, T, T>(cond, x, y, out, [](bool c, T u, T v) { return c ? u : v; });
  });
  if (auto r = record(OpId::Where, cond, a, b)) {
    r->save(cond);
    finish(r, out);
  }
  return out;
}
void Where_backward(const Record& r, Tensor& g, Tensor* gin) {
  const Tensor& cond = r.saved_tensor(0);
  auto pick = [&](bool when) {
    Tensor out = Tensor::empty(broadcast_shapes(g.shape(), cond.shape(), "where"), g.dtype());
    dispatch_float(g.dtype(), "where", [&](auto tag) {
      using T = decltype(tag);
      map_binary<T, bool, T>(g, cond, out, [&](T gv, bool c) { return c == when ? gv : T(0); });
    });
    return out;
  };
  if (r.needs_input_grad(1)) gin[1] = pick(true);
  if (r.needs_input_grad(2)) gin[2] = pick(false);
}

// ================================================================ scalar forms
// Note [Scalar operands]
// A Python scalar never promotes a float tensor (float32 * 2.5 stays float32);
// an integer tensor meets a non-integral scalar in float32, as PyTorch does.
static DType scalar_result(DType dt, double s) {
  if (is_floating(dt)) return dt;
  return s == std::floor(s) && std::isfinite(s) ? DType::Int64 : DType::Float32;
}

template <class F>
static Tensor scalar_map(const Tensor& a, double s, const char* op, bool float_only, F f) {
  check_defined(a, op, "input");
  DType dt = float_only ? float_result(a.dtype()) : scalar_result(a.dtype(), s);
  Tensor hx;
  const Tensor& x = cast_ref(a, dt, hx);
  Tensor out = Tensor::empty(x.shape(), dt);
  dispatch_numeric(dt, op, [&](auto tag) {
    using T = decltype(tag);
    T sv = (T)s;
    map_unary<T, T>(x, out, [&](T v) { return (T)f(v, sv); });
  });
  return out;
}

// y = a + s                    da = g
Tensor add(const Tensor& a, double s) {
  TG_TRACE(add, a, s);
  Tensor out = scalar_map(a, s, "add", false, [](auto v, auto c) { return v + c; });
  if (auto r = record(OpId::AddScalar, a)) {
    r->scalars[0] = s;
    finish(r, out);
  }
  return out;
}
void AddScalar_backward(const Record& r, Tensor& g, Tensor* gin) { gin[0] = std::move(g); }
Tensor sub(const Tensor& a, double s) { TG_TRACE(sub, a, s); return add(a, -s); }
Tensor rsub(double s, const Tensor& a) {
  TG_TRACE(rsub, s, a);
  check_defined(a, "sub", "input");
  TG_CHECK(a.dtype() != DType::Bool, TypeError, "sub: subtraction with a bool tensor (",
           a.describe(), ") is not supported; use logical_not or convert with .long()/.float()");
  return add(neg(a), s);
}

// y = a * s                    da = g * s
Tensor mul(const Tensor& a, double s) {
  TG_TRACE(mul, a, s);
  Tensor out = scalar_map(a, s, "mul", false, [](auto v, auto c) { return v * c; });
  if (auto r = record(OpId::MulScalar, a)) {
    r->scalars[0] = s;
    finish(r, out);
  }
  return out;
}
void MulScalar_backward(const Record& r, Tensor& g, Tensor* gin) {
  // A gradient nobody else can see is scaled in place (the same rounding as a
  // fresh product): a chain of scalings then allocates nothing. A plain loop,
  // not mul_(): sole_owner() already guarantees a contiguous buffer with no
  // history or views, so mul_'s strided walk and version bump are not needed.
  if (sole_owner(g) && is_floating(g.dtype())) {
    dispatch_float(g.dtype(), "mul", [&](auto tag) {
      using T = decltype(tag);
      T s = (T)r.scalars[0];
      T* p = g.data<T>();
      for (int64_t i = 0, n = g.numel(); i < n; i++) p[i] = p[i] * s;
    });
    gin[0] = std::move(g);
    return;
  }
  gin[0] = mul(g, r.scalars[0]);
}
Tensor div(const Tensor& a, double s) {
  TG_TRACE(div, a, s);
  if (!is_floating(a.dtype())) return div(a, Tensor::scalar(s, DType::Float32));
  return mul(a, 1.0 / s);
}

// y = s / a                    da = -g * s / a^2 = -g * y / a
Tensor rdiv(double s, const Tensor& a) {
  TG_TRACE(rdiv, s, a);
  Tensor out = scalar_map(a, s, "rdiv", true, [](auto v, auto c) { return c / v; });
  if (auto r = record(OpId::RDivScalar, a)) {
    r->scalars[0] = s;
    r->save(a);
    finish(r, out);
  }
  return out;
}
void RDivScalar_backward(const Record& r, Tensor& g, Tensor* gin) {
  double s = r.scalars[0];
  gin[0] = grad_map(g, r.saved_tensor(0), [s](auto gv, auto av) { return -gv * s / (av * av); });
}

// y = a ^ s                    da = g * s * a^(s-1)
Tensor pow(const Tensor& a, double s) {
  TG_TRACE(pow, a, s);
  // PyTorch's special exponents: x^0.5 is sqrt(x) (sqrt(-0) = -0, sqrt(-inf) =
  // NaN, where IEEE pow gives +0 and +inf), x^-0.5 is 1/sqrt(x), x^2 is x*x.
  Tensor out = scalar_map(a, s, "pow", true, [](auto v, auto c) {
    using T = decltype(v);
    if (c == 2) return v * v;
    if (c == 0.5) return (T)std::sqrt(v);
    if (c == -0.5) return T(1) / (T)std::sqrt(v);
    return (T)std::pow(v, c);
  });
  if (auto r = record(OpId::PowScalar, a)) {
    r->scalars[0] = s;
    r->save(a);
    finish(r, out);
  }
  return out;
}
void PowScalar_backward(const Record& r, Tensor& g, Tensor* gin) {
  double s = r.scalars[0];
  gin[0] = grad_map(g, r.saved_tensor(0), [s](auto gv, auto av) {
    using T = decltype(gv);
    if (s == 0) return T(0);
    if (s == 0.5) return gv / (T(2) * std::sqrt(av));  // as sqrt's: signed at -0.0
    return gv * (T)s * (T)std::pow(av, (T)(s - 1));
  });
}

// y = s ^ a                    da = g * y * log(s)
Tensor pow(double s, const Tensor& a) {
  TG_TRACE(pow, s, a);
  Tensor out = scalar_map(a, s, "pow", true, [](auto v, auto c) { return std::pow(c, v); });
  if (auto r = record(OpId::RPowScalar, a)) {
    r->scalars[0] = s;
    r->save(out);
    finish(r, out);
  }
  return out;
}
void RPowScalar_backward(const Record& r, Tensor& g, Tensor* gin) {
  double ls = std::log(r.scalars[0]);
  gin[0] = grad_map(g, r.saved_tensor(0), [ls](auto gv, auto yv) {
    using T = decltype(gv);
    return gv * yv * (T)ls;
  });
}

// ================================================================ unary
// y = -a                       da = -g
Tensor neg(const Tensor& a) {
  TG_TRACE(neg, a);
  check_defined(a, "neg", "input");
  TG_CHECK(a.dtype() != DType::Bool, TypeError, "neg: negation of a bool tensor is not "
           "supported; use logical_not");
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_numeric(a.dtype(), "neg", [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, T>(a, out, [](T v) { return (T)-v; });
  });
  if (auto r = record(OpId::Neg, a)) finish(r, out);
  return out;
}
void Neg_backward(const Record& r, Tensor& g, Tensor* gin) { gin[0] = neg(g); }

// Unary float ops that save their input (x) or output (y) for backward; the
// forward is an expression computing `out` from `a`.
#define TG_UNARY_OP_WITH(Name, fname, forward, saves_output, backward_expr)        \
  Tensor fname(const Tensor& a) {                                                  \
    TG_TRACE(fname, a);                                                            \
    check_defined(a, #fname, "input");                                             \
    Tensor out = forward;                                                          \
    if (auto r = record(OpId::Name, a)) {                                          \
      r->save(saves_output ? out : a);                                             \
      finish(r, out);                                                              \
    }                                                                              \
    return out;                                                                    \
  }                                                                                \
  void Name##_backward(const Record& r, Tensor& g, Tensor* gin) {                  \
    gin[0] = grad_map(g, r.saved_tensor(0), [](auto gv, auto v) {                  \
      using T = decltype(gv);                                                      \
      (void)sizeof(T);                                                             \
      return backward_expr;                                                        \
    });                                                                            \
  }
// Forward: an elementwise expression in x (libm and the like).
#define TG_UNARY_OP(Name, fname, forward_expr, saves_output, backward_expr)        \
  TG_UNARY_OP_WITH(Name, fname, unary_float(a, #fname, [](auto x) { return forward_expr; }), \
                   saves_output, backward_expr)
// Forward: a run kernel of kernels.h (float32 vectorised, float64 libm).
#define TG_UNARY_RUN_OP(Name, fname, run, saves_output, backward_expr)             \
  TG_UNARY_OP_WITH(Name, fname,                                                    \
                   run_unary(a, #fname, [](auto* x, auto* y, int64_t n) { run(x, y, n); }), \
                   saves_output, backward_expr)

// y = exp(x)                   dx = g * y        (Note [Vectorised exp])
TG_UNARY_RUN_OP(Exp, exp, exp_run, true, gv * v)
// y = log(x)                   dx = g / x        (Note [Vectorised log])
TG_UNARY_RUN_OP(Log, log, log_run, false, gv / v)
// y = sqrt(x)                  dx = g / (2 y)
TG_UNARY_OP(Sqrt, sqrt, std::sqrt(x), true, gv / (T(2) * v))
// y = |x|                      dx = g * sign(x) (0 at 0; NaN if g is NaN/inf, as PyTorch)
TG_UNARY_OP(Abs, abs_float, std::abs(x), false, v > 0 ? gv : (v < 0 ? -gv : gv * T(0)))
// y = sin(x)                   dx = g * cos(x)
TG_UNARY_OP(Sin, sin, std::sin(x), false, gv * std::cos(v))
// y = cos(x)                   dx = -g * sin(x)
TG_UNARY_OP(Cos, cos, std::cos(x), false, -gv * std::sin(v))
// y = log(1 + x)               dx = g / (1 + x)
TG_UNARY_OP(Log1p, log1p, std::log1p(x), false, gv / (T(1) + v))
// y = exp(x) - 1               dx = g * (y + 1)
TG_UNARY_OP(Expm1, expm1, std::expm1(x), true, gv * (v + T(1)))
// y = erf(x)                   dx = g * 2/sqrt(pi) * exp(-x^2)
TG_UNARY_OP(Erf, erf, std::erf(x), false, gv * T(1.1283791670955126) * std::exp(-v * v))
// y = x^2                      dx = 2 g x
TG_UNARY_OP(Square, square_float, x * x, false, T(2) * gv * v)

// abs and square keep integer dtypes (as PyTorch); integers never need grad.
Tensor abs(const Tensor& a) {
  TG_TRACE(abs, a);
  check_defined(a, "abs", "input");
  if (is_floating(a.dtype())) return abs_float(a);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_numeric(a.dtype(), "abs", [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, T>(a, out, [](T v) { return v < 0 ? (T)-v : v; });
  });
  return out;
}
Tensor square(const Tensor& a) {
  TG_TRACE(square, a);
  check_defined(a, "square", "input");
  if (is_floating(a.dtype())) return square_float(a);
  return mul(a, a);
}

// ================================================================ clamp
// y = min(max(x, lo), hi)      dx = g where lo <= x <= hi, else 0
Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
  TG_TRACE(clamp, a, lo, hi);
  check_defined(a, "clamp", "input");
  TG_CHECK(lo || hi, ValueError, "clamp: at least one of min and max must be given");
  auto integral = [](std::optional<double> v) { return !v || (std::isfinite(*v) && *v == std::floor(*v)); };
  if (!is_floating(a.dtype()) && !(integral(lo) && integral(hi)))
    return clamp(cast_nograd(a, DType::Float32), lo, hi);  // as PyTorch: float bounds promote
  double l = lo ? *lo : -std::numeric_limits<double>::infinity();
  double h = hi ? *hi : std::numeric_limits<double>::infinity();
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_numeric(a.dtype(), "clamp", [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, T>(a, out, [&](T v) {
      if (v != v) return v;
      // PyTorch: min(max(x, lo), hi), so hi wins when lo > hi
      double c = (double)v < l ? l : (double)v;
      return (T)(c > h ? h : c);
    });
  });
  if (auto r = record(OpId::Clamp, a)) {
    r->scalars[0] = l;
    r->scalars[1] = h;
    r->save(a);
    finish(r, out);
  }
  return out;
}
void Clamp_backward(const Record& r, Tensor& g, Tensor* gin) {
  double l = r.scalars[0], h = r.scalars[1];
  gin[0] = grad_map(g, r.saved_tensor(0), [l, h](auto gv, auto v) {
    using T = decltype(gv);
    return ((double)v >= l && (double)v <= h) ? gv : T(0);
  });
}

// ================================================================ cast
// y = (dtype) x                dx = (x.dtype) g (the engine casts back)
Tensor to(const Tensor& a, DType dt) {
  TG_TRACE(to, a, dt);
  check_defined(a, "to", "input");
  if (a.dtype() == dt) return a;
  Tensor out = cast_nograd(a, dt);
  if (is_floating(dt)) {
    if (auto r = record(OpId::Cast, a)) finish(r, out);
  }
  return out;
}
void Cast_backward(const Record& r, Tensor& g, Tensor* gin) { gin[0] = std::move(g); }

// ================================================================ no gradient
template <class F>
static Tensor compare_map(const Tensor& a, const Tensor& b, F f) {
  DType dt = promote(a.dtype(), b.dtype());  // compare in the wider type: no rounding
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "compare");
  Tensor x = cast_nograd(a, dt), y = cast_nograd(b, dt);
  Tensor out = Tensor::empty(shape, DType::Bool);
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    map_binary<T, T, bool>(x, y, out, [&](T u, T v) { return f(u, v); });
  });
  return out;
}

Tensor compare(const Tensor& a, const Tensor& b, CmpOp op) {
  TG_TRACE(compare, a, b, op);
  check_defined(a, "compare", "first input");
  check_defined(b, "compare", "second input");
  switch (op) {
    case CmpOp::Eq: return compare_map(a, b, [](auto u, auto v) { return u == v; });
    case CmpOp::Ne: return compare_map(a, b, [](auto u, auto v) { return u != v; });
    case CmpOp::Lt: return compare_map(a, b, [](auto u, auto v) { return u < v; });
    case CmpOp::Le: return compare_map(a, b, [](auto u, auto v) { return u <= v; });
    case CmpOp::Gt: return compare_map(a, b, [](auto u, auto v) { return u > v; });
    case CmpOp::Ge: return compare_map(a, b, [](auto u, auto v) { return u >= v; });
  }
  return Tensor();
}

Tensor compare(const Tensor& a, double s, CmpOp op) {
  TG_TRACE(compare, a, s, op);
  check_defined(a, "compare", "input");
  DType dt = is_floating(a.dtype()) ? a.dtype() : scalar_result(a.dtype(), s);
  if (dt == DType::Int64 || dt == DType::Float32) dt = is_floating(a.dtype()) ? a.dtype() : DType::Float64;
  return compare(a, Tensor::scalar(s, dt), op);
}

Tensor logical_not(const Tensor& a) {
  TG_TRACE(logical_not, a);
  check_defined(a, "logical_not", "input");
  Tensor out = Tensor::empty(a.shape(), DType::Bool);
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, bool>(a, out, [](T v) { return !(bool)v; });
  });
  return out;
}

Tensor isnan(const Tensor& a) {
  TG_TRACE(isnan, a);
  check_defined(a, "isnan", "input");
  Tensor out = Tensor::empty(a.shape(), DType::Bool);
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, bool>(a, out, [](T v) { return v != v; });
  });
  return out;
}

Tensor sign(const Tensor& a) {
  TG_TRACE(sign, a);
  check_defined(a, "sign", "input");
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_numeric(a.dtype(), "sign", [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, T>(a, out, [](T v) { return (T)((v > 0) - (v < 0)); });
  });
  return out;
}

// ================================================================ in place
// `value` in place of the recorded `old`: where(true, value, old) keeps old
// in the graph with a zero gradient, as PyTorch's fill_ and copy_ do.
static Tensor overwrite(const Tensor& old, const Tensor& value) {
  return where(Tensor::scalar(1.0, DType::Bool), value, old);
}

static void fill_as(Tensor& a, double value, const char* op) {
  if (inplace_records(a, op, {})) {
    return inplace_recorded(a, op, true, [&](const Tensor& old) {
      return overwrite(old, Tensor::scalar(value, a.dtype()));
    });
  }
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v = (T)value;
    Strides s[1] = {a.strides()};
    StridedLoop loop(a.shape(), 1, s);
    char* base[1] = {(char*)a.data<T>()};
    int64_t es[1] = {sizeof(T)};
    loop.run(base, es, [&](char** p, const int64_t* st, int64_t n) {
      T* o = (T*)p[0];
      for (int64_t i = 0; i < n; i++) o[i * st[0]] = v;
    });
  });
  a.bump_version();
}

void fill_(Tensor& a, double value) {
  TG_TRACE(fill_, a, value);
  fill_as(a, value, "fill_");
}

void zero_(Tensor& a) {
  TG_TRACE(zero_, a);
  fill_as(a, 0.0, "zero_");
}

void copy_(Tensor& dst, const Tensor& src) {
  TG_TRACE(copy_, dst, src);
  check_defined(src, "copy_", "source");
  Shape b = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  TG_CHECK(b == dst.shape(), ValueError, "copy_: source ", src.describe(),
           " cannot be broadcast to destination ", dst.describe());
  if (inplace_records(dst, "copy_", {&src})) {
    return inplace_recorded(dst, "copy_", dst.requires_grad(), [&](const Tensor& old) {
      Tensor v = expand(to(src, dst.dtype()), dst.shape().vec());
      return old.defined() ? overwrite(old, v) : v;
    });
  }
  Tensor s = cast_nograd(src, dst.dtype());
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Strides st[2] = {dst.strides(), broadcast_strides(s, dst.shape())};
    StridedLoop loop(dst.shape(), 2, st);
    char* base[2] = {(char*)dst.data<T>(), (char*)s.data<T>()};
    int64_t es[2] = {sizeof(T), sizeof(T)};
    loop.run(base, es, [&](char** p, const int64_t* str, int64_t n) {
      T* o = (T*)p[0];
      const T* x = (const T*)p[1];
      for (int64_t i = 0; i < n; i++) o[i * str[0]] = x[i * str[1]];
    });
  });
  dst.bump_version();
}

// b must broadcast to a's shape for a = f(a, b) in place.
static void check_broadcasts_into(const Tensor& a, const Tensor& b, const char* op) {
  check_defined(a, op, "tensor");
  check_defined(b, op, "other");
  Shape bs = broadcast_shapes(a.shape(), b.shape(), op);
  TG_CHECK(bs == a.shape(), ValueError, op, ": ", b.describe(), " cannot be broadcast to ",
           a.describe());
}

// a = f(a, b) in place, b broadcast to a's shape and cast to a's dtype;
// callers check the shapes first (check_broadcasts_into).
template <class F>
static void inplace_binary(Tensor& a, const Tensor& b, const char* op, F f) {
  Tensor y = cast_nograd(b, a.dtype());
  dispatch_numeric(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    Strides st[2] = {a.strides(), broadcast_strides(y, a.shape())};
    StridedLoop loop(a.shape(), 2, st);
    char* base[2] = {(char*)a.data<T>(), (char*)y.data<T>()};
    int64_t es[2] = {sizeof(T), sizeof(T)};
    loop.run(base, es, [&](char** p, const int64_t* str, int64_t n) {
      T* o = (T*)p[0];
      const T* x = (const T*)p[1];
      if (str[0] == 1 && str[1] == 1) {
        for (int64_t i = 0; i < n; i++) o[i] = (T)f(o[i], x[i]);
      } else {
        for (int64_t i = 0; i < n; i++) o[i * str[0]] = (T)f(o[i * str[0]], x[i * str[1]]);
      }
    });
  });
  a.bump_version();
}

void add_(Tensor& a, const Tensor& b, double alpha) {
  TG_TRACE(add_, a, b, alpha);
  check_broadcasts_into(a, b, "add_");
  if (inplace_records(a, "add_", {&b})) {
    return inplace_recorded(a, "add_", true, [&](const Tensor& s) {
      return alpha == 1.0 ? add(s, b) : alpha == -1.0 ? sub(s, b) : add(s, mul(b, alpha));
    });
  }
  if (alpha == 1.0) inplace_binary(a, b, "add_", [](auto u, auto v) { return u + v; });
  else inplace_binary(a, b, "add_", [alpha](auto u, auto v) { return u + (decltype(u))alpha * v; });
}

void mul_(Tensor& a, const Tensor& b) {
  TG_TRACE(mul_, a, b);
  check_broadcasts_into(a, b, "mul_");
  if (inplace_records(a, "mul_", {&b}))
    return inplace_recorded(a, "mul_", true, [&](const Tensor& s) { return mul(s, b); });
  inplace_binary(a, b, "mul_", [](auto u, auto v) { return u * v; });
}

void mul_(Tensor& a, double s) {
  TG_TRACE(mul_, a, s);
  if (inplace_records(a, "mul_", {}))
    return inplace_recorded(a, "mul_", true, [&](const Tensor& x) { return mul(x, s); });
  dispatch_numeric(a.dtype(), "mul_", [&](auto tag) {
    using T = decltype(tag);
    T v = (T)s;
    Strides st[1] = {a.strides()};
    StridedLoop loop(a.shape(), 1, st);
    char* base[1] = {(char*)a.data<T>()};
    int64_t es[1] = {sizeof(T)};
    loop.run(base, es, [&](char** p, const int64_t* str, int64_t n) {
      T* o = (T*)p[0];
      for (int64_t i = 0; i < n; i++) o[i * str[0]] *= v;
    });
  });
  a.bump_version();
}

// self <- f(self) for the in-place forms of unary ops: recorded as f when
// autograd needs it, else f's result written over self.
template <class F>
static void inplace_unary(Tensor& a, const char* op, F f) {
  if (inplace_records(a, op, {})) return inplace_recorded(a, op, true, f);
  Tensor r = f(a);
  TG_CHECK(r.shape() == a.shape(), ValueError, op, ": the result's shape ", to_string(r.shape()),
           " does not match the shape of the tensor written in place, ", a.describe());
  TG_CHECK(r.dtype() == a.dtype() || is_floating(a.dtype()) || !is_floating(r.dtype()),
           RuntimeError, op, ": the result is ", dtype_name(r.dtype()),
           ", which cannot be written into ", a.describe(), " in place");
  copy_(a, r);
}

#define TG_DEFINE_INPLACE(name)                                            \
  void name##_(Tensor& a) {                                                \
    TG_TRACE(name##_, a);                                                  \
    inplace_unary(a, #name "_", [](const Tensor& x) { return name(x); }); \
  }
TG_INPLACE_UNARY_OPS(TG_DEFINE_INPLACE)
#undef TG_DEFINE_INPLACE

void clamp_(Tensor& a, std::optional<double> min, std::optional<double> max) {
  TG_TRACE(clamp_, a, min, max);
  inplace_unary(a, "clamp_", [&](const Tensor& x) { return clamp(x, min, max); });
}

void leaky_relu_(Tensor& a, double negative_slope) {
  TG_TRACE(leaky_relu_, a, negative_slope);
  inplace_unary(a, "leaky_relu_", [&](const Tensor& x) { return leaky_relu(x, negative_slope); });
}

void hardtanh_(Tensor& a, double min_val, double max_val) {
  TG_TRACE(hardtanh_, a, min_val, max_val);
  inplace_unary(a, "hardtanh_", [&](const Tensor& x) { return hardtanh(x, min_val, max_val); });
}

void masked_fill_(Tensor& a, const Tensor& mask, const Tensor& value) {
  TG_TRACE(masked_fill_, a, mask, value);
  check_defined(mask, "masked_fill_", "mask");
  check_defined(value, "masked_fill_", "value");
  TG_CHECK(mask.dtype() == DType::Bool, TypeError, "masked_fill_: the mask must be bool, got ",
           mask.describe());
  TG_CHECK(value.ndim() == 0, ValueError, "masked_fill_: the value must be a number or a 0-d "
           "tensor, got ", value.describe());
  auto fill = [&](const Tensor& x) { return where(mask, to(value, x.dtype()), x); };
  if (inplace_records(a, "masked_fill_", {&value}))
    return inplace_recorded(a, "masked_fill_", true, fill);
  inplace_unary(a, "masked_fill_", fill);
}

Tensor contiguous_copy(const Tensor& a) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, T>(a, out, [](T v) { return v; });
  });
  return out;
}

}  // namespace tg
