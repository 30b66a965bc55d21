// Matrix products: matmul (torch.matmul semantics) through the one gemm entry
// point, and the composites dot and outer.
#include <algorithm>
#include <climits>
#include <cstring>

#include "op_common.h"

namespace tg {
namespace {

// Note [Matmul operand layouts]
// BLAS reads a row-major matrix or the transpose of one, each with a leading
// dimension. A matrix view (R x C, strides sr, sc) is handed to gemm as is
// when its columns are unit-stride (plain, ld = sr) or its rows are (a
// transposed view such as x.t() or x.transpose(-1, -2): trans flag, ld = sc).
// Only other layouts (stride-0 expands, steps along the last dim) are copied.
// Batch dims are walked by stride, so broadcast batch dims (stride 0) cost
// nothing. When the right operand has no batch and the left one's batch and
// row dims collapse into one strided run (always, if it is contiguous), the
// whole product is a single gemm with the batch folded into the rows.
struct Layout {
  bool ok = false;
  bool trans = false;
  int64_t ld = 1;
};

Layout analyze(int64_t R, int64_t C, int64_t sr, int64_t sc) {
  Layout L;
  int64_t r1 = std::max<int64_t>(R, 1), c1 = std::max<int64_t>(C, 1);
  if ((C <= 1 || sc == 1) && (R <= 1 || sr >= c1)) {
    L.ok = true;
    L.ld = R <= 1 ? c1 : sr;
  } else if ((R <= 1 || sr == 1) && (C <= 1 || sc >= r1)) {
    L.ok = true;
    L.trans = true;
    L.ld = C <= 1 ? r1 : sc;
  }
  if (L.ld > INT_MAX) L.ok = false;
  return L;
}

// One batch of matrices as BLAS sees it: op(X) at p + sum(idx * bs).
template <class T>
struct Mat {
  const T* p = nullptr;
  bool trans = false;
  int64_t ld = 1;
  Strides bs;   // per batch dim of the broadcast batch shape; 0 where broadcast
  Tensor keep;  // a contiguous copy, when the layout needed one
};

// Batch strides of `x` (batch dims = all but the last `tail`) aligned to `ob`.
Strides batch_strides(const Shape& shape, const Strides& strides, int tail, const Shape& ob) {
  Strides bs;
  bs.ndim = ob.ndim;
  int nb = shape.ndim - tail, off = ob.ndim - nb;
  for (int i = 0; i < ob.ndim; i++) {
    int j = i - off;
    bs.d[i] = (j < 0 || shape[j] == 1) ? 0 : strides[j];
  }
  return bs;
}

// `x` (batch..., R, C) as gemm operand op(x), or op(x)^T when `transpose`.
template <class T>
Mat<T> make_mat(const Tensor& x, bool transpose, const Shape& ob) {
  Mat<T> m;
  int nd = x.ndim();
  const Tensor* y = &x;
  Layout L = analyze(x.shape()[nd - 2], x.shape()[nd - 1], x.strides()[nd - 2],
                     x.strides()[nd - 1]);
  if (!L.ok) {
    m.keep = contiguous_copy(x);
    y = &m.keep;
    L = analyze(y->shape()[nd - 2], y->shape()[nd - 1], y->strides()[nd - 2],
                y->strides()[nd - 1]);
  }
  m.p = y->data<T>();
  m.trans = L.trans != transpose;
  m.ld = L.ld;
  m.bs = batch_strides(y->shape(), y->strides(), 2, ob);
  return m;
}

// All dims but the last of `x` as one strided run of rows: the (rows, C)
// matrix layout, or !ok when they do not collapse.
Layout fold_rows(const Tensor& x, int64_t& rows) {
  int nd = x.ndim();
  rows = 1;
  int64_t sr = 0, expect = 0;
  bool have = false;
  for (int d = nd - 2; d >= 0; d--) {
    int64_t n = x.shape()[d], s = x.strides()[d];
    rows *= n;
    if (n == 1) continue;
    if (have && s != expect) return Layout();
    if (!have) sr = s;
    have = true;
    expect = s * n;
  }
  if (rows > INT_MAX) return Layout();
  return analyze(rows, x.shape()[nd - 1], sr, x.strides()[nd - 1]);
}

// C[c(idx)] (+)= op(A[idx]) @ op(B[idx]) for every idx of the batch shape `ob`,
// C contiguous (batch, m, n) with batch strides `cs` aligned to `ob` (0 where
// C is broadcast: those products are summed, beta = 1 after the first).
// The caller handles k == 0 and an empty batch (C = zeros).
template <class T>
void batched_gemm(const Shape& ob, int64_t m, int64_t n, int64_t k, const Mat<T>& A,
                  const Mat<T>& B, T* C, const Strides& cs) {
  int nb = ob.ndim;
  int64_t total = numel(ob), ldc = std::max<int64_t>(n, 1);
  int64_t idx[kMaxDims] = {};
  for (int64_t it = 0; it < total; it++) {
    int64_t oa = 0, ob_ = 0, oc = 0;
    bool first = true;
    for (int d = 0; d < nb; d++) {
      oa += idx[d] * A.bs[d];
      ob_ += idx[d] * B.bs[d];
      oc += idx[d] * cs[d];
      if (cs[d] == 0 && idx[d] != 0) first = false;
    }
    gemm(A.trans, B.trans, m, n, k, T(1), A.p + oa, A.ld, B.p + ob_, B.ld, first ? T(0) : T(1),
         C + oc, ldc);
    for (int d = nb - 1; d >= 0; d--) {
      if (++idx[d] < ob[d]) break;
      idx[d] = 0;
    }
  }
}

// Shapes of a matmul in matrix form: a -> (abatch..., M, K), b -> (bbatch..., K, N).
struct MatmulDims {
  bool a1 = false, b1 = false;  // 1-D operands (a row / column vector)
  Shape abatch, bbatch, ob;     // ob = broadcast(abatch, bbatch)
  int64_t M = 1, K = 1, N = 1;
  Shape out;                    // ob + [M unless a1] + [N unless b1]
};

MatmulDims matmul_dims(const Shape& as, const Shape& bs) {
  MatmulDims d;
  d.a1 = as.ndim == 1;
  d.b1 = bs.ndim == 1;
  d.M = d.a1 ? 1 : as[as.ndim - 2];
  d.K = as[as.ndim - 1];
  d.N = d.b1 ? 1 : bs[bs.ndim - 1];
  d.abatch = Shape::from(as.d, d.a1 ? 0 : as.ndim - 2);
  d.bbatch = Shape::from(bs.d, d.b1 ? 0 : bs.ndim - 2);
  d.ob = broadcast_shapes(d.abatch, d.bbatch, "matmul");
  d.out = d.ob;
  if (!d.a1) d.out.push_back(d.M);
  if (!d.b1) d.out.push_back(d.N);
  return d;
}

// `t` with a size-1 dim inserted at `pos` (its stride never matters).
Tensor insert_unit(const Tensor& t, int pos) {
  Shape s;
  Strides st;
  for (int i = 0; i <= t.ndim(); i++) {
    if (i == pos) {
      s.push_back(1);
      st.push_back(1);
    }
    if (i < t.ndim()) {
      s.push_back(t.shape()[i]);
      st.push_back(t.strides()[i]);
    }
  }
  return strided_alias(t, s, st);
}

// The operands in matrix form: a 1-D a is a (1, K) row, a 1-D b a (K, 1) column.
Tensor lhs_matrix(const Tensor& a) { return a.ndim() == 1 ? insert_unit(a, 0) : a; }
Tensor rhs_matrix(const Tensor& b) { return b.ndim() == 1 ? insert_unit(b, 1) : b; }
// The output gradient in matrix form (ob..., M, N).
Tensor grad_matrix(const Tensor& g, const MatmulDims& d) {
  Tensor g2 = g;
  if (d.a1) g2 = insert_unit(g2, d.ob.ndim);
  if (d.b1) g2 = insert_unit(g2, g2.ndim());
  return g2;
}

// C (contiguous, cbatch + [m, n]) = sum over the broadcast batch of op(A) @ op(B).
template <class T>
void product(const Shape& ob, int64_t m, int64_t n, int64_t k, const Mat<T>& A,
             const Mat<T>& B, Tensor& C, const Shape& cbatch) {
  if (C.numel() == 0) return;
  T* c = C.data<T>();
  if (k == 0 || numel(ob) == 0) {
    std::memset(c, 0, (size_t)C.numel() * sizeof(T));
    return;
  }
  Strides cs = batch_strides(C.shape(), C.strides(), C.ndim() - cbatch.ndim, ob);
  batched_gemm(ob, m, n, k, A, B, c, cs);
}

template <class T>
void matmul_forward(const Tensor& a, const Tensor& b, const MatmulDims& d, Tensor& out) {
  if (out.numel() == 0) return;
  T* c = out.data<T>();
  if (d.K == 0) {
    std::memset(c, 0, (size_t)out.numel() * sizeof(T));
    return;
  }
  Tensor A2 = lhs_matrix(a), B2 = rhs_matrix(b);
  if (numel(d.bbatch) == 1 && numel(d.abatch) > 1) {
    int64_t rows;
    Layout LA = fold_rows(A2, rows);
    if (LA.ok) {  // one gemm: (batch * M, K) @ (K, N)
      Mat<T> MB = make_mat<T>(B2, false, Shape{});
      gemm(LA.trans, MB.trans, rows, d.N, d.K, T(1), A2.data<T>(), LA.ld, MB.p, MB.ld, T(0), c,
           std::max<int64_t>(d.N, 1));
      return;
    }
  }
  Mat<T> MA = make_mat<T>(A2, false, d.ob), MB = make_mat<T>(B2, false, d.ob);
  Shape cshape = d.ob;
  cshape.push_back(d.M);
  cshape.push_back(d.N);
  Tensor C = strided_alias(out, cshape, contiguous_strides(cshape));
  product(d.ob, d.M, d.N, d.K, MA, MB, C, d.ob);
}

// grad_a (abatch..., M, K) = G @ B^T, summed over a's broadcast batch dims.
template <class T>
void matmul_grad_a(const Tensor& G2, const Tensor& B2, const MatmulDims& d, Tensor& ga) {
  if (ga.numel() == 0) return;
  if (d.N > 0 && numel(d.bbatch) == 1 && numel(d.abatch) > 1) {
    int64_t rows;
    Layout LG = fold_rows(G2, rows);
    if (LG.ok) {  // one gemm: (batch * M, N) @ (N, K)
      Mat<T> MB = make_mat<T>(B2, true, Shape{});
      gemm(LG.trans, MB.trans, rows, d.K, d.N, T(1), G2.data<T>(), LG.ld, MB.p, MB.ld, T(0),
           ga.data<T>(), std::max<int64_t>(d.K, 1));
      return;
    }
  }
  Mat<T> MG = make_mat<T>(G2, false, d.ob), MB = make_mat<T>(B2, true, d.ob);
  Shape cshape = d.abatch;
  cshape.push_back(d.M);
  cshape.push_back(d.K);
  Tensor C = strided_alias(ga, cshape, contiguous_strides(cshape));
  product(d.ob, d.M, d.K, d.N, MG, MB, C, d.abatch);
}

// grad_b (bbatch..., K, N) = A^T @ G, summed over b's broadcast batch dims.
template <class T>
void matmul_grad_b(const Tensor& A2, const Tensor& G2, const MatmulDims& d, Tensor& gb) {
  if (gb.numel() == 0) return;
  if (d.M > 0 && numel(d.bbatch) == 1 && numel(d.abatch) > 1) {
    int64_t rows, grows;
    Layout LA = fold_rows(A2, rows), LG = fold_rows(G2, grows);
    if (LA.ok && LG.ok) {  // one gemm: (batch * M, K)^T @ (batch * M, N)
      gemm(!LA.trans, LG.trans, d.K, d.N, rows, T(1), A2.data<T>(), LA.ld, G2.data<T>(), LG.ld,
           T(0), gb.data<T>(), std::max<int64_t>(d.N, 1));
      return;
    }
  }
  Mat<T> MA = make_mat<T>(A2, true, d.ob), MG = make_mat<T>(G2, false, d.ob);
  Shape cshape = d.bbatch;
  cshape.push_back(d.K);
  cshape.push_back(d.N);
  Tensor C = strided_alias(gb, cshape, contiguous_strides(cshape));
  product(d.ob, d.K, d.N, d.M, MA, MG, C, d.bbatch);
}

void check_matmul(const Tensor& a, const Tensor& b) {
  check_defined(a, "matmul", "first operand");
  check_defined(b, "matmul", "second operand");
  TG_CHECK(a.dtype() == b.dtype() && is_floating(a.dtype()), TypeError,
           "matmul: expected two float32 or two float64 operands of the same dtype, got ",
           dtype_name(a.dtype()), " and ", dtype_name(b.dtype()), " (", a.describe(), " @ ",
           b.describe(), ")");
  TG_CHECK(a.ndim() >= 1 && b.ndim() >= 1, ValueError,
           "matmul: both operands must be at least 1-D, got ", a.describe(), " @ ",
           b.describe(), " (use mul for scalars)");
  int64_t ka = a.shape()[a.ndim() - 1];
  int64_t kb = b.ndim() == 1 ? b.shape()[0] : b.shape()[b.ndim() - 2];
  TG_CHECK(ka == kb, ValueError, "matmul: shapes ", to_string(a.shape()), " and ",
           to_string(b.shape()), " cannot be multiplied (", ka, " != ", kb, ")");
  int na = a.ndim() > 2 ? a.ndim() - 2 : 0, nb = b.ndim() > 2 ? b.ndim() - 2 : 0;
  for (int i = 1; i <= std::min(na, nb); i++) {
    int64_t x = a.shape()[na - i], y = b.shape()[nb - i];
    TG_CHECK(x == y || x == 1 || y == 1, ValueError, "matmul: batch dimensions of shapes ",
             to_string(a.shape()), " and ", to_string(b.shape()),
             " cannot be broadcast together (", x, " vs ", y, ")");
  }
}

}  // namespace

// ================================================================ matmul
// y = a @ b (torch.matmul: 1-D operands are a row / column vector whose unit
// dim is dropped from y; batch dims broadcast)
//                              da = g @ b^T, db = a^T @ g (each summed over
//                              the batch dims its operand was broadcast on)
Tensor matmul(const Tensor& a, const Tensor& b) {
  TG_TRACE(matmul, a, b);
  check_matmul(a, b);
  MatmulDims d = matmul_dims(a.shape(), b.shape());
  Tensor out = Tensor::empty(d.out, a.dtype());
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    matmul_forward<T>(a, b, d, out);
  });
  if (auto r = record(OpId::Matmul, a, b)) {
    if (r->needs_input_grad(0)) r->save(b);
    if (r->needs_input_grad(1)) r->save(a);
    finish(r, out);
  }
  return out;
}
void Matmul_backward(const Record& r, Tensor& grad, Tensor* gin) {
  MatmulDims d = matmul_dims(r.inputs[0].shape, r.inputs[1].shape);
  DType dt = r.inputs[0].dtype;
  Tensor G2 = grad_matrix(cast_nograd(grad, dt), d);
  size_t k = 0;
  dispatch_float(dt, "matmul", [&](auto tag) {
    using T = decltype(tag);
    if (r.needs_input_grad(0)) {
      Tensor ga = Tensor::empty(r.inputs[0].shape, dt);
      matmul_grad_a<T>(G2, rhs_matrix(r.saved_tensor(k++)), d, ga);
      gin[0] = ga;
    }
    if (r.needs_input_grad(1)) {
      Tensor gb = Tensor::empty(r.inputs[1].shape, dt);
      matmul_grad_b<T>(lhs_matrix(r.saved_tensor(k)), G2, d, gb);
      gin[1] = gb;
    }
  });
}

// ================================================================ linear
// y = act(x @ W^T + b)         x (..., K), W (N, K), b (N) or none, act in
//                              none / relu / tanh / sigmoid; y (..., N)
//                              dpre = g * act'(y)  (from the saved output)
//                              dx = dpre @ W, dW = dpre^T @ x, db = sum_rows dpre
//
// Note [Fused linear]
// nn.Linear (+ an activation) as one record instead of three (matmul, add,
// activation): one GEMM, then one pass over its output adding the bias and
// applying the activation; backward is one pass computing dpre and the bias
// gradient's column sums together (act_backward_rows), then the two GEMMs.
// It saves x, W and y (only what the needed gradients use) instead of the
// composite's x, W, pre-activation and y, and writes one output buffer
// instead of three.
//
// Forward values are bit-identical to the composite matmul(x, W.t()) + b
// then the activation op: the GEMM is the same call (same operands, layout
// flags, leading dimensions and beta = 0; the batch dims fold into the rows
// exactly as matmul folds them), the bias is added to the finished product
// (not preloaded with beta = 1, which would round differently), and the
// activation runs the very kernel the standalone op runs (kernels.h). The
// guarantee holds for a given BLAS and thread count (BLAS results may depend
// on its thread count in both paths alike). Gradients are not bit-identical:
// the bias gradient is summed in a different order (in double, per block of
// rows), and dx / dW come from dpre rather than from the composite's chain.
//
// Layouts: x folds its leading dims into rows (one strided run, as matmul's
// fold_rows; otherwise it is copied); W may be plain or transposed (any view
// BLAS reads directly), else it is copied.
namespace {

// `t` as a (rows, C) matrix gemm reads directly, or a contiguous copy of it.
Tensor as_rows(const Tensor& t, Layout& L, int64_t& rows) {
  L = fold_rows(t, rows);
  if (L.ok) return t;
  Tensor c = contiguous_copy(t);
  L = fold_rows(c, rows);
  return c;
}

// The 2-D `w`, or its transpose when `transpose`, as a gemm operand: the
// layout matmul's make_mat finds for that view (so the same BLAS call), or a
// contiguous copy of the view when BLAS cannot read it.
Tensor as_matrix(const Tensor& w, bool transpose, Layout& L) {
  Tensor v = w;
  if (transpose) {
    Shape s{w.shape()[1], w.shape()[0]};
    Strides st;
    st.push_back(w.strides()[1]);
    st.push_back(w.strides()[0]);
    v = strided_alias(w, s, st);
  }
  L = analyze(v.shape()[0], v.shape()[1], v.strides()[0], v.strides()[1]);
  if (L.ok) return v;
  Tensor c = contiguous_copy(v);
  L = analyze(c.shape()[0], c.shape()[1], c.strides()[0], c.strides()[1]);
  return c;
}

void check_linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_defined(x, "linear", "input");
  check_defined(w, "linear", "weight");
  auto shapes = [&] {
    return str("input ", x.describe(), ", weight ", w.describe(),
               b.defined() ? str(", bias ", b.describe()) : std::string());
  };
  bool same = x.dtype() == w.dtype() && (!b.defined() || b.dtype() == x.dtype());
  TG_CHECK(same && is_floating(x.dtype()), TypeError,
           "linear: expected float32 or float64 input, weight and bias of one dtype, got ",
           shapes());
  TG_CHECK(x.ndim() >= 1, ValueError, "linear: input must be at least 1-D, got ", shapes());
  TG_CHECK(w.ndim() == 2, ValueError,
           "linear: weight must be 2-D (out_features, in_features), got ", shapes());
  TG_CHECK(x.shape()[x.ndim() - 1] == w.shape()[1], ValueError, "linear: ", shapes(),
           ": input's last dim (", x.shape()[x.ndim() - 1], ") != in_features (", w.shape()[1],
           ")");
  TG_CHECK(!b.defined() || (b.ndim() == 1 && b.shape()[0] == w.shape()[0]), ValueError,
           "linear: ", shapes(), ": bias must be 1-D of size out_features (", w.shape()[0], ")");
}

}  // namespace

Activation parse_activation(const std::string& s, const char* op) {
  if (s == "none") return Activation::None;
  if (s == "relu") return Activation::Relu;
  if (s == "tanh") return Activation::Tanh;
  if (s == "sigmoid") return Activation::Sigmoid;
  throw ValueError(str(op, ": activation must be 'none', 'relu', 'tanh' or 'sigmoid', got '", s,
                       "'"));
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, Activation act) {
  TG_TRACE(linear, x, w, b, act);
  check_linear(x, w, b);
  DType dt = x.dtype();
  int64_t N = w.shape()[0], K = w.shape()[1];
  Shape out_shape = Shape::from(x.shape().d, x.ndim() - 1);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, dt);
  dispatch_float(dt, "linear", [&](auto tag) {
    using T = decltype(tag);
    if (out.numel() == 0) return;
    T* c = out.data<T>();
    int64_t rows = out.numel() / N;
    if (K == 0) {
      std::memset(c, 0, (size_t)out.numel() * sizeof(T));
    } else {
      Layout LX, LW;
      int64_t xrows;
      Tensor X = as_rows(x, LX, xrows);
      Tensor WT = as_matrix(w, true, LW);
      gemm(LX.trans, LW.trans, rows, N, K, T(1), X.data<T>(), LX.ld, WT.data<T>(), LW.ld, T(0),
           c, N);
    }
    Tensor bd = b.defined() ? dense_as(b, dt) : Tensor();
    bias_act_rows(c, rows, N, bd.defined() ? bd.data<T>() : nullptr, act);
  });
  auto r = b.defined() ? record(OpId::Linear, x, w, b) : record(OpId::Linear, x, w);
  if (r) {
    r->ints = {(int64_t)act};
    if (act != Activation::None) r->save(out);
    if (r->needs_input_grad(0)) r->save(w);
    if (r->needs_input_grad(1)) r->save(x);
    finish(r, out);
  }
  return out;
}
void Linear_backward(const Record& r, Tensor& grad, Tensor* gin) {
  Activation act = (Activation)r.ints[0];
  DType dt = r.inputs[0].dtype;
  const Shape& xs = r.inputs[0].shape;
  int64_t N = r.inputs[1].shape[0], K = r.inputs[1].shape[1];
  int64_t rows = numel(Shape::from(xs.d, xs.ndim - 1));
  bool need_x = r.needs_input_grad(0), need_w = r.needs_input_grad(1);
  bool need_b = r.inputs.size() > 2 && r.needs_input_grad(2);
  size_t k = 0;
  Tensor y = act != Activation::None ? r.saved_tensor(k++) : Tensor();
  Tensor G = dense_as(grad, dt);
  dispatch_float(dt, "linear", [&](auto tag) {
    using T = decltype(tag);
    // dpre in place of a private copy of g, else in a fresh buffer.
    Tensor D = G;
    if (act != Activation::None)
      D = G.impl() == grad.impl() ? Tensor::empty(G.shape(), dt) : G;
    Tensor gb;
    if (need_b) gb = Tensor::empty(r.inputs[2].shape, dt);
    if (act != Activation::None || need_b) {
      const T* yp = y.defined() ? dense_as(y, dt).data<T>() : nullptr;
      act_backward_rows(G.data<T>(), yp, D.data<T>(), rows, N, act,
                        need_b ? gb.data<T>() : nullptr);
    }
    if (need_b) gin[2] = gb;
    const T* dp = D.data<T>();
    if (need_x) {
      Tensor gx = Tensor::empty(xs, dt);
      if (gx.numel() > 0) {
        if (N == 0) {
          std::memset(gx.data<T>(), 0, (size_t)gx.numel() * sizeof(T));
        } else {
          Layout LW;
          Tensor W = as_matrix(r.saved_tensor(k), false, LW);
          gemm(false, LW.trans, rows, K, N, T(1), dp, N, W.data<T>(), LW.ld, T(0), gx.data<T>(),
               K);
        }
      }
      gin[0] = gx;
      k++;
    }
    if (need_w) {
      Tensor gw = Tensor::empty(r.inputs[1].shape, dt);
      if (gw.numel() > 0) {
        if (rows == 0) {
          std::memset(gw.data<T>(), 0, (size_t)gw.numel() * sizeof(T));
        } else {
          Layout LX;
          int64_t xrows;
          Tensor X = as_rows(r.saved_tensor(k), LX, xrows);
          gemm(true, LX.trans, N, K, rows, T(1), dp, N, X.data<T>(), LX.ld, T(0), gw.data<T>(),
               K);
        }
      }
      gin[1] = gw;
    }
  });
}

// ================================================================ dot / outer
// dot(a, b) = a @ b for 1-D a, b (a 0-d result)
Tensor dot(const Tensor& a, const Tensor& b) {
  TG_TRACE(dot, a, b);
  check_defined(a, "dot", "first operand");
  check_defined(b, "dot", "second operand");
  TG_CHECK(a.ndim() == 1 && b.ndim() == 1, ValueError, "dot: expected two 1-D tensors, got ",
           a.describe(), " and ", b.describe());
  TG_CHECK(a.shape()[0] == b.shape()[0], ValueError,
           "dot: inconsistent tensor sizes: ", a.describe(), " and ", b.describe());
  return matmul(a, b);
}

// outer(a, b)[i, j] = a[i] * b[j] (broadcast multiply; promotes like mul)
Tensor outer(const Tensor& a, const Tensor& b) {
  TG_TRACE(outer, a, b);
  check_defined(a, "outer", "first operand");
  check_defined(b, "outer", "second operand");
  TG_CHECK(a.ndim() == 1 && b.ndim() == 1, ValueError, "outer: expected two 1-D tensors, got ",
           a.describe(), " and ", b.describe());
  return mul(unsqueeze(a, 1), b);
}

}  // namespace tg
