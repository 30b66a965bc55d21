"""Shared pieces of the benchmark harness: library loading, timing, results.

Timing protocol (used by every workload):

* every case ("library") gets a warm-up (a few calls, at least ``warmup_s``
  seconds; for JAX this also triggers the jit compile), then a calibration that
  picks how many calls make one timed block of about ``block_s`` seconds;
* ``repeats`` rounds follow; in each round every case times one block, and the
  order of the cases rotates from round to round, so that a burst of noise
  from other processes on the machine lands on all libraries alike;
* after every block the harness sleeps ``settle_s`` seconds (default 0.15)
  before the next library's block starts: NumPy's OpenBLAS keeps its worker
  threads spinning for ~0.1 s after each call (2^28 cycles, OpenBLAS's
  default), and on the 2-core machine with 2 threads that spin took the second
  core from whichever library came next: a tapegrad NER step (batch 512) timed
  right after a block of NumPy GEMMs ran ~35% slower than after a 0.15 s pause
  (8 interleaved rounds: 1,105 vs 815 us median), and the BLAS floor, which
  followed NumPy in the rotation, was slowed the same way. Every library now
  starts its block on a quiet machine;
* the process's CPU time over the block's wall time is kept with it (all
  threads: a library with one thread shows ~1.0, one that spreads over two
  cores ~2.0; spinning BLAS workers count too);
* a sample is the block's wall time divided by its number of calls; a result
  is the median of the samples, with the interquartile range (min-max when
  there are fewer than 5 samples), and ratios between libraries are medians
  of the per-round ratios (the two blocks of one round ran seconds apart).
"""

import gc
import importlib
import statistics
import time

LIBRARIES = ("tapegrad", "PyTorch eager", "JAX jit", "NumPy by hand")
FLOOR = "BLAS floor"
# measure()'s results also hold, under this key, each case's CPU time / wall
# time per block (all the process's threads): how many cores it kept busy,
# which shows whether a library kept to the thread count it was given.
CPU_USE = "cpu / wall"


class Unavailable(Exception):
    """A library that is not installed or cannot run this workload."""


_libs = {}


def lib(name):
    """Import a library once; raise Unavailable (with the reason) when it fails."""
    if name not in _libs:
        try:
            if name == "jax":
                import jax
                jax.config.update("jax_platforms", "cpu")
                import jax.numpy  # noqa: F401
                mod = jax
            else:
                mod = importlib.import_module(name)
            _libs[name] = mod
        except Exception as e:  # ImportError, or a broken install
            import sys
            print(f"  {name}: import failed: {type(e).__name__}: {e}", file=sys.stderr)
            _libs[name] = Unavailable("not installed" if isinstance(e, ImportError) else
                                      f"import failed: {type(e).__name__}")
    got = _libs[name]
    if isinstance(got, Unavailable):
        raise got
    return got


def measure(cases, repeats, block_s, warmup_s, log=None, settle_s=0.15):
    """cases: list of (name, fn or Unavailable/str). Returns {name: [s per call] or str}."""
    results, live = {}, []
    for name, fn in cases:
        if not callable(fn):
            results[name] = str(fn)
            continue
        try:
            t0 = time.perf_counter()
            n = 0
            while n < 3 or time.perf_counter() - t0 < warmup_s:
                fn()
                n += 1
            # calibration: one more short block
            t0 = time.perf_counter()
            fn()
            one = max(time.perf_counter() - t0, 1e-7)
            inner = max(1, int(block_s / one))
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            per = max((time.perf_counter() - t0) / inner, 1e-9)
            inner = max(1, int(block_s / per))
            live.append((name, fn, inner))
            results[name] = []
        except Exception as e:  # a library that fails is reported, not fatal
            results[name] = f"error: {type(e).__name__}: {e}"
            if log:
                log(f"    {name}: {results[name]}")
    cpu = results[CPU_USE] = {name: [] for name, _, _ in live}
    for r in range(repeats):
        k = r % len(live) if live else 0
        for name, fn, inner in live[k:] + live[:k]:
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(inner):
                fn()
            wall = time.perf_counter() - t0
            results[name].append(wall / inner)
            cpu[name].append((time.process_time() - c0) / wall)
            time.sleep(settle_s)
    return results


def summarize(samples):
    """Median, low and high (IQR, or min-max for < 5 samples) of a list of seconds."""
    s = sorted(samples)
    med = statistics.median(s)
    if len(s) >= 5:
        q = statistics.quantiles(s, n=4, method="inclusive")
        return med, q[0], q[2], "IQR"
    return med, s[0], s[-1], "min-max"


def paired_ratio(a, b):
    """Median over rounds of a[r] / b[r] (both lists of seconds, same rounds)."""
    if not isinstance(a, list) or not isinstance(b, list) or not a or not b:
        return None
    return statistics.median(x / y for x, y in zip(a, b))


def cycle(items):
    """A zero-argument function returning items[0], items[1], ... round and round."""
    state = [0]
    n = len(items)

    def nxt():
        i = state[0]
        state[0] = i + 1 if i + 1 < n else 0
        return items[i]
    return nxt
