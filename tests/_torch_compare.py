"""Helpers shared by the nn tests that compare tapegrad with torch: tensors from
NumPy for both libraries, values and gradients compared, float64 gradchecks."""

import numpy as np

import tapegrad as tg

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0)"


def tgt(a, requires_grad=False):
    return tg.tensor(np.array(a, copy=True), requires_grad=requires_grad)


def tt(torch, a, requires_grad=False):
    return torch.tensor(np.array(a, copy=True), requires_grad=requires_grad)


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def _compare(torch, tg_fn, torch_fn, inputs, consts=(), dtype="float64"):
    """Runs tg_fn(*inputs, *consts) and torch_fn likewise; compares the values and the
    gradients of every input (a random projection of the output is backpropagated)."""
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
    xs = [tgt(np.asarray(a, dtype=dtype), True) for a in inputs]
    ts = [tt(torch, np.asarray(a, dtype=dtype), True) for a in inputs]
    cg = [c if not isinstance(c, np.ndarray) else tgt(c) for c in consts]
    ct = [c if not isinstance(c, np.ndarray) else tt(torch, c) for c in consts]
    yg, yt = tg_fn(*xs, *cg), torch_fn(*ts, *ct)
    assert tuple(yg.shape) == tuple(yt.shape)
    assert yg.dtype == getattr(tg, dtype)
    np.testing.assert_allclose(to_np(yg), yt.detach().numpy(), **tol)
    up = np.asarray(np.random.randn(*tuple(yt.shape)), dtype=dtype)
    (yg * tgt(up)).sum().backward()
    (yt * tt(torch, up)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(to_np(x.grad), t.grad.numpy(), **tol)
    return yg


def _gradcheck(fn, inputs, consts=()):
    xs = tuple(tgt(np.asarray(a, dtype=np.float64), True) for a in inputs)
    cg = [c if not isinstance(c, np.ndarray) else tgt(c) for c in consts]
    out_shape = tuple(fn(*xs, *cg).shape)
    w = tgt(np.random.randn(*out_shape))
    assert tg.gradcheck(lambda *a: (fn(*a, *cg) * w).sum(), xs) is True
