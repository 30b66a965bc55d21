"""The spec table behind tests/test_ops.py.

Every primitive op in the C++ op table (``tapegrad._C.op_names()``, see
cpp/include/tapegrad/op_table.h) has one or more specs here, and so do the
composite ops (dot, outer, stack, split, var, indexing, ...). A spec says:

* ``fn(lib, *xs)``: how to build the op from the inputs through the public
  API. ``lib`` is either ``tapegrad`` or ``torch``: tapegrad mirrors PyTorch's
  names and semantics, so one callable serves both (``torch_fn`` overrides it
  where tapegrad has an extension torch lacks). Non-differentiable operands
  (targets, indices, masks) are NumPy constants built into the spec and turned
  into tensors inside ``fn``; float constants take the dtype of the inputs.
* ``inputs``: generators for the differentiable inputs (float64 NumPy arrays),
  chosen away from the op's kinks (positive for log/sqrt/pow, away from 0 for
  abs/relu, away from the bounds for clamp/hardtanh, well-separated values for
  max/min/maximum ...), so that finite differences are meaningful.
* ``ref(*arrays)``: the NumPy reference of the forward in float64.

A spec's ``id`` is ``"<op>-<variant>"``; ``op`` is the table name it covers
(or the composite's name, with ``composite=True``).
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np


# ----------------------------------------------------------------------------
# input generators
# ----------------------------------------------------------------------------
class U:
    """Uniform in [lo, hi)."""

    def __init__(self, *shape, lo=-2.0, hi=2.0):
        self.shape, self.lo, self.hi = tuple(shape), lo, hi

    def __call__(self, rng):
        return rng.uniform(self.lo, self.hi, self.shape)

    def __repr__(self):
        return f"U{self.shape}[{self.lo},{self.hi})"


def Pos(*shape, lo=0.5, hi=2.0):
    """Strictly positive (for log, sqrt, pow bases, divisors)."""
    return U(*shape, lo=lo, hi=hi)


class Away(U):
    """Uniform in [lo, hi), at least `margin` away from every kink."""

    def __init__(self, *shape, lo=-2.0, hi=2.0, kinks=(0.0,), margin=0.15):
        super().__init__(*shape, lo=lo, hi=hi)
        self.kinks, self.margin = tuple(kinks), margin

    def __call__(self, rng):
        x = rng.uniform(self.lo, self.hi, self.shape)
        for _ in range(1000):
            bad = np.zeros(x.shape, dtype=bool)
            for k in self.kinks:
                bad |= np.abs(x - k) < self.margin
            if not bad.any():
                return x
            x[bad] = rng.uniform(self.lo, self.hi, int(bad.sum()))
        raise AssertionError("Away: could not draw values away from the kinks")


class Distinct:
    """All values pairwise at least ~0.06 apart (no ties for max/min/argmax)."""

    def __init__(self, *shape, step=0.1, jitter=0.02):
        self.shape, self.step, self.jitter = tuple(shape), step, jitter

    def __call__(self, rng):
        n = int(np.prod(self.shape, dtype=np.int64))
        v = (rng.permutation(n) - n / 2.0) * self.step
        v = v + rng.uniform(-self.jitter, self.jitter, n)
        return v.reshape(self.shape)


class Grid:
    """k * step + offset (+ jitter): two grids with different offsets never tie."""

    def __init__(self, *shape, step=0.25, offset=0.0, jitter=0.03, k=8):
        self.shape, self.step, self.offset, self.jitter, self.k = tuple(shape), step, offset, jitter, k

    def __call__(self, rng):
        v = rng.integers(-self.k, self.k, self.shape) * self.step + self.offset
        if self.jitter:
            v = v + rng.uniform(-self.jitter, self.jitter, self.shape)
        return v.astype(np.float64)


class MarginScores:
    """Scores for multi_margin_loss whose hinges (margin - x[y] + x[j] = 0) are all far."""

    def __init__(self, target, n_classes, margin, gap=0.1):
        self.target, self.c, self.margin, self.gap = np.asarray(target), n_classes, margin, gap
        self.shape = (len(self.target), n_classes)

    def __call__(self, rng):
        rows = []
        for y in self.target:
            for _ in range(10000):
                r = rng.uniform(-1.5, 1.5, self.c)
                d = self.margin - r[y] + r
                d = np.delete(d, y)
                if np.all(np.abs(d) > self.gap):
                    rows.append(r)
                    break
            else:  # pragma: no cover
                raise AssertionError("MarginScores: could not draw a row")
        return np.stack(rows)


# ----------------------------------------------------------------------------
# the spec type
# ----------------------------------------------------------------------------
@dataclass
class Spec:
    id: str
    fn: Callable
    ref: Callable
    inputs: tuple
    composite: bool = False
    torch_fn: Optional[Callable] = None  # defaults to fn(torch, *xs)
    differentiable: bool = True  # False: forward-only (int/bool results)
    gradcheck: bool = True
    lowp: bool = False  # computes through float32 internally: loose float64 tolerances
    out_dtype: Optional[str] = None  # None: the dtype of the inputs
    may_return_input: bool = False  # a no-op in float64 (x.double() of a float64 x returns x)
    contiguous_only: bool = False  # view(): refuses non-contiguous inputs, as in torch
    rtol32: float = 2e-5
    atol32: float = 2e-5
    seed: int = field(init=False)

    def __post_init__(self):
        self.inputs = tuple(self.inputs)
        self.seed = zlib.crc32(self.id.encode())

    @property
    def op(self):
        return self.id.split("-", 1)[0]

    def make_inputs(self):
        rng = np.random.default_rng(self.seed)
        return [np.asarray(g(rng), dtype=np.float64) for g in self.inputs]

    def projection(self, shape):
        """Fixed random weights W: gradients are taken of sum(W * out)."""
        rng = np.random.default_rng(self.seed + 1)
        return rng.standard_normal(shape)

    def call_torch(self, torch, *xs):
        return (self.torch_fn or self.fn)(torch, *xs)

    def __repr__(self):
        return f"Spec({self.id})"


SPECS: list[Spec] = []


def spec(id, fn, ref, *inputs, **kw):
    SPECS.append(Spec(id, fn, ref, inputs, **kw))


def composite(id, fn, ref, *inputs, **kw):
    spec(id, fn, ref, *inputs, composite=True, **kw)


def forward_only(id, fn, ref, *inputs, **kw):
    spec(id, fn, ref, *inputs, composite=True, differentiable=False, gradcheck=False, **kw)


def F(lib):
    """lib.nn.functional for tapegrad or torch."""
    return importlib.import_module(lib.__name__ + ".nn.functional")


def const(lib, arr, like=None):
    """A constant tensor: float constants take the dtype of `like`."""
    arr = np.asarray(arr)
    if like is not None and arr.dtype.kind == "f":
        return lib.tensor(arr, dtype=like.dtype)
    return lib.tensor(arr)


# ----------------------------------------------------------------------------
# NumPy references
# ----------------------------------------------------------------------------
def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def np_logsumexp(x, axis, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_reduce(per_elem, reduction, mask=None):
    if reduction == "none":
        return per_elem if mask is None else np.where(mask, per_elem, 0.0)
    if mask is not None:
        per_elem = per_elem[mask]
    if reduction == "sum":
        return np.asarray(per_elem.sum())
    return np.asarray(per_elem.mean())


def np_nll(logp, target, reduction="mean", ignore_index=-100):
    mask = target != ignore_index
    safe = np.where(mask, target, 0)
    picked = -np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    return np_reduce(picked, reduction, mask)


def np_cross_entropy(x, target, reduction="mean", ignore_index=-100):
    return np_nll(np_log_softmax(x, 1), target, reduction, ignore_index)


def np_bce_logits(x, t, reduction="mean"):
    per = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return np_reduce(per, reduction)


def np_mse(x, y, reduction="mean", half=False):
    out = np_reduce((x - y) ** 2, reduction)
    return 0.5 * out if half else out


def np_multi_margin(x, target, p=1, margin=1.0, reduction="mean"):
    n, c = x.shape
    xy = x[np.arange(n), target][:, None]
    h = np.maximum(0.0, margin - xy + x) ** p
    h[np.arange(n), target] = 0.0
    return np_reduce(h.sum(axis=1) / c, reduction)


def np_hinge(s, t, margin=1.0, reduction="mean"):
    return np_reduce(np.maximum(0.0, margin - t * s), reduction)


def np_prelu(x, w):
    shape = [1] * x.ndim
    if x.ndim >= 2:
        shape[1] = w.shape[0]
    return np.where(x > 0, x, w.reshape(shape) * x)


def np_split(x, sizes, axis):
    idx = np.cumsum(sizes)[:-1]
    return np.split(x, idx, axis=axis)


def weighted_cat(lib, parts, dim):
    """Concatenates parts scaled by 1, 2, 3, ... (so each piece's gradient differs)."""
    return lib.cat([p * float(i + 1) for i, p in enumerate(parts)], dim=dim)


def np_weighted_cat(parts, axis):
    return np.concatenate([p * float(i + 1) for i, p in enumerate(parts)], axis=axis)


# Shared constants for non-differentiable operands.
COND_31 = np.array([[True], [False], [True]])
IDX_REP = np.array([2, 0, 2, 1])  # repeated index: gradients accumulate
IDX_NEG_WRAP = np.array([-1, 0])
IDX_2D = np.array([[0, 2], [1, 1]])
GATHER_IDX_1 = np.array([[0, 3], [2, 2], [1, 0]])  # (3, 2) into (3, 4) along dim 1
GATHER_IDX_0 = np.array([[2, 0, 1, 1], [0, 0, 2, 1]])  # (2, 4) into (3, 4) along dim 0
GATHER_IDX_3D = np.array([[[1], [0], [2]], [[2], [2], [0]]])  # (2,3,1) into (2,3,3) along -1
GATHER_IDX_SMALL = np.array([[0, 3], [2, 2]])  # (2, 2) into (3, 4): index may be smaller than input
EMB_IDX_2D = np.array([[1, 4, 1], [0, 3, 4]])
EMB_IDX_1D = np.array([3, 3, 0, 2])
CE_TARGET = np.array([1, 0, 4, 2])
CE_SPATIAL = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])  # (N, d) targets for (N, C=3, d) inputs
CE_TARGET_IGN = np.array([1, -100, 4, -100])
CE_TARGET_IGN1 = np.array([1, 0, 1, 3])
BCE_T = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.7]])
HINGE_T = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
MM_TARGET = np.array([0, 2, 3, 1, 2])
BIG_TARGET = np.random.default_rng(5).integers(0, 100, 256)
BIG_IDX = np.random.default_rng(6).integers(0, 100, 1000)


# ============================================================================
# elementwise binary (broadcasting)
# ============================================================================
spec("add-same", lambda L, x, y: x + y, lambda x, y: x + y, U(3, 4), U(3, 4))
spec("add-bcast", lambda L, x, y: x + y, lambda x, y: x + y, U(3, 1, 4), U(2, 4))
spec("add-0d", lambda L, x, y: x + y, lambda x, y: x + y, U(2, 3), U())
spec("add-fn", lambda L, x, y: L.add(x, y), lambda x, y: x + y, U(4,), U(3, 4))
spec("add-method", lambda L, x, y: x.add(y), lambda x, y: x + y, U(3, 1), U(1, 5))
spec("add-same_tensor", lambda L, x: x + x, lambda x: 2 * x, U(5,))

spec("sub-same", lambda L, x, y: x - y, lambda x, y: x - y, U(3, 4), U(3, 4))
spec("sub-bcast", lambda L, x, y: x - y, lambda x, y: x - y, U(2, 3), U(3,))
spec("sub-bcast_left", lambda L, x, y: x - y, lambda x, y: x - y, U(4, 1), U(2, 4, 3))
spec("sub-fn", lambda L, x, y: L.sub(x, y), lambda x, y: x - y, U(3,), U(3,))
spec("sub-method", lambda L, x, y: x.sub(y), lambda x, y: x - y, U(2, 1), U(3))

spec("mul-same", lambda L, x, y: x * y, lambda x, y: x * y, U(3, 4), U(3, 4))
spec("mul-bcast", lambda L, x, y: x * y, lambda x, y: x * y, U(4, 1), U(1, 5))
spec("mul-0d", lambda L, x, y: x * y, lambda x, y: x * y, U(), U(2, 3))
spec("mul-square", lambda L, x: x * x, lambda x: x * x, U(6,))
spec("mul-fn", lambda L, x, y: L.mul(x, y), lambda x, y: x * y, U(2, 3, 1), U(3, 4))
spec("mul-method", lambda L, x, y: x.mul(y), lambda x, y: x * y, U(3,), U(2, 3))

spec("div-same", lambda L, x, y: x / y, lambda x, y: x / y, U(3, 4), Pos(3, 4))
spec("div-bcast", lambda L, x, y: x / y, lambda x, y: x / y, U(2, 3, 4), Pos(3, 1))
spec("div-negative", lambda L, x, y: x / y, lambda x, y: x / y, U(5,), Pos(5, lo=-2.0, hi=-0.5))
spec("div-0d", lambda L, x, y: x / y, lambda x, y: x / y, U(4,), Pos())
spec("div-fn", lambda L, x, y: L.div(x, y), lambda x, y: x / y, U(3,), Pos(2, 1))
spec("div-method", lambda L, x, y: x.div(y), lambda x, y: x / y, U(2, 2), Pos(2, 2))

spec("pow-same", lambda L, x, y: x ** y, lambda x, y: x ** y, Pos(3, 4), U(3, 4, lo=-1.5, hi=1.5))
spec("pow-bcast", lambda L, x, y: x ** y, lambda x, y: x ** y, Pos(2, 3), U(3, lo=-2.0, hi=2.5))
spec("pow-fn", lambda L, x, y: L.pow(x, y), lambda x, y: x ** y, Pos(4,), U(4, lo=0.5, hi=3.0))
spec("pow-method", lambda L, x, y: x.pow(y), lambda x, y: x ** y, Pos(2, 2, lo=0.2, hi=3.0), U(2, 1))

spec("maximum-same", lambda L, x, y: L.maximum(x, y), np.maximum, Grid(3, 4), Grid(3, 4, offset=0.125))
spec("maximum-bcast", lambda L, x, y: L.maximum(x, y), np.maximum, Grid(3, 1), Grid(4, offset=0.125))
spec("maximum-method", lambda L, x, y: x.maximum(y), np.maximum, Grid(2, 5), Grid(2, 5, offset=0.125))
spec("minimum-same", lambda L, x, y: L.minimum(x, y), np.minimum, Grid(3, 4), Grid(3, 4, offset=0.125))
spec("minimum-bcast", lambda L, x, y: L.minimum(x, y), np.minimum, Grid(2, 1, 3), Grid(4, 1, offset=0.125))
spec("minimum-method", lambda L, x, y: x.minimum(y), np.minimum, Grid(5,), Grid(5, offset=0.125))

spec("where-bcast", lambda L, x, y: L.where(const(L, COND_31), x, y),
     lambda x, y: np.where(COND_31, x, y), U(3, 4), U(4,))
spec("where-from_compare", lambda L, x, y: L.where(x > 0, x, y),
     lambda x, y: np.where(x > 0, x, y), Away(2, 5), U(2, 5))
spec("where-same_input", lambda L, x: L.where(x < 0.3, x * x, x),
     lambda x: np.where(x < 0.3, x * x, x), Away(7, kinks=(0.3,)))

# ============================================================================
# tensor (op) Python scalar
# ============================================================================
spec("add_scalar-right", lambda L, x: x + 2.5, lambda x: x + 2.5, U(3, 4))
spec("add_scalar-left", lambda L, x: 2.5 + x, lambda x: 2.5 + x, U(3, 4))
spec("add_scalar-int", lambda L, x: x + 3, lambda x: x + 3, U(5,))
spec("add_scalar-sub", lambda L, x: x - 1.5, lambda x: x - 1.5, U(2, 3))
spec("add_scalar-rsub", lambda L, x: 1.0 - x, lambda x: 1.0 - x, U(2, 3))
spec("add_scalar-method", lambda L, x: x.add(0.75), lambda x: x + 0.75, U(4,))
spec("add_scalar-0d", lambda L, x: x + 1.0, lambda x: x + 1.0, U())

spec("mul_scalar-right", lambda L, x: x * 3.0, lambda x: x * 3.0, U(3, 4))
spec("mul_scalar-left", lambda L, x: -2 * x, lambda x: -2 * x, U(3, 4))
spec("mul_scalar-div", lambda L, x: x / 4.0, lambda x: x / 4.0, U(2, 3))
spec("mul_scalar-method", lambda L, x: x.mul(0.5), lambda x: x * 0.5, U(5,))
spec("mul_scalar-zero", lambda L, x: x * 0.0, lambda x: x * 0.0, U(3,))

spec("rdiv_scalar-pos", lambda L, x: 3.0 / x, lambda x: 3.0 / x, Pos(3, 4))
spec("rdiv_scalar-neg", lambda L, x: -1.5 / x, lambda x: -1.5 / x, Pos(5, lo=-2.0, hi=-0.4))
spec("rdiv_scalar-int", lambda L, x: 1 / x, lambda x: 1 / x, Pos(2, 3))

spec("pow_scalar-cube", lambda L, x: x ** 3, lambda x: x ** 3, U(3, 4))
spec("pow_scalar-square", lambda L, x: x ** 2, lambda x: x ** 2, U(5,))
spec("pow_scalar-sqrt", lambda L, x: x ** 0.5, lambda x: x ** 0.5, Pos(3, 4))
spec("pow_scalar-negfrac", lambda L, x: x ** -1.5, lambda x: x ** -1.5, Pos(4,))
spec("pow_scalar-neg_int", lambda L, x: x ** -2, lambda x: x ** -2.0, Away(6, margin=0.3))
spec("pow_scalar-zero", lambda L, x: x ** 0, lambda x: x ** 0.0, U(3,))
spec("pow_scalar-one", lambda L, x: x ** 1.0, lambda x: x, U(3,))
spec("pow_scalar-method", lambda L, x: x.pow(2.5), lambda x: x ** 2.5, Pos(2, 3))
spec("pow_scalar-fn", lambda L, x: L.pow(x, 3.0), lambda x: x ** 3.0, U(4,))

spec("rpow_scalar-two", lambda L, x: 2.0 ** x, lambda x: 2.0 ** x, U(3, 4))
spec("rpow_scalar-half", lambda L, x: 0.5 ** x, lambda x: 0.5 ** x, U(5,))
spec("rpow_scalar-e", lambda L, x: 2.718281828459045 ** x, lambda x: np.exp(x), U(5,))
spec("rpow_scalar-fn", lambda L, x: L.pow(3.0, x), lambda x: 3.0 ** x, U(4,))

# ============================================================================
# elementwise unary
# ============================================================================
spec("neg-op", lambda L, x: -x, lambda x: -x, U(3, 4))
spec("neg-method", lambda L, x: x.neg(), lambda x: -x, U(5,))
spec("neg-fn", lambda L, x: L.neg(x), lambda x: -x, U(2, 1, 3))

spec("exp-method", lambda L, x: x.exp(), np.exp, U(3, 4))
spec("exp-fn", lambda L, x: L.exp(x), np.exp, U(2, 3, lo=-5.0, hi=3.0))
spec("log-method", lambda L, x: x.log(), np.log, Pos(3, 4, lo=0.1, hi=3.0))
spec("log-fn", lambda L, x: L.log(x), np.log, Pos(5, lo=0.05, hi=20.0))
spec("sqrt-method", lambda L, x: x.sqrt(), np.sqrt, Pos(3, 4, lo=0.1, hi=3.0))
spec("sqrt-fn", lambda L, x: L.sqrt(x), np.sqrt, Pos(5, lo=0.2, hi=9.0))
spec("abs-method", lambda L, x: x.abs(), np.abs, Away(3, 4))
spec("abs-fn", lambda L, x: L.abs(x), np.abs, Away(5,))
spec("abs-builtin", lambda L, x: abs(x), np.abs, Away(2, 3))
spec("sin-method", lambda L, x: x.sin(), np.sin, U(3, 4, lo=-3.0, hi=3.0))
spec("sin-fn", lambda L, x: L.sin(x), np.sin, U(5, lo=-6.0, hi=6.0))
spec("cos-method", lambda L, x: x.cos(), np.cos, U(3, 4, lo=-3.0, hi=3.0))
spec("cos-fn", lambda L, x: L.cos(x), np.cos, U(5, lo=-6.0, hi=6.0))
spec("square-method", lambda L, x: x.square(), np.square, U(3, 4))
spec("square-fn", lambda L, x: L.square(x), np.square, U(5,))

spec("clamp-both", lambda L, x: x.clamp(min=-0.5, max=0.5), lambda x: np.clip(x, -0.5, 0.5),
     Away(3, 4, kinks=(-0.5, 0.5), margin=0.1))
spec("clamp-min", lambda L, x: x.clamp(min=0.0), lambda x: np.maximum(x, 0.0), Away(3, 4))
spec("clamp-max", lambda L, x: x.clamp(max=0.3), lambda x: np.minimum(x, 0.3),
     Away(3, 4, kinks=(0.3,), margin=0.1))
spec("clamp-positional", lambda L, x: x.clamp(-1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0),
     Away(2, 5, kinks=(-1.0, 1.0), margin=0.1))
spec("clamp-fn", lambda L, x: L.clamp(x, min=-1.0, max=0.25), lambda x: np.clip(x, -1.0, 0.25),
     Away(6, kinks=(-1.0, 0.25), margin=0.1))

spec("to-double", lambda L, x: x.to(L.float64) * 2.0, lambda x: x * 2.0, U(3, 4), out_dtype="float64")
spec("to-double_method", lambda L, x: x.double(), lambda x: x, U(5,), out_dtype="float64", may_return_input=True)
spec("to-dtype_kw", lambda L, x: x.to(dtype=L.float64), lambda x: x, U(2, 3), out_dtype="float64",
     may_return_input=True)
spec("to-float", lambda L, x: x.float() * 3.0, lambda x: x * 3.0, U(3, 4), out_dtype="float32",
     lowp=True, gradcheck=False)
spec("to-mixed", lambda L, x, y: x.double() * y.float(), lambda x, y: x * y, U(3,), U(3,),
     out_dtype="float64", lowp=True, gradcheck=False)

# ============================================================================
# activations
# ============================================================================
spec("sigmoid-method", lambda L, x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), U(3, 4, lo=-4.0, hi=4.0))
spec("sigmoid-fn", lambda L, x: L.sigmoid(x), lambda x: 1 / (1 + np.exp(-x)), U(5, lo=-30.0, hi=30.0))
spec("sigmoid-F", lambda L, x: F(L).sigmoid(x), lambda x: 1 / (1 + np.exp(-x)), U(2, 3))
spec("tanh-method", lambda L, x: x.tanh(), np.tanh, U(3, 4, lo=-3.0, hi=3.0))
spec("tanh-fn", lambda L, x: L.tanh(x), np.tanh, U(5, lo=-10.0, hi=10.0))
spec("tanh-F", lambda L, x: F(L).tanh(x), np.tanh, U(2, 3))
spec("relu-method", lambda L, x: x.relu(), lambda x: np.maximum(x, 0), Away(3, 4))
spec("relu-fn", lambda L, x: L.relu(x), lambda x: np.maximum(x, 0), Away(5,))
spec("relu-F", lambda L, x: F(L).relu(x), lambda x: np.maximum(x, 0), Away(2, 3, 2))
spec("leaky_relu-default", lambda L, x: F(L).leaky_relu(x), lambda x: np.where(x > 0, x, 0.01 * x), Away(3, 4))
spec("leaky_relu-slope", lambda L, x: F(L).leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), Away(5,))
spec("leaky_relu-kw", lambda L, x: F(L).leaky_relu(x, negative_slope=0.5),
     lambda x: np.where(x > 0, x, 0.5 * x), Away(2, 3))
spec("hardtanh-default", lambda L, x: F(L).hardtanh(x), lambda x: np.clip(x, -1, 1),
     Away(3, 4, kinks=(-1.0, 1.0), margin=0.1))
spec("hardtanh-bounds", lambda L, x: F(L).hardtanh(x, -0.5, 0.8), lambda x: np.clip(x, -0.5, 0.8),
     Away(3, 4, kinks=(-0.5, 0.8), margin=0.1))
spec("hardtanh-kw", lambda L, x: F(L).hardtanh(x, min_val=-2.0, max_val=0.5), lambda x: np.clip(x, -2.0, 0.5),
     Away(6, lo=-3.0, kinks=(-2.0, 0.5), margin=0.1))
spec("prelu-channels", lambda L, x, w: F(L).prelu(x, w), np_prelu, Away(2, 3, 4), U(3, lo=0.05, hi=0.5))
spec("prelu-single", lambda L, x, w: F(L).prelu(x, w), np_prelu, Away(5, 3), U(1, lo=0.05, hi=0.5))
spec("prelu-2d", lambda L, x, w: F(L).prelu(x, w), np_prelu, Away(4, 3), U(3, lo=-0.5, hi=0.5))
spec("softmax-dim1", lambda L, x: x.softmax(dim=1), lambda x: np_softmax(x, 1), U(3, 4))
spec("softmax-dim0_fn", lambda L, x: L.softmax(x, 0), lambda x: np_softmax(x, 0), U(3, 4))
spec("softmax-neg_dim_F", lambda L, x: F(L).softmax(x, dim=-1), lambda x: np_softmax(x, -1), U(2, 3, 4))
spec("softmax-3d_mid", lambda L, x: x.softmax(1), lambda x: np_softmax(x, 1), U(2, 3, 4))
spec("softmax-large", lambda L, x: x.softmax(dim=-1), lambda x: np_softmax(x, -1), U(3, 4, lo=500.0, hi=800.0))
spec("log_softmax-dim1", lambda L, x: x.log_softmax(dim=1), lambda x: np_log_softmax(x, 1), U(3, 4))
spec("log_softmax-dim0_fn", lambda L, x: L.log_softmax(x, 0), lambda x: np_log_softmax(x, 0), U(3, 4))
spec("log_softmax-neg_dim_F", lambda L, x: F(L).log_softmax(x, dim=-1), lambda x: np_log_softmax(x, -1), U(2, 3, 4))
spec("log_softmax-large", lambda L, x: x.log_softmax(dim=1), lambda x: np_log_softmax(x, 1),
     U(3, 4, lo=-900.0, hi=-500.0))

# ============================================================================
# reductions
# ============================================================================
spec("sum-all", lambda L, x: x.sum(), lambda x: np.asarray(x.sum()), U(2, 3, 4))
spec("sum-dim", lambda L, x: x.sum(dim=1), lambda x: x.sum(axis=1), U(2, 3, 4))
spec("sum-keepdim", lambda L, x: x.sum(1, keepdim=True), lambda x: x.sum(axis=1, keepdims=True), U(2, 3, 4))
spec("sum-neg_dim", lambda L, x: x.sum(dim=-1), lambda x: x.sum(axis=-1), U(2, 3, 4))
spec("sum-tuple", lambda L, x: x.sum(dim=(0, 2)), lambda x: x.sum(axis=(0, 2)), U(2, 3, 4))
spec("sum-tuple_keepdim", lambda L, x: x.sum(dim=(0, -1), keepdim=True),
     lambda x: x.sum(axis=(0, -1), keepdims=True), U(2, 3, 4))
spec("sum-fn", lambda L, x: L.sum(x, dim=0), lambda x: x.sum(axis=0), U(3, 4))
spec("sum-dim_none", lambda L, x: x.sum(dim=None), lambda x: np.asarray(x.sum()), U(2, 3))
spec("sum-dim_none_keepdim", lambda L, x: x.sum(dim=None, keepdim=True), lambda x: x.sum(keepdims=True), U(2, 3, 2))
spec("sum-0d", lambda L, x: x.sum(), lambda x: np.asarray(x.sum()), U())
spec("mean-all", lambda L, x: x.mean(), lambda x: np.asarray(x.mean()), U(2, 3, 4))
spec("mean-dim", lambda L, x: x.mean(dim=1), lambda x: x.mean(axis=1), U(2, 3, 4))
spec("mean-keepdim_neg", lambda L, x: x.mean(dim=-1, keepdim=True), lambda x: x.mean(axis=-1, keepdims=True),
     U(2, 3, 4))
spec("mean-tuple", lambda L, x: x.mean(dim=(0, 1)), lambda x: x.mean(axis=(0, 1)), U(2, 3, 4))
spec("mean-dim_none_keepdim", lambda L, x: x.mean(dim=None, keepdim=True), lambda x: x.mean(keepdims=True),
     U(2, 3))
spec("mean-fn", lambda L, x: L.mean(x, 1), lambda x: x.mean(axis=1), U(3, 5))
spec("max-dim", lambda L, x: x.max(dim=1).values, lambda x: x.max(axis=1), Distinct(3, 4))
spec("max-keepdim_neg", lambda L, x: x.max(dim=-1, keepdim=True).values, lambda x: x.max(axis=-1, keepdims=True),
     Distinct(2, 3, 4))
spec("max-tuple_index", lambda L, x: x.max(0)[0], lambda x: x.max(axis=0), Distinct(3, 4))
spec("max-unpack", lambda L, x: (lambda v_i: v_i[0] * 2.0)(tuple(x.max(dim=1))), lambda x: x.max(axis=1) * 2.0,
     Distinct(4, 3))
spec("max-fn", lambda L, x: L.max(x, dim=0).values, lambda x: x.max(axis=0), Distinct(3, 4))
spec("max-all", lambda L, x: x.max(), lambda x: np.asarray(x.max()), Distinct(3, 4))
spec("min-dim", lambda L, x: x.min(dim=1).values, lambda x: x.min(axis=1), Distinct(3, 4))
spec("min-keepdim_neg", lambda L, x: x.min(dim=-2, keepdim=True).values, lambda x: x.min(axis=-2, keepdims=True),
     Distinct(2, 3, 4))
spec("min-fn", lambda L, x: L.min(x, dim=1).values, lambda x: x.min(axis=1), Distinct(3, 4))
spec("min-all", lambda L, x: x.min(), lambda x: np.asarray(x.min()), Distinct(2, 5))
spec("logsumexp-dim", lambda L, x: x.logsumexp(dim=1), lambda x: np_logsumexp(x, 1), U(3, 4))
spec("logsumexp-keepdim", lambda L, x: x.logsumexp(dim=-1, keepdim=True),
     lambda x: np_logsumexp(x, -1, keepdims=True), U(2, 3, 4))
spec("logsumexp-fn_tuple", lambda L, x: L.logsumexp(x, dim=(0, 2)), lambda x: np_logsumexp(x, (0, 2)),
     U(2, 3, 4))
spec("logsumexp-large", lambda L, x: x.logsumexp(dim=0), lambda x: np_logsumexp(x, 0),
     U(4, 3, lo=500.0, hi=800.0))

# ============================================================================
# matmul
# ============================================================================
spec("matmul-2d", lambda L, a, b: a @ b, np.matmul, U(3, 4), U(4, 5))
spec("matmul-batched", lambda L, a, b: a @ b, np.matmul, U(2, 3, 4), U(2, 4, 5))
spec("matmul-bcast_batch", lambda L, a, b: a @ b, np.matmul, U(2, 1, 3, 4), U(3, 4, 2))
spec("matmul-batch_by_2d", lambda L, a, b: a @ b, np.matmul, U(2, 3, 4), U(4, 5))
spec("matmul-1d_2d", lambda L, a, b: a @ b, np.matmul, U(4,), U(4, 5))
spec("matmul-2d_1d", lambda L, a, b: a @ b, np.matmul, U(3, 4), U(4,))
spec("matmul-1d_1d", lambda L, a, b: a @ b, lambda a, b: np.asarray(np.matmul(a, b)), U(4,), U(4,))
spec("matmul-1d_3d", lambda L, a, b: a @ b, np.matmul, U(4,), U(2, 4, 5))
spec("matmul-3d_1d", lambda L, a, b: a @ b, np.matmul, U(2, 3, 4), U(4,))
spec("matmul-aT_b", lambda L, a, b: a.T @ b, lambda a, b: a.T @ b, U(4, 3), U(4, 5))
spec("matmul-a_bT", lambda L, a, b: a @ b.T, lambda a, b: a @ b.T, U(3, 4), U(5, 4))
spec("matmul-aT_bT", lambda L, a, b: a.T @ b.T, lambda a, b: a.T @ b.T, U(4, 3), U(5, 4))
spec("matmul-batched_transposed", lambda L, a, b: a.transpose(1, 2) @ b,
     lambda a, b: np.swapaxes(a, 1, 2) @ b, U(2, 4, 3), U(2, 4, 5))
spec("matmul-sliced", lambda L, a, b: a[:, ::2] @ b[1:], lambda a, b: a[:, ::2] @ b[1:], U(3, 6), U(4, 2))
spec("matmul-fn", lambda L, a, b: L.matmul(a, b), np.matmul, U(5, 3), U(3, 2))
spec("matmul-method", lambda L, a, b: a.matmul(b), np.matmul, U(1, 3), U(3, 1))
spec("matmul-same_operand", lambda L, a: a @ a.T, lambda a: a @ a.T, U(3, 4))
spec("matmul-larger", lambda L, a, b: a @ b, np.matmul, U(17, 33), U(33, 9))

# ============================================================================
# shapes, views and indexing
# ============================================================================
spec("reshape-2d", lambda L, x: x.reshape(6, 4), lambda x: x.reshape(6, 4), U(2, 3, 4))
spec("reshape-infer", lambda L, x: x.reshape(-1, 2), lambda x: x.reshape(-1, 2), U(2, 3, 4))
spec("reshape-tuple", lambda L, x: x.reshape((4, 6)), lambda x: x.reshape(4, 6), U(2, 3, 4))
spec("reshape-flat", lambda L, x: x.reshape(-1), lambda x: x.reshape(-1), U(3, 4))
spec("reshape-noncontig", lambda L, x: x.T.reshape(-1), lambda x: x.T.reshape(-1), U(3, 4))
spec("reshape-fn", lambda L, x: L.reshape(x, (3, 8)), lambda x: x.reshape(3, 8), U(2, 3, 4))
spec("reshape-view", lambda L, x: x.view(4, 6), lambda x: x.reshape(4, 6), U(2, 3, 4), contiguous_only=True)
spec("reshape-view_infer", lambda L, x: x.view(-1, 3), lambda x: x.reshape(-1, 3), U(2, 3, 4),
     contiguous_only=True)
spec("permute-3d", lambda L, x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), U(2, 3, 4))
spec("permute-tuple", lambda L, x: x.permute((1, 0, 2)), lambda x: x.transpose(1, 0, 2), U(2, 3, 4))
spec("permute-neg", lambda L, x: x.permute(-1, 0, 1), lambda x: x.transpose(2, 0, 1), U(2, 3, 4))
spec("permute-fn", lambda L, x: L.permute(x, (2, 1, 0)), lambda x: x.transpose(2, 1, 0), U(2, 3, 4))
spec("permute-T", lambda L, x: x.T, lambda x: x.T, U(3, 5))
spec("permute-then_op", lambda L, x: x.permute(1, 0) * 2.0 + 1.0, lambda x: x.T * 2.0 + 1.0, U(3, 5))
spec("expand-row", lambda L, x: x.expand(3, 4), lambda x: np.broadcast_to(x, (3, 4)), U(1, 4))
spec("expand-new_dims", lambda L, x: x.expand(2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)), U(3, 1))
spec("expand-keep", lambda L, x: x.expand(-1, 5), lambda x: np.broadcast_to(x, (3, 5)), U(3, 1))
spec("expand-tuple", lambda L, x: x.expand((2, 3)), lambda x: np.broadcast_to(x, (2, 3)), U(3,))
spec("slice-2d_step", lambda L, x: x[1:3, ::2], lambda x: x[1:3, ::2], U(4, 5))
spec("slice-neg_start", lambda L, x: x[:, -2:], lambda x: x[:, -2:], U(4, 5))
spec("slice-rows_step", lambda L, x: x[::2], lambda x: x[::2], U(5, 3))
spec("slice-both_step", lambda L, x: x[1:, 1:4:2], lambda x: x[1:, 1:4:2], U(4, 5))
spec("slice-ellipsis", lambda L, x: x[..., 1:3], lambda x: x[..., 1:3], U(2, 3, 4))
spec("slice-neg_range", lambda L, x: x[-3:-1], lambda x: x[-3:-1], U(5, 2))
spec("slice-past_end", lambda L, x: x[2:100], lambda x: x[2:100], U(4, 5))
spec("slice-empty", lambda L, x: x[3:1], lambda x: x[3:1], U(4, 5))
spec("slice-twice", lambda L, x: x[1:][:, 1:][::2], lambda x: x[1:][:, 1:][::2], U(5, 4))
spec("contiguous-T", lambda L, x: x.T.contiguous(), lambda x: x.T.copy(), U(3, 4))
spec("contiguous-strided", lambda L, x: x[:, ::2].contiguous(), lambda x: x[:, ::2].copy(), U(3, 6))
spec("contiguous-permuted", lambda L, x: x.permute(1, 0, 2).contiguous(), lambda x: x.transpose(1, 0, 2).copy(),
     U(2, 3, 4))
spec("contiguous-already", lambda L, x: x.contiguous() * 1.5, lambda x: x * 1.5, U(3, 4))
spec("cat-dim0", lambda L, x, y: L.cat([x, y], dim=0), lambda x, y: np.concatenate([x, y], 0), U(2, 3), U(4, 3))
spec("cat-dim1", lambda L, x, y: L.cat([x, y], dim=1), lambda x, y: np.concatenate([x, y], 1), U(2, 3), U(2, 5))
spec("cat-neg_dim", lambda L, x, y: L.cat([x, y], -1), lambda x, y: np.concatenate([x, y], -1),
     U(2, 2, 3), U(2, 2, 1))
spec("cat-three", lambda L, x, y, z: L.cat([x, y, z]), lambda x, y, z: np.concatenate([x, y, z]),
     U(1, 3), U(2, 3), U(3, 3))
spec("cat-tuple_same", lambda L, x: L.cat((x, x * 2.0), 1), lambda x: np.concatenate([x, 2 * x], 1), U(3, 2))
spec("cat-1d", lambda L, x, y: L.cat([x, y]), lambda x, y: np.concatenate([x, y]), U(3,), U(2,))
spec("index_select-rows", lambda L, x: x.index_select(0, const(L, IDX_REP)), lambda x: x[IDX_REP], U(3, 4))
spec("index_select-cols_fn", lambda L, x: L.index_select(x, 1, const(L, IDX_REP)), lambda x: x[:, IDX_REP],
     U(2, 3))
spec("index_select-neg_dim", lambda L, x: x.index_select(-1, const(L, IDX_REP)), lambda x: x[..., IDX_REP],
     U(2, 2, 4))
spec("gather-dim1", lambda L, x: x.gather(1, const(L, GATHER_IDX_1)),
     lambda x: np.take_along_axis(x, GATHER_IDX_1, 1), U(3, 4))
spec("gather-dim0_fn", lambda L, x: L.gather(x, 0, const(L, GATHER_IDX_0)),
     lambda x: np.take_along_axis(x, GATHER_IDX_0, 0), U(3, 4))
spec("gather-3d_neg", lambda L, x: x.gather(-1, const(L, GATHER_IDX_3D)),
     lambda x: np.take_along_axis(x, GATHER_IDX_3D, -1), U(2, 3, 3))
spec("embedding-2d", lambda L, w: F(L).embedding(const(L, EMB_IDX_2D), w), lambda w: w[EMB_IDX_2D], U(5, 4))
spec("gather-smaller_index", lambda L, x: x.gather(1, const(L, GATHER_IDX_SMALL)),
     lambda x: x[:2][np.arange(2)[:, None], GATHER_IDX_SMALL], U(3, 4))
spec("embedding-0d_index", lambda L, w: F(L).embedding(const(L, np.array(2)), w), lambda w: w[2], U(4, 3))
spec("embedding-1d_repeat", lambda L, w: F(L).embedding(const(L, EMB_IDX_1D), w), lambda w: w[EMB_IDX_1D],
     U(4, 3))

# ============================================================================
# losses
# ============================================================================
spec("cross_entropy-mean", lambda L, x: F(L).cross_entropy(x, const(L, CE_TARGET)),
     lambda x: np_cross_entropy(x, CE_TARGET), U(4, 5))
spec("cross_entropy-sum", lambda L, x: F(L).cross_entropy(x, const(L, CE_TARGET), reduction="sum"),
     lambda x: np_cross_entropy(x, CE_TARGET, "sum"), U(4, 5))
spec("cross_entropy-none", lambda L, x: F(L).cross_entropy(x, const(L, CE_TARGET), reduction="none"),
     lambda x: np_cross_entropy(x, CE_TARGET, "none"), U(4, 5))
spec("cross_entropy-ignore", lambda L, x: F(L).cross_entropy(x, const(L, CE_TARGET_IGN)),
     lambda x: np_cross_entropy(x, CE_TARGET_IGN), U(4, 5))
spec("cross_entropy-ignore_none", lambda L, x: F(L).cross_entropy(x, const(L, CE_TARGET_IGN), reduction="none"),
     lambda x: np_cross_entropy(x, CE_TARGET_IGN, "none"), U(4, 5))
spec("cross_entropy-ignore_index", lambda L, x: F(L).cross_entropy(x, const(L, CE_TARGET_IGN1), ignore_index=1),
     lambda x: np_cross_entropy(x, CE_TARGET_IGN1, ignore_index=1), U(4, 5))
spec("cross_entropy-large", lambda L, x: F(L).cross_entropy(x, const(L, CE_TARGET)),
     lambda x: np_cross_entropy(x, CE_TARGET), U(4, 5, lo=300.0, hi=500.0))
spec("cross_entropy-spatial", lambda L, x: F(L).cross_entropy(x, const(L, CE_SPATIAL)),
     lambda x: np_cross_entropy(np.moveaxis(x, 1, -1).reshape(-1, 3), CE_SPATIAL.reshape(-1)), U(2, 3, 4))
spec("cross_entropy-single", lambda L, x: F(L).cross_entropy(x, const(L, np.array(2))),
     lambda x: np_cross_entropy(x[None], np.array([2])), U(5,))
spec("nll_loss-spatial_none", lambda L, x: F(L).nll_loss(x, const(L, CE_SPATIAL), reduction="none"),
     lambda x: np_nll(np.moveaxis(x, 1, -1).reshape(-1, 3), CE_SPATIAL.reshape(-1), "none").reshape(2, 4),
     U(2, 3, 4))
spec("nll_loss-mean", lambda L, x: F(L).nll_loss(x.log_softmax(dim=1), const(L, CE_TARGET)),
     lambda x: np_nll(np_log_softmax(x, 1), CE_TARGET), U(4, 5))
spec("nll_loss-raw", lambda L, x: F(L).nll_loss(x, const(L, CE_TARGET)), lambda x: np_nll(x, CE_TARGET), U(4, 5))
spec("nll_loss-sum", lambda L, x: F(L).nll_loss(x, const(L, CE_TARGET), reduction="sum"),
     lambda x: np_nll(x, CE_TARGET, "sum"), U(4, 5))
spec("nll_loss-none", lambda L, x: F(L).nll_loss(x, const(L, CE_TARGET), reduction="none"),
     lambda x: np_nll(x, CE_TARGET, "none"), U(4, 5))
spec("nll_loss-ignore", lambda L, x: F(L).nll_loss(x, const(L, CE_TARGET_IGN)),
     lambda x: np_nll(x, CE_TARGET_IGN), U(4, 5))
spec("nll_loss-ignore_index", lambda L, x: F(L).nll_loss(x, const(L, CE_TARGET_IGN1), ignore_index=1,
                                                         reduction="sum"),
     lambda x: np_nll(x, CE_TARGET_IGN1, "sum", ignore_index=1), U(4, 5))
spec("binary_cross_entropy_with_logits-mean",
     lambda L, x: F(L).binary_cross_entropy_with_logits(x, const(L, BCE_T, x)),
     lambda x: np_bce_logits(x, BCE_T), U(2, 3, lo=-4.0, hi=4.0))
spec("binary_cross_entropy_with_logits-sum",
     lambda L, x: F(L).binary_cross_entropy_with_logits(x, const(L, BCE_T, x), reduction="sum"),
     lambda x: np_bce_logits(x, BCE_T, "sum"), U(2, 3, lo=-4.0, hi=4.0))
spec("binary_cross_entropy_with_logits-none",
     lambda L, x: F(L).binary_cross_entropy_with_logits(x, const(L, BCE_T, x), reduction="none"),
     lambda x: np_bce_logits(x, BCE_T, "none"), U(2, 3, lo=-4.0, hi=4.0))
spec("binary_cross_entropy_with_logits-large",
     lambda L, x: F(L).binary_cross_entropy_with_logits(x, const(L, BCE_T, x), reduction="sum"),
     lambda x: np_bce_logits(x, BCE_T, "sum"), Away(2, 3, lo=-60.0, hi=60.0, margin=20.0))
spec("mse_loss-mean", lambda L, x, y: F(L).mse_loss(x, y), lambda x, y: np_mse(x, y), U(3, 4), U(3, 4))
spec("mse_loss-sum", lambda L, x, y: F(L).mse_loss(x, y, reduction="sum"), lambda x, y: np_mse(x, y, "sum"),
     U(5,), U(5,))
spec("mse_loss-none", lambda L, x, y: F(L).mse_loss(x, y, reduction="none"), lambda x, y: np_mse(x, y, "none"),
     U(2, 3), U(2, 3))
spec("mse_loss-half", lambda L, x, y: F(L).mse_loss(x, y, half=True), lambda x, y: np_mse(x, y, half=True),
     U(3, 4), U(3, 4), torch_fn=lambda L, x, y: 0.5 * F(L).mse_loss(x, y))
spec("mse_loss-half_sum", lambda L, x, y: F(L).mse_loss(x, y, reduction="sum", half=True),
     lambda x, y: 0.5 * np.sum((x - y) ** 2), U(4,), U(4,),
     torch_fn=lambda L, x, y: 0.5 * F(L).mse_loss(x, y, reduction="sum"))
spec("mse_loss-const_target", lambda L, x: F(L).mse_loss(x, const(L, BCE_T, x)),
     lambda x: np_mse(x, BCE_T), U(2, 3))

# ============================================================================
# composites (no table entry: gradients come from the primitives)
# ============================================================================
composite("dot-fn", lambda L, a, b: L.dot(a, b), lambda a, b: np.asarray(np.dot(a, b)), U(5,), U(5,))
composite("dot-method", lambda L, a, b: a.dot(b), lambda a, b: np.asarray(np.dot(a, b)), U(3,), U(3,))
composite("outer-fn", lambda L, a, b: L.outer(a, b), np.outer, U(3,), U(4,))
composite("outer-method", lambda L, a, b: a.outer(b), np.outer, U(2,), U(5,))
composite("stack-dim0", lambda L, a, b: L.stack([a, b]), lambda a, b: np.stack([a, b]), U(2, 3), U(2, 3))
composite("stack-dim1", lambda L, a, b: L.stack([a, b], dim=1), lambda a, b: np.stack([a, b], 1), U(2, 3), U(2, 3))
composite("stack-neg_dim", lambda L, a, b, c: L.stack((a, b, c), -1), lambda a, b, c: np.stack([a, b, c], -1),
          U(4,), U(4,), U(4,))
composite("split-size", lambda L, x: weighted_cat(L, x.split(2, dim=0), 0),
          lambda x: np_weighted_cat(np_split(x, [2, 2, 1], 0), 0), U(5, 3))
composite("split-sections", lambda L, x: weighted_cat(L, x.split([1, 3], dim=1), 1),
          lambda x: np_weighted_cat(np_split(x, [1, 3], 1), 1), U(2, 4))
composite("split-fn", lambda L, x: weighted_cat(L, L.split(x, 2, dim=1), 1),
          lambda x: np_weighted_cat(np_split(x, [2, 2, 1], 1), 1), U(3, 5))
composite("split-use_one", lambda L, x: x.split(2)[1] * 3.0, lambda x: x[2:4] * 3.0, U(5, 2))
composite("chunk-dim1", lambda L, x: weighted_cat(L, x.chunk(3, dim=1), 1),
          lambda x: np_weighted_cat(np_split(x, [2, 2, 2], 1), 1), U(2, 6))
composite("chunk-uneven", lambda L, x: weighted_cat(L, x.chunk(2), 0),
          lambda x: np_weighted_cat(np_split(x, [3, 2], 0), 0), U(5, 3))
composite("chunk-fn", lambda L, x: weighted_cat(L, L.chunk(x, 2, dim=0), 0),
          lambda x: np_weighted_cat(np_split(x, [2, 2], 0), 0), U(4, 2))
composite("squeeze-all", lambda L, x: x.squeeze(), lambda x: x.squeeze(), U(3, 1, 4, 1))
composite("squeeze-dim", lambda L, x: x.squeeze(1), lambda x: x.squeeze(1), U(3, 1, 4, 1))
composite("squeeze-neg_dim", lambda L, x: x.squeeze(-1), lambda x: x.squeeze(-1), U(3, 1, 4, 1))
composite("squeeze-noop", lambda L, x: x.squeeze(0), lambda x: x, U(3, 1, 4))
composite("squeeze-fn", lambda L, x: L.squeeze(x, 1), lambda x: x.squeeze(1), U(2, 1))
composite("unsqueeze-0", lambda L, x: x.unsqueeze(0), lambda x: x[None], U(3, 4))
composite("unsqueeze-neg", lambda L, x: x.unsqueeze(-1), lambda x: x[..., None], U(3, 4))
composite("unsqueeze-fn", lambda L, x: L.unsqueeze(x, 1), lambda x: x[:, None], U(3, 4))
composite("unsqueeze-None", lambda L, x: x[None], lambda x: x[None], U(3, 4))
composite("unsqueeze-None_mid", lambda L, x: x[:, None], lambda x: x[:, None], U(3, 4))
composite("unsqueeze-bcast_use", lambda L, x, y: x[:, None] * y[None, :], lambda x, y: np.outer(x, y), U(3,), U(4,))
composite("flatten-all", lambda L, x: x.flatten(), lambda x: x.reshape(-1), U(2, 3, 4))
composite("flatten-start", lambda L, x: x.flatten(1), lambda x: x.reshape(2, -1), U(2, 3, 4))
composite("flatten-range", lambda L, x: x.flatten(0, 1), lambda x: x.reshape(6, 4), U(2, 3, 4))
composite("flatten-neg", lambda L, x: x.flatten(-2, -1), lambda x: x.reshape(2, 12), U(2, 3, 4))
composite("flatten-fn", lambda L, x: L.flatten(x, start_dim=1), lambda x: x.reshape(3, -1), U(3, 2, 2))
composite("flatten-noncontig", lambda L, x: x.T.flatten(), lambda x: x.T.reshape(-1), U(3, 4))
composite("transpose-method", lambda L, x: x.transpose(0, 2), lambda x: np.swapaxes(x, 0, 2), U(2, 3, 4))
composite("transpose-neg", lambda L, x: x.transpose(-1, -2), lambda x: np.swapaxes(x, -1, -2), U(2, 3, 4))
composite("transpose-fn", lambda L, x: L.transpose(x, 0, 1), lambda x: x.T, U(3, 4))
composite("clone-method", lambda L, x: x.clone(), lambda x: x.copy(), U(3, 4))
composite("clone-fn", lambda L, x: L.clone(x) * 2.0, lambda x: x * 2.0, U(3,))
composite("var-all", lambda L, x: x.var(), lambda x: np.asarray(np.var(x, ddof=1)), U(3, 4))
composite("var-dim", lambda L, x: x.var(dim=1), lambda x: np.var(x, axis=1, ddof=1), U(3, 4))
composite("var-biased", lambda L, x: x.var(dim=1, unbiased=False), lambda x: np.var(x, axis=1), U(3, 4))
composite("var-correction", lambda L, x: x.var(0, correction=0, keepdim=True),
          lambda x: np.var(x, axis=0, keepdims=True), U(3, 4))
composite("var-tuple", lambda L, x: x.var(dim=(0, 2)), lambda x: np.var(x, axis=(0, 2), ddof=1), U(2, 3, 4))
composite("var-fn", lambda L, x: L.var(x, dim=-1, keepdim=True), lambda x: np.var(x, axis=-1, ddof=1, keepdims=True),
          U(2, 5))
composite("select-row", lambda L, x: x[1], lambda x: x[1], U(3, 4))
composite("select-neg_col", lambda L, x: x[:, -1], lambda x: x[:, -1], U(3, 4))
composite("select-scalar", lambda L, x: x[1, 2], lambda x: np.asarray(x[1, 2]), U(3, 4))
composite("select-ellipsis", lambda L, x: x[..., 0], lambda x: x[..., 0], U(2, 3, 4))
composite("select-mixed", lambda L, x: x[1, :, 1:3], lambda x: x[1, :, 1:3], U(2, 3, 4))
composite("select-method", lambda L, x: x.select(1, -2), lambda x: x[:, -2], U(3, 4))
composite("select-fn", lambda L, x: L.select(x, 0, 2), lambda x: x[2], U(3, 4))
composite("select-sum_rows", lambda L, x: x[0] * x[2] + x[1], lambda x: x[0] * x[2] + x[1], U(3, 4))
composite("index_tensor-rows", lambda L, x: x[const(L, IDX_REP)], lambda x: x[IDX_REP], U(3, 4))
composite("index_tensor-list", lambda L, x: x[[0, 2]], lambda x: x[[0, 2]], U(3, 4))
composite("index_tensor-list_repeat", lambda L, x: x[[0, 0, 2]], lambda x: x[[0, 0, 2]], U(3, 4))
composite("index_tensor-2d_index", lambda L, x: x[const(L, IDX_2D)], lambda x: x[IDX_2D], U(3, 4))
composite("index_tensor-negative", lambda L, x: x[const(L, IDX_NEG_WRAP)], lambda x: x[IDX_NEG_WRAP], U(3, 4))
composite("index_tensor-1d", lambda L, x: x[const(L, IDX_REP)], lambda x: x[IDX_REP], U(3,))
composite("hinge_loss-mean", lambda L, s: F(L).hinge_loss(s, const(L, HINGE_T, s)),
          lambda s: np_hinge(s, HINGE_T), Away(6, kinks=(-1.0, 1.0), margin=0.1),
          torch_fn=lambda L, s: L.clamp(1.0 - const(L, HINGE_T, s) * s, min=0.0).mean())
composite("hinge_loss-sum_margin", lambda L, s: F(L).hinge_loss(s, const(L, HINGE_T, s), margin=0.5, reduction="sum"),
          lambda s: np_hinge(s, HINGE_T, 0.5, "sum"), Away(6, kinks=(-0.5, 0.5), margin=0.1),
          torch_fn=lambda L, s: L.clamp(0.5 - const(L, HINGE_T, s) * s, min=0.0).sum())
composite("hinge_loss-none", lambda L, s: F(L).hinge_loss(s, const(L, HINGE_T, s), reduction="none"),
          lambda s: np_hinge(s, HINGE_T, 1.0, "none"), Away(6, kinks=(-1.0, 1.0), margin=0.1),
          torch_fn=lambda L, s: L.clamp(1.0 - const(L, HINGE_T, s) * s, min=0.0))
composite("multi_margin_loss-mean", lambda L, x: F(L).multi_margin_loss(x, const(L, MM_TARGET)),
          lambda x: np_multi_margin(x, MM_TARGET), MarginScores(MM_TARGET, 4, 1.0))
composite("multi_margin_loss-p2", lambda L, x: F(L).multi_margin_loss(x, const(L, MM_TARGET), p=2, margin=0.5),
          lambda x: np_multi_margin(x, MM_TARGET, p=2, margin=0.5), MarginScores(MM_TARGET, 4, 0.5))
composite("multi_margin_loss-sum", lambda L, x: F(L).multi_margin_loss(x, const(L, MM_TARGET), reduction="sum"),
          lambda x: np_multi_margin(x, MM_TARGET, reduction="sum"), MarginScores(MM_TARGET, 4, 1.0))
composite("multi_margin_loss-none", lambda L, x: F(L).multi_margin_loss(x, const(L, MM_TARGET), reduction="none"),
          lambda x: np_multi_margin(x, MM_TARGET, reduction="none"), MarginScores(MM_TARGET, 4, 1.0))
# linear: the fused linear + bias + activation op (F.linear is its activation-free form;
# nn.Sequential fuses Linear + ReLU/Tanh/Sigmoid into it). torch has no fused activation:
# its reference is the composite act(F.linear(x, w, b)).
spec("linear-bias", lambda L, x, w, b: F(L).linear(x, w, b), lambda x, w, b: x @ w.T + b,
     U(5, 3), U(4, 3), U(4,))
spec("linear-no_bias", lambda L, x, w: F(L).linear(x, w), lambda x, w: x @ w.T, U(5, 3), U(4, 3))
spec("linear-batched", lambda L, x, w, b: F(L).linear(x, w, b), lambda x, w, b: x @ w.T + b,
     U(2, 5, 3), U(4, 3), U(4,))
spec("linear-1d", lambda L, x, w, b: F(L).linear(x, w, bias=b), lambda x, w, b: w @ x + b, U(3,), U(2, 3), U(2,))
spec("linear-weight_view", lambda L, x, wt, b: F(L).linear(x, wt.T, b), lambda x, wt, b: x @ wt + b,
     U(5, 3), U(3, 4), U(4,))


def _act(name):
    return {"relu": lambda L, t: t.relu(), "tanh": lambda L, t: t.tanh(),
            "sigmoid": lambda L, t: t.sigmoid()}[name]


def _np_act(name):
    return {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh,
            "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[name]


def _fused(act):
    return lambda L, x, w, b: (L._C._linear(x, w, b, act) if L.__name__ == "tapegrad"
                               else _act(act)(L, F(L).linear(x, w, b)))


def _fused_nobias(act):
    return lambda L, x, w: (L._C._linear(x, w, None, act) if L.__name__ == "tapegrad"
                            else _act(act)(L, F(L).linear(x, w)))


for _a in ("relu", "tanh", "sigmoid"):
    spec(f"linear-{_a}", _fused(_a), lambda x, w, b, _a=_a: _np_act(_a)(x @ w.T + b),
         U(5, 3), U(4, 3), U(4,))
    spec(f"linear-{_a}_batched", _fused(_a), lambda x, w, b, _a=_a: _np_act(_a)(x @ w.T + b),
         U(2, 3, 6), U(5, 6), U(5,))
    spec(f"linear-{_a}_no_bias", _fused_nobias(_a), lambda x, w, _a=_a: _np_act(_a)(x @ w.T),
         U(4, 3), U(2, 3))
spec("linear-tanh_1d", _fused("tanh"), lambda x, w, b: np.tanh(w @ x + b), U(3,), U(2, 3), U(2,))
spec("linear-sigmoid_saturated", _fused("sigmoid"), lambda x, w, b: 1 / (1 + np.exp(-(x @ w.T + b))),
     U(3, 2, lo=-6.0, hi=6.0), U(4, 2, lo=-6.0, hi=6.0), U(4,))
composite("chain-mlp", lambda L, x, w1, w2: (x @ w1).tanh() @ w2,
          lambda x, w1, w2: np.tanh(x @ w1) @ w2, U(4, 3), U(3, 5), U(5, 2))
composite("chain-softmax_attention",
          lambda L, q, k, v: (q @ k.transpose(-1, -2) * 0.5).softmax(dim=-1) @ v,
          lambda q, k, v: np_softmax(q @ np.swapaxes(k, -1, -2) * 0.5, -1) @ v,
          U(2, 3, 4), U(2, 5, 4), U(2, 5, 2))
composite("chain-normalize", lambda L, x: (x - x.mean(dim=1, keepdim=True)) / (x.var(dim=1, keepdim=True) + 1e-5).sqrt(),
          lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, ddof=1, keepdims=True) + 1e-5), U(3, 5),
          rtol32=1e-4, atol32=1e-4)

# ============================================================================
# bigger sizes (BLAS and any parallel / vectorised kernel paths); gradients are
# compared with torch only (finite differences would be slow)
# ============================================================================
big = dict(gradcheck=False, rtol32=1e-4, atol32=1e-4)
spec("matmul-big", lambda L, a, b: a @ b, np.matmul, U(64, 128), U(128, 48), **big)
spec("matmul-big_aT", lambda L, a, b: a.T @ b, lambda a, b: a.T @ b, U(128, 64), U(128, 40), **big)
spec("matmul-big_batched", lambda L, a, b: a @ b.transpose(-1, -2), lambda a, b: a @ np.swapaxes(b, -1, -2),
     U(4, 32, 64), U(4, 24, 64), **big)
spec("matmul-big_vec", lambda L, a, b: a @ b, np.matmul, U(200, 300), U(300,), **big)
spec("sum-big_rows", lambda L, x: x.sum(dim=1), lambda x: x.sum(axis=1), U(500, 300), **big)
spec("sum-big_cols", lambda L, x: x.sum(dim=0), lambda x: x.sum(axis=0), U(500, 300), **big)
spec("mean-big_all", lambda L, x: x.mean(), lambda x: np.asarray(x.mean()), U(300, 500, lo=0.0, hi=1.0), **big)
spec("exp-big", lambda L, x: x.exp(), np.exp, U(300, 500), **big)
spec("mul-big_bcast", lambda L, x, y: x * y, lambda x, y: x * y, U(300, 500), U(500,), **big)
spec("add-big_strided", lambda L, x, y: x.T + y, lambda x, y: x.T + y, U(400, 300), U(300, 400), **big)
spec("softmax-big", lambda L, x: x.softmax(dim=1), lambda x: np_softmax(x, 1), U(300, 500), **big)
spec("log_softmax-big_dim0", lambda L, x: x.log_softmax(dim=0), lambda x: np_log_softmax(x, 0), U(300, 200), **big)
spec("max-big", lambda L, x: x.max(dim=1).values, lambda x: x.max(axis=1), Distinct(200, 300, step=0.01, jitter=0.002),
     **big)
spec("logsumexp-big", lambda L, x: x.logsumexp(dim=1), lambda x: np_logsumexp(x, 1), U(300, 400), **big)
spec("cross_entropy-big", lambda L, x: F(L).cross_entropy(x, const(L, BIG_TARGET)),
     lambda x: np_cross_entropy(x, BIG_TARGET), U(256, 100), **big)
spec("tanh-big", lambda L, x: x.tanh(), np.tanh, U(300, 500), **big)
spec("index_select-big", lambda L, x: x.index_select(0, const(L, BIG_IDX)), lambda x: x[BIG_IDX], U(100, 64), **big)
spec("embedding-big", lambda L, w: F(L).embedding(const(L, BIG_IDX.reshape(25, 40)), w),
     lambda w: w[BIG_IDX.reshape(25, 40)], U(100, 64), **big)


# ============================================================================
# forward-only (integer / bool results)
# ============================================================================
forward_only("compare-eq", lambda L, x, y: x == y, lambda x, y: x == y, Grid(3, 4, jitter=0, k=3),
             Grid(3, 4, jitter=0, k=3), out_dtype="bool")
forward_only("compare-ne", lambda L, x, y: x != y, lambda x, y: x != y, Grid(3, 4, jitter=0, k=3),
             Grid(4, jitter=0, k=3), out_dtype="bool")
forward_only("compare-lt", lambda L, x, y: x < y, lambda x, y: x < y, Grid(3, 4, jitter=0, k=3),
             Grid(3, 1, jitter=0, k=3), out_dtype="bool")
forward_only("compare-le", lambda L, x, y: x <= y, lambda x, y: x <= y, Grid(3, 4, jitter=0, k=3),
             Grid(3, 4, jitter=0, k=3), out_dtype="bool")
forward_only("compare-gt_scalar", lambda L, x: x > 0.25, lambda x: x > 0.25, Grid(3, 4, jitter=0, k=3),
             out_dtype="bool")
forward_only("compare-ge_scalar", lambda L, x: x >= 0.25, lambda x: x >= 0.25, Grid(3, 4, jitter=0, k=3),
             out_dtype="bool")
forward_only("compare-reflected", lambda L, x: 0.25 < x, lambda x: 0.25 < x, Grid(3, 4, jitter=0, k=3),
             out_dtype="bool")
forward_only("compare-eq_scalar", lambda L, x: x == 0.5, lambda x: x == 0.5, Grid(3, 4, jitter=0, k=3),
             out_dtype="bool")
forward_only("argmax-all", lambda L, x: x.argmax(), lambda x: np.asarray(x.argmax()), Distinct(3, 4),
             out_dtype="int64")
forward_only("argmax-dim", lambda L, x: x.argmax(dim=1), lambda x: x.argmax(axis=1), Distinct(3, 4),
             out_dtype="int64")
forward_only("argmax-keepdim_fn", lambda L, x: L.argmax(x, dim=-1, keepdim=True),
             lambda x: x.argmax(axis=-1)[..., None], Distinct(2, 3, 4), out_dtype="int64")
forward_only("argmin-all", lambda L, x: x.argmin(), lambda x: np.asarray(x.argmin()), Distinct(3, 4),
             out_dtype="int64")
forward_only("argmin-dim", lambda L, x: x.argmin(dim=0), lambda x: x.argmin(axis=0), Distinct(3, 4),
             out_dtype="int64")
forward_only("max_indices-dim", lambda L, x: x.max(dim=1).indices, lambda x: x.argmax(axis=1), Distinct(3, 4),
             out_dtype="int64")
forward_only("min_indices-dim", lambda L, x: x.min(dim=0).indices, lambda x: x.argmin(axis=0), Distinct(3, 4),
             out_dtype="int64")
forward_only("cast_int-long", lambda L, x: x.long(), lambda x: np.trunc(x).astype(np.int64),
             U(3, 4, lo=-5.0, hi=5.0), out_dtype="int64")
forward_only("cast_int-to_int64", lambda L, x: (x * 3.0).to(L.int64), lambda x: np.trunc(x * 3.0).astype(np.int64),
             Away(5, margin=0.05), out_dtype="int64")


# ============================================================================
# scans and the new unary primitives (log1p, expm1, erf, cumsum, cumprod)
# ============================================================================
spec("log1p-method", lambda L, x: x.log1p(), np.log1p, U(3, 4, lo=-0.9, hi=3.0))
spec("log1p-tiny", lambda L, x: L.log1p(x), np.log1p, U(5, lo=-1e-9, hi=1e-9))
spec("expm1-method", lambda L, x: x.expm1(), np.expm1, U(3, 4))
spec("expm1-tiny", lambda L, x: L.expm1(x), np.expm1, U(5, lo=-1e-9, hi=1e-9))
spec("erf-method", lambda L, x: x.erf(), lambda x: np.vectorize(__import__("math").erf)(x), U(3, 4))
spec("erf-fn", lambda L, x: L.erf(x), lambda x: np.vectorize(__import__("math").erf)(x), U(5, lo=-4.0, hi=4.0))
spec("cumsum-dim1", lambda L, x: x.cumsum(1), lambda x: np.cumsum(x, 1), U(3, 4))
spec("cumsum-dim0_fn", lambda L, x: L.cumsum(x, dim=0), lambda x: np.cumsum(x, 0), U(3, 4))
spec("cumsum-neg_3d", lambda L, x: x.cumsum(-2), lambda x: np.cumsum(x, -2), U(2, 3, 4))
spec("cumsum-0d", lambda L, x: x.cumsum(0), lambda x: x, U())
spec("cumprod-dim1", lambda L, x: x.cumprod(1), lambda x: np.cumprod(x, 1), U(3, 4))
spec("cumprod-fn_3d", lambda L, x: L.cumprod(x, 0), lambda x: np.cumprod(x, 0), U(3, 2, 2))
# zeros in the input: the gradient must not go through a division by x
spec("cumprod-zeros", lambda L, x: (x * const(L, np.array([1.0, 0.0, 1.0, 0.0, 1.0]), x)).cumprod(0),
     lambda x: np.cumprod(x * np.array([1.0, 0.0, 1.0, 0.0, 1.0]), 0), U(5,))
spec("cumprod-one_zero", lambda L, x: (x * const(L, np.array([[1.0, 1.0, 0.0, 1.0]]), x)).cumprod(-1),
     lambda x: np.cumprod(x * np.array([[1.0, 1.0, 0.0, 1.0]]), -1), U(2, 4))

# ============================================================================
# composites from tapegrad._composite_ops (sorting, shapes, elementwise,
# reductions, products); the non-differentiable ones are in test_composite_ops.py
# ============================================================================
MASK_34 = np.array([[True, False, False, True], [False, False, True, False], [True, True, False, False]])
TAKE_IDX = np.array([[0, 11, -1], [5, 5, 2]])


def np_sort(x, axis, descending=False):
    s = np.sort(x, axis=axis)
    return np.flip(s, axis) if descending else s


def np_topk(x, k, axis, largest=True):
    return np.take(np_sort(x, axis, largest), np.arange(k), axis=axis)


composite("sort-values", lambda L, x: x.sort().values, lambda x: np_sort(x, -1), Distinct(3, 4))
composite("sort-desc_dim0", lambda L, x: L.sort(x, dim=0, descending=True)[0],
          lambda x: np_sort(x, 0, True), Distinct(4, 3))
composite("sort-stable_kw", lambda L, x: L.sort(x, dim=1, stable=True).values, lambda x: np_sort(x, 1), Distinct(2, 5))
composite("topk-largest", lambda L, x: x.topk(2).values, lambda x: np_topk(x, 2, -1), Distinct(3, 4))
composite("topk-smallest_dim0", lambda L, x: L.topk(x, 3, dim=0, largest=False)[0],
          lambda x: np_topk(x, 3, 0, False), Distinct(4, 3))
composite("masked_fill-scalar", lambda L, x: x.masked_fill(const(L, MASK_34), -1.5),
          lambda x: np.where(MASK_34, -1.5, x), U(3, 4))
composite("masked_fill-bcast_fn", lambda L, x: L.masked_fill(x, const(L, MASK_34[0]), 0.0),
          lambda x: np.where(MASK_34[0], 0.0, x), U(3, 4))
composite("masked_fill-tensor_value", lambda L, x, v: x.masked_fill(const(L, MASK_34), v.reshape(())),
          lambda x, v: np.where(MASK_34, v.reshape(()), x), U(3, 4), U(1))
composite("repeat-2d", lambda L, x: x.repeat(2, 3), lambda x: np.tile(x, (2, 3)), U(2, 3))
composite("repeat-new_dims", lambda L, x: x.repeat((2, 1, 2)), lambda x: np.tile(x, (2, 1, 2)), U(3,))
composite("unbind-dim1", lambda L, x: weighted_cat(L, [t[None] for t in L.unbind(x, 1)], 0),
          lambda x: np_weighted_cat([x[:, i][None] for i in range(4)], 0), U(3, 4))
composite("unflatten-method", lambda L, x: x.unflatten(1, (2, -1)) * 2.0, lambda x: x.reshape(3, 2, 3) * 2.0, U(3, 6))
composite("flip-two", lambda L, x: L.flip(x, (0, 2)), lambda x: np.flip(x, (0, 2)), U(2, 3, 4))
composite("flip-method", lambda L, x: x.flip([-1]), lambda x: np.flip(x, -1), U(3, 4))
composite("roll-dim", lambda L, x: L.roll(x, 1, 1), lambda x: np.roll(x, 1, 1), U(3, 4))
composite("roll-flat", lambda L, x: x.roll(-2), lambda x: np.roll(x, -2), U(3, 4))
composite("roll-multi", lambda L, x: L.roll(x, (5, -1), (0, 1)), lambda x: np.roll(x, (5, -1), (0, 1)), U(3, 4))
composite("broadcast_to-fn", lambda L, x: L.broadcast_to(x, (2, 3, 4)), lambda x: np.broadcast_to(x, (2, 3, 4)),
          U(3, 1))
composite("tril-default", lambda L, x: L.tril(x), np.tril, U(4, 4))
composite("tril-diag_batched", lambda L, x: x.tril(-1), lambda x: np.tril(x, -1), U(2, 3, 4))
composite("triu-default", lambda L, x: L.triu(x), np.triu, U(4, 3))
composite("triu-diag1", lambda L, x: x.triu(diagonal=1), lambda x: np.triu(x, 1), U(3, 5))
composite("diag-vec_to_mat", lambda L, x: L.diag(x), np.diag, U(4,))
composite("diag-vec_offset", lambda L, x: L.diag(x, -2), lambda x: np.diag(x, -2), U(3,))
composite("diag-mat_to_vec", lambda L, x: x.diag(), np.diag, U(3, 4))
composite("diag-mat_offset", lambda L, x: L.diag(x, 1), lambda x: np.diag(x, 1), U(4, 3))
composite("trace-fn", lambda L, x: L.trace(x), lambda x: np.asarray(np.trace(x)), U(3, 4))
composite("take-fn", lambda L, x: L.take(x, const(L, TAKE_IDX)), lambda x: x.reshape(-1)[TAKE_IDX], U(3, 4))
composite("meshgrid-ij", lambda L, a, b: weighted_cat(L, L.meshgrid(a, b, indexing="ij"), 0),
          lambda a, b: np_weighted_cat(np.meshgrid(a, b, indexing="ij"), 0), U(3,), U(4,))
composite("meshgrid-xy", lambda L, a, b: weighted_cat(L, L.meshgrid([a, b], indexing="xy"), 0),
          lambda a, b: np_weighted_cat(np.meshgrid(a, b, indexing="xy"), 0), U(3,), U(4,))
composite("log2-method", lambda L, x: x.log2(), np.log2, Pos(3, 4))
composite("log10-fn", lambda L, x: L.log10(x), np.log10, Pos(5, lo=0.05, hi=30.0))
composite("rsqrt-method", lambda L, x: x.rsqrt(), lambda x: 1 / np.sqrt(x), Pos(3, 4))
composite("reciprocal-fn", lambda L, x: L.reciprocal(x), lambda x: 1 / x, Away(3, 4, margin=0.3))
# floor/ceil/round/trunc: values, and a zero gradient (checked by gradcheck and against torch)
composite("floor-grad0", lambda L, x: x.floor() + x, lambda x: np.floor(x) + x, Away(3, 4, kinks=range(-2, 3), margin=0.05))
composite("ceil-grad0", lambda L, x: L.ceil(x) * x, lambda x: np.ceil(x) * x, Away(3, 4, kinks=range(-2, 3), margin=0.05))
composite("round-half_even", lambda L, x: L.round(x * 2.0) + x, lambda x: np.round(x * 2.0) + x,
          Away(3, 4, kinks=np.arange(-2.25, 2.5, 0.5), margin=0.05))
composite("round-decimals", lambda L, x: x.round(decimals=1) - x, lambda x: np.round(x, 1) - x,
          Away(6, kinks=np.arange(-1.95, 2.0, 0.1), margin=0.01))
composite("trunc-method", lambda L, x: x.trunc() * 3.0 + x, lambda x: np.trunc(x) * 3.0 + x,
          Away(3, 4, kinks=range(-2, 3), margin=0.05))
composite("frac-fn", lambda L, x: L.frac(x), lambda x: x - np.trunc(x), Away(3, 4, kinks=range(-2, 3), margin=0.05))
composite("lerp-scalar", lambda L, a, b: L.lerp(a, b, 0.3), lambda a, b: a + 0.3 * (b - a), U(3, 4), U(3, 4))
composite("lerp-scalar_high", lambda L, a, b: a.lerp(b, 0.8), lambda a, b: a + 0.8 * (b - a), U(3, 4), U(4,))
composite("lerp-tensor_weight", lambda L, a, b, w: L.lerp(a, b, w), lambda a, b, w: a + w * (b - a),
          U(3, 4), U(3, 4), Away(3, 4, lo=0.0, hi=1.0, kinks=(0.5,), margin=0.05))
composite("addcmul-fn", lambda L, a, b, c: L.addcmul(a, b, c, value=0.5), lambda a, b, c: a + 0.5 * b * c,
          U(3, 4), U(3, 4), U(4,))
composite("addcmul-method", lambda L, a, b, c: a.addcmul(b, c), lambda a, b, c: a + b * c, U(3,), U(3,), U(3,))
composite("addcdiv-fn", lambda L, a, b, c: L.addcdiv(a, b, c, value=-2), lambda a, b, c: a - 2 * b / c,
          U(3, 4), U(3, 4), Pos(3, 4))
composite("nan_to_num-finite", lambda L, x: L.nan_to_num(x), lambda x: x, U(3, 4))
composite("nan_to_num-replaced",
          lambda L, x: (x.log() * const(L, np.array([1.0, 1.0, 1.0, 1.0]), x)).nan_to_num(nan=0.5, neginf=-7.0),
          lambda x: np.nan_to_num(np.log(x), nan=0.5, neginf=-7.0), Pos(4,))
composite("clamp_min-fn", lambda L, x: L.clamp_min(x, 0.2), lambda x: np.maximum(x, 0.2), Away(3, 4, kinks=(0.2,)))
composite("clamp_max-method", lambda L, x: x.clamp_max(-0.3), lambda x: np.minimum(x, -0.3),
          Away(3, 4, kinks=(-0.3,)))
composite("prod-all", lambda L, x: x.prod(), lambda x: np.asarray(np.prod(x)), U(3, 4, lo=0.5, hi=1.5))
composite("prod-dim", lambda L, x: L.prod(x, 1), lambda x: np.prod(x, 1), U(3, 4))
composite("prod-keepdim", lambda L, x: x.prod(dim=0, keepdim=True), lambda x: np.prod(x, 0, keepdims=True), U(3, 4))
composite("prod-zeros", lambda L, x: (x * const(L, np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), x)).prod(1),
          lambda x: np.prod(x * np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), 1), U(2, 3))
composite("prod-one_zero_all", lambda L, x: (x * const(L, np.array([1.0, 1.0, 0.0, 1.0]), x)).prod(),
          lambda x: np.asarray(np.prod(x * np.array([1.0, 1.0, 0.0, 1.0]))), U(4,))
composite("norm-fro", lambda L, x: x.norm(), lambda x: np.asarray(np.linalg.norm(x)), U(3, 4))
composite("norm-p1_dim", lambda L, x: L.norm(x, p=1, dim=1), lambda x: np.abs(x).sum(1), Away(3, 4))
composite("norm-p3_keepdim", lambda L, x: L.norm(x, 3, dim=0, keepdim=True),
          lambda x: (np.abs(x) ** 3).sum(0, keepdims=True) ** (1 / 3), Away(3, 4))
composite("vector_norm-2", lambda L, x: L.linalg.vector_norm(x), lambda x: np.asarray(np.linalg.norm(x.reshape(-1))),
          U(2, 3, 4))
composite("vector_norm-inf_dims", lambda L, x: L.linalg.vector_norm(x, ord=float("inf"), dim=(0, 2)),
          lambda x: np.abs(x).max(axis=(0, 2)), Distinct(2, 3, 4))
composite("vector_norm-half", lambda L, x: L.linalg.vector_norm(x, 0.5, dim=-1), lambda x: (np.abs(x) ** 0.5).sum(-1) ** 2,
          Away(3, 4))
composite("vector_norm-zero_row", lambda L, x: L.linalg.vector_norm(x * const(L, np.array([[1.0], [0.0]]), x), dim=1),
          lambda x: np.linalg.norm(x * np.array([[1.0], [0.0]]), axis=1), U(2, 3))
composite("linalg_norm-vec", lambda L, x: L.linalg.norm(x, dim=1), lambda x: np.linalg.norm(x, axis=1), U(3, 4))
composite("linalg_norm-fro", lambda L, x: L.linalg.norm(x, "fro"), lambda x: np.asarray(np.linalg.norm(x)), U(3, 4))
composite("linalg_norm-ord1", lambda L, x: L.linalg.norm(x, 1), lambda x: np.asarray(np.abs(x).sum()), Away(5,))
composite("amin-all", lambda L, x: L.amin(x), lambda x: np.asarray(x.min()), Distinct(3, 4))
composite("amin-dims", lambda L, x: x.amin(dim=(0, 2), keepdim=True), lambda x: x.min(axis=(0, 2), keepdims=True),
          Distinct(2, 3, 4))
composite("amax-method_dim", lambda L, x: x.amax(1), lambda x: x.max(axis=1), Distinct(3, 4))
composite("remainder-scalar", lambda L, x: x % 0.75, lambda x: np.remainder(x, 0.75),
          Away(3, 4, kinks=np.arange(-2.25, 2.3, 0.75), margin=0.05))
composite("remainder-tensors", lambda L, x, y: L.remainder(x, y), np.remainder,
          U(3, 4, lo=-3.0, hi=3.0), Pos(4, lo=0.7, hi=1.3),
          gradcheck=False)  # kinks wherever x / y crosses an integer; compared with torch
composite("remainder-neg_divisor", lambda L, x: x.remainder(-0.6), lambda x: np.remainder(x, -0.6),
          Away(3, 4, kinks=np.arange(-2.4, 2.5, 0.6), margin=0.05))
# torch has no derivative for remainder(Scalar, Tensor): forward only
forward_only("remainder-reflected", lambda L, x: 2.0 % x, lambda x: np.remainder(2.0, x), Pos(5, lo=0.9, hi=1.9))
composite("bmm-fn", lambda L, a, b: L.bmm(a, b), np.matmul, U(2, 3, 4), U(2, 4, 5))
composite("mv-method", lambda L, a, v: a.mv(v), np.matmul, U(3, 4), U(4,))
composite("addmm-default", lambda L, c, a, b: L.addmm(c, a, b), lambda c, a, b: c + a @ b, U(3, 5), U(3, 4), U(4, 5))
composite("addmm-beta_alpha", lambda L, c, a, b: c.addmm(a, b, beta=0.5, alpha=-2.0),
          lambda c, a, b: 0.5 * c + -2.0 * (a @ b), U(5,), U(3, 4), U(4, 5))

forward_only("argsort-dim", lambda L, x: x.argsort(dim=1), lambda x: np.argsort(x, 1), Distinct(3, 4),
             out_dtype="int64")
forward_only("argsort-desc", lambda L, x: L.argsort(x, 0, descending=True), lambda x: np.argsort(-x, 0),
             Distinct(3, 4), out_dtype="int64")
forward_only("sort_indices-fn", lambda L, x: L.sort(x).indices, lambda x: np.argsort(x, -1), Distinct(2, 5),
             out_dtype="int64")
forward_only("topk_indices-method", lambda L, x: x.topk(2, dim=0).indices, lambda x: np.argsort(-x, 0)[:2],
             Distinct(4, 3), out_dtype="int64")
forward_only("isinf-fn", lambda L, x: L.isinf(x / (x > 0).to(x.dtype)), lambda x: x < 0,  # x / 0 = -inf where x < 0 (Away: never 0)
            
             Away(3, 4), out_dtype="bool")
forward_only("isfinite-method", lambda L, x: (x.log()).isfinite(), lambda x: x > 0,  # log(x < 0) is NaN
            
             Away(3, 4), out_dtype="bool")
forward_only("floor_divide-op", lambda L, x: x // 0.7, lambda x: np.floor_divide(x, 0.7),
             Away(3, 4, kinks=np.arange(-2.1, 2.2, 0.7), margin=0.05))
forward_only("floor_divide-fn", lambda L, x, y: L.floor_divide(x, y), np.floor_divide,
             U(3, 4, lo=-3.0, hi=3.0), Pos(4, lo=-1.3, hi=-0.7))
forward_only("any-dim", lambda L, x: (x > 1.0).any(dim=1), lambda x: (x > 1.0).any(1), U(4, 3), out_dtype="bool")
forward_only("all-keepdim", lambda L, x: L.all(x > -1.0, 0, keepdim=True), lambda x: (x > -1.0).all(0, keepdims=True),
             U(4, 3), out_dtype="bool")
forward_only("count_nonzero-dim", lambda L, x: L.count_nonzero(x > 0.5, dim=0), lambda x: np.count_nonzero(x > 0.5, 0),
             U(4, 3), out_dtype="int64")
composite("einsum-matmul", lambda L, a, b: L.einsum("ij,jk->ik", a, b), lambda a, b: a @ b, U(3, 4), U(4, 5))
composite("einsum-attention", lambda L, q, k: L.einsum("bhid,bhjd->bhij", q, k),
          lambda q, k: np.einsum("bhid,bhjd->bhij", q, k), U(2, 2, 3, 4), U(2, 2, 5, 4))
composite("einsum-implicit_out", lambda L, a, b: L.einsum("ij,kj", [a, b]), lambda a, b: np.einsum("ij,kj", a, b),
          U(3, 4), U(5, 4))
composite("einsum-outer_sum", lambda L, a, b: L.einsum("ij,kl->lj", a, b), lambda a, b: np.einsum("ij,kl->lj", a, b),
          U(2, 3), U(4, 5))
composite("einsum-dot", lambda L, a, b: L.einsum("i,i->", a, b), lambda a, b: np.asarray(a @ b), U(4,), U(4,))
composite("einsum-one_operand", lambda L, a: L.einsum("ijk->ki", a), lambda a: np.einsum("ijk->ki", a), U(2, 3, 4))
