"""PyTorch functions built as composites of the recorded primitives.

Note [Composite ops]
None of these has a backward of its own: every differentiable value is built
from recorded primitives (gather, index_select, where, expand, reshape, mul,
...), so its gradient comes from theirs. Integer results (sort orders,
indices, counts) and bool results have no gradient; they are computed with
NumPy from the detached values and wrapped as int64 / bool tensors. Those
that read values cannot be recorded by tg.compile (the core raises when
values are read while recording); those that build their index and mask
constants from shapes alone (tril, flip, roll, repeat, diag, einsum, ...)
can.
"""

import builtins
import collections
import math
import numbers

import numpy as np

from . import _C
from ._C import Tensor

_F64, _F32, _I64, _BOOL = _C.dtype.float64, _C.dtype.float32, _C.dtype.int64, _C.dtype.bool
_NP_DTYPE = {_F32: np.float32, _F64: np.float64, _I64: np.int64, _BOOL: np.bool_}

# torch.return_types.sort / topk: namedtuples, like max(dim) / min(dim) in the core.
_sort_result = collections.namedtuple("sort", ("values", "indices"))
_topk_result = collections.namedtuple("topk", ("values", "indices"))


# ---------------------------------------------------------------- helpers
def _np(t):
    return t.detach().numpy()


def _long(arr):
    return _C.from_numpy(np.array(arr, dtype=np.int64, order="C"))


def _bool(arr):
    return _C.from_numpy(np.array(arr, dtype=np.bool_, order="C"))


def _like(arr, t):
    """A constant with t's dtype (a fresh copy: NumPy may have returned a view).
    Reads only t's dtype, never its values: ops that build constants from
    shapes alone (tril, diag, masked_fill, ...) stay recordable by tg.compile."""
    return _C.from_numpy(np.array(arr, dtype=_NP_DTYPE[t.dtype], order="C"))


def _check_tensor(t, op, what="input"):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}(): argument '{what}' must be a Tensor, not {type(t).__name__}")


def _wrap(dim, ndim, op):
    n = builtins.max(ndim, 1)  # a 0-d tensor accepts dim 0 / -1, as torch
    if not isinstance(dim, numbers.Integral) or isinstance(dim, builtins.bool):
        raise TypeError(f"{op}(): dim must be an int, got {dim!r}")
    if not -n <= dim < n:
        raise IndexError(f"{op}(): dimension {dim} is out of range for a tensor with {ndim} "
                         f"dimensions (expected in [{-n}, {n - 1}])")
    return int(dim) % n


def _dims(dim, ndim, op):
    """dim (None, an int or a sequence) as a sorted tuple of distinct wrapped dims."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    wrapped = [_wrap(d, ndim, op) for d in dims]
    if len(set(wrapped)) != len(wrapped):
        raise RuntimeError(f"{op}(): dim {dims} has repeated dims for a tensor of {ndim} dims")
    return tuple(sorted(wrapped)) if ndim else ()


def _sizes(args, op):
    """f(2, 3) and f((2, 3)) / f([2, 3]) both give [2, 3]."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        args = tuple(args[0])
    for s in args:
        if not isinstance(s, numbers.Integral) or isinstance(s, builtins.bool):
            raise TypeError(f"{op}(): sizes must be ints, got {args!r}")
    return [int(s) for s in args]


def _category(dt):
    return 0 if dt == _BOOL else 1 if dt == _I64 else 2


def _promote(a, b):
    """torch's result dtype for a tensor `a` and a tensor or Python number `b`."""
    if isinstance(b, Tensor):
        if (a.ndim == 0) == (b.ndim == 0):
            return builtins.max(a.dtype, b.dtype, key=lambda d: (_category(d), d == _F64))
        dims, zero = (b, a) if a.ndim == 0 else (a, b)
        return zero.dtype if _category(zero.dtype) > _category(dims.dtype) else dims.dtype
    kind = 0 if isinstance(b, builtins.bool) else 1 if isinstance(b, numbers.Integral) else 2
    if kind <= _category(a.dtype):
        return a.dtype
    return _I64 if kind == 1 else _F32


def _zero_grad(values, t):
    """`values` (a NumPy result of t's dtype) that carries t's graph with zero
    gradient, as torch's floor/round/... do: where(True, values, t) passes 0 to t."""
    out = _like(values, t)
    if t.requires_grad and _C.is_grad_enabled():
        out = _C.where(_bool(np.ones(t.shape, dtype=bool)), out, t)
    return out


def _tensor_operand(x, like, op):
    """A Python number as a 0-d tensor of the dtype torch would give it next to `like`."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number):
        return _C.from_numpy(np.array(x, dtype=_NP_DTYPE[_promote(like, x)]))
    raise TypeError(f"{op}(): expected a Tensor or a number, got {type(x).__name__}")


# ================================================================ 1. sorting
def _stable_order(a, dim, descending):
    """NumPy's stable argsort; descending keeps ties in their original order
    (and puts NaN first, as torch) by sorting the flipped array."""
    if not descending:
        return np.argsort(a, axis=dim, kind="stable")
    n = a.shape[dim]
    order = np.argsort(np.flip(a, dim), axis=dim, kind="stable")
    return n - 1 - np.flip(order, dim)


def sort(input, dim=-1, descending=False, stable=False):
    """Values are input.gather(dim, order): differentiable. Always stable."""
    _check_tensor(input, "sort")
    if input.ndim == 0:
        _wrap(dim, 0, "sort")
        return _sort_result(input.clone(), _long(np.zeros((), np.int64)))
    d = _wrap(dim, input.ndim, "sort")
    idx = _long(_stable_order(_np(input), d, descending))
    return _sort_result(input.gather(d, idx), idx)


def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending, stable).indices


def topk(input, k, dim=-1, largest=True, sorted=True):
    _check_tensor(input, "topk")
    d = _wrap(dim, input.ndim, "topk")
    n = input.shape[d] if input.ndim else 1
    if not isinstance(k, numbers.Integral) or not 0 <= k <= n:
        raise RuntimeError(f"topk(): selected index k={k!r} out of range for dim {d} of size {n} "
                           f"(shape {list(input.shape)})")
    if input.ndim == 0:
        return _topk_result(input.clone(), _long(np.zeros((), np.int64)))
    order = _stable_order(_np(input), d, largest)
    idx = _long(np.take(order, np.arange(k), axis=d))
    return _topk_result(input.gather(d, idx), idx)


# ================================================================ 2. masked_fill
def masked_fill(input, mask, value):
    _check_tensor(input, "masked_fill")
    _check_tensor(mask, "masked_fill", "mask")
    if mask.dtype != _BOOL:
        raise RuntimeError(f"masked_fill(): only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill(): only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s)")
        value = value.to(input.dtype)  # differentiable: value gets the masked gradient
    elif isinstance(value, numbers.Number):
        value = _like(np.array(value), input)
    else:
        raise TypeError(f"masked_fill(): value must be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    return _C.where(mask, value, input)


# ================================================================ 3. shapes
def repeat(input, *sizes):
    """Tiles by viewing each dim d as (1, d), expanding the 1 and merging."""
    reps = _sizes(sizes, "repeat")
    if len(reps) < input.ndim:
        raise RuntimeError(f"repeat(): number of dimensions of repeat dims {reps} can not be "
                           f"smaller than number of dimensions of tensor {list(input.shape)}")
    if builtins.any(r < 0 for r in reps):
        raise RuntimeError(f"repeat(): repeats must be non-negative, got {reps}")
    shape = [1] * (len(reps) - input.ndim) + list(input.shape)
    split, big, out = [], [], []
    for r, s in zip(reps, shape):
        split += [1, s]
        big += [r, s]
        out.append(r * s)
    return input.reshape(split).expand(big).reshape(out)


def unbind(input, dim=0):
    d = _wrap(dim, input.ndim, "unbind")
    if input.ndim == 0:
        raise IndexError("unbind(): a 0-d tensor has no dimension to unbind")
    return tuple(input.select(d, i) for i in range(input.shape[d]))


def unflatten(input, dim, sizes):
    d = _wrap(dim, input.ndim, "unflatten")
    sizes = _sizes((sizes,), "unflatten")
    n = input.shape[d]
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:  # one size may be inferred, and it must come out whole
        bad = sizes.count(-1) > 1 or known == 0 or n % known != 0
    else:
        bad = known != n
    if not sizes or bad:
        raise RuntimeError(f"unflatten(): provided sizes {sizes} don't multiply up to the size "
                           f"of dim {d} ({n}) in the input tensor {list(input.shape)}")
    shape = list(input.shape)
    return input.reshape(shape[:d] + sizes + shape[d + 1:])


def flip(input, dims):
    _check_tensor(input, "flip")
    if not isinstance(dims, (numbers.Integral, list, tuple)):
        raise TypeError(f"flip(): dims must be an int or a sequence of ints, got {dims!r}")
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    out = input
    for d in _dims(dims, input.ndim, "flip"):
        if input.ndim:
            out = out.index_select(d, _long(np.arange(input.shape[d] - 1, -1, -1)))
    return input.clone() if out is input else out


def roll(input, shifts, dims=None):
    if dims is None:
        if not isinstance(shifts, numbers.Integral):
            if len(shifts) != 1:
                raise RuntimeError(f"roll(): shifts {shifts} need dims of the same length")
            shifts = shifts[0]
        return roll(input.flatten(), shifts, 0).reshape(list(input.shape))
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll(): shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims: {len(dims)}")
    out = input
    for s, d in zip(shifts, dims):
        d = _wrap(d, input.ndim, "roll")
        n = input.shape[d] if input.ndim else 1
        if n and input.ndim:
            out = out.index_select(d, _long((np.arange(n) - int(s)) % n))
    return out


def broadcast_to(input, shape):
    shape = _sizes((shape,), "broadcast_to")
    trailing = zip(shape[::-1], list(input.shape)[::-1])
    if len(shape) < input.ndim or not builtins.all(s in (n, -1) or n == 1 for s, n in trailing):
        raise RuntimeError(f"broadcast_to(): the shape {list(input.shape)} cannot be broadcast "
                           f"to {shape}")
    return input.expand(shape)


def _tri(input, diagonal, lower, op):
    if input.ndim < 2:
        raise RuntimeError(f"{op}(): input tensor must have at least 2 dimensions, got "
                           f"{list(input.shape)}")
    n, m = input.shape[-2:]
    keep = np.tri(n, m, diagonal, dtype=bool) if lower else ~np.tri(n, m, diagonal - 1, dtype=bool)
    return _C.where(_bool(keep), input, _like(np.zeros(()), input))


def tril(input, diagonal=0):
    return _tri(input, diagonal, True, "tril")


def triu(input, diagonal=0):
    return _tri(input, diagonal, False, "triu")


def diag(input, diagonal=0):
    k = int(diagonal)
    if input.ndim == 1:
        # Picks from [0, x_0, x_1, ...]: position 0 fills the off-diagonal entries.
        n = input.shape[0] + builtins.abs(k)
        pick = np.zeros((n, n), dtype=np.int64)
        r = np.arange(input.shape[0])
        pick[r + builtins.max(-k, 0), r + builtins.max(k, 0)] = r + 1
        padded = _C.cat([_like(np.zeros(1), input), input])
        return padded.index_select(0, _long(pick.reshape(-1))).reshape(n, n)
    if input.ndim == 2:
        n, m = input.shape
        rows = np.arange(builtins.max(-k, 0), n)
        rows = rows[rows + k < m]
        return input.reshape(-1).index_select(0, _long(rows * m + rows + k))
    raise RuntimeError(f"diag(): supports 1D or 2D tensors, got {input.ndim}D "
                       f"{list(input.shape)}")


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace(): expected a matrix, but got tensor with shape "
                           f"{list(input.shape)}")
    return diag(input).sum()


def take(input, index):
    _check_tensor(index, "take", "index")
    if index.dtype != _I64:
        raise TypeError(f"take(): expected an int64 index tensor, got {index.dtype}")
    n = input.numel()
    ix = _np(index)
    bad = (ix < -n) | (ix >= n)
    if bad.any():
        raise IndexError(f"take(): index {int(ix[bad].flat[0])} is out of range for a tensor "
                         f"of {n} elements (shape {list(input.shape)})")
    flat = input.reshape(-1).index_select(0, _long(np.where(ix < 0, ix + n, ix).reshape(-1)))
    return flat.reshape(list(index.shape))


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise RuntimeError("meshgrid(): expects a non-empty list of tensors")
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid(): indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        _check_tensor(t, "meshgrid", "tensors")
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid(): expects 0D or 1D tensors, got {list(t.shape)}")
    swap = indexing == "xy" and len(tensors) >= 2
    ts = [tensors[1], tensors[0], *tensors[2:]] if swap else list(tensors)
    sizes = [t.numel() for t in ts]
    outs = []
    for i, t in enumerate(ts):
        shape = [1] * len(ts)
        shape[i] = sizes[i]
        outs.append(t.reshape(shape).expand(sizes))
    if swap:
        outs[0], outs[1] = outs[1], outs[0]
    return tuple(outs)


# ================================================================ 5. elementwise
_LN2, _LN10 = math.log(2.0), math.log(10.0)


def log2(input):
    return input.log() * (1.0 / _LN2)


def log10(input):
    return input.log() * (1.0 / _LN10)


def rsqrt(input):
    return input.float() ** -0.5 if not input.dtype.is_floating_point else input ** -0.5


def reciprocal(input):
    return 1.0 / input


def _rounding(fn, name):
    def op(input, **kw):
        _check_tensor(input, name)
        if input.dtype == _BOOL:
            raise TypeError(f"{name}(): not supported for bool tensors {list(input.shape)}")
        if input.dtype == _I64:
            return input.clone()
        with np.errstate(all="ignore"):
            return _zero_grad(fn(_np(input), **kw), input)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"torch.{name}: zero gradient, as in torch."
    return op


floor = _rounding(np.floor, "floor")
ceil = _rounding(np.ceil, "ceil")
trunc = _rounding(np.trunc, "trunc")
fix = trunc
_round = _rounding(np.round, "round")  # half to even, like torch


def round(input, *, decimals=0):  # noqa: A001  (mirrors torch.round)
    return _round(input, decimals=decimals) if decimals else _round(input)


def frac(input):
    return input - trunc(input)


def lerp(input, end, weight):
    """start + w (end - start), or end - (1 - w)(end - start) for |w| >= 0.5:
    exact at both ends (torch's formula)."""
    diff = end - input
    if isinstance(weight, Tensor):
        small = weight.detach().abs() < 0.5
        return _C.where(small, input + weight * diff, end - diff * (1.0 - weight))
    if builtins.abs(weight) < 0.5:
        return input + diff * weight
    return end - diff * (1.0 - weight)


def addcmul(input, tensor1, tensor2, *, value=1):
    return input + tensor1 * tensor2 * value


def addcdiv(input, tensor1, tensor2, *, value=1):
    return input + tensor1 / tensor2 * value


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """Replaced entries get no gradient (where passes it only to the finite ones)."""
    if not input.dtype.is_floating_point:
        return input.clone()
    info = np.finfo(_NP_DTYPE[input.dtype])
    x = input.detach()
    out = _C.where(x.isnan(), _like(np.array(nan), input), input)
    out = _C.where(x == math.inf, _like(np.array(info.max if posinf is None else posinf), input), out)
    return _C.where(x == -math.inf, _like(np.array(info.min if neginf is None else neginf), input), out)


# Comparisons with inf (NaN compares false) rather than NumPy: no values are read.
def isinf(input):
    _check_tensor(input, "isinf")
    x = input.detach()
    return (x if x.dtype == _BOOL else x.abs()) == math.inf


def isfinite(input):
    _check_tensor(input, "isfinite")
    x = input.detach()
    return (x if x.dtype == _BOOL else x.abs()) < math.inf


def clamp_min(input, min):  # noqa: A002
    if isinstance(min, Tensor):
        return _C.maximum(input, min)
    return input.clamp(min=min)


def clamp_max(input, max):  # noqa: A002
    if isinstance(max, Tensor):
        return _C.minimum(input, max)
    return input.clamp(max=max)


# ================================================================ 6. reductions and logic
def prod(input, dim=None, keepdim=False, *, dtype=None):
    """The last entry of cumprod: cumprod's backward never divides by x, so the
    gradient is exact with zeros in the input."""
    _check_tensor(input, "prod")
    x = input if dtype is None else input.to(dtype)
    if dim is None:
        if x.numel() == 0:  # the empty product
            return _C.from_numpy(np.ones((), dtype=_np(x.reshape(-1).cumprod(0)).dtype))
        return x.reshape(-1).cumprod(0).select(0, -1)
    d = _wrap(dim, x.ndim, "prod")
    if x.ndim == 0:
        return x.cumprod(0)
    if x.shape[d] == 0:
        shape = list(x.shape)
        shape[d] = 1
        ones = _C.from_numpy(np.ones(shape, dtype=_np(x.cumprod(d)).dtype))
        return ones if keepdim else ones.squeeze(d)
    out = x.cumprod(d).select(d, -1)
    return out.unsqueeze(d) if keepdim else out


def _np_reduce(fn, name, out):
    def op(input, dim=None, keepdim=False):
        _check_tensor(input, name)
        axes = _dims(dim, input.ndim, name)
        a = _np(input)
        r = fn(a, axis=axes, keepdims=keepdim) if a.ndim else fn(a)
        return out(np.asarray(r))
    op.__name__ = op.__qualname__ = name
    return op


any = _np_reduce(np.any, "any", _bool)  # noqa: A001
all = _np_reduce(np.all, "all", _bool)  # noqa: A001


def count_nonzero(input, dim=None):
    _check_tensor(input, "count_nonzero")
    a = _np(input)
    return _long(np.count_nonzero(a, axis=_dims(dim, input.ndim, "count_nonzero") if a.ndim else None))


def nonzero(input, *, as_tuple=False):
    _check_tensor(input, "nonzero")
    a = _np(input)
    if as_tuple:
        return tuple(_long(i) for i in np.nonzero(np.atleast_1d(a)))
    return _long(np.argwhere(a))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """Always sorted (torch's sorted=False order is unspecified)."""
    _check_tensor(input, "unique")
    if dim is not None:
        raise NotImplementedError("unique(): only dim=None is supported")
    a = _np(input)
    vals, inv, counts = np.unique(a.reshape(-1), return_inverse=True, return_counts=True)
    out = [_like(vals, input)]
    if return_inverse:
        out.append(_long(inv.reshape(a.shape)))
    if return_counts:
        out.append(_long(counts))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input, weights=None, minlength=0):
    _check_tensor(input, "bincount")
    a = _np(input)
    if input.dtype != _I64 or a.ndim != 1 or (a.size and a.min() < 0):
        raise RuntimeError(f"bincount(): only supports 1-d non-negative integral inputs, got "
                           f"{input.dtype}{list(input.shape)}")
    if minlength < 0:
        raise RuntimeError(f"bincount(): minlength should be >= 0, got {minlength}")
    if weights is None:
        return _long(np.bincount(a, minlength=minlength))
    _check_tensor(weights, "bincount", "weights")
    w = _np(weights)
    if w.shape != a.shape:
        raise RuntimeError(f"bincount(): weights {list(weights.shape)} should have the same "
                           f"shape as input {list(input.shape)}")
    counts = np.bincount(a, weights=w.astype(np.float64), minlength=minlength)
    return _C.from_numpy(counts.astype(w.dtype if w.dtype.kind == "f" else np.float64))


def _to_last(x, dims):
    """x with `dims` merged into one last dim (for amax/amin over several dims)."""
    rest = [d for d in range(x.ndim) if d not in dims]
    y = x.permute(rest + list(dims))
    return y.reshape([x.shape[d] for d in rest] + [-1])


def _keep(out, x, dims):
    for d in dims:
        out = out.unsqueeze(d)
    return out


def _extreme(x, dim, keepdim, largest, op):
    if dim is None or (not isinstance(dim, numbers.Integral) and len(dim) == 0):
        if x.numel() == 0:
            raise RuntimeError(f"{op}(): expected a non-empty tensor for a reduction over all dims")
        out = x.max() if largest else x.min()
        return out.reshape([1] * x.ndim) if keepdim else out
    dims = _dims(dim, x.ndim, op)
    if not dims:
        return x.clone()
    y = _to_last(x, dims)
    out = (y.max(-1) if largest else y.min(-1)).values
    return _keep(out, x, dims) if keepdim else out


def amax(input, dim=(), keepdim=False):
    return _extreme(input, dim, keepdim, True, "amax")


def amin(input, dim=(), keepdim=False):
    return _extreme(input, dim, keepdim, False, "amin")


def _safe_root(s, p):
    """s ** (1/p) with a zero (not NaN) gradient where s == 0, as torch's norm."""
    pos = s.detach() > 0
    one = _like(np.ones(()), s)
    root = _C.where(pos, s, one) ** (1.0 / p)
    return _C.where(pos, root, _like(np.zeros(()), s))


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    _check_tensor(x, "vector_norm")
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"vector_norm(): expected a floating point input, got {x.dtype}")
    dims = list(_dims(dim, x.ndim, "vector_norm"))
    sd = dims if dims else None
    a = x.abs()
    if ord == math.inf:
        return amax(a, dims if dims else None, keepdim)
    if ord == -math.inf:
        return amin(a, dims if dims else None, keepdim)
    if ord == 0:
        return (x != 0).to(x.dtype).sum(dim=sd, keepdim=keepdim)
    if ord == 1:
        return a.sum(dim=sd, keepdim=keepdim)
    if ord == 2:
        return _safe_root((x * x).sum(dim=sd, keepdim=keepdim), 2)
    if not isinstance(ord, numbers.Real):
        raise ValueError(f"vector_norm(): ord must be a number, got {ord!r}")
    return _safe_root((a ** float(ord)).sum(dim=sd, keepdim=keepdim), float(ord))


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    if p == "fro" or p is None:
        p = 2
    if p == "nuc" or isinstance(p, str):
        raise NotImplementedError(f"norm(): p={p!r} is not supported (only 'fro' and numbers)")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


def linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """Vector norms and the Frobenius norm; other matrix norms are not supported."""
    _check_tensor(A, "linalg.norm")
    if ord is None:
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if ord == "fro":
        matrix_dims = dim if dim is not None else ((-2, -1) if A.ndim == 2 else None)
        if matrix_dims is None or len(_dims(matrix_dims, A.ndim, "linalg.norm")) != 2:
            raise RuntimeError(f"linalg.norm(): ord='fro' needs a 2-D input or dim of 2 dims, got "
                               f"{list(A.shape)} and dim={dim}")
        return vector_norm(A, 2, matrix_dims, keepdim, dtype=dtype)
    vec = (dim is not None and isinstance(dim, numbers.Integral)) or (dim is None and A.ndim == 1) \
        or (dim is not None and len(dim) == 1)
    if not vec or isinstance(ord, str):
        raise NotImplementedError(f"linalg.norm(): matrix norm ord={ord!r} is not supported; use "
                                  "ord=None or 'fro', or a vector norm over one dim")
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


def _same_dtype(a, b, op):
    _check_tensor(a, op)
    _check_tensor(b, op, "other")
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}(): expected both inputs to have the same dtype, got {a.dtype} "
                           f"and {b.dtype}")


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    _same_dtype(input, other, "isclose")
    a, b = _np(input), _np(other)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise RuntimeError(f"isclose(): shapes {list(a.shape)} and {list(b.shape)} cannot be "
                           "broadcast together") from None
    if a.dtype.kind != "f":
        a, b = a.astype(np.float64), b.astype(np.float64)
    return _bool(np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return builtins.bool(np.all(_np(isclose(input, other, rtol, atol, equal_nan))))


def equal(input, other):
    _check_tensor(input, "equal")
    _check_tensor(other, "equal", "other")
    return tuple(input.shape) == tuple(other.shape) and builtins.bool(np.all(_np(input) == _np(other)))


# ================================================================ 7. bool / integer operators
def _logical(fn, name):
    def op(input, other):
        _check_tensor(input, name)
        if not isinstance(other, (Tensor, numbers.Number)):
            raise TypeError(f"{name}(): other must be a Tensor or a number, got {type(other).__name__}")
        b = _np(other) if isinstance(other, Tensor) else other
        return _bool(fn(_np(input).astype(bool), np.asarray(b).astype(bool)))
    op.__name__ = op.__qualname__ = name
    return op


logical_and = _logical(np.logical_and, "logical_and")
logical_or = _logical(np.logical_or, "logical_or")
logical_xor = _logical(np.logical_xor, "logical_xor")


def _integral(x):
    return (isinstance(x, Tensor) and x.dtype in (_I64, _BOOL)) or (
        isinstance(x, numbers.Integral) and not isinstance(x, Tensor))


def _operands(input, other, op):
    """(a, b, result dtype) as NumPy values; TypeError for a bad operand."""
    _check_tensor(input, op)
    if not isinstance(other, (Tensor, numbers.Number)):
        raise TypeError(f"{op}(): unsupported operand type {type(other).__name__}")
    dt = _promote(input, other)
    npdt = _NP_DTYPE[dt]
    b = _np(other) if isinstance(other, Tensor) else other
    return _np(input).astype(npdt), np.asarray(b).astype(npdt), dt


def _bitwise(fn, name):
    def op(input, other):
        if not (_integral(input) and _integral(other)):
            kinds = [x.dtype if isinstance(x, Tensor) else type(x).__name__ for x in (input, other)]
            raise TypeError(f"{name}(): only bool and integer operands are supported, got "
                            f"{kinds[0]} and {kinds[1]}")
        a, b, _ = _operands(input, other, name)
        out = fn(a, b)
        return _bool(out) if out.dtype == np.bool_ else _long(out)
    op.__name__ = op.__qualname__ = name
    return op


bitwise_and = _bitwise(np.bitwise_and, "bitwise_and")
bitwise_or = _bitwise(np.bitwise_or, "bitwise_or")
bitwise_xor = _bitwise(np.bitwise_xor, "bitwise_xor")


def _int_divisor_check(b, op):
    if (b == 0).any():
        raise RuntimeError(f"{op}(): ZeroDivisionError (integer division by zero)")


def floor_divide(input, other):
    """Rounds toward -inf, as Python's //. No gradient (torch has none either)."""
    a, b, dt = _operands(input, other, "floor_divide")
    if dt in (_I64, _BOOL):
        _int_divisor_check(b, "floor_divide")
        return _long(np.floor_divide(a.astype(np.int64), b.astype(np.int64)))
    with np.errstate(all="ignore"):
        return _C.from_numpy(np.array(np.floor_divide(a, b), order="C"))


def remainder(input, other):
    """input - q * other with q = floor_divide(input, other) a constant: the
    sign of the divisor, as Python's %, and torch's gradients (1, -q)."""
    if not isinstance(input, Tensor):  # remainder(2, x): the Scalar-Tensor overload
        _check_tensor(other, "remainder", "other")
        input = _tensor_operand(input, other, "remainder")
    a, b, dt = _operands(input, other, "remainder")
    if dt in (_I64, _BOOL):
        _int_divisor_check(b, "remainder")
        return _long(np.remainder(a.astype(np.int64), b.astype(np.int64)))
    with np.errstate(all="ignore"):
        q = _C.from_numpy(np.array(np.floor_divide(a, b), order="C"))
    x = input.to(dt)
    y = other.to(dt) if isinstance(other, Tensor) else float(other)
    return x - q * y


# ================================================================ 8. matrix products
def bmm(input, mat2):
    _check_tensor(input, "bmm")
    _check_tensor(mat2, "bmm", "mat2")
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0] or \
            input.shape[2] != mat2.shape[1]:
        raise RuntimeError(f"bmm(): expected 3-D tensors (b, n, m) and (b, m, p), got "
                           f"{list(input.shape)} and {list(mat2.shape)}")
    return input.matmul(mat2)


def mv(input, vec):
    _check_tensor(input, "mv")
    _check_tensor(vec, "mv", "vec")
    if input.ndim != 2 or vec.ndim != 1 or input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"mv(): expected a matrix (n, m) and a vector (m), got "
                           f"{list(input.shape)} and {list(vec.shape)}")
    return input.matmul(vec)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * mat1 @ mat2; beta == 0 ignores input (NaN included), as torch."""
    for t, what in ((input, "input"), (mat1, "mat1"), (mat2, "mat2")):
        _check_tensor(t, "addmm", what)
    if mat1.ndim != 2 or mat2.ndim != 2 or mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"addmm(): expected matrices (n, m) and (m, p), got "
                           f"{list(mat1.shape)} and {list(mat2.shape)}")
    prod_ = mat1.matmul(mat2)
    try:
        ok = np.broadcast_shapes(tuple(input.shape), tuple(prod_.shape)) == tuple(prod_.shape)
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"addmm(): input {list(input.shape)} cannot be broadcast to "
                           f"{list(prod_.shape)}")
    if alpha != 1:
        prod_ = prod_ * alpha
    if beta == 0:
        return prod_
    return (input if beta == 1 else input * beta) + prod_


def einsum(equation, *operands):
    """One or two operands, no '...' and no letter repeated within an operand:
    the operands are permuted to (batch, kept, contracted) and multiplied with
    one batched matmul, so the gradient is matmul's."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a str, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(operands) or not 1 <= len(ins) <= 2:
        raise ValueError(f"einsum(): equation {equation!r} names {len(ins)} operand(s) but "
                         f"{len(operands)} were given (1 or 2 are supported)")
    if "." in eq:
        raise NotImplementedError(f"einsum(): '...' is not supported ({equation!r})")
    sizes = {}
    for spec_, t in zip(ins, operands):
        _check_tensor(t, "einsum", "operands")
        if not spec_.isalpha() or len(set(spec_)) != len(spec_) or len(spec_) != t.ndim:
            raise ValueError(f"einsum(): subscripts {spec_!r} do not fit an operand of shape "
                             f"{list(t.shape)} (one distinct letter per dim; repeated letters "
                             "are not supported)")
        for c, n in zip(spec_, t.shape):
            if sizes.setdefault(c, n) != n:
                raise RuntimeError(f"einsum(): subscript {c!r} has size {n} in one operand and "
                                   f"{sizes[c]} in another ({equation!r})")
    if not arrow:
        out = "".join(sorted(c for c in sizes if lhs.count(c) == 1))
    if len(set(out)) != len(out) or builtins.any(c not in sizes for c in out):
        raise ValueError(f"einsum(): bad output subscripts {out!r} in {equation!r}")

    def drop(spec_, t, keep):
        """Sums out the letters of `spec_` not in `keep`."""
        gone = [i for i, c in enumerate(spec_) if c not in keep]
        if gone:
            t = t.sum(dim=gone)
        return "".join(c for c in spec_ if c in keep), t

    if len(ins) == 1:
        s, t = drop(ins[0], operands[0], out)
        return t.permute([s.index(c) for c in out]) if s else t
    sa, a = drop(ins[0], operands[0], out + ins[1])
    sb, b = drop(ins[1], operands[1], out + sa)
    batch = [c for c in out if c in sa and c in sb]
    left = [c for c in out if c in sa and c not in sb]
    right = [c for c in out if c in sb and c not in sa]
    inner = [c for c in sa if c in sb and c not in out]

    def size(cs):
        return int(np.prod([sizes[c] for c in cs], dtype=np.int64))

    a = a.permute([sa.index(c) for c in batch + left + inner]) if sa else a
    b = b.permute([sb.index(c) for c in batch + inner + right]) if sb else b
    a = a.reshape(size(batch), size(left), size(inner))
    b = b.reshape(size(batch), size(inner), size(right))
    got = batch + left + right
    res = a.matmul(b).reshape([sizes[c] for c in got])
    return res.permute([got.index(c) for c in out]) if out else res.reshape([])
