// Optimizer update kernels: one call updates one parameter buffer in place,
// with the arithmetic of PyTorch's single-tensor (foreach=False) optimizers.
//
// Note [Matching PyTorch's optimizer arithmetic]
// Each update follows torch.optim's per-tensor code op by op, and rounds the
// way its CPU kernels do, so that a float32 run tracks PyTorch step by step:
//  * Python-side scalars (bias corrections, step sizes, 1 - beta, ...) are
//    computed in double exactly as torch's Python does (std::pow for `**`),
//    then cast to the parameter's dtype, as ATen casts a Python scalar;
//  * `a.add_(b, alpha=s)` is fma(b, s, a) (ATen's vectorised add is fmadd);
//    `a.addcmul_(b, c, value=s)` is fma(s * b, c, a); `a.lerp_(b, w)` is
//    fma(w, b - a, a) for |w| < 0.5 and fma(w - 1, b - a, b) otherwise;
//    `a.addcdiv_(b, c, value=s)` is a + (s * b) / c (no fusion);
//  * everything else (mul by a scalar, division by a scalar, sqrt) rounds
//    once per op. updates.cpp is compiled with -ffp-contract=off so the
//    compiler adds no fusions of its own.
// What remains different: PyTorch's float32 sqrt goes through MKL's vector
// sqrt, which is not always correctly rounded (1 ulp apart at times); ours is.
//
// The parameter is written in place (non-contiguous parameters through a
// contiguous copy) and its version counter bumped; the gradient is never
// modified. State buffers (momentum, moments, ...) are contiguous tensors of
// the parameter's shape and dtype, created by the caller (zeros / full), and
// updated in place. None of this records on the tape and none of it checks
// grad mode: optimizer steps write parameters that require grad by design.
#pragma once

#include <vector>

#include "tapegrad/sparse.h"
#include "tapegrad/tensor.h"

namespace tg::optim {

// ---------------------------------------------------------------- SGD
struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
};
// `momentum_buffer` is read and updated when momentum != 0; when it is
// undefined (the first step) it is created as a copy of the (decayed) gradient.
void sgd(const Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SGDOptions& o);

// SGD with a row-sparse gradient, touching only rows that have a gradient
// (or, with momentum, a momentum value). As PyTorch: weight_decay != 0 is an
// error; without momentum every (uncoalesced) gradient row is applied in
// order; with momentum the buffer is itself row-sparse (coalesced here; torch
// keeps it uncoalesced, which is the same sum) and is returned.
Ref<RowSparse> sgd_sparse(const Tensor& param, const RowSparse& grad,
                          const Ref<RowSparse>& momentum_buffer, const SGDOptions& o);

// One momentum-free step of a parameter group: every parameter's .grad, dense
// or row-sparse, is read and checked before any parameter changes; parameters
// without a gradient are skipped. (From Python, a loop over the parameters
// cost more than the NER step's dense updates themselves.)
void sgd_group(const std::vector<Tensor>& params, const SGDOptions& o);

// ---------------------------------------------------------------- Adagrad
struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double eps = 1e-10;
  bool maximize = false;
};
// `step` is the step count after this step's increment (1 on the first step).
void adagrad(const Tensor& param, const Tensor& grad, const Tensor& sum, double step,
             const AdagradOptions& o);
// torch's sparse path: the gradient is coalesced, only its rows of `sum` and
// `param` change; weight_decay != 0 is an error.
void adagrad_sparse(const Tensor& param, const RowSparse& grad, const Tensor& sum, double step,
                    const AdagradOptions& o);

// ---------------------------------------------------------------- RMSprop
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
  bool maximize = false;
};
// `momentum_buffer` is used iff momentum > 0, `grad_avg` iff centered.
void rmsprop(const Tensor& param, const Tensor& grad, const Tensor& square_avg,
             const Tensor& momentum_buffer, const Tensor& grad_avg, const RMSpropOptions& o);

// ---------------------------------------------------------------- Adam / AdamW
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;  // AdamW
};
// `max_exp_avg_sq` is used iff amsgrad. `step` counts this step (1 first).
void adam(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
          const Tensor& max_exp_avg_sq, double step, const AdamOptions& o);

// ---------------------------------------------------------------- SparseAdam
// torch.optim.SparseAdam: lazy Adam on the rows of a (coalesced) row-sparse
// gradient, with bias correction from the parameter's own step count.
// Uses lr, beta1, beta2, eps and maximize of `o`. A gradient with no rows
// changes nothing.
void sparse_adam(const Tensor& param, const RowSparse& grad, const Tensor& exp_avg,
                 const Tensor& exp_avg_sq, double step, const AdamOptions& o);

// ---------------------------------------------------------------- step tensors
// The same updates with the step count kept in a one-element tensor (as
// torch.optim does): each call increments it, then updates with the new
// count. This is the form a recorded program can replay (see trace.h): the
// count lives in a tensor the program owns, not in the caller's variables.
void adagrad(const Tensor& param, const Tensor& grad, const Tensor& sum, const Tensor& step,
             const AdagradOptions& o);
void adagrad_sparse(const Tensor& param, const RowSparse& grad, const Tensor& sum,
                    const Tensor& step, const AdagradOptions& o);
void adam(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
          const Tensor& max_exp_avg_sq, const Tensor& step, const AdamOptions& o);

// ---------------------------------------------------------------- helpers
// zero_grad(set_to_none=False) on a row-sparse .grad: as PyTorch, it becomes a
// row-sparse gradient with no rows (it stays sparse). No-op without one.
void zero_sparse_grad(const Tensor& param);

// step += 1 in the step tensor's own dtype (PyTorch keeps a float32 0-d
// tensor); returns the new value.
double increment_step(const Tensor& step);

}  // namespace tg::optim
