"""Workload 1, per-op overhead.

A chain of 64 elementwise ops (32 x ``y = y * 1.0001; y = y + 0.5``) on a
16-element float32 tensor that requires grad; reported in microseconds per op
(time / 64) for the forward chain alone and for forward + ``.sum().backward()``.
JAX jit compiles the whole chain into one fused call (so its number is one
dispatch spread over 64 ops); NumPy has no autograd: its backward is written
by hand (the chain rule through the 32 multiplies).
"""

import numpy as np

from .common import Unavailable, lib

N_PAIRS = 32
N_OPS = 2 * N_PAIRS


def _tapegrad(x0, backward):
    tg = lib("tapegrad")
    x = tg.from_numpy(x0.copy()).requires_grad_(True)

    def fwd():
        y = x
        for _ in range(N_PAIRS):
            y = y * 1.0001
            y = y + 0.5
        return y

    def fwd_bwd():
        fwd().sum().backward()
    return fwd_bwd if backward else fwd


def _torch(x0, backward):
    torch = lib("torch")
    x = torch.from_numpy(x0.copy()).requires_grad_(True)

    def fwd():
        y = x
        for _ in range(N_PAIRS):
            y = y * 1.0001
            y = y + 0.5
        return y

    def fwd_bwd():
        fwd().sum().backward()
    return fwd_bwd if backward else fwd


def _jax(x0, backward):
    jax = lib("jax")
    jnp = jax.numpy

    def chain(y):
        for _ in range(N_PAIRS):
            y = y * 1.0001
            y = y + 0.5
        return y
    x = jnp.asarray(x0)
    if backward:
        f = jax.jit(jax.value_and_grad(lambda y: chain(y).sum()))
    else:
        f = jax.jit(chain)
    return lambda: jax.block_until_ready(f(x))


def _numpy(x0, backward):
    x = x0.copy()
    c = np.float32(1.0001)

    def fwd():
        y = x
        for _ in range(N_PAIRS):
            y = y * c
            y = y + np.float32(0.5)
        return y

    def fwd_bwd():
        s = fwd().sum()
        g = np.ones_like(x)          # d sum / d y
        for _ in range(N_PAIRS):     # reverse: add passes g through, multiply scales it
            g = g * c
        return s, g
    return fwd_bwd if backward else fwd


BUILDERS = {"tapegrad": _tapegrad, "PyTorch eager": _torch, "JAX jit": _jax,
            "NumPy by hand": _numpy}


def run(cfg, measure, log):
    x0 = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    groups = []
    for label, backward in (("forward", False), ("forward+backward", True)):
        cases = []
        for name, build in BUILDERS.items():
            try:
                cases.append((name, build(x0, backward)))
            except Unavailable as e:
                cases.append((name, f"n/a ({e})"))
        log(f"  w1 {label}")
        res = measure(cases)
        groups.append({"config": label, "results": res})
    return {"id": "w1", "title": "Workload 1: per-op overhead (64 elementwise ops on 16 floats)",
            "unit": "us/op", "per_call": N_OPS, "groups": groups,
            "note": "JAX jit fuses the 64 ops into one compiled call; NumPy's backward is by hand."}
