"""The Python-side part of Tensor: repr, formatting, iteration and indexing.

The hot paths (operators, ops, autograd) are C++ methods; indexing is parsed
here and lowered onto the recorded primitives slice / select / unsqueeze /
index_select, so every form of `t[...]` is differentiable.
"""

import builtins
import numbers

import numpy as np

from . import _C
from ._C import Tensor
from ._device import CPU, as_device


# ---------------------------------------------------------------- repr
def _repr(self):
    data = self.detach().numpy()
    body = np.array2string(data, separator=", ", prefix="tensor(", precision=4,
                           threshold=1000, edgeitems=3)
    parts = [f"tensor({body}", f"shape={tuple(self.shape)}", f"dtype={self.dtype!s}".replace("tapegrad.", "")]
    if self.grad_fn is not None:
        parts.append(f"grad_fn=<{self.grad_fn}>")
    elif self.requires_grad:
        parts.append("requires_grad=True")
    return ", ".join(parts) + ")"


def _format(self, spec):
    if self.numel() == 1 and spec:
        return format(self.item(), spec)
    return format(repr(self), spec)


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    for i in range(self.shape[0]):
        yield self.select(0, i)


# ---------------------------------------------------------------- indexing
def _as_index_array(k, op="index"):
    """An integer or bool index (tensor, list, ndarray) as a NumPy array."""
    if isinstance(k, Tensor):
        if k.dtype not in (_C.dtype.int64, _C.dtype.bool):
            raise IndexError(f"{op}: tensors used as indices must be int64 or bool, got {k.dtype}")
        return k.detach().numpy()
    arr = np.asarray(k)
    if arr.dtype.kind not in "iub":
        raise IndexError(f"{op}: only integers, slices, None, Ellipsis and integer or boolean "
                         f"arrays are valid indices, got {k!r}")
    return arr.astype(np.int64) if arr.dtype.kind in "iu" else arr


def _expand_key(self, key):
    """Splits a key into a flat list of None / slice / int / int-array entries."""
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, slice):
            items.append(k)
        elif isinstance(k, builtins.bool):
            raise IndexError("index: a Python bool is not a valid index")
        elif isinstance(k, numbers.Integral):
            items.append(int(k))
        elif isinstance(k, Tensor) and k.ndim == 0 and k.dtype == _C.dtype.int64:
            items.append(int(k.item()))
        else:
            arr = _as_index_array(k)
            if arr.dtype == np.bool_:
                items.append(("mask", arr))
            else:
                items.append(arr)
    consumed = builtins.sum(
        0 if (k is None or k is Ellipsis) else (k[1].ndim if isinstance(k, tuple) else 1) for k in items
    )
    if builtins.sum(1 for k in items if k is Ellipsis) > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    if consumed > self.ndim:
        raise IndexError(f"index: too many indices for a tensor of dimension {self.ndim} "
                         f"(got {consumed})")
    out = []
    for k in items:
        if k is Ellipsis:
            out.extend([slice(None)] * (self.ndim - consumed))
        else:
            out.append(k)
    return out


def _getitem(self, key):
    result = self
    dim = 0
    advanced = []  # (dim in result, int array)
    for k in _expand_key(self, key):
        if k is None:
            result = result.unsqueeze(dim)
            dim += 1
        elif isinstance(k, slice):
            result = _C._slice(result, dim, k.start, k.stop, 1 if k.step is None else k.step)
            dim += 1
        elif isinstance(k, int):
            result = result.select(dim, k)
        elif isinstance(k, tuple):  # a bool mask covering mask.ndim dims
            mask = k[1]
            expect = tuple(result.shape[dim:dim + mask.ndim])
            if mask.shape != expect:
                raise IndexError(f"index: the shape of the mask {list(mask.shape)} does not match "
                                 f"the shape of the indexed tensor {list(expect)}")
            for arr in np.nonzero(mask):
                advanced.append((dim, arr.astype(np.int64)))
                dim += 1
        else:
            advanced.append((dim, k))
            dim += 1
    if not advanced:
        return result
    return _advanced_index(result, advanced)


def _advanced_index(x, advanced):
    """NumPy/PyTorch integer-array indexing, lowered onto index_select."""
    dims = [d for d, _ in advanced]
    try:
        arrays = np.broadcast_arrays(*[a for _, a in advanced])
    except ValueError:
        shapes = [list(a.shape) for _, a in advanced]
        raise IndexError(f"index: shape mismatch: indexing arrays of shapes {shapes} cannot be "
                         "broadcast together") from None
    wrapped = []
    for d, a in zip(dims, arrays):
        n = x.shape[d]
        bad = (a < -n) | (a >= n)
        if bad.any():
            raise IndexError(f"index: index {int(a[bad].flat[0])} is out of bounds for dimension "
                             f"{d} with size {n}")
        wrapped.append(np.where(a < 0, a + n, a))
    if dims != list(range(dims[0], dims[0] + len(dims))):
        # Separated advanced indices: their result dims go first (NumPy's rule).
        rest = [d for d in range(x.ndim) if d not in dims]
        x = x.permute(dims + rest)
        dims = list(range(len(dims)))
    first, k = dims[0], len(dims)
    shape = list(x.shape)
    sizes = shape[first:first + k]
    linear = np.zeros(arrays[0].shape, dtype=np.int64)
    for a, size in zip(wrapped, sizes):
        linear = linear * size + a
    merged = x.reshape(shape[:first] + [int(np.prod(sizes))] + shape[first + k:])
    index = _C.from_numpy(np.ascontiguousarray(linear.reshape(-1)))
    out = merged.index_select(first, index)
    return out.reshape(shape[:first] + list(linear.shape) + shape[first + k:])


def _to_numpy_key(key):
    if isinstance(key, tuple):
        return tuple(_to_numpy_key(k) for k in key)
    if isinstance(key, Tensor):
        return key.detach().numpy()
    return key


def _setitem(self, key, value):
    if _C.is_grad_enabled() and self.requires_grad:
        kind = "a leaf tensor that requires grad" if self.is_leaf else "a tensor with autograd history"
        raise RuntimeError(f"__setitem__: {kind} ({self.dtype}{list(self.shape)}) is being used in "
                           "an in-place operation; wrap it in tapegrad.no_grad()")
    target = self.detach().numpy()
    if isinstance(value, Tensor):
        value = value.detach().numpy()
    target[_to_numpy_key(key)] = value
    self._bump_version()


def _deepcopy(self, memo):
    """An independent copy of the values; a leaf keeps its requires_grad flag."""
    if id(self) not in memo:
        copy = self.detach().clone()
        if self.is_leaf and self.requires_grad:
            copy.requires_grad_(True)
        memo[id(self)] = copy
    return memo[id(self)]


# ---------------------------------------------------------------- device and dtype
_to_dtype = Tensor.to  # the C++ cast: differentiable, a no-op for the same dtype


def _to(self, *args, **kwargs):
    """to(dtype), to(device), to(device, dtype), to(other), with dtype=, device=,
    copy=, non_blocking= (ignored) and memory_format= (ignored: tensors are
    strided row-major), as in PyTorch. The cast is recorded (differentiable)."""
    if len(args) == 1 and not kwargs and type(args[0]) is _C.dtype:
        return self if args[0] == self.dtype else _to_dtype(self, args[0])
    dt = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to: unexpected keyword argument {next(iter(kwargs))!r}")
    rest = list(args)
    if rest and isinstance(rest[0], Tensor):
        dt = rest.pop(0).dtype
    elif rest and not isinstance(rest[0], _C.dtype):
        dev = rest.pop(0)
    if rest and isinstance(rest[0], _C.dtype):
        dt = rest.pop(0)
    if rest and isinstance(rest[0], builtins.bool):  # to(dtype, non_blocking, copy)
        rest.pop(0)
        if rest and isinstance(rest[0], builtins.bool):
            copy = rest.pop(0)
    if rest:
        raise TypeError(f"to: cannot interpret the arguments {args!r}; expected to(dtype), "
                        "to(device), to(device, dtype) or to(tensor)")
    if dev is not None:
        as_device(dev, "to")
    out = self if dt is None or dt == self.dtype else _to_dtype(self, dt)
    return out.clone() if copy and out is self else out


def _type_as(self, other):
    return self.to(other.dtype)


def _cpu(self):
    return self


def _cuda(self, *args, **kwargs):
    as_device("cuda", "cuda")


def _new(fill):
    def new(self, *size, dtype=None, device=None, requires_grad=False):
        from . import _creation
        return fill(_creation, _creation._size(size), dtype or self.dtype, device, requires_grad)
    return new


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    from . import _creation
    return _creation.full(size, fill_value, dtype=dtype or self.dtype, device=device,
                          requires_grad=requires_grad)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from . import _creation
    return _creation.tensor(data, dtype=dtype or self.dtype, device=device,
                            requires_grad=requires_grad)


# ---------------------------------------------------------------- random fills
# Drawn from tapegrad's generator and written with copy_, so they follow its
# rules: refused on a leaf that requires grad outside no_grad (as in torch),
# and on a tensor with history they leave the old value a zero gradient.
def _uniform_(self, a=0.0, b=1.0):
    if not self.dtype.is_floating_point:
        raise TypeError(f"uniform_: expected a float tensor, got {self.dtype}{list(self.shape)}")
    u = _C._rand(list(self.shape), self.dtype)
    return self.copy_(u * (b - a) + a if (a, b) != (0.0, 1.0) else u)


def _normal_(self, mean=0.0, std=1.0):
    if not self.dtype.is_floating_point:
        raise TypeError(f"normal_: expected a float tensor, got {self.dtype}{list(self.shape)}")
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return self.copy_(_C._randn(list(self.shape), self.dtype) * std + mean)


def _bernoulli_(self, p=0.5):
    if isinstance(p, Tensor):
        p = p.detach()
    elif not 0.0 <= p <= 1.0:
        raise ValueError(f"bernoulli_: p must be in [0, 1], got {p}")
    return self.copy_(_C._rand(list(self.shape), _C.dtype.float64) < p)


def _bernoulli(self, p=None):
    """bernoulli(): 1 with probability self (elementwise), else 0; torch.bernoulli(input)."""
    probs = self.detach() if p is None else p
    return (_C._rand(list(self.shape), _C.dtype.float64) < probs).to(self.dtype)


# ---------------------------------------------------------------- pickling
def _rebuild(array, requires_grad, cls):
    t = _C.from_numpy(array)
    if cls is not Tensor:
        return cls(t, requires_grad)
    return t.requires_grad_(True) if requires_grad else t


def _reduce_ex(self, protocol):
    """Pickles the values and requires_grad, as torch does: .grad and history are
    not kept (a non-leaf comes back as a leaf)."""
    return (_rebuild, (np.array(self.detach().numpy(), copy=True), self.requires_grad,
                       type(self)))


Tensor.to = _to
Tensor.cpu = _cpu
Tensor.cuda = _cuda
Tensor.device = property(lambda self: CPU, doc="Always device('cpu').")
Tensor.is_cuda = property(lambda self: False)
Tensor.is_cpu = property(lambda self: True)
Tensor.type_as = _type_as
Tensor.new_zeros = _new(lambda c, size, dt, dev, rg: c.zeros(size, dtype=dt, device=dev, requires_grad=rg))
Tensor.new_ones = _new(lambda c, size, dt, dev, rg: c.ones(size, dtype=dt, device=dev, requires_grad=rg))
Tensor.new_empty = _new(lambda c, size, dt, dev, rg: c.empty(size, dtype=dt, device=dev, requires_grad=rg))
Tensor.new_full = _new_full
Tensor.new_tensor = _new_tensor
Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_
Tensor.bernoulli_ = _bernoulli_
Tensor.bernoulli = _bernoulli
Tensor.__reduce_ex__ = _reduce_ex
Tensor.__deepcopy__ = _deepcopy
Tensor.__repr__ = _repr
Tensor.__str__ = _repr
Tensor.__format__ = _format
Tensor.__iter__ = _iter
Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem


# ---------------------------------------------------------------- composite ops as methods
# (see Note [Composite ops] in _composite_ops.py)
from . import _composite_ops as _ops  # noqa: E402

for _name in (
    "sort", "argsort", "topk", "masked_fill", "repeat", "unbind", "unflatten", "flip", "roll",
    "broadcast_to", "tril", "triu", "diag", "trace", "take",
    "log2", "log10", "rsqrt", "reciprocal", "floor", "ceil", "round", "trunc", "fix", "frac",
    "lerp", "addcmul", "addcdiv", "nan_to_num", "isinf", "isfinite", "clamp_min", "clamp_max",
    "prod", "any", "all", "count_nonzero", "nonzero", "unique", "bincount", "norm", "amax", "amin",
    "allclose", "isclose", "equal", "logical_and", "logical_or", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_xor", "floor_divide", "remainder", "bmm", "mv", "addmm",
):
    setattr(Tensor, _name, getattr(_ops, _name))


def _binary_slot(fn, reflected=False):
    """An operator slot: NotImplemented for operands it does not take, so that
    Python tries the other operand (and raises TypeError if that fails too)."""
    def slot(self, other):
        if not isinstance(other, (Tensor, numbers.Number)):
            return NotImplemented
        if reflected:
            return fn(_ops._tensor_operand(other, self, fn.__name__), self)
        return fn(self, other)
    return slot


for _slot, _fn in (("and", _ops.bitwise_and), ("or", _ops.bitwise_or), ("xor", _ops.bitwise_xor),
                   ("floordiv", _ops.floor_divide), ("mod", _ops.remainder)):
    setattr(Tensor, f"__{_slot}__", _binary_slot(_fn))
    setattr(Tensor, f"__r{_slot}__", _binary_slot(_fn, reflected=True))
