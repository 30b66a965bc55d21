"""Grad-mode switches: tg.no_grad(), tg.enable_grad(), tg.set_grad_enabled(b),
tg.inference_mode().

Each works as a context manager and as a function decorator, like PyTorch's.
The mode is thread-local (each thread records its own tape).
"""

import functools

from . import _C


class _GradMode:
    _enabled = True

    def __new__(cls, func=None):
        # @tg.no_grad (without parentheses) decorates directly, as in PyTorch.
        if func is None or cls is set_grad_enabled or isinstance(func, bool):
            return super().__new__(cls)
        if not callable(func):
            raise TypeError(f"{cls.__name__}() takes no arguments (got {func!r})")
        return cls()(func)

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        mode = self._enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _C.is_grad_enabled()
            _C._set_grad_enabled(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _C._set_grad_enabled(prev)

        return wrapper


class no_grad(_GradMode):
    """Disables recording: results of ops have requires_grad=False."""

    _enabled = False


class enable_grad(_GradMode):
    """Re-enables recording inside a no_grad block."""

    _enabled = True


class set_grad_enabled(_GradMode):
    """Sets recording on or off now; as a context manager, restores the old mode on exit."""

    def __init__(self, mode):
        self._enabled = bool(mode)
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(self._enabled)

    def __enter__(self):
        return self


class inference_mode(_GradMode):
    """PyTorch's inference_mode(mode=True): here the same as no_grad() (mode=False:
    enable_grad()). tapegrad has no separate inference-tensor state: ops under no_grad
    already record nothing, which is what inference mode saves in PyTorch."""

    def __init__(self, mode=True):
        self._enabled = not bool(mode)
