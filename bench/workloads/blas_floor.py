"""The BLAS floor: the GEMMs of a training step alone, through the BLAS tapegrad uses.

Two ways of running the same products through the same OpenBLAS, and the floor
is whichever is faster (timed when the floor is built, alternating, median of
5 short blocks each; the choice and both times are reported):

* ``scipy_cblas_sgemm`` of the scipy-openblas32 wheel called directly through
  ctypes, one call per GEMM (row-major, transposes passed as flags as tapegrad
  does), with OpenBLAS's own threads, on arrays allocated once, so no framework
  overhead is included. tapegrad loads the same shared library (same path, so
  the process holds one copy and one thread count).
* the same products as tapegrad ``no_grad`` matmuls on preallocated tensors:
  tapegrad's GEMM dispatch, which on more than one thread splits a product
  across the core's pool with OpenBLAS single-threaded (Note [GEMMs on the
  core's threads] in cpp/src/kernels/blas.cpp), and sends products with a
  dimension of at most 6 (the NER output layer's) to its own kernels. For the
  NER step this is the faster way on one thread too (those small products),
  and clearly on two, so a floor of ctypes calls alone would flatter
  tapegrad's share of it.

If the wheel cannot be loaded through ctypes only the tapegrad matmuls are used.
"""

import ctypes
import os
import statistics
import time

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

_blas = None


def openblas32():
    """The scipy-openblas32 shared library, loaded once (raises on failure)."""
    global _blas
    if _blas is None:
        import scipy_openblas32
        d = scipy_openblas32.get_lib_dir()
        names = [f for f in os.listdir(d) if f.startswith("libscipy_openblas") and ".so" in f]
        if not names:
            raise OSError(f"no libscipy_openblas*.so in {d}")
        lib = ctypes.CDLL(os.path.join(d, sorted(names)[0]))
        i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
        lib.scipy_cblas_sgemm.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
        lib.scipy_cblas_sgemm.restype = None
        _blas = lib
    return _blas


_threads = None  # OpenBLAS's thread count for the ctypes calls (None: leave it as it is)


def set_threads(n):
    """The thread count the ctypes floor runs OpenBLAS with. tapegrad keeps the shared
    library at one thread once tg.set_num_threads is called (it threads its GEMMs itself),
    so the ctypes floor sets its count around its own calls and restores it after."""
    global _threads
    openblas32()  # fails here, not in the floor, when the library cannot be loaded
    _threads = int(n)


def linear_gemms(batch, fan_in, fan_out, need_input_grad=True):
    """The GEMMs of one Linear(fan_in, fan_out) on a batch, as (name, TA, TB, M, N, K) + shapes.

    forward  y = x @ W^T          (batch, out) = (batch, in) x (out, in)^T
    weight   dW = dy^T @ x        (out, in)    = (batch, out)^T x (batch, in)
    input    dx = dy @ W          (batch, in)  = (batch, out) x (out, in)
    """
    x = ("x", (batch, fan_in))
    w = ("W", (fan_out, fan_in))
    dy = ("dy", (batch, fan_out))
    g = [("fwd", x, NO_TRANS, w, TRANS, (batch, fan_out)),
         ("dW", dy, TRANS, x, NO_TRANS, (fan_out, fan_in))]
    if need_input_grad:
        g.append(("dx", dy, NO_TRANS, w, NO_TRANS, (batch, fan_in)))
    return g


def _ctypes_floor(layers):
    """One scipy_cblas_sgemm call per GEMM, or None when the wheel cannot be loaded."""
    rng = np.random.default_rng(0)
    calls = []
    try:
        lib = openblas32()
    except OSError:
        return None
    sgemm = lib.scipy_cblas_sgemm
    keep = []
    for batch, fi, fo, nig in layers:
        arrs = {}
        for _, a, ta, b, tb, cshape in linear_gemms(batch, fi, fo, nig):
            for nm, shp in (a, b):
                if nm not in arrs:
                    arrs[nm] = rng.standard_normal(shp).astype(np.float32)
            A, B = arrs[a[0]], arrs[b[0]]
            C = np.zeros(cshape, np.float32)
            keep += [A, B, C]
            M, N = cshape
            K = A.shape[0] if ta == TRANS else A.shape[1]
            calls.append((ROW_MAJOR, ta, tb, M, N, K, 1.0, A.ctypes.data, A.shape[1],
                          B.ctypes.data, B.shape[1], 0.0, C.ctypes.data, N))

    get_n, set_n = lib.scipy_openblas_get_num_threads, lib.scipy_openblas_set_num_threads

    def run():
        prev = get_n()
        if _threads is not None:
            set_n(_threads)
        for c in calls:
            sgemm(*c)
        set_n(prev)
    run._keep = keep
    return run


def _tapegrad_floor(layers):
    """The same products as tapegrad no_grad matmuls (its dispatch and thread split)."""
    import tapegrad as tg
    ops = []
    for batch, fi, fo, nig in layers:
        x = tg.randn(batch, fi)
        w = tg.randn(fo, fi)
        dy = tg.randn(batch, fo)
        ops += [(x, w.T), (dy.T, x)] + ([(dy, w)] if nig else [])

    def run():
        with tg.no_grad():
            for a, b in ops:
                a @ b
    run.n_gemms = len(ops)
    return run


def _block_time(fn, seconds=0.03):
    fn()
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n


def make_floor(layers):
    """layers: list of (batch, fan_in, fan_out, need_input_grad). Returns fn running all GEMMs.

    fn.how says how the floor runs them, fn.choice which way won and both times."""
    via_tg = _tapegrad_floor(layers)
    via_ctypes = _ctypes_floor(layers)
    run = via_tg
    if via_ctypes is None:
        run.choice = "tapegrad matmuls (the ctypes load failed)"
    else:
        t_c, t_tg = [], []
        for _ in range(5):
            t_c.append(_block_time(via_ctypes))
            t_tg.append(_block_time(via_tg))
        (t_win, win, run), (t_lose, lose, _) = sorted(
            [(statistics.median(t_c), "ctypes sgemm calls", via_ctypes),
             (statistics.median(t_tg), "tapegrad matmuls", via_tg)], key=lambda r: r[0])
        run.choice = f"{win}, {t_win * 1e6:.0f} us vs {t_lose * 1e6:.0f} us as {lose}"
        run.n_gemms = via_tg.n_gemms
    run.how = ("the faster of one scipy_cblas_sgemm call per GEMM via ctypes (OpenBLAS's threads) "
               "and the same products as tapegrad no_grad matmuls (its dispatch: on 2+ threads "
               "split across the core's pool), timed when built")
    return run
