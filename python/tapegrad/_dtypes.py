"""dtype queries with PyTorch's names: finfo, iinfo, get_default_dtype, is_tensor."""

import numpy as np

from . import _C
from ._C import Tensor

_NUMPY = {_C.dtype.float32: np.float32, _C.dtype.float64: np.float64, _C.dtype.int64: np.int64}


class finfo:
    """Limits of a floating dtype: bits, eps, max, min, tiny (= smallest_normal), resolution."""

    def __init__(self, type=None):
        type = _C.dtype.float32 if type is None else type
        if type not in (_C.dtype.float32, _C.dtype.float64):
            raise TypeError(f"finfo: expected a floating dtype (float32 or float64), got {type!r}")
        info = np.finfo(_NUMPY[type])
        self.dtype, self.bits = str(type).replace("tapegrad.", ""), info.bits
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -info.precision

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:e}, max={self.max:e}, "
                f"eps={self.eps:e}, smallest_normal={self.tiny:e}, tiny={self.tiny:e}, "
                f"dtype={self.dtype})")


class iinfo:
    """Limits of int64, tapegrad's one integer dtype: bits, max, min."""

    def __init__(self, type):
        if type != _C.dtype.int64:
            raise TypeError(f"iinfo: expected an integer dtype (int64), got {type!r}")
        info = np.iinfo(np.int64)
        self.dtype, self.bits, self.max, self.min = "int64", info.bits, int(info.max), int(info.min)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def get_default_dtype():
    """float32: what Python floats and the creation functions give. (tapegrad has no
    set_default_dtype; pass dtype= or call Module.double().)"""
    return _C.dtype.float32


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return input.dtype.is_floating_point


def numel(input):
    return input.numel()
