"""tapegrad.nn.init: in-place initialisers with PyTorch's names and formulas.

All draw from tapegrad's generator, so tg.manual_seed(s) makes them repeatable.
"""

import math

import numpy as np

from .. import _C
from .._grad_mode import no_grad

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "trunc_normal_",
]


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor, op):
    if tensor.ndim < 2:
        raise ValueError(f"{op}: fan in and fan out can not be computed for a tensor with fewer "
                         f"than 2 dimensions (got shape {list(tensor.shape)})")
    receptive = 1
    for d in tensor.shape[2:]:
        receptive *= d
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fill_from(tensor, sample):
    with no_grad():
        tensor.copy_(sample)
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    """Fills with U(a, b)."""
    sample = _C._rand(list(tensor.shape), tensor.dtype) * (b - a) + a
    return _fill_from(tensor, sample)


def normal_(tensor, mean=0.0, std=1.0):
    """Fills with N(mean, std^2)."""
    sample = _C._randn(list(tensor.shape), tensor.dtype) * std + mean
    return _fill_from(tensor, sample)


def constant_(tensor, val):
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0):
    """Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    a = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor, gain=1.0):
    """Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def _kaiming_std(tensor, a, mode, nonlinearity, op):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _fans(tensor, op)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"{op}: initializing a zero-element tensor is a no-op")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He: U(-b, b) with b = gain * sqrt(3 / fan)."""
    if tensor.numel() == 0:
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He: N(0, std^2) with std = gain / sqrt(fan)."""
    if tensor.numel() == 0:
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_"))


def orthogonal_(tensor, gain=1.0):
    """Fills with a (semi-)orthogonal matrix times gain: the Q of a QR decomposition of a
    standard normal (rows, numel / rows) matrix, its columns' signs fixed by diag(R) so
    that Q is uniformly distributed (Saxe et al., 2013). Trailing dims are flattened."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {list(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    a = _C._randn([rows, cols], _C.dtype.float64).numpy()
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # a zero on the diagonal keeps its sign
    if rows < cols:
        q = q.T
    sample = _C.from_numpy(np.ascontiguousarray(q.reshape(tensor.shape) * gain))
    return _fill_from(tensor, sample.to(tensor.dtype))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fills with N(mean, std^2) restricted to [a, b] (a and b are values, not multiples
    of std), by redrawing out-of-range entries from tapegrad's generator."""
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    mass = 0.5 * (math.erf((b - mean) / (std * math.sqrt(2))) -
                  math.erf((a - mean) / (std * math.sqrt(2))))
    if mass < 1e-3:
        # Rejection would take thousands of rounds; torch's inverse-CDF sampler is
        # itself inaccurate there and warns.
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] holds only {mass:.2g} of the "
                         f"mass of N({mean}, {std}^2); choose a and b nearer the mean")
    out = np.empty(tensor.numel(), dtype=np.float64)
    todo = np.arange(out.size)
    while todo.size:
        draw = _C._randn([int(todo.size)], _C.dtype.float64).numpy() * std + mean
        out[todo] = draw
        todo = todo[(draw < a) | (draw > b)]
    sample = _C.from_numpy(out.reshape(tensor.shape)).to(tensor.dtype)
    return _fill_from(tensor, sample)
