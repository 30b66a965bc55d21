"""Anomaly detection: tg.autograd.detect_anomaly() and set_detect_anomaly().

Inside ``detect_anomaly()`` (a context manager and a decorator, as in PyTorch)
every recorded op remembers the Python line that recorded it, and

* a recorded op whose floating inputs are all finite but whose output holds
  NaN or Inf raises ``RuntimeError`` at once (``detect_anomaly: function 'log'
  returned nan values in its output float32[3] from finite inputs; the op was
  recorded at train.py:12``);
* during backward, the first backward function that returns a NaN or Inf
  gradient raises ``RuntimeError`` (``Function 'sqrt_backward' returned inf
  values in its 0th output; the op was recorded at train.py:13``), and the
  walk stops there: no ``.grad`` after that point is touched.

Only recorded ops (grad mode on and an input requiring grad) are checked in the
forward pass, and an op that merely passes on a NaN/Inf it was given (say
``x + mask`` with ``-inf`` in ``mask``) is not blamed. The mode is per thread,
like grad mode. It is slow (every recorded output and gradient is scanned and
the Python stack is inspected once per op); off, it costs one thread-local
flag test per op. ``check_nan=False`` turns the checks off while keeping the
recorded lines (as in PyTorch).
"""

import functools

from .. import _C

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]


def is_anomaly_enabled():
    """Whether anomaly mode is on in this thread."""
    return _C.is_anomaly_enabled()


class set_detect_anomaly:
    """Turns anomaly mode on or off for this thread; also usable as a context manager
    (restoring the previous mode on exit)."""

    def __init__(self, mode, check_nan=True):
        self._prev = _C.is_anomaly_enabled()
        self._mode = bool(mode) and bool(check_nan)
        _C._set_anomaly_enabled(self._mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _C._set_anomaly_enabled(self._prev)
        return False


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly mode on for its body and
    restores the previous mode afterwards; contexts nest."""

    def __init__(self, check_nan=True):
        self.check_nan = bool(check_nan)
        self._prev = []

    def __enter__(self):
        self._prev.append(_C.is_anomaly_enabled())
        _C._set_anomaly_enabled(self.check_nan)
        return self

    def __exit__(self, *exc):
        _C._set_anomaly_enabled(self._prev.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper
