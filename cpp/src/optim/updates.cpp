// Optimizer update kernels (see optim.h and Note [Matching PyTorch's
// optimizer arithmetic]). Each kernel is one pass over the parameter buffer;
// every fused multiply-add is an explicit std::fma (this file is compiled
// with -ffp-contract=off, so there are no others).
#include "tapegrad/optim.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tapegrad/kernels.h"
#include "tapegrad/ops.h"
#include "tapegrad/trace.h"

namespace tg::optim {
namespace {

// ---------------------------------------------------------------- checks
void check_param(const Tensor& param, const char* op) {
  TG_CHECK(param.defined(), ValueError, op, ": parameter is undefined");
  TG_CHECK(is_floating(param.dtype()), TypeError, op,
           ": can only update float32 or float64 parameters, got ", param.describe());
}

// The gradient as a contiguous tensor of the parameter's shape and dtype.
Tensor dense_grad(const Tensor& param, const Tensor& grad, const char* op) {
  TG_CHECK(grad.defined(), ValueError, op, ": gradient is undefined");
  TG_CHECK(grad.shape() == param.shape(), ValueError, op, ": gradient ", grad.describe(),
           " does not match parameter ", param.describe());
  TG_CHECK(grad.dtype() == param.dtype(), TypeError, op, ": gradient ", grad.describe(),
           " has a different dtype than parameter ", param.describe());
  return grad.is_contiguous() ? grad : contiguous_copy(grad);
}

// torch: grad.add(param, alpha=weight_decay) with a sparse grad.
void check_sparse_weight_decay(const SGDOptions& o) {
  TG_CHECK(o.weight_decay == 0, RuntimeError,
           "SGD: weight_decay is not supported with sparse gradients (PyTorch raises "
           "\"add(sparse, dense) is not supported. Use add(dense, sparse) instead.\")");
}

void check_state(const Tensor& buf, const Tensor& param, const char* name, const char* op) {
  TG_CHECK(buf.defined(), RuntimeError, op, ": state '", name, "' is missing");
  TG_CHECK(buf.shape() == param.shape() && buf.dtype() == param.dtype(), RuntimeError, op,
           ": state '", name, "' ", buf.describe(), " does not match parameter ",
           param.describe());
  TG_CHECK(buf.is_contiguous(), RuntimeError, op, ": state '", name, "' ", buf.describe(),
           " must be contiguous");
}

// A row-sparse gradient checked against the parameter (rows in range), then
// coalesced (sorted unique rows, duplicates summed) if asked, and negated
// (a copy) when maximizing.
Ref<RowSparse> sparse_grad(const Tensor& param, const RowSparse& grad, bool maximize,
                           bool coalesce, const char* op) {
  TG_CHECK(param.ndim() >= 1 && grad.dense_shape == param.shape(), ValueError, op,
           ": sparse gradient of shape ", to_string(grad.dense_shape),
           " does not match parameter ", param.describe());
  TG_CHECK(grad.values.dtype() == param.dtype(), TypeError, op, ": sparse gradient of dtype ",
           dtype_name(grad.values.dtype()), " does not match parameter ", param.describe());
  const int64_t* idx = grad.indices.data<int64_t>();
  int64_t rows = param.shape()[0];
  for (int64_t i = 0; i < grad.nnz(); i++)
    TG_CHECK(idx[i] >= 0 && idx[i] < rows, IndexError, op, ": sparse gradient row ", idx[i],
             " is out of range for parameter ", param.describe());
  Ref<RowSparse> g = coalesce ? grad.coalesce() : RowSparse::make(grad.indices, grad.values,
                                                                   grad.dense_shape);
  if (maximize) {
    Tensor v = coalesce ? g->values : contiguous_copy(g->values);
    dispatch_float(v.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      T* p = v.data<T>();
      for (int64_t i = 0, n = v.numel(); i < n; i++) p[i] = -p[i];
    });
    g = RowSparse::make(g->indices, v, g->dense_shape);
  }
  return g;
}

// The parameter's elements as one contiguous buffer: the parameter itself, or
// a copy written back by finish(). Always bumps the version counter.
class ParamBuffer {
 public:
  explicit ParamBuffer(const Tensor& p)
      : target_(p), work_(p.is_contiguous() ? p : contiguous_copy(p)) {}
  template <class T> T* data() const { return work_.data<T>(); }
  void finish() {
    if (work_.impl() != target_.impl()) {
      NoGradGuard no_grad;
      copy_(target_, work_);
    }
    target_.bump_version();
  }

 private:
  Tensor target_, work_;
};

template <class T>
inline T nan_max(T a, T b) {  // torch.maximum: NaN wins
  return (a != a || a > b) ? a : b;
}

// a.lerp_(b, w) as ATen computes it: fma(w, b - a, a) for |w| < 0.5, else
// fma(w - 1, b - a, b). `coeff` is w or w - 1 (lerp_coeff), `small` the test.
template <class T>
inline bool lerp_small(T w) { return std::abs(w) < T(0.5); }
template <class T>
inline T lerp_coeff(T w) { return lerp_small(w) ? w : w - T(1); }
template <bool Small, class T>
inline T lerp(T a, T b, T coeff) { return std::fma(coeff, b - a, Small ? a : b); }

// Calls f(std::bool_constant<b>...) for the runtime flags: the update loops
// are instantiated per combination of options, so each is one branch-free
// (vectorisable) loop.
template <class F>
void with_flags(F&& f) { f(); }
template <class F, class... Rest>
void with_flags(F&& f, bool b, Rest... rest) {
  if (b)
    with_flags([&](auto... xs) { f(std::true_type{}, xs...); }, rest...);
  else
    with_flags([&](auto... xs) { f(std::false_type{}, xs...); }, rest...);
}

// parallel_for(n, grain, body, align) in which each piece runs a private copy
// of body (which captures its pointers and constants by value, [=]): the
// copy's address never escapes, so the compiler may keep the constants in
// registers rather than reload them after every store through a T* that
// could alias the shared closure. The updates below write only their own
// elements or rows, so every split gives the bits one thread gives.
template <class F>
void split_private(int64_t n, int64_t grain, int64_t align, const F& body) {
  parallel_for(n, grain, [&body](int64_t lo, int64_t hi) {
    F local = body;
    local(lo, hi);
  }, align);
}

// body(lo, hi) over a dense parameter's n elements, split like exp when the
// parameter is large (Note [Core threads]).
template <class F>
void over_elements(int64_t n, const F& body) {
  split_private(n, kGrainMath, 64, body);
}

// body(k0, k1) over the rows [0, nnz) of a coalesced row-sparse gradient
// (rows of rs elements, each parameter row at most once), split like the
// embedding gather: the rows are far apart and the update waits on memory.
template <class F>
void over_rows(int64_t nnz, int64_t rs, const F& body) {
  split_private(nnz, row_grain(rs), 1, body);
}

// Note [Sparse SGD across threads]
// SGD's sparse update p[idx[k]] += -lr * v[k] runs over the gradient rows k in
// order, and rows may repeat (the embedding's backward delivers one row per
// lookup). On several threads the pieces are ranges of k: piece j reads the
// values of its own range, which the GEMM that produced them (dx of the first
// Linear, split by the same rows of the batch) has just written on the same
// core. Pieces over the parameter's rows, each thread walking all of k, made
// every thread read values from all over the gradient, half of them out of the
// other core's cache: on two threads the batch-512 NER step ran 2-3% slower
// (interleaved A/B in one process, 4 runs of 21 paired rounds). A row that
// occurs in several pieces is updated by the first of them, every occurrence
// in order (its own, then those in later pieces) and skipped by the others,
// so each row sees its updates in k order: the bits of one thread, whatever
// the thread count.
//
// The pass that finds those rows runs on the calling thread before the
// pieces start, so it is kept to two sequential sweeps over idx and one byte
// per parameter row: first[r] = the first piece in which row r occurs (kNone
// for rows not in this call, restored after the sweep, so the array is never
// cleared), mine[k] = whether occurrence k belongs to its own piece, and
// `later` lists, in order, each occurrence k whose row first occurred in an
// earlier piece, with that piece. The pieces then read mine[] in order rather
// than looking rows up at random. Before, with 4-byte stamps per row looked
// up twice per occurrence, the batch-512 NER update took 33-45 us on two
// threads (median 39), 7.4 of them in this pass; now 26-35 us (median 30),
// 5.2 in the pass (a C++ NER step timed phase by phase, 8 alternating runs
// of each build, the new one faster in all 8). One per calling thread, grown
// to the largest parameter and gradient seen and kept: a warm step allocates
// nothing.
struct RowOwners {
  static constexpr uint8_t kNone = 0xff;  // more than the 64 pieces parallel_for makes
  std::vector<uint8_t> first;
  std::vector<uint8_t> mine;
  std::vector<std::pair<int64_t, int>> later;  // (k, the piece that updates row idx[k])
};
thread_local RowOwners t_owners;

const RowOwners& first_pieces(const int64_t* idx, int64_t nnz, int64_t rows, int64_t len) {
  RowOwners& o = t_owners;
  if ((int64_t)o.first.size() < rows) o.first.resize((size_t)rows, RowOwners::kNone);
  if ((int64_t)o.mine.size() < nnz) o.mine.resize((size_t)nnz);
  // Room for every occurrence first, so nothing below can throw while
  // first[] holds this call's marks.
  if ((int64_t)o.later.capacity() < nnz) o.later.reserve((size_t)nnz);
  uint8_t* first = o.first.data();
  uint8_t* mine = o.mine.data();
  o.later.clear();
  for (int64_t lo = 0, j = 0; lo < nnz; lo += len, j++)
    for (int64_t k = lo, hi = std::min(nnz, lo + len); k < hi; k++) {
      uint8_t& f = first[idx[k]];
      if (f == RowOwners::kNone) f = (uint8_t)j;
      mine[k] = f == (uint8_t)j;
      if (!mine[k]) o.later.emplace_back(k, (int)f);
    }
  for (int64_t k = 0; k < nnz; k++) first[idx[k]] = RowOwners::kNone;
  return o;
}

}  // namespace

double increment_step(const Tensor& step) {
  TG_TRACE(optim::increment_step, step);
  TG_CHECK(step.defined() && step.numel() == 1, ValueError,
           "optimizer: state 'step' must be a one-element tensor");
  double out = 0;
  dispatch_numeric(step.dtype(), "optimizer step", [&](auto tag) {
    using T = decltype(tag);
    T* p = step.data<T>();
    *p = *p + T(1);
    out = (double)*p;
  });
  step.bump_version();
  return out;
}

// ================================================================ SGD
// torch/optim/sgd.py, _single_tensor_sgd:
//   grad = -grad if maximize
//   grad = grad.add(param, alpha=weight_decay)              if weight_decay != 0
//   buf = grad.clone()  (first step)  |  buf.mul_(momentum).add_(grad, alpha=1 - dampening)
//   grad = grad.add(buf, alpha=momentum) if nesterov else buf
//   param.add_(grad, alpha=-lr)
void sgd(const Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SGDOptions& o) {
  TG_TRACE(optim::sgd, param, grad, momentum_buffer, o);
  check_param(param, "SGD");
  Tensor g = dense_grad(param, grad, "SGD");
  bool use_momentum = o.momentum != 0;
  bool first = use_momentum && !momentum_buffer.defined();
  if (first) momentum_buffer = Tensor::empty(param.shape(), param.dtype());
  else if (use_momentum) check_state(momentum_buffer, param, "momentum_buffer", "SGD");
  ParamBuffer pb(param);
  const int64_t n = param.numel();
  dispatch_float(param.dtype(), "SGD", [&](auto tag) {
    using T = decltype(tag);
    T* p = pb.data<T>();
    const T* gp = g.data<T>();
    T* b = use_momentum ? momentum_buffer.data<T>() : nullptr;
    const T wd = (T)o.weight_decay, mom = (T)o.momentum, damp = (T)(1 - o.dampening);
    const T neg_lr = (T)(-o.lr), sign = o.maximize ? T(-1) : T(1);
    with_flags([&](auto decay, auto momentum, auto init, auto nesterov) {
      over_elements(n, [=](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; i++) {
          T d = gp[i] * sign;  // -grad when maximizing (exact)
          if (decay) d = std::fma(p[i], wd, d);
          if (momentum) {
            b[i] = init ? d : std::fma(d, damp, mom * b[i]);
            d = nesterov ? std::fma(b[i], mom, d) : b[i];
          }
          p[i] = std::fma(d, neg_lr, p[i]);
        }
      });
    }, o.weight_decay != 0, use_momentum, first, use_momentum && o.nesterov);
  });
  pb.finish();
  if (use_momentum) momentum_buffer.bump_version();
}

Ref<RowSparse> sgd_sparse(const Tensor& param, const RowSparse& grad,
                          const Ref<RowSparse>& momentum_buffer, const SGDOptions& o) {
  TG_TRACE(optim::sgd_sparse, param, grad, momentum_buffer, o);
  // The momentum buffer of a sparse gradient is replaced (it grows by the new
  // rows), not updated in place, so the caller's variable carries it from step
  // to step: a recorded program cannot.
  TG_CHECK(o.momentum == 0 || !trace::recording(), RuntimeError,
           "SGD: momentum with row-sparse gradients cannot be recorded by tg.compile (the "
           "row-sparse momentum buffer is replaced every step); use momentum=0, dense "
           "gradients (sparse=False), or run optimizer.step() outside the compiled function");
  check_param(param, "SGD");
  check_sparse_weight_decay(o);
  bool use_momentum = o.momentum != 0;
  ParamBuffer pb(param);
  const int64_t rs = grad.row_size();
  Ref<RowSparse> out;
  if (!use_momentum) {
    // param.add_(grad, alpha=-lr): one fused add per gradient row, in order.
    Ref<RowSparse> g = sparse_grad(param, grad, false, false, "SGD");
    dispatch_float(param.dtype(), "SGD", [&](auto tag) {
      using T = decltype(tag);
      T* p = pb.data<T>();
      const T* v = g->values.template data<T>();
      const int64_t* idx = g->indices.data<int64_t>();
      const T neg_lr = (T)(o.maximize ? o.lr : -o.lr);
      const int64_t nnz = g->nnz(), rows = param.shape()[0];
      auto apply = [&](int64_t k) {
        T* pr = p + idx[k] * rs;
        const T* vr = v + k * rs;
        for (int64_t j = 0; j < rs; j++) pr[j] = std::fma(vr[j], neg_lr, pr[j]);
      };
      const int nt = parallel_threads_for(nnz, row_grain(rs));
      if (nt <= 1) {
        for (int64_t k = 0; k < nnz; k++) {
          if (k + kRowsAhead < nnz) prefetch_row<true>(p + idx[k + kRowsAhead] * rs, rs * sizeof(T));
          apply(k);
        }
        return;
      }
      // Pieces of the gradient's rows (Note [Sparse SGD across threads]).
      const int64_t len = (nnz + nt - 1) / nt;
      const RowOwners& own = first_pieces(idx, nnz, rows, len);
      const uint8_t* mine = own.mine.data();
      parallel_for(nt, 1, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; j++) {
          const int64_t lo = j * len, hi = std::min(nnz, lo + len);
          for (int64_t k = lo; k < hi; k++) {
            if (k + kRowsAhead < hi && mine[k + kRowsAhead])
              prefetch_row<true>(p + idx[k + kRowsAhead] * rs, rs * sizeof(T));
            if (mine[k]) apply(k);
          }
          for (const auto& [k, piece] : own.later)  // later occurrences of the rows first seen here
            if (piece == j) apply(k);
        }
      }, 1);
    });
    pb.finish();
    return out;
  }
  Ref<RowSparse> g = sparse_grad(param, grad, o.maximize, true, "SGD");
  if (momentum_buffer) {
    TG_CHECK(momentum_buffer->dense_shape == param.shape() &&
                 momentum_buffer->values.dtype() == param.dtype(),
             RuntimeError, "SGD: sparse momentum_buffer of shape ",
             to_string(momentum_buffer->dense_shape), " does not match parameter ",
             param.describe());
  }
  // The new buffer's rows: the sorted union of the old buffer's and the gradient's.
  // (Buffers made here are already coalesced; one from elsewhere may not be.)
  Ref<RowSparse> old = momentum_buffer;
  if (old) {
    const int64_t* oi = old->indices.data<int64_t>();
    bool sorted_unique = true;
    for (int64_t i = 1; i < old->nnz() && sorted_unique; i++) sorted_unique = oi[i - 1] < oi[i];
    if (!sorted_unique) old = old->coalesce();
    const int64_t* si = old->indices.data<int64_t>();
    TG_CHECK(old->nnz() == 0 || (si[0] >= 0 && si[old->nnz() - 1] < param.shape()[0]),
             IndexError, "SGD: sparse momentum_buffer has rows out of range for parameter ",
             param.describe());
  }
  const int64_t* gi = g->indices.data<int64_t>();
  const int64_t* bi = old ? old->indices.data<int64_t>() : nullptr;
  int64_t ng = g->nnz(), nb = old ? old->nnz() : 0;
  std::vector<int64_t> rows;
  rows.reserve(ng + nb);
  for (int64_t a = 0, b = 0; a < ng || b < nb;) {
    if (b >= nb || (a < ng && gi[a] < bi[b])) rows.push_back(gi[a++]);
    else if (a >= ng || bi[b] < gi[a]) rows.push_back(bi[b++]);
    else { rows.push_back(gi[a]); a++; b++; }
  }
  int64_t nr = (int64_t)rows.size();
  Tensor new_idx = Tensor::empty({nr}, DType::Int64);
  if (nr) std::memcpy(new_idx.data<int64_t>(), rows.data(), (size_t)nr * sizeof(int64_t));
  Shape vs = param.shape();
  vs[0] = nr;
  Tensor new_val = Tensor::empty(vs, param.dtype());
  dispatch_float(param.dtype(), "SGD", [&](auto tag) {
    using T = decltype(tag);
    T* p = pb.data<T>();
    const T* gv = g->values.template data<T>();
    const T* bv = old ? old->values.template data<T>() : nullptr;
    T* nv = new_val.data<T>();
    const T mom = (T)o.momentum, damp = (T)(1 - o.dampening), neg_lr = (T)(-o.lr);
    const bool first = !old, nesterov = o.nesterov;
    for (int64_t r = 0, a = 0, b = 0; r < nr; r++) {
      const T* gr = (a < ng && gi[a] == rows[r]) ? gv + (a++) * rs : nullptr;
      const T* br = (b < nb && bi[b] == rows[r]) ? bv + (b++) * rs : nullptr;
      T* out_r = nv + r * rs;
      T* pr = p + rows[r] * rs;
      for (int64_t j = 0; j < rs; j++) {
        T d = gr ? gr[j] : T(0);
        T buf;
        if (first) buf = d;                                  // buf = grad.clone()
        else if (!br) buf = d * damp;                         // a row new to the buffer
        else if (!gr) buf = mom * br[j];                      // a row with no gradient now
        else buf = std::fma(d, damp, mom * br[j]);
        out_r[j] = buf;
        T upd = nesterov ? (gr ? std::fma(buf, mom, d) : mom * buf) : buf;
        pr[j] = std::fma(upd, neg_lr, pr[j]);
      }
    }
  });
  pb.finish();
  return RowSparse::make(new_idx, new_val, param.shape());
}

// Not traced itself: the .grad reads and the updates it makes are traced one
// by one, exactly as the per-parameter path records them.
void sgd_group(const std::vector<Tensor>& params, const SGDOptions& o) {
  TG_CHECK(o.momentum == 0, ValueError,
           "SGD: sgd_group takes momentum-free steps only, got momentum ", o.momentum);
  std::vector<std::pair<const Tensor*, Tensor>> dense;
  std::vector<std::pair<const Tensor*, Ref<RowSparse>>> sparse;
  for (const Tensor& p : params) {
    if (Ref<RowSparse> s = p.sparse_grad()) {
      check_sparse_weight_decay(o);
      sparse.emplace_back(&p, std::move(s));
    } else if (Tensor g = p.grad(); g.defined()) {
      dense.emplace_back(&p, std::move(g));
    }
  }
  for (auto& [p, g] : sparse) sgd_sparse(*p, *g, Ref<RowSparse>(), o);
  Tensor no_buffer;
  for (auto& [p, g] : dense) sgd(*p, g, no_buffer, o);
}

// ================================================================ Adagrad
// torch/optim/adagrad.py, _single_tensor_adagrad (dense):
//   grad = -grad if maximize; grad = grad.add(param, alpha=weight_decay)
//   clr = lr / (1 + (step - 1) * lr_decay)
//   state_sum.addcmul_(grad, grad, value=1); std = state_sum.sqrt().add_(eps)
//   param.addcdiv_(grad, std, value=-clr)
void adagrad(const Tensor& param, const Tensor& grad, const Tensor& sum, double step,
             const AdagradOptions& o) {
  TG_TRACE(optim::adagrad, param, grad, sum, step, o);
  check_param(param, "Adagrad");
  Tensor g = dense_grad(param, grad, "Adagrad");
  check_state(sum, param, "sum", "Adagrad");
  double clr = o.lr / (1 + (step - 1) * o.lr_decay);
  ParamBuffer pb(param);
  const int64_t n = param.numel();
  dispatch_float(param.dtype(), "Adagrad", [&](auto tag) {
    using T = decltype(tag);
    T* p = pb.data<T>();
    T* s = sum.data<T>();
    const T* gp = g.data<T>();
    const T wd = (T)o.weight_decay, eps = (T)o.eps, neg_clr = (T)(-clr);
    const T sign = o.maximize ? T(-1) : T(1);
    with_flags([&](auto decay) {
      over_elements(n, [=](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; i++) {
          T d = gp[i] * sign;
          if (decay) d = std::fma(p[i], wd, d);
          s[i] = std::fma(d, d, s[i]);
          T sd = std::sqrt(s[i]) + eps;
          p[i] = p[i] + (neg_clr * d) / sd;
        }
      });
    }, o.weight_decay != 0);
  });
  pb.finish();
  sum.bump_version();
}

// The sparse path:
//   grad = grad.coalesce(); state_sum.add_(sparse(values ** 2))
//   std_values = state_sum.sparse_mask(grad)._values().sqrt_().add_(eps)
//   param.add_(sparse(values / std_values), alpha=-clr)
void adagrad_sparse(const Tensor& param, const RowSparse& grad, const Tensor& sum, double step,
                    const AdagradOptions& o) {
  TG_TRACE(optim::adagrad_sparse, param, grad, sum, step, o);
  check_param(param, "Adagrad");
  TG_CHECK(o.weight_decay == 0, RuntimeError,
           "weight_decay option is not compatible with sparse gradients");
  check_state(sum, param, "sum", "Adagrad");
  Ref<RowSparse> g = sparse_grad(param, grad, o.maximize, true, "Adagrad");
  double clr = o.lr / (1 + (step - 1) * o.lr_decay);
  const int64_t rs = grad.row_size();
  ParamBuffer pb(param);
  dispatch_float(param.dtype(), "Adagrad", [&](auto tag) {
    using T = decltype(tag);
    T* p = pb.data<T>();
    T* s = sum.data<T>();
    const T* gv = g->values.template data<T>();
    const int64_t* idx = g->indices.data<int64_t>();
    const T eps = (T)o.eps, neg_clr = (T)(-clr);
    over_rows(g->nnz(), rs, [=](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; k++) {
        if (k + kRowsAhead < k1) {
          prefetch_row<true>(p + idx[k + kRowsAhead] * rs, rs * sizeof(T));
          prefetch_row<true>(s + idx[k + kRowsAhead] * rs, rs * sizeof(T));
        }
        T* pr = p + idx[k] * rs;
        T* sr = s + idx[k] * rs;
        const T* vr = gv + k * rs;
        for (int64_t j = 0; j < rs; j++) {
          T d = vr[j];
          sr[j] = sr[j] + d * d;
          T sd = std::sqrt(sr[j]) + eps;
          pr[j] = std::fma(d / sd, neg_clr, pr[j]);
        }
      }
    });
  });
  pb.finish();
  sum.bump_version();
}

// ================================================================ RMSprop
// torch/optim/rmsprop.py, _single_tensor_rmsprop:
//   grad = -grad if maximize; grad = grad.add(param, alpha=weight_decay)
//   square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
//   centered: grad_avg.lerp_(grad, 1 - alpha)
//             avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
//   else:     avg = square_avg.sqrt()
//   avg = avg.add_(eps)
//   momentum > 0: buf.mul_(momentum).addcdiv_(grad, avg); param.add_(buf, alpha=-lr)
//   else:         param.addcdiv_(grad, avg, value=-lr)
void rmsprop(const Tensor& param, const Tensor& grad, const Tensor& square_avg,
             const Tensor& momentum_buffer, const Tensor& grad_avg, const RMSpropOptions& o) {
  TG_TRACE(optim::rmsprop, param, grad, square_avg, momentum_buffer, grad_avg, o);
  check_param(param, "RMSprop");
  Tensor g = dense_grad(param, grad, "RMSprop");
  check_state(square_avg, param, "square_avg", "RMSprop");
  bool use_momentum = o.momentum > 0;
  if (use_momentum) check_state(momentum_buffer, param, "momentum_buffer", "RMSprop");
  if (o.centered) check_state(grad_avg, param, "grad_avg", "RMSprop");
  ParamBuffer pb(param);
  const int64_t n = param.numel();
  dispatch_float(param.dtype(), "RMSprop", [&](auto tag) {
    using T = decltype(tag);
    T* p = pb.data<T>();
    T* sa = square_avg.data<T>();
    T* buf = use_momentum ? momentum_buffer.data<T>() : nullptr;
    T* ga = o.centered ? grad_avg.data<T>() : nullptr;
    const T* gp = g.data<T>();
    const T wd = (T)o.weight_decay, alpha = (T)o.alpha, one_m_alpha = (T)(1 - o.alpha);
    const T eps = (T)o.eps, mom = (T)o.momentum, neg_lr = (T)(-o.lr);
    const T sign = o.maximize ? T(-1) : T(1), coeff = lerp_coeff(one_m_alpha);
    with_flags([&](auto decay, auto centered, auto small, auto momentum) {
      over_elements(n, [=](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; i++) {
          T d = gp[i] * sign;
          if (decay) d = std::fma(p[i], wd, d);
          sa[i] = std::fma(one_m_alpha * d, d, alpha * sa[i]);
          T avg;
          if (centered) {
            ga[i] = lerp<small>(ga[i], d, coeff);
            avg = std::sqrt(std::fma(-ga[i], ga[i], sa[i]));
          } else {
            avg = std::sqrt(sa[i]);
          }
          avg = avg + eps;
          if (momentum) {
            buf[i] = mom * buf[i] + d / avg;
            p[i] = std::fma(buf[i], neg_lr, p[i]);
          } else {
            p[i] = p[i] + (neg_lr * d) / avg;
          }
        }
      });
    }, o.weight_decay != 0, o.centered, lerp_small(one_m_alpha), use_momentum);
  });
  pb.finish();
  square_avg.bump_version();
  if (use_momentum) momentum_buffer.bump_version();
  if (o.centered) grad_avg.bump_version();
}

// ================================================================ Adam / AdamW
// torch/optim/adam.py, _single_tensor_adam (capturable=False):
//   grad = -grad if maximize
//   weight_decay != 0: param.mul_(1 - lr * weight_decay)   if decoupled (AdamW)
//                      grad = grad.add(param, alpha=weight_decay) otherwise
//   exp_avg.lerp_(grad, 1 - beta1)
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   bias_correction1 = 1 - beta1 ** step; bias_correction2 = 1 - beta2 ** step
//   step_size = lr / bias_correction1; bias_correction2_sqrt = bias_correction2 ** 0.5
//   amsgrad: torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
//   denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)   (v = max_exp_avg_sq or exp_avg_sq)
//   param.addcdiv_(exp_avg, denom, value=-step_size)
void adam(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
          const Tensor& max_exp_avg_sq, double step, const AdamOptions& o) {
  TG_TRACE(optim::adam, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, o);
  const char* op = o.decoupled_weight_decay ? "AdamW" : "Adam";
  check_param(param, op);
  Tensor g = dense_grad(param, grad, op);
  check_state(exp_avg, param, "exp_avg", op);
  check_state(exp_avg_sq, param, "exp_avg_sq", op);
  if (o.amsgrad) check_state(max_exp_avg_sq, param, "max_exp_avg_sq", op);
  double bias_correction1 = 1 - std::pow(o.beta1, step);
  double bias_correction2 = 1 - std::pow(o.beta2, step);
  double step_size = o.lr / bias_correction1;
  double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
  ParamBuffer pb(param);
  const int64_t n = param.numel();
  dispatch_float(param.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* p = pb.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    T* vmax = o.amsgrad ? max_exp_avg_sq.data<T>() : nullptr;
    const T* gp = g.data<T>();
    const T one_m_beta1 = (T)(1 - o.beta1), coeff = lerp_coeff(one_m_beta1);
    const T beta2 = (T)o.beta2, one_m_beta2 = (T)(1 - o.beta2);
    const T wd = (T)o.weight_decay, decay_factor = (T)(1 - o.lr * o.weight_decay);
    const T bc2_sqrt = (T)bias_correction2_sqrt, eps = (T)o.eps, neg_step = (T)(-step_size);
    const T sign = o.maximize ? T(-1) : T(1);
    const bool decay = o.weight_decay != 0;
    with_flags([&](auto l2, auto decoupled, auto amsgrad, auto small) {
      over_elements(n, [=](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; i++) {
          T d = gp[i] * sign;
          if (decoupled) p[i] = p[i] * decay_factor;
          if (l2) d = std::fma(p[i], wd, d);
          m[i] = lerp<small>(m[i], d, coeff);
          v[i] = std::fma(one_m_beta2 * d, d, beta2 * v[i]);
          T vv = v[i];
          if (amsgrad) vv = vmax[i] = nan_max(vmax[i], v[i]);
          T denom = std::sqrt(vv) / bc2_sqrt + eps;
          p[i] = p[i] + (neg_step * m[i]) / denom;
        }
      });
    }, decay && !o.decoupled_weight_decay, decay && o.decoupled_weight_decay, o.amsgrad,
       lerp_small(one_m_beta1));
  });
  pb.finish();
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
  if (o.amsgrad) max_exp_avg_sq.bump_version();
}

// ================================================================ SparseAdam
// torch/optim/_functional.py, sparse_adam:
//   grad = (-grad if maximize).coalesce(); skip if it has no values
//   old_exp_avg_values = exp_avg.sparse_mask(grad)._values()
//   exp_avg_update_values = grad_values.sub(old_exp_avg_values).mul_(1 - beta1)
//   exp_avg.add_(sparse(exp_avg_update_values))
//   old_exp_avg_sq_values = exp_avg_sq.sparse_mask(grad)._values()
//   exp_avg_sq_update_values = grad_values.pow(2).sub_(old_exp_avg_sq_values).mul_(1 - beta2)
//   exp_avg_sq.add_(sparse(exp_avg_sq_update_values))
//   numer = exp_avg_update_values.add_(old_exp_avg_values)
//   denom = exp_avg_sq_update_values.add_(old_exp_avg_sq_values).sqrt_().add_(eps)
//   step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
//   param.add_(sparse(-step_size * numer.div_(denom)))
void sparse_adam(const Tensor& param, const RowSparse& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double step, const AdamOptions& o) {
  TG_TRACE(optim::sparse_adam, param, grad, exp_avg, exp_avg_sq, step, o);
  check_param(param, "SparseAdam");
  check_state(exp_avg, param, "exp_avg", "SparseAdam");
  check_state(exp_avg_sq, param, "exp_avg_sq", "SparseAdam");
  Ref<RowSparse> g = sparse_grad(param, grad, o.maximize, true, "SparseAdam");
  if (g->values.numel() == 0) return;
  double bias_correction1 = 1 - std::pow(o.beta1, step);
  double bias_correction2 = 1 - std::pow(o.beta2, step);
  double step_size = o.lr * std::sqrt(bias_correction2) / bias_correction1;
  const int64_t rs = grad.row_size();
  ParamBuffer pb(param);
  dispatch_float(param.dtype(), "SparseAdam", [&](auto tag) {
    using T = decltype(tag);
    T* p = pb.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    const T* gv = g->values.template data<T>();
    const int64_t* idx = g->indices.data<int64_t>();
    const T one_m_beta1 = (T)(1 - o.beta1), one_m_beta2 = (T)(1 - o.beta2);
    const T eps = (T)o.eps, neg_step = (T)(-step_size);
    over_rows(g->nnz(), rs, [=](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; k++) {
        if (k + kRowsAhead < k1) {
          int64_t ahead = idx[k + kRowsAhead] * rs;
          prefetch_row<true>(p + ahead, rs * sizeof(T));
          prefetch_row<true>(m + ahead, rs * sizeof(T));
          prefetch_row<true>(v + ahead, rs * sizeof(T));
        }
        int64_t off = idx[k] * rs;
        const T* vr = gv + k * rs;
        for (int64_t j = 0; j < rs; j++) {
          T d = vr[j];
          T old_m = m[off + j], old_v = v[off + j];
          T um = (d - old_m) * one_m_beta1;
          T uv = (d * d - old_v) * one_m_beta2;
          m[off + j] = old_m + um;
          v[off + j] = old_v + uv;
          T numer = um + old_m;
          T denom = std::sqrt(uv + old_v) + eps;
          p[off + j] = p[off + j] + neg_step * (numer / denom);
        }
      }
    });
  });
  pb.finish();
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
}

void zero_sparse_grad(const Tensor& param) {
  TG_TRACE(optim::zero_sparse_grad, param);
  Ref<RowSparse> g = param.sparse_grad();
  if (!g) return;
  Shape vs = g->values.shape();
  vs[0] = 0;
  Tensor(param).set_sparse_grad(RowSparse::make(Tensor::empty({0}, DType::Int64),
                                                Tensor::empty(vs, g->values.dtype()),
                                                g->dense_shape));
}

// ================================================================ step tensors
void adagrad(const Tensor& param, const Tensor& grad, const Tensor& sum, const Tensor& step,
             const AdagradOptions& o) {
  TG_TRACE(optim::adagrad, param, grad, sum, step, o);
  adagrad(param, grad, sum, increment_step(step), o);
}

void adagrad_sparse(const Tensor& param, const RowSparse& grad, const Tensor& sum,
                    const Tensor& step, const AdagradOptions& o) {
  TG_TRACE(optim::adagrad_sparse, param, grad, sum, step, o);
  adagrad_sparse(param, grad, sum, increment_step(step), o);
}

void adam(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
          const Tensor& max_exp_avg_sq, const Tensor& step, const AdamOptions& o) {
  TG_TRACE(optim::adam, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, o);
  adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, increment_step(step), o);
}

}  // namespace tg::optim
