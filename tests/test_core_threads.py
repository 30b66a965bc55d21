"""The core's own threads (Note [Core threads] in cpp/src/kernels/parallel.cpp).

tg.set_num_threads(n) splits large elementwise kernels (and the reductions that own
a fixed block split) over up to n threads. Results are bit-identical for every n;
small tensors never go to the pool; a large kernel really runs on 2 threads when
n = 2 (counted by the pool's debug counter, not timed: the machine is noisy).

Each check runs in a fresh interpreter: setting the thread count cannot be undone
(the core uses one thread until it is first set), and the checks' big allocations
would otherwise shape the heap that later tests measure (RSS tests).
"""

import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest

import tapegrad as tg

BIG = 1 << 20  # well above every kernel's threshold
HERE = os.path.dirname(os.path.abspath(__file__))


def isolated(fn):
    """Runs the check `fn` in a fresh interpreter; its failure fails the test."""
    def test():
        r = subprocess.run([sys.executable, "-c", f"import test_core_threads as t; t.{fn.__name__}()"],
                           cwd=HERE, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    test.__name__ = "test" + fn.__name__
    test.__doc__ = fn.__doc__
    return test


def _ops():
    rng = np.random.default_rng(0)
    out = {}
    for dt in (np.float32, np.float64):
        a = tg.tensor(rng.uniform(-6, 6, BIG).astype(dt))
        b = tg.tensor(rng.uniform(-6, 6, BIG).astype(dt))
        m = tg.tensor(rng.uniform(-6, 6, (1024, 1024)).astype(dt))
        col = tg.tensor(rng.uniform(-1, 1, (1024, 1)).astype(dt))
        # in_features = 1: each GEMM output is one exact product, so the BLAS (whose
        # results may depend on its own thread count) cannot change a bit, and what is
        # compared is the core's bias + activation pass and its bias-gradient sums.
        x = tg.tensor(rng.standard_normal((4096, 1)).astype(dt), requires_grad=True)
        w = tg.tensor(rng.standard_normal((96, 1)).astype(dt), requires_grad=True)
        bias = tg.tensor(rng.standard_normal(96).astype(dt), requires_grad=True)
        name = np.dtype(dt).name
        out[f"add_{name}"] = a + b
        out[f"mul_scalar_{name}"] = a * 3.0
        out[f"exp_{name}"] = tg.exp(a)
        out[f"tanh_{name}"] = tg.tanh(a)
        out[f"sigmoid_{name}"] = tg.sigmoid(a)
        out[f"relu_{name}"] = tg.relu(a)
        out[f"where_{name}"] = tg.where(a > 0, a, b)
        out[f"bcast_add_{name}"] = m + col
        out[f"transposed_mul_{name}"] = m.t() * m
        out[f"softmax_long_row_{name}"] = a.reshape(1, -1).softmax(dim=1)
        out[f"logsumexp_long_row_{name}"] = a.reshape(1, -1).logsumexp(dim=1)
        for act in ("none", "relu", "tanh", "sigmoid"):
            y = tg._C._linear(x, w, bias, act)
            (gb,) = tg.autograd.grad([(y * y).sum()], [bias])
            out[f"linear_{act}_{name}"] = y
            out[f"linear_{act}_gb_{name}"] = gb
        # the core's small-dimension GEMM kernels split rows; BLAS is not involved
        h = tg.tensor(rng.standard_normal((4096, 100)).astype(dt))
        w5 = tg.tensor(rng.standard_normal((5, 100)).astype(dt))
        out[f"small_n_gemm_{name}"] = h @ w5.t()
        out[f"small_m_gemm_{name}"] = w5 @ h.t()
        out[f"small_k_gemm_{name}"] = h[:, :5] @ w5
        emb_w, ids = _sparse_step(dt)
        out[f"embedding_gather_{name}"] = tg.nn.functional.embedding(ids, emb_w)
        for opt_name, make in SPARSE_OPTIMIZERS.items():
            out[f"{opt_name}_{name}"] = _sparse_step(dt, make)[0]
        for opt_name, param in _dense_steps(dt).items():
            out[f"{opt_name}_{name}"] = param
    return {k: np.array(v.detach().numpy(), copy=True) for k, v in out.items()}


# Every dense update path: momentum, Nesterov, weight decay, centered, AMSGrad.
DENSE_OPTIMIZERS = {
    "sgd": lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "sgd_plain": lambda ps: tg.optim.SGD(ps, lr=0.1),
    "adagrad": lambda ps: tg.optim.Adagrad(ps, lr=0.1, weight_decay=1e-2, lr_decay=1e-3),
    "rmsprop": lambda ps: tg.optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.9,
                                           weight_decay=1e-2),
    "adam": lambda ps: tg.optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=1e-2),
    "adamw": lambda ps: tg.optim.AdamW(ps, lr=0.01),
}


def _dense_steps(dt, shape=(300, 250)):
    """Three steps of every dense optimizer on one parameter (75,000 elements: the
    update splits over up to 4 threads), with a fresh random gradient each step."""
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(shape).astype(dt)
    grads = [rng.standard_normal(shape).astype(dt) for _ in range(3)]
    out = {}
    for name, make in DENSE_OPTIMIZERS.items():
        w = tg.tensor(w0, requires_grad=True)
        opt = make([w])
        for g in grads:
            w.grad = tg.tensor(g)
            opt.step()
        out[name] = w.detach()
    return out


SPARSE_OPTIMIZERS = {
    "sparse_sgd": lambda ps: tg.optim.SGD(ps, lr=0.1),
    "sparse_adagrad": lambda ps: tg.optim.Adagrad(ps, lr=0.1),
    "sparse_adam": lambda ps: tg.optim.SparseAdam(ps, lr=0.01),
}


def _sparse_setup(dt, batch=512, make_opt=SPARSE_OPTIMIZERS["sparse_sgd"]):
    """An embedding table, ids and an optimizer for one step through row-sparse
    gradients, the NER model's (batch x 5 ids into 20,000 x 50), with many
    repeated rows."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 20_000, batch * 5)
    ids[::7] = ids[:len(ids[::7])]  # rows repeated all over the table
    emb = tg.nn.Embedding(20_000, 50, sparse=True)
    with tg.no_grad():
        emb.weight.copy_(tg.tensor(rng.standard_normal((20_000, 50)).astype(dt)))
    coef = tg.tensor(rng.standard_normal((batch, 5, 50)).astype(dt))
    return emb, tg.tensor(ids.reshape(batch, 5)), coef, make_opt(emb.parameters())


def _sparse_run(emb, ids, coef, opt):
    (emb(ids) * coef).sum().backward()
    opt.step()


def _sparse_step(dt, make_opt=SPARSE_OPTIMIZERS["sparse_sgd"]):
    emb, ids, coef, opt = _sparse_setup(dt, make_opt=make_opt)
    for _ in range(2):  # the second step meets the state the first one left
        emb.zero_grad()
        _sparse_run(emb, ids, coef, opt)
    return emb.weight.detach(), ids


def _results_identical_across_thread_counts():
    results = {}
    for n in (1, 2, 3, 4):
        tg.set_num_threads(n)
        assert tg.get_num_threads() == n
        results[n] = _ops()
    for n in (2, 3, 4):
        for k, v in results[1].items():
            np.testing.assert_array_equal(results[n][k], v, err_msg=f"{k} with {n} threads")


def _large_kernel_runs_on_two_threads():
    x = tg.tensor(np.linspace(-5, 5, BIG, dtype=np.float32))
    tg.set_num_threads(2)
    regions, _ = tg._C._parallel_debug()
    y2 = tg.tanh(x)
    regions2, threads = tg._C._parallel_debug()
    assert regions2 > regions and threads == 2
    z = x + x
    regions3, threads = tg._C._parallel_debug()
    assert regions3 > regions2 and threads == 2
    for dt in (np.float32, np.float64):  # the NER step's gather and sparse update
        for make in SPARSE_OPTIMIZERS.values():
            step = _sparse_setup(dt, make_opt=make)
            _sparse_run(*step)  # creates the optimizer's state
            before = tg._C._parallel_debug()[0]
            _sparse_run(*step)
            regions3, threads = tg._C._parallel_debug()
            assert regions3 == before + 2 and threads == 2  # the gather, the update
    for make in DENSE_OPTIMIZERS.values():  # a large parameter's dense update
        w = tg.tensor(np.ones(BIG, np.float32), requires_grad=True)
        w.grad = tg.tensor(np.ones(BIG, np.float32))
        before = tg._C._parallel_debug()[0]
        make([w]).step()
        regions3, threads = tg._C._parallel_debug()
        assert regions3 == before + 1 and threads == 2
    tg.set_num_threads(1)
    y1 = tg.tanh(x)
    assert tg._C._parallel_debug()[0] == regions3  # one thread: never the pool
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    np.testing.assert_array_equal(z.numpy(), (x.numpy() * 2))


def _small_tensors_stay_on_the_calling_thread():
    tg.set_num_threads(4)
    x = tg.tensor(np.linspace(-1, 1, 4096, dtype=np.float32))
    regions, _ = tg._C._parallel_debug()
    for _ in range(10):
        tg.tanh(x), x + x, tg.exp(x) * x, tg.sigmoid(x).sum()
        tg._C._linear(x.reshape(64, 64), x.reshape(64, 64), None, "tanh")
    assert tg._C._parallel_debug()[0] == regions
    for make in SPARSE_OPTIMIZERS.values():
        step = _sparse_setup(np.float32, batch=32, make_opt=make)
        _sparse_run(*step)  # creates the optimizer's state (a 1M-element fill may split)
        before = tg._C._parallel_debug()[0]
        _sparse_run(*step)  # 160 rows: the gather and the update stay inline
        assert tg._C._parallel_debug()[0] == before
    before = tg._C._parallel_debug()[0]
    w = tg.tensor(np.ones((100, 250), np.float32), requires_grad=True)  # the NER W1
    w.grad = tg.tensor(np.ones((100, 250), np.float32))
    for make in DENSE_OPTIMIZERS.values():
        make([w]).step()
    assert tg._C._parallel_debug()[0] == before


def _sparse_sgd_sequential(w, ids, vals, lr):
    """SGD's uncoalesced sparse update by hand: one row at a time, in order."""
    w = w.copy()
    for k, r in enumerate(ids):
        w[r] = w[r] - lr * vals[k]
    return w


def _sparse_sgd_rows_repeated_in_every_piece():
    """The sparse SGD update splits the gradient's rows into pieces (Note [Sparse SGD
    across threads]): rows that occur in several pieces, even in all of them, still
    get every update, in order, by one thread, so the result has the bits of one
    thread; and tables of different sizes updated in turn share the owner scratch."""
    rng = np.random.default_rng(5)
    tables = {"small": (40, 64), "large": (20_000, 50)}
    init = {k: rng.standard_normal(s).astype(np.float32) for k, s in tables.items()}
    steps = []
    for i in range(6):
        name = "small" if i % 2 else "large"
        rows, dim = tables[name]
        ids = rng.integers(0, rows, 3000)
        ids[::5] = ids[0]  # one row in every piece, many times
        ids[1::97] = ids[1]
        steps.append((name, ids, rng.standard_normal((3000, dim)).astype(np.float32)))
    results = {}
    for n in (1, 2, 3, 4):
        tg.set_num_threads(n)
        ws = {k: tg.tensor(v, requires_grad=True) for k, v in init.items()}
        opts = {k: tg.optim.SGD([w], lr=0.1) for k, w in ws.items()}
        for name, ids, vals in steps:
            w = ws[name]
            before = tg._C._parallel_debug()[0]
            (tg.nn.functional.embedding(tg.tensor(ids), w, sparse=True) * tg.tensor(vals)).sum().backward()
            opts[name].step()
            w.grad = None
            regions, threads = tg._C._parallel_debug()
            if n > 1:  # the gather and the update both split
                assert regions == before + 2 and threads == n, (n, name, regions - before, threads)
        results[n] = {k: w.detach().numpy().copy() for k, w in ws.items()}
    for n in (2, 3, 4):
        for k in tables:
            np.testing.assert_array_equal(results[n][k], results[1][k], err_msg=f"{k}, {n} threads")
    for k in tables:  # and it is the update: float64 by hand, in order
        want = init[k].astype(np.float64)
        for name, ids, vals in steps:
            if name == k:
                want = _sparse_sgd_sequential(want, ids, vals.astype(np.float64), 0.1)
        np.testing.assert_allclose(results[1][k], want, rtol=1e-5, atol=1e-5, err_msg=k)


def test_set_num_threads_rejects_nonpositive():
    with pytest.raises(ValueError, match="set_num_threads"):
        tg.set_num_threads(0)


def _child(q):
    x = tg.tensor(np.linspace(-5, 5, BIG, dtype=np.float32))
    q.put(float(tg.tanh(x).sum().item()))


def _pool_works_after_fork():
    tg.set_num_threads(2)
    x = tg.tensor(np.linspace(-5, 5, BIG, dtype=np.float32))
    want = float(tg.tanh(x).sum().item())  # the parent's pool is running
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(120)
    assert p.exitcode == 0, "the forked child hung or failed using the pool"
    assert q.get(timeout=5) == want


def _default_is_one_core_thread():
    """Until set_num_threads is called, no kernel goes to the pool."""
    tg.tanh(tg.tensor(np.linspace(-5, 5, BIG, dtype=np.float32)))
    assert tg._C._parallel_debug()[0] == 0


def _openblas():
    """tapegrad's scipy-openblas32 through ctypes (the same loaded copy), or None."""
    import ctypes
    try:
        import scipy_openblas32
    except ImportError:
        return None
    d = scipy_openblas32.get_lib_dir()
    names = sorted(f for f in os.listdir(d) if f.startswith("libscipy_openblas") and ".so" in f)
    return ctypes.CDLL(os.path.join(d, names[0])) if names else None


# (m, n, k, transpose a, transpose b): m >= n splits rows of C, n > m its columns, and
# k > max(m, n) splits k (partial products added in order); all above the split
# threshold (2^19 multiply-adds), some with odd sizes
SPLIT_PRODUCTS = [(512, 100, 250, False, True), (100, 250, 512, True, False),
                  (512, 250, 100, False, False), (37, 301, 97, True, True),
                  (301, 37, 97, False, True), (129, 130, 131, True, False),
                  (37, 41, 1001, True, False), (60, 30, 777, False, True)]


def _gemms_split_across_the_pool():
    """Note [GEMMs on the core's threads]: with n > 1 threads a large product runs as
    blocks on the core's pool, OpenBLAS single-threaded; the values are the product's."""
    lib = _openblas()
    if lib is None or "openblas" not in tg._C._blas_name().lower():
        return  # a system BLAS keeps its own threads: nothing is split
    rng = np.random.default_rng(3)
    for n_threads in (2, 3):
        tg.set_num_threads(n_threads)
        assert lib.scipy_openblas_get_num_threads() == 1
        for m, n, k, ta, tb in SPLIT_PRODUCTS:
            for dt, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
                # operands as views into wider buffers: leading dimensions above their widths
                A = rng.standard_normal((k, m + 3) if ta else (m, k + 3)).astype(dt)
                B = rng.standard_normal((n, k + 5) if tb else (k, n + 5)).astype(dt)
                a = tg.tensor(A)[:, :m].t() if ta else tg.tensor(A)[:, :k]
                b = tg.tensor(B)[:, :k].t() if tb else tg.tensor(B)[:, :n]
                a.requires_grad_(True)
                b.requires_grad_(True)
                before = tg._C._parallel_debug()[0]
                c = a @ b
                regions, threads = tg._C._parallel_debug()
                blocks = (k if k > max(m, n) else max(m, n)) // 16
                assert regions > before and threads == min(n_threads, blocks), (m, n, k, threads)
                an, bn = a.detach().numpy().astype(np.float64), b.detach().numpy().astype(np.float64)
                want = an @ bn
                scale = np.sqrt(k) * np.abs(want).max()
                assert np.abs(c.detach().numpy() - want).max() <= tol * scale, (m, n, k, ta, tb, dt)
                g = rng.standard_normal((m, n)).astype(dt)
                c.backward(tg.tensor(g))  # dA = g B^T, dB = A^T g: split products too
                np.testing.assert_allclose(a.grad.numpy(), g @ bn.T, rtol=0, atol=tol * scale)
                np.testing.assert_allclose(b.grad.numpy(), an.T @ g, rtol=0, atol=tol * scale)
    # Another user of the same library raises OpenBLAS's count: the next split puts it back
    # (two pools over two threads each would oversubscribe the cores).
    lib.scipy_openblas_set_num_threads(2)
    tg.randn(512, 250) @ tg.randn(250, 100)
    assert lib.scipy_openblas_get_num_threads() == 1
    tg.set_num_threads(1)
    before = tg._C._parallel_debug()[0]
    tg.randn(512, 250) @ tg.randn(250, 100)
    assert tg._C._parallel_debug()[0] == before  # one thread: never the pool


test_results_identical_across_thread_counts = isolated(_results_identical_across_thread_counts)
test_gemms_split_across_the_pool = isolated(_gemms_split_across_the_pool)
test_sparse_sgd_rows_repeated_in_every_piece = isolated(_sparse_sgd_rows_repeated_in_every_piece)
test_large_kernel_runs_on_two_threads = isolated(_large_kernel_runs_on_two_threads)
test_small_tensors_stay_on_the_calling_thread = isolated(_small_tensors_stay_on_the_calling_thread)
test_default_is_one_core_thread = isolated(_default_is_one_core_thread)
test_pool_works_after_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")(
    isolated(_pool_works_after_fork))
