"""``progress(iterable)``: a tqdm bar when tqdm is installed and stderr is a terminal, else a quiet pass-through.

    for xb, yb in progress(loader, desc="epoch 3"):
        ...

tqdm is optional: without it, or when stderr is redirected (logs, CI, pytest),
the iterable is passed through untouched; ``summary=True`` then prints one line
to stderr at the end (``epoch 3: 469 it in 2.1s``).
"""

from __future__ import annotations

import sys
import time

__all__ = ["progress"]


def _use_tqdm(stream):
    try:
        isatty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty / closed stream
        return None
    if not isatty:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def progress(iterable, total=None, desc=None, summary=False, file=None, **tqdm_kwargs):
    """Wrap ``iterable`` with a progress bar where one can be shown; otherwise yield from it unchanged.

    ``total`` defaults to ``len(iterable)`` when it has one. Extra keyword arguments go
    to ``tqdm``. ``summary=True`` prints a one-line count and time at the end when no
    bar is shown.
    """
    stream = sys.stderr if file is None else file
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    tqdm = _use_tqdm(stream)
    if tqdm is not None:
        return tqdm(iterable, total=total, desc=desc, file=stream, **tqdm_kwargs)
    if not summary:
        return iterable
    return _summarised(iterable, desc, stream)


def _summarised(iterable, desc, stream):
    start = time.perf_counter()
    n = 0
    for item in iterable:
        n += 1
        yield item
    elapsed = time.perf_counter() - start
    label = f"{desc}: " if desc else ""
    print(f"{label}{n} it in {elapsed:.1f}s", file=stream)
