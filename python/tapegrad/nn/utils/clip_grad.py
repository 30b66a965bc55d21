"""Gradient clipping against exploding gradients, as torch.nn.utils."""

import math

from ... import _C
from ..._C import Tensor
from ..._grad_mode import no_grad


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _values(g):
    """The dense tensor holding a gradient's numbers (a sparse one's coalesced rows)."""
    return g.coalesce().values() if g.is_sparse else g


def _norm(v, p):
    if p == math.inf:
        return v.abs().max() if v.numel() else _C._zeros([], v.dtype)
    if p == 0:
        return (v != 0).sum().to(v.dtype)
    return (v.abs() ** p).sum() ** (1.0 / p)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scales all gradients together so that their joint norm is at most max_norm.

    Returns the total norm before clipping (a 0-d tensor), like PyTorch.
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return _C._zeros([], _C.dtype.float32)
    with no_grad():
        values = [_values(g) for g in grads]
        # As PyTorch: the norm of the per-tensor norms, both of order norm_type.
        norms = _C.stack([_norm(v, norm_type).to(values[0].dtype) for v in values])
        total = _norm(norms, norm_type)
        t = total.item()
        if error_if_nonfinite and not math.isfinite(t):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for "
                               "gradients is non-finite, so it cannot be clipped")
        coef = max_norm / (t + 1e-6)
        if coef < 1.0:
            for g in grads:
                if g.is_sparse:
                    g.values().mul_(coef)
                else:
                    g.mul_(coef)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamps every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    with no_grad():
        for p in parameters:
            g = p.grad
            if g is None:
                continue
            if g.is_sparse:
                # Clamp each row's total, not each uncoalesced piece of it.
                g = g.coalesce()
                p.grad = g
            v = g.values() if g.is_sparse else g
            v.copy_(v.clamp(-clip_value, clip_value))
