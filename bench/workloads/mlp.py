"""Workload 3, a GEMM-bound MLP training step.

784 -> 1024 -> 1024 -> 10 with ReLU, softmax cross-entropy (mean), batch 256,
Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8, PyTorch's update formula; by hand in
JAX and NumPy). Same initial values everywhere (PyTorch's default Linear init
scale, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), generated once with NumPy) and the
same pre-generated random batches.
"""

import numpy as np

from . import blas_floor
from .common import FLOOR, Unavailable, cycle, lib

SIZES = (784, 1024, 1024, 10)
BATCH, LR, B1, B2, EPS = 256, 1e-3, 0.9, 0.999, 1e-8
N_BATCHES = 4


def init_params(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for fi, fo in zip(SIZES[:-1], SIZES[1:]):
        b = 1 / np.sqrt(fi)
        out += [rng.uniform(-b, b, (fo, fi)).astype(np.float32),
                rng.uniform(-b, b, fo).astype(np.float32)]
    return out


def make_batches(batch=BATCH, seed=2, n=N_BATCHES):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, SIZES[0])).astype(np.float32),
             rng.integers(0, SIZES[-1], batch).astype(np.int64)) for _ in range(n)]


def _module(nn, p):
    layers = []
    for i, (fi, fo) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(fi, fo))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _framework(mod_name):
    def build(p, batches):
        m = lib(mod_name)
        model = _module(m.nn, p)
        with m.no_grad():
            for t, a in zip(model.parameters(), p):
                t.copy_(m.from_numpy(a.copy()))
        opt = m.optim.Adam(model.parameters(), lr=LR, betas=(B1, B2), eps=EPS)
        nxt = cycle([(m.from_numpy(x), m.from_numpy(y)) for x, y in batches])
        F = m.nn.functional

        def step():
            x, y = nxt()
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step, lambda loss: float(loss.item())
    return build


def _jax(p, batches):
    jax = lib("jax")
    jnp = jax.numpy

    def loss_fn(params, x, y):
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i + 2 < len(params):
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def step_fn(params, m, v, t, x, y):
        loss, g = jax.value_and_grad(loss_fn)(params, x, y)
        t = t + 1
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        m = tuple(B1 * a + (1 - B1) * b for a, b in zip(m, g))
        v = tuple(B2 * a + (1 - B2) * b * b for a, b in zip(v, g))
        params = tuple(w - (LR / bc1) * a / (jnp.sqrt(b) / jnp.sqrt(bc2) + EPS)
                       for w, a, b in zip(params, m, v))
        return params, m, v, t, loss

    jstep = jax.jit(step_fn, donate_argnums=(0, 1, 2))
    params = tuple(jnp.asarray(a.copy()) for a in p)
    state = [params, tuple(jnp.zeros_like(a) for a in params),
             tuple(jnp.zeros_like(a) for a in params), jnp.asarray(0.0, jnp.float32)]
    nxt = cycle([(jnp.asarray(x), jnp.asarray(y.astype(np.int32))) for x, y in batches])

    def step():
        x, y = nxt()
        out = jstep(*state, x, y)
        jax.block_until_ready(out)
        state[:] = out[:4]
        return out[4]
    return step, lambda loss: float(loss)


def _numpy(p, batches):
    params = [a.copy() for a in p]
    m = [np.zeros_like(a) for a in p]
    v = [np.zeros_like(a) for a in p]
    t = [0]
    nxt = cycle(batches)
    n_layers = len(params) // 2

    def step():
        x, y = nxt()
        B = x.shape[0]
        rows = np.arange(B)
        acts = [x]
        h = x
        for i in range(n_layers):
            h = h @ params[2 * i].T + params[2 * i + 1]
            if i < n_layers - 1:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        ez = np.exp(z)
        s = ez.sum(axis=1, keepdims=True)
        loss = np.log(s[:, 0]).mean() - z[rows, y].mean()
        d = ez / s
        d[rows, y] -= 1
        d /= B
        grads = [None] * len(params)
        for i in reversed(range(n_layers)):
            grads[2 * i] = d.T @ acts[i]
            grads[2 * i + 1] = d.sum(0)
            if i > 0:                                  # the input needs no gradient
                d = (d @ params[2 * i]) * (acts[i] > 0)
        t[0] += 1
        bc1, bc2 = 1 - B1 ** t[0], 1 - B2 ** t[0]
        step_size, sq2 = np.float32(LR / bc1), np.float32(np.sqrt(bc2))
        for w, g, a, b in zip(params, grads, m, v):
            a *= B1
            a += (1 - B1) * g
            b *= B2
            b += (1 - B2) * g * g
            w -= step_size * a / (np.sqrt(b) / sq2 + np.float32(EPS))
        return loss
    return step, float


BUILDERS = {"tapegrad": _framework("tapegrad"), "PyTorch eager": _framework("torch"),
            "JAX jit": _jax, "NumPy by hand": _numpy}


def check(n_steps=3):
    p, batches = init_params(), make_batches(16, seed=99, n=3)
    out = {}
    for name, build in BUILDERS.items():
        try:
            step, to_float = build(p, batches)
            out[name] = [to_float(step()) for _ in range(n_steps)]
        except Unavailable:
            pass
        except Exception as e:  # noqa: BLE001 - reported next to the table
            out[name] = f"error: {type(e).__name__}: {e}"
    return out


def run(cfg, measure, log):
    p, batches = init_params(), make_batches()
    cases = []
    for name, build in BUILDERS.items():
        try:
            cases.append((name, build(p, batches)[0]))
        except Unavailable as e:
            cases.append((name, f"n/a ({e})"))
    layers = [(BATCH, fi, fo, i > 0) for i, (fi, fo) in enumerate(zip(SIZES[:-1], SIZES[1:]))]
    floor = blas_floor.make_floor(layers)
    cases.append((FLOOR, floor))
    log(f"  w3 batch {BATCH}")
    return {"id": "w3", "title": "Workload 3: MLP 784 -> 1024 -> 1024 -> 10, ReLU, batch 256, Adam",
            "unit": "steps/s", "per_call": 1,
            "groups": [{"config": f"batch {BATCH}", "results": measure(cases)}],
            "note": f"BLAS floor: the {floor.n_gemms} GEMMs the step needs (forward and dW of "
                    f"every Linear, dx of the 2nd and 3rd; the input batch needs no gradient), "
                    f"{floor.how} ({cfg['threads']} thread(s): {floor.choice}).",
            "check": check()}
