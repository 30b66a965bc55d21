"""tapegrad: a C++ tape-based reverse-mode autodiff engine with a PyTorch-shaped API.

    import tapegrad as tg
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # tensor([2., 4.])
"""

import os as _os

# Note [OpenBLAS worker spin]
# After each call OpenBLAS's worker threads spin (yielding) for 2^28 cycles,
# ~0.1 s, before they sleep. With 2 threads on a 2-core machine that spin
# holds the second core through all the work between GEMMs, and the core's
# own pool worker (tanh, the optimizer updates, ...) then waits for time
# slices on it: the NER step at batch 512 ran 7% faster, and the GEMMs alone
# no slower, with a spin of 2^16 cycles (~25 us, longer than the gaps between
# the GEMMs of one backward). OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once,
# when it loads, so it is set for the load of the library _C links against
# and removed again (other copies of OpenBLAS, e.g. NumPy's, never see it); a
# value the user set is left alone. It has no effect if that library was
# loaded before tapegrad.
_SPIN_VAR = "OPENBLAS_THREAD_TIMEOUT"
_set_spin = _SPIN_VAR not in _os.environ
if _set_spin:
    _os.environ[_SPIN_VAR] = "16"
try:
    # Load the BLAS that _C links against before _C itself (see Note [Finding
    # OpenBLAS at import time] in CMakeLists.txt). A system-BLAS build has no
    # such dependency, so its absence is fine.
    try:
        import scipy_openblas32 as _scipy_openblas32  # noqa: F401
    except ImportError:  # pragma: no cover
        pass

    from . import _C
finally:
    if _set_spin:
        del _os.environ[_SPIN_VAR]
from ._C import (
    Tensor,
    dtype,
    from_numpy,
    manual_seed,
    set_num_threads,
    get_num_threads,
    is_grad_enabled,
    # ops (also Tensor methods)
    add, sub, mul, div, pow, maximum, minimum, where,
    neg, exp, log, sqrt, abs, sin, cos, square, clamp, clip, sign, isnan, logical_not,
    sigmoid, tanh, relu, softmax, log_softmax,
    sum, mean, var, std, max, min, argmax, argmin, logsumexp,
    matmul, mm, dot, outer,
    reshape, permute, transpose, t, squeeze, unsqueeze, flatten, clone, narrow, select,
    split, chunk, index_select, gather, cat, concat, stack,
    log1p, expm1, erf, cumsum, cumprod,
)
from ._grad_mode import no_grad, enable_grad, set_grad_enabled, inference_mode
from ._creation import (
    tensor, as_tensor, zeros, ones, full, empty, arange, eye, rand, randn, randint,
    zeros_like, ones_like, full_like, empty_like, rand_like, randn_like, linspace, randperm,
)
from ._device import device
from . import cuda
from ._dtypes import finfo, iinfo, get_default_dtype, is_tensor, is_floating_point, numel
from . import _tensor  # noqa: F401  (adds the Python-side Tensor methods)
from ._composite_ops import (  # noqa: A004  (any, all, round mirror torch's names)
    sort, argsort, topk, masked_fill, unbind, unflatten, flip, roll, broadcast_to, tril, triu,
    diag, trace, take, meshgrid,
    log2, log10, rsqrt, reciprocal, floor, ceil, round, trunc, fix, frac, lerp, addcmul, addcdiv,
    nan_to_num, isinf, isfinite, clamp_min, clamp_max,
    prod, any, all, count_nonzero, nonzero, unique, bincount, norm, amax, amin, allclose, isclose,
    equal,
    logical_and, logical_or, logical_xor, bitwise_and, bitwise_or, bitwise_xor, floor_divide,
    remainder, bmm, mv, addmm, einsum,
)
from . import linalg
from . import autograd
from .autograd import gradcheck
from . import nn
from . import optim
from . import utils
from .serialization import save, load
from ._compile import compile, CompiledFunction, memory_stats, empty_cache, set_cache_limit  # noqa: A004

float32 = dtype.float32
float64 = dtype.float64
int64 = dtype.int64
bool = dtype.bool  # noqa: A001  (mirrors torch.bool)
float = float32  # noqa: A001
double = float64
long = int64

__version__ = "0.1.0"
