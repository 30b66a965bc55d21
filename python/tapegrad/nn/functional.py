"""tapegrad.nn.functional, with PyTorch's names and semantics.

Fused kernels (cross_entropy, binary_cross_entropy_with_logits, mse_loss,
softmax, ...) are single tape records with hand-written backward; the rest are
composites of recorded primitives and need no backward of their own. A fused
loss called with options its kernel lacks (class weights, label smoothing,
pos_weight) runs as a composite instead; its default call stays fused.
"""

import math
import warnings

import numpy as np

from .. import _C
from .._C import (
    embedding as _embedding,
    hardtanh as _hardtanh,
    leaky_relu as _leaky_relu,
    log_softmax as _log_softmax,
    prelu,
    relu as _relu,
    sigmoid,
    softmax as _softmax,
    tanh,
)

__all__ = [
    "relu", "relu_", "leaky_relu", "leaky_relu_", "hardtanh", "hardtanh_", "prelu", "sigmoid",
    "tanh", "softmax", "log_softmax",
    "silu", "elu", "softplus", "logsigmoid", "relu6", "softsign", "gelu",
    "embedding", "linear", "dropout", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
    "smooth_l1_loss", "huber_loss", "kl_div", "hinge_loss", "multi_margin_loss",
    "one_hot", "pad", "normalize", "cosine_similarity", "layer_norm",
]


# inplace=True writes the result over the input and returns it, as in PyTorch;
# under autograd it is recorded (Note [In-place ops with autograd] in
# cpp/src/ops/elementwise.cpp), so it saves no memory here, but it keeps the
# semantics a ported script relies on.
def relu(input, inplace=False):
    return input.relu_() if inplace else _relu(input)


def relu_(input):
    return input.relu_()


def leaky_relu(input, negative_slope=0.01, inplace=False):
    if inplace:
        return _C._leaky_relu_(input, negative_slope)
    return _leaky_relu(input, negative_slope)


def leaky_relu_(input, negative_slope=0.01):
    return _C._leaky_relu_(input, negative_slope)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if inplace:
        return _C._hardtanh_(input, min_val, max_val)
    return _hardtanh(input, min_val, max_val)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return _C._hardtanh_(input, min_val, max_val)


def _need_dim(name, dim):
    if dim is None:
        raise TypeError(f"{name}: pass dim= explicitly (the implicit choice is deprecated in PyTorch)")
    return dim


def softmax(input, dim=None):
    return _softmax(input, _need_dim("softmax", dim))


def log_softmax(input, dim=None):
    return _log_softmax(input, _need_dim("log_softmax", dim))


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of `weight` for the int64 `input` indices. Backward touches only the rows
    looked up; sparse=True delivers weight.grad as a RowSparseGrad (for SparseAdam and
    sparse-aware SGD/Adagrad) instead of a dense tensor of the whole table."""
    if max_norm is not None or scale_grad_by_freq:
        raise ValueError("embedding: max_norm and scale_grad_by_freq are not supported")
    return _embedding(input, weight, padding_idx, sparse)


def linear(input, weight, bias=None):
    """y = x W^T + b, with PyTorch's weight layout (out_features, in_features).

    One recorded op (the fused linear, see Note [Fused linear] in
    cpp/src/ops/matmul.cpp): its values are bit-identical to
    ``input.matmul(weight.t()) + bias``. A 1-D weight or a bias that is not 1-D
    (both of which torch accepts) take that composite path.
    """
    if weight.ndim == 2 and (bias is None or bias.ndim == 1):
        return _C._linear(input, weight, bias, "none")
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def _linear_act(input, weight, bias, activation):
    """act(input @ weight^T + bias) as one fused op; activation in
    'none', 'relu', 'tanh', 'sigmoid' (used by nn.Sequential)."""
    return _C._linear(input, weight, bias, activation)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes elements with probability p and scales the rest by 1/(1-p) (inverted dropout)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input.mul_(0.0) if inplace else input * 0.0
    keep = (_C._rand(list(input.shape), input.dtype) >= p).to(input.dtype)
    if inplace:
        return input.mul_(keep).mul_(1.0 / (1.0 - p))
    return input * keep * (1.0 / (1.0 - p))


def _legacy_reduction(size_average, reduce, reduction):
    """torch's deprecated size_average= / reduce= flags, mapped onto reduction."""
    if size_average is None and reduce is None:
        return reduction
    reduce = True if reduce is None else reduce
    size_average = True if size_average is None else size_average
    reduction = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{reduction}' instead.", UserWarning, stacklevel=3)
    return reduction


def _class_targets(op, input, target, ignore_index):
    """Checks class-index targets against (N, C, d...) or (C,) scores.

    Returns (class dim, C, keep, safe): `keep` the bool tensor of targets that are
    not ignore_index, `safe` the targets with ignored ones set to class 0, so that
    they can be gathered (their loss is masked out afterwards).
    """
    if target.dtype != _C.dtype.int64:
        raise TypeError(f"{op}: expected int64 class indices as target, got {target.dtype} "
                        f"{list(target.shape)}")
    shape = tuple(input.shape)
    if input.ndim == 0 or (input.ndim == 1 and target.ndim != 0) or \
            (input.ndim >= 2 and tuple(target.shape) != shape[:1] + shape[2:]):
        raise ValueError(f"{op}: expected input (N, C, d...) with target (N, d...), or input (C) "
                         f"with a 0-d target, got input {list(shape)} and target "
                         f"{list(target.shape)}")
    cdim = 0 if input.ndim == 1 else 1
    c = shape[cdim]
    labels = target.numpy()
    keep = labels != ignore_index
    bad = keep & ((labels < 0) | (labels >= c))
    if bad.any():
        raise IndexError(f"{op}: target {int(labels[bad].flat[0])} is out of bounds for {c} "
                         "classes")
    # np.array, not ascontiguousarray, which would turn a 0-d target into 1-d.
    safe = _C.from_numpy(np.array(np.where(keep, labels, 0), dtype=np.int64))
    return cdim, c, _C.from_numpy(np.array(keep)), safe


def _check_class_weight(op, weight, c):
    if weight is not None and tuple(weight.shape) != (c,):
        raise RuntimeError(f"{op}: weight should have one entry per class ({c}), got shape "
                           f"{list(weight.shape)}")


def _nll_terms(op, logp, target, weight, ignore_index):
    """Per-target -w[y] * logp[y] (0 where ignored) and the weights w[y] that a
    'mean' divides by (torch's weighted mean), both shaped like target."""
    cdim, c, keep, safe = _class_targets(op, logp, target, ignore_index)
    _check_class_weight(op, weight, c)
    picked = logp.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)
    if weight is None:
        w = keep.to(logp.dtype)
    else:
        w = _C.where(keep, weight.index_select(0, safe.reshape(-1)).reshape(list(target.shape)),
                     0.0)
    return _C.where(keep, -picked * w, 0.0), w, cdim, c, keep


def _weighted_reduce(loss, total_weight, reduction, op):
    if reduction == "mean":
        return loss.sum() / total_weight.sum()
    return _reduce(loss, reduction, op)


def _class_weight_broadcast(weight, logp, cdim):
    """weight (C,) shaped to multiply logp (N, C, d...) along its class dim."""
    return weight.reshape([-1] + [1] * (logp.ndim - cdim - 1))


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of class indices; 'mean' divides by the summed weights
    of the targets that are not ignored (their count without weight), as torch."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if weight is None:  # the fused record
        return _C.nll_loss(input, target, reduction, ignore_index)
    loss, w, _, _, _ = _nll_terms("nll_loss", input, target, weight, ignore_index)
    return _weighted_reduce(loss, w, reduction, "nll_loss")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """log_softmax + nll_loss over class indices (or class probabilities: a float target
    shaped like input), with torch's class weights and label smoothing.

    Note [Cross entropy fast path]
    Class-index targets without weight or smoothing (the training-loop case) run
    as the one fused record of _C.cross_entropy. The other options are a composite
    of log_softmax, gather and sums. With smoothing eps over C classes the loss is
    (1 - eps) * nll + eps / C * smooth, where smooth = -sum_c w_c logp_c per
    target; under 'mean' both terms are divided by the same sum of the targets'
    weights, which is torch's rule.
    """
    # (is_floating_point() is the cheapest dtype test: reading .dtype costs ~1 us)
    if weight is None and label_smoothing == 0.0 and size_average is None and reduce is None \
            and not target.is_floating_point():
        return _C.cross_entropy(input, target, reduction, ignore_index)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "cross_entropy"
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                           f"{label_smoothing}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if target.dtype.is_floating_point:
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing)
    if weight is None and label_smoothing == 0.0:  # only the legacy flags were given
        return _C.cross_entropy(input, target, reduction, ignore_index)
    cdim = 0 if input.ndim == 1 else 1
    logp = _log_softmax(input, cdim)
    loss, w, cdim, c, keep = _nll_terms(op, logp, target, weight, ignore_index)
    loss = _weighted_reduce(loss, w, reduction, op)
    if label_smoothing == 0.0:
        return loss
    wlogp = logp if weight is None else logp * _class_weight_broadcast(weight, logp, cdim)
    smooth = _C.where(keep, -wlogp.sum(cdim), 0.0)
    smooth = _weighted_reduce(smooth, w, reduction, op)
    return (1 - label_smoothing) * loss + smooth * (label_smoothing / c)


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing):
    op = "cross_entropy"
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: a float target holds class probabilities and must be shaped "
                         f"like input, got input {list(input.shape)} and target "
                         f"{list(target.shape)}")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    cdim = 0 if input.ndim == 1 else 1
    c = input.shape[cdim]
    _check_class_weight(op, weight, c)
    logp = _log_softmax(input, cdim)
    if label_smoothing > 0.0:
        target = target * (1 - label_smoothing) + label_smoothing / c
    terms = logp * target
    if weight is not None:
        terms = terms * _class_weight_broadcast(weight, logp, cdim)
    loss = -terms.sum(cdim)
    # 'mean' averages over the targets (N * d...), whatever the weights.
    return _reduce(loss, reduction, op)


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(input, target, reduction="mean", *, half=False):
    """Mean squared error. half=True multiplies by 1/2: with reduction='sum' that is the
    lectures' 1/2 ||y - y*||^2, whose gradient is simply (y - y*)."""
    loss = _C.mse_loss(input, target, reduction)
    return loss * 0.5 if half else loss


def hinge_loss(input, target, margin=1.0, reduction="mean"):
    """Binary max-margin loss max(0, margin - y * s) for targets y in {-1, +1}.

    (A tapegrad extension: PyTorch's hinge_embedding_loss is a different loss.)
    """
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"hinge_loss: input {list(input.shape)} and target "
                         f"{list(target.shape)} must have the same shape")
    return _reduce(relu(margin - target * input), reduction, "hinge_loss")


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """Multi-class hinge: sum_{i != y} max(0, margin - x[y] + x[i])^p / C (PyTorch semantics)."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 are supported, got {p}")
    if weight is not None:
        raise ValueError("multi_margin_loss: class weights are not supported")
    if not input.dtype.is_floating_point:
        # torch: '"multi_margin_loss_cpu_kernel" not implemented for 'Bool'' (and Long)
        raise TypeError(f"multi_margin_loss: input must be float32 or float64, got {input.dtype} "
                        f"{list(input.shape)}")
    if target.dtype != _C.dtype.int64:
        raise TypeError(f"multi_margin_loss: target must be int64 class indices, got "
                        f"{target.dtype} {list(target.shape)}")
    if input.ndim > 2 or target.ndim > 1:
        raise ValueError(f"multi_margin_loss: expected input (N, C) or (C) and target (N) or (), "
                         f"got {list(input.shape)} and {list(target.shape)}")
    if (input.shape[-1] if input.ndim else 1) == 0:  # an empty batch (0, C) is allowed, as in torch
        raise ValueError(f"multi_margin_loss: expected a non-empty vector or matrix (an empty "
                         f"batch is allowed), got {list(input.shape)}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    y = target.reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"multi_margin_loss: expected input (N, C) and target (N), got "
                         f"{list(input.shape)} and {list(target.shape)}")
    n, c = x.shape
    labels = y.numpy()
    bad = (labels < 0) | (labels >= c)
    if bad.any():
        raise IndexError(f"multi_margin_loss: target {int(labels[bad][0])} is out of bounds for "
                         f"{c} classes")
    correct = x.gather(1, y.unsqueeze(1))
    margins = relu(margin - correct + x)
    if p == 2:
        margins = margins * margins
    is_target = _C.from_numpy(np.arange(c)[None, :] == y.numpy()[:, None])
    per_sample = _C.where(is_target, 0.0, margins).sum(1) / c
    if input.ndim < 2:
        per_sample = per_sample.reshape(list(target.shape))  # as torch: () or (1,)
    return _reduce(per_sample, reduction, "multi_margin_loss")


# ---------------------------------------------------------------- regression losses
def _check_same_shape(op, input, target):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: target size {list(target.shape)} must be the same as input "
                         f"size {list(input.shape)}")


def _broadcast_pair(op, input, target):
    """torch's regression losses broadcast a differently shaped target, with a warning."""
    if tuple(input.shape) == tuple(target.shape):
        return
    try:
        np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    except ValueError:
        raise ValueError(f"{op}: target {list(target.shape)} does not broadcast with input "
                         f"{list(input.shape)}") from None
    warnings.warn(f"{op}: using a target size ({list(target.shape)}) that is different to the "
                  f"input size ({list(input.shape)}). This will likely lead to incorrect "
                  "results due to broadcasting. Please ensure they have the same size.",
                  UserWarning, stacklevel=3)


def _loss_weight(op, input, weight):
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weights and input must have the same size, got weight "
                         f"{list(weight.shape)} and input {list(input.shape)}")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|; with weight, 'mean' is the weighted mean sum(w l) / sum(w)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _broadcast_pair("l1_loss", input, target)
    _loss_weight("l1_loss", input, weight)
    loss = (input - target).abs()
    if weight is None:
        return _reduce(loss, reduction, "l1_loss")
    return _weighted_reduce(loss * weight, weight, reduction, "l1_loss")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where d = |input - target| < beta, else d - 0.5 beta (beta = 0: L1)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "smooth_l1_loss"
    if beta < 0:
        raise RuntimeError(f"{op}: beta must be non-negative, got {beta}")
    _broadcast_pair(op, input, target)
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction, op)
    return _reduce(_C.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction, op)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where d = |input - target| < delta, else delta (d - 0.5 delta). With
    weight, 'mean' is mean(w l) (torch's rule here, unlike l1_loss's)."""
    op = "huber_loss"
    if delta <= 0:
        raise RuntimeError(f"{op}: delta must be positive, got {delta}")
    _broadcast_pair(op, input, target)
    _loss_weight(op, input, weight)
    d = (input - target).abs()
    loss = _C.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce(loss if weight is None else loss * weight, reduction, op)


# ---------------------------------------------------------------- probability losses
def _positive_log(x):
    """log(x) clamped at -100 (torch's BCE rule), with finite gradients at x = 0:
    zeros are replaced before the log, not after."""
    pos = x > 0
    return _C.where(pos, _C.where(pos, x, 1.0).log().clamp(min=-100.0), -100.0)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-w (y log x + (1 - y) log(1 - x)) for probabilities x, each log clamped at -100
    as torch does (so x = 0 or 1 gives a finite loss; there the gradient is 0)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy"
    _check_same_shape(op, input, target)
    x = input.detach().numpy()
    if x.size and not ((x >= 0) & (x <= 1)).all():
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1 (input "
                           f"{list(input.shape)} has {x[~((x >= 0) & (x <= 1))].flat[0]})")
    loss = -(target * _positive_log(input) + (1 - target) * _positive_log(1 - input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """BCE of sigmoid(input), stable for any logit. pos_weight (broadcast along the
    last, class dim) scales the positive term: (1 - y) x + (1 + (pw - 1) y) softplus(-x)."""
    if weight is None and pos_weight is None and size_average is None and reduce is None:
        return _C.binary_cross_entropy_with_logits(input, target, reduction)  # the fused record
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy_with_logits"
    if weight is None and pos_weight is None:
        return _C.binary_cross_entropy_with_logits(input, target, reduction)
    _check_same_shape(op, input, target)
    if pos_weight is None:
        loss = _C.binary_cross_entropy_with_logits(input, target, "none")
    else:
        # softplus(-x) is the fused loss at target 1 (log1p inside: exact for any x).
        softplus_neg = _C.binary_cross_entropy_with_logits(input, _ones_like(input), "none")
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise: target (log target - input), 0 where target is 0.
    input holds log-probabilities; log_target=True takes target as log-probabilities too.
    reduction='batchmean' divides the sum by the batch size (the KL divergence proper)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    op = "kl_div"
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"{op}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got "
                         f"{reduction!r}")
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size "
                      "and the support size; 'batchmean' divides only by the batch size, which "
                      "is the KL divergence (torch warns the same)", UserWarning, stacklevel=2)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        pos = target > 0
        # x log x -> 0 at x = 0; the inner where keeps log's gradient finite there.
        xlogx = _C.where(pos, target * _C.where(pos, target, 1.0).log(), 0.0)
        loss = xlogx - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.ndim else loss.sum()
    return _reduce(loss, reduction, op)


# ---------------------------------------------------------------- activations
def _ones_like(x):
    return _C._full(list(x.shape), 1.0, x.dtype)


def _zeros_like(x):
    return _C._zeros(list(x.shape), x.dtype)


def _write_over(input, f):
    """inplace=True for a composite activation: f(input) written over input. Under
    autograd f runs on a recorded clone, so the write cannot invalidate a value f's
    ops saved (see Note [In-place ops with autograd])."""
    src = input.clone() if input.requires_grad and _C.is_grad_enabled() else input
    return input.copy_(f(src))


def silu(input, inplace=False):
    """x * sigmoid(x) (swish)."""
    if inplace:
        return _write_over(input, silu)
    return input * sigmoid(input)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    if inplace:
        return _write_over(input, lambda x: elu(x, alpha))
    # exp only sees x <= 0, so the branch not taken cannot overflow into a NaN gradient.
    return _C.where(input > 0, input, alpha * (input.clamp(max=0.0).exp() - 1))


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as torch).

    The log(1 + exp(z)) is the fused BCE-with-logits kernel at target 0, which is
    max(z, 0) + log1p(exp(-|z|)): no overflow for large z, full precision for very
    negative z, gradient sigmoid(z).
    """
    z = input * beta
    soft = _C.binary_cross_entropy_with_logits(z, _zeros_like(z), "none")
    if beta != 1:
        soft = soft / beta
    return _C.where(z > threshold, input, soft)


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), computed stably (see softplus)."""
    return -_C.binary_cross_entropy_with_logits(input, _ones_like(input), "none")


def relu6(input, inplace=False):
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def softsign(input):
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


def gelu(input, approximate="none"):
    """x * Phi(x). approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1 + tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * input * (1 + _C.erf(input * (1 / math.sqrt(2.0))))


# ---------------------------------------------------------------- tensor utilities
def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding along a new last dimension (not differentiable)."""
    if not isinstance(tensor, _C.Tensor) or tensor.dtype != _C.dtype.int64:
        raise TypeError("one_hot: expected an int64 tensor of class indices, got "
                        + (f"{tensor.dtype} {list(tensor.shape)}" if isinstance(tensor, _C.Tensor)
                           else type(tensor).__name__))
    labels = tensor.numpy()
    if labels.size and labels.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(labels.min())}")
    if num_classes == -1:
        if not labels.size:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor")
        num_classes = int(labels.max()) + 1
    elif num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be non-negative or -1, got {num_classes}")
    elif labels.size and labels.max() >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes "
                           f"({num_classes}), got {int(labels.max())}")
    out = (labels[..., None] == np.arange(num_classes)).astype(np.int64)
    return _C.from_numpy(np.ascontiguousarray(out))


def pad(input, pad, mode="constant", value=None):
    """Pads the last len(pad) // 2 dimensions: pad = (left of the last dim, right of it,
    left of the one before, ...). Negative amounts crop. Only mode='constant'."""
    op = "pad"
    if mode != "constant":
        raise NotImplementedError(f"{op}: only mode='constant' is supported, got {mode!r}")
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"{op}: padding length must be even and at most twice the number of "
                         f"dimensions of the input, got {len(pad)} for input {list(input.shape)}")
    value = 0.0 if value is None else float(value)
    out = input
    for i in range(len(pad) // 2):
        dim, before, after = input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        size = out.shape[dim]
        if size + min(before, 0) + min(after, 0) < 0:
            raise ValueError(f"{op}: padding {(before, after)} crops dimension {dim} of input "
                             f"{list(input.shape)} below size 0")
        # Crop first (negative amounts), then concatenate constant blocks.
        start, keep = -min(before, 0), size + min(before, 0) + min(after, 0)
        if keep != size:
            out = out.narrow(dim, start, keep)
        parts = []
        for amount, side in ((before, 0), (after, 1)):
            if amount > 0:
                shape = list(out.shape)
                shape[dim] = amount
                parts.append((side, _C._full(shape, value, out.dtype)))
        if parts:
            pieces = [t for side, t in parts if side == 0] + [out] + \
                     [t for side, t in parts if side == 1]
            out = _C.cat(pieces, dim)
    return out


def _vector_norm(x, p, dim):
    """The p-norm along dim (kept), with gradient 0 rather than NaN for a zero vector."""
    if p == math.inf:
        return _C.amax(x.abs(), dim, True)
    s = (x.abs() ** p).sum(dim, keepdim=True) if p != 2 else (x * x).sum(dim, keepdim=True)
    nonzero = s > 0
    return _C.where(nonzero, _C.where(nonzero, s, 1.0) ** (1.0 / p), 0.0)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p, eps) along dim."""
    return input / _vector_norm(input, p, dim).clamp(min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along dim (x1, x2 broadcast)."""
    try:
        shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except ValueError:
        raise ValueError(f"cosine_similarity: x1 {list(x1.shape)} and x2 {list(x2.shape)} do "
                         "not broadcast") from None
    if not -len(shape) <= dim < max(len(shape), 1):
        raise IndexError(f"cosine_similarity: dim {dim} is out of range for shape {list(shape)}")
    # As torch, eps clamps the norms' values only: the gradient is that of the
    # unclamped norm, even for a vector shorter than eps.
    def unit(x):
        norm = _vector_norm(x, 2.0, dim)
        return x / (norm + (norm.clamp(min=eps) - norm).detach())

    return (unit(x1) * unit(x2)).sum(dim)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) over the trailing normalized_shape dims (biased var),
    then * weight + bias."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(d) for d in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != normalized_shape or k > input.ndim:
        raise ValueError(f"layer_norm: input {list(input.shape)} does not end in "
                         f"normalized_shape {list(normalized_shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != normalized_shape:
            raise ValueError(f"layer_norm: {name} has shape {list(t.shape)}, expected "
                             f"{list(normalized_shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    mean = input.mean(dims, keepdim=True)
    centred = input - mean
    var = (centred * centred).mean(dims, keepdim=True)
    out = centred / (var + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
