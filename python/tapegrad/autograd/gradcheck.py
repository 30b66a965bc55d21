"""Numerical gradient checking: analytic Jacobians from the tape against
two-sided finite differences, in float64."""

import numpy as np

from .. import _C
from .._C import Tensor
from .._grad_mode import no_grad


class GradcheckError(RuntimeError):
    """The analytic and numerical gradients disagree."""


def _outputs(result):
    outs = result if isinstance(result, (tuple, list)) else (result,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Checks the gradients of `fn` at `inputs` by central finite differences.

    Every input tensor with requires_grad=True must be float64. The full
    Jacobian of every floating output is compared: d out[j] / d in[k] from the
    tape (one vector-Jacobian product per output element) against
    (f(x + eps) - f(x - eps)) / (2 eps). Returns True, or raises
    GradcheckError naming the input, the worst element and both values.
    """
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    inputs = tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in diff:
        if inputs[i].dtype != _C.dtype.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need "
                            "float64 inputs (use .double())")

    outs = _outputs(fn(*inputs))
    if not outs:
        raise ValueError("gradcheck: fn returned no floating point tensor")
    sizes = [o.numel() for o in outs]

    # Analytic: row j of the Jacobian is the gradient of out[j].
    analytic = {i: np.zeros((sum(sizes), inputs[i].numel())) for i in diff}
    row = 0
    for o in outs:
        flat_grad = np.zeros(o.numel(), dtype=np.float64)
        for j in range(o.numel()):
            if not o.requires_grad:
                break
            flat_grad[:] = 0
            flat_grad[j] = 1
            seed = _C.from_numpy(flat_grad.reshape(o.shape).astype(np.float64 if o.dtype == _C.dtype.float64 else np.float32))
            grads = _C._grad([o], [seed], [inputs[i] for i in diff], True, True)
            for i, g in zip(diff, grads):
                if g is not None:
                    analytic[i][row + j] = g.numpy().reshape(-1)
        row += o.numel()

    # Numerical: column k is the central difference in input element k.
    numerical = {i: np.zeros_like(analytic[i]) for i in diff}
    with no_grad():
        for i in diff:
            values = inputs[i].detach().numpy()
            flat = values.reshape(-1) if values.flags.c_contiguous else None
            if flat is None:
                raise ValueError(f"gradcheck: input {i} must be contiguous")
            for k in range(flat.size):
                orig = flat[k]
                flat[k] = orig + eps
                plus = _flat_outputs(fn, inputs)
                flat[k] = orig - eps
                minus = _flat_outputs(fn, inputs)
                flat[k] = orig
                numerical[i][:, k] = (plus - minus) / (2 * eps)

    for i in diff:
        a, n = analytic[i], numerical[i]
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        bad = ~(err <= 0)
        if bad.any():
            j, k = np.unravel_index(np.nanargmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -np.inf)), err.shape)
            elem = np.unravel_index(k, inputs[i].shape) if inputs[i].ndim else ()
            msg = (f"gradcheck: Jacobian mismatch for input {i} at element {tuple(int(e) for e in elem)} "
                   f"(output element {j}): analytic {a[j, k]!r}, numerical {n[j, k]!r} "
                   f"(atol={atol}, rtol={rtol})")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def _flat_outputs(fn, inputs):
    return np.concatenate([o.detach().numpy().astype(np.float64).reshape(-1)
                           for o in _outputs(fn(*inputs))])
