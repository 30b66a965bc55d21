// Helpers shared by the op families: recording, dtype handling, and the
// forward loops for elementwise ops. Private to cpp/src/ops.
#pragma once

#include <cmath>
#include <functional>
#include <initializer_list>

#include "tapegrad/kernels.h"
#include "tapegrad/ops.h"
#include "tapegrad/tape.h"
#include "tapegrad/trace.h"

namespace tg {

// The backward of every op in the table, defined next to its forward.
#define TG_OP_DECLARE_BACKWARD(Name, py, family) \
  void Name##_backward(const Record& r, Tensor& grad_out, Tensor* grad_in);
TG_OP_TABLE(TG_OP_DECLARE_BACKWARD)
#undef TG_OP_DECLARE_BACKWARD

// Starts a record when grad mode is on and any input requires grad. The
// requires_grad test comes first: ops on tensors without grad (every op a
// backward rule runs) then touch no thread-local state at all.
template <class... Ts>
inline Recording record(OpId op, const Ts&... inputs) {
  if (!((inputs.defined() && inputs.requires_grad()) || ...)) return Recording();
  return Tape::current().begin(op, {&inputs...});
}
inline void finish(Recording& r, Tensor& out) { r.finish(out); }

// Same dtype as `t`, casting without recording (forward ops record the cast
// implicitly: the engine casts gradients back to each input's dtype).
Tensor cast_nograd(const Tensor& t, DType dt);
// t itself when it already has dtype dt, else a cast copy held in `hold`:
// on the hot path no reference is taken (two locked instructions saved).
inline const Tensor& cast_ref(const Tensor& t, DType dt, Tensor& hold) {
  if (t.dtype() == dt) return t;
  hold = cast_nograd(t, dt);
  return hold;
}
// A contiguous tensor of dtype `dt` with a's values (no copy when a already is).
inline Tensor dense_as(const Tensor& a, DType dt) {
  Tensor x = cast_nograd(a, dt);
  return x.is_contiguous() ? x : contiguous_copy(x);
}
// A view of t's storage (same offset) with the given shape and strides, no history.
Tensor strided_alias(const Tensor& t, const Shape& shape, const Strides& strides);
// PyTorch's promotion for two tensors: dimensioned operands decide the dtype
// within a category (bool < integer < floating); a 0-d operand only decides
// when its category is higher (float64 0-d + float32[3] -> float32).
DType result_type(const Tensor& a, const Tensor& b);
// Floating ops on integer tensors compute in float32, as PyTorch does.
inline DType float_result(DType dt) { return is_floating(dt) ? dt : DType::Float32; }
// In-place ops (Note [In-place ops with autograd] in elementwise.cpp):
// whether t.op_(others) must be recorded; raises where it cannot be.
bool inplace_records(const Tensor& t, const char* op, std::initializer_list<const Tensor*> others);
// Records self <- f(src) as f's out-of-place ops, src a recorded clone of
// self (undefined unless reads_self), and writes the result into self.
void inplace_recorded(Tensor& self, const char* op, bool reads_self,
                      const std::function<Tensor(const Tensor&)>& f);
[[noreturn]] void throw_undefined(const char* op, const char* what);
inline void check_defined(const Tensor& t, const char* op, const char* what) {
  if (__builtin_expect(!t.defined(), 0)) throw_undefined(op, what);
}
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);

// out = f over a contiguous float copy of a (integers compute in float32):
// f(x, y, n) is a run kernel of kernels.h.
template <class F>
Tensor run_unary(const Tensor& a, const char* op, F f) {
  Tensor x = dense_as(a, float_result(a.dtype()));
  Tensor out = Tensor::empty(a.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    f(x.data<T>(), out.data<T>(), x.numel());
  });
  return out;
}

// out = f(a) elementwise, out dtype = a's dtype (after `promote_to` cast).
template <class F>
Tensor unary_float(const Tensor& a, const char* op, F f) {
  check_defined(a, op, "input");
  Tensor hx;
  const Tensor& x = cast_ref(a, float_result(a.dtype()), hx);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    map_unary<T, T>(x, out, [&](T v) { return (T)f(v); });
  });
  return out;
}

// out = f(a, b) with broadcasting and promotion to a common numeric dtype.
template <class F>
Tensor binary_numeric(const Tensor& a, const Tensor& b, const char* op, F f,
                      bool float_only = false) {
  check_defined(a, op, "first input");
  check_defined(b, op, "second input");
  DType dt = result_type(a, b);
  if (dt == DType::Bool) dt = DType::Int64;
  if (float_only) dt = float_result(dt);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor hx, hy;
  const Tensor &x = cast_ref(a, dt, hx), &y = cast_ref(b, dt, hy);
  Tensor out = Tensor::empty(shape, dt);
  dispatch_numeric(dt, op, [&](auto tag) {
    using T = decltype(tag);
    map_binary<T, T, T>(x, y, out, [&](T u, T v) { return (T)f(u, v); });
  });
  return out;
}

// g * f(x, y) elementwise for backward rules: x, y already have g's shape or
// broadcast to it; result has g's (broadcast) shape and dtype.
template <class F>
Tensor grad_map(const Tensor& g, const Tensor& x, F f) {
  Tensor out = Tensor::empty(broadcast_shapes(g.shape(), x.shape(), "backward"), g.dtype());
  dispatch_float(g.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    Tensor hx;
    const Tensor& xc = cast_ref(x, g.dtype(), hx);
    map_binary<T, T, T>(g, xc, out, [&](T gv, T xv) { return (T)f(gv, xv); });
  });
  return out;
}

template <class F>
Tensor grad_map(const Tensor& g, const Tensor& x, const Tensor& y, F f) {
  Shape s = broadcast_shapes(broadcast_shapes(g.shape(), x.shape(), "backward"), y.shape(),
                             "backward");
  Tensor out = Tensor::empty(s, g.dtype());
  dispatch_float(g.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    Tensor hx, hy;
    const Tensor &xc = cast_ref(x, g.dtype(), hx), &yc = cast_ref(y, g.dtype(), hy);
    map_ternary<T, T, T, T>(g, xc, yc, out,
                            [&](T gv, T xv, T yv) { return (T)f(gv, xv, yv); });
  });
  return out;
}

}  // namespace tg
