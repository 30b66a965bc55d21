"""The BLAS floor: the GEMMs of a training step alone, through the BLAS tapegrad uses.

Calls ``scipy_cblas_sgemm`` of the scipy-openblas32 wheel directly through
ctypes (row-major, transposes passed as flags as tapegrad does), on arrays
allocated once, so no framework overhead is included. tapegrad loads the same
shared library (same path, so the process holds one copy and one thread
count). Falls back to tapegrad ``no_grad`` matmuls on preallocated tensors when
the wheel cannot be loaded through ctypes.
"""

import ctypes
import os

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


def set_threads(n):
    openblas32().scipy_openblas_set_num_threads(int(n))


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


def make_floor(layers):
    """layers: list of (batch, fan_in, fan_out, need_input_grad). Returns fn running all GEMMs."""
    rng = np.random.default_rng(0)
    calls = []
    try:
        lib = openblas32()
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

        def run():
            for c in calls:
                sgemm(*c)
        run._keep = keep
        run.how = "scipy_cblas_sgemm via ctypes"
        run.n_gemms = len(calls)
        return run
    except OSError:
        pass
    import tapegrad as tg
    ops = []
    for batch, fi, fo, nig in layers:
        x = tg.randn(batch, fi)
        w = tg.randn(fo, fi)
        dy = tg.randn(batch, fo)
        ops += [(x, w.T), (dy.T, x)] + ([(dy, w)] if nig else [])

    def run_tg():
        with tg.no_grad():
            for a, b in ops:
                a @ b
    run_tg.how = "tapegrad no_grad matmuls (ctypes load failed)"
    run_tg.n_gemms = len(ops)
    return run_tg
