"""Tensor creation, mirroring torch.tensor / zeros / ones / arange / rand ..."""

import builtins
import numbers

import numpy as np

from . import _C
from ._C import Tensor, dtype
from ._device import check_device

_TO_NUMPY = {
    dtype.float32: np.float32,
    dtype.float64: np.float64,
    dtype.int64: np.int64,
    dtype.bool: np.bool_,
}


def _np_dtype(dt):
    if not isinstance(dt, dtype):
        raise TypeError(f"expected a tapegrad dtype (tapegrad.float32, ...), got {dt!r}")
    return _TO_NUMPY[dt]


def _size(args):
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        args = tuple(args[0])
    for d in args:
        if not isinstance(d, numbers.Integral):
            raise TypeError(f"size must be a sequence of ints, got {args!r}")
    return [int(d) for d in args]


def _finish(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays, tensors).

    As in PyTorch, Python floats become float32, Python ints int64, bools bool;
    a NumPy array keeps its dtype (float64 stays float64).
    """
    check_device(device, "tensor")
    if isinstance(data, Tensor):
        arr = np.array(data.detach().numpy(), copy=True)
        if dtype is None:
            dtype = data.dtype
    else:
        from_numpy_array = isinstance(data, np.ndarray) or isinstance(data, np.generic)
        try:
            arr = np.array(data, copy=True)
        except ValueError as e:
            raise ValueError(f"tensor: cannot make a tensor from {type(data).__name__}: {e}") from None
        if arr.dtype == object:
            raise TypeError(
                f"tensor: data must be numbers, nested sequences of numbers or arrays, got {type(data).__name__}"
            )
        if dtype is None:
            kind = arr.dtype.kind
            if kind == "b":
                dtype = _C.dtype.bool
            elif kind in "iu":
                dtype = _C.dtype.int64
            elif kind == "f":
                wide = arr.dtype.itemsize == 8
                dtype = _C.dtype.float64 if (from_numpy_array and wide) else _C.dtype.float32
            else:
                raise TypeError(f"tensor: unsupported data type {arr.dtype}")
    arr = np.asarray(arr, dtype=_np_dtype(dtype), order="C")  # keeps 0-d (ascontiguousarray would not)
    if requires_grad and not dtype.is_floating_point:
        raise RuntimeError(f"tensor: only floating point tensors can require gradients, got {dtype}")
    return _finish(_C.from_numpy(arr), requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a NumPy array or tensor where it can."""
    check_device(device, "as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == dtype else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == _np_dtype(dtype)):
        try:
            return _C.from_numpy(data)
        except (TypeError, ValueError):
            pass
    return tensor(data, dtype=dtype)


def empty(*size, dtype=None, device=None, requires_grad=False):
    check_device(device, "empty")
    return _finish(_C._empty(_size(size), dtype or _C.dtype.float32), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    check_device(device, "zeros")
    return _finish(_C._zeros(_size(size), dtype or _C.dtype.float32), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    check_device(device, "ones")
    return _finish(_C._full(_size(size), 1.0, dtype or _C.dtype.float32), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    check_device(device, "full")
    if dtype is None:
        if isinstance(fill_value, builtins.bool):
            dtype = _C.dtype.bool
        elif isinstance(fill_value, numbers.Integral):
            dtype = _C.dtype.int64
        else:
            dtype = _C.dtype.float32
    return _finish(_C._full(_size((size,)), float(fill_value), dtype), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    check_device(device, "arange")
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = _C.dtype.int64 if ints else _C.dtype.float32
    return _finish(_C._arange(float(start), float(end), float(step), dtype), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    check_device(device, "eye")
    return _finish(_C._eye(int(n), int(n if m is None else m), dtype or _C.dtype.float32), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    check_device(device, "rand")
    return _finish(_C._rand(_size(size), dtype or _C.dtype.float32), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    check_device(device, "randn")
    return _finish(_C._randn(_size(size), dtype or _C.dtype.float32), requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None):
    """randint(high, size) or randint(low, high, size): int64 uniform in [low, high)."""
    check_device(device, "randint")
    if size is None and not isinstance(high, numbers.Integral) and high is not None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: size is required, e.g. randint(0, 10, (3,))")
    if high is None:
        low, high = 0, low
    t = _C._randint(int(low), int(high), _size((size,)))
    return t if dtype is None else t.to(dtype)


def _like(fn):
    def like(input, dtype=None, device=None, requires_grad=False, **kw):
        return fn(*input.shape, dtype=dtype or input.dtype, device=device,
                  requires_grad=requires_grad, **kw)

    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"{fn.__name__}() with the shape (and by default the dtype) of `input`."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device,
                requires_grad=requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """`steps` values evenly spaced from start to end inclusive (float32 unless dtype)."""
    check_device(device, "linspace")
    if not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    dtype = dtype or _C.dtype.float32
    return _finish(_C.from_numpy(np.linspace(float(start), float(end), int(steps)).astype(
        _np_dtype(dtype))), requires_grad)


def randperm(n, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0 .. n-1 (int64), drawn from tapegrad's generator
    (tapegrad.manual_seed): the order of n float64 uniforms."""
    check_device(device, "randperm")
    if not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"randperm: n must be a non-negative int, got {n!r}")
    keys = _C._rand([int(n)], _C.dtype.float64).numpy()
    t = _C.from_numpy(np.argsort(keys, kind="stable").astype(np.int64))
    return _finish(t if dtype is None else t.to(dtype), requires_grad)
