"""tapegrad.autograd: gradients without .grad, gradient checking, grad modes."""

from .. import _C
from .._grad_mode import enable_grad, no_grad, set_grad_enabled
from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .gradcheck import gradcheck

__all__ = ["backward", "grad", "gradcheck", "no_grad", "enable_grad", "set_grad_enabled",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]


def _as_list(x):
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def backward(tensors, grad_tensors=None, retain_graph=None):
    """Backward from several outputs at once (one walk of the tape)."""
    roots = _as_list(tensors)
    grads = _as_list(grad_tensors) or [None] * len(roots)
    _C._backward(roots, grads, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, as a tuple; no .grad is touched."""
    if create_graph:
        raise RuntimeError("autograd.grad: create_graph=True (higher-order gradients) is not "
                           "supported by tapegrad's tape; gradients are never recorded")
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    gos = _as_list(grad_outputs) or [None] * len(outs)
    return tuple(_C._grad(outs, gos, ins, bool(retain_graph), allow_unused))
