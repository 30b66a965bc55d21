"""tapegrad.nn.functional, with PyTorch's names and semantics.

Fused kernels (cross_entropy, binary_cross_entropy_with_logits, mse_loss,
softmax, ...) are single tape records with hand-written backward; the rest are
composites of recorded primitives and need no backward of their own.
"""

import numpy as np

from .. import _C
from .._C import (
    binary_cross_entropy_with_logits,
    embedding as _embedding,
    hardtanh as _hardtanh,
    leaky_relu as _leaky_relu,
    log_softmax as _log_softmax,
    nll_loss,
    prelu,
    relu as _relu,
    sigmoid,
    softmax as _softmax,
    tanh,
)

__all__ = [
    "relu", "relu_", "leaky_relu", "leaky_relu_", "hardtanh", "hardtanh_", "prelu", "sigmoid", "tanh", "softmax", "log_softmax",
    "embedding", "linear", "dropout", "cross_entropy", "nll_loss",
    "binary_cross_entropy_with_logits", "mse_loss", "hinge_loss", "multi_margin_loss",
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


def cross_entropy(input, target, reduction="mean", ignore_index=-100):
    """Fused log-softmax + negative log-likelihood over integer class targets."""
    return _C.cross_entropy(input, target, reduction, ignore_index)


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
