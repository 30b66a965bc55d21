"""Workload 2, the window NER training step (the lectures' model).

Vocabulary 20,000 x 50-d embeddings; a window of 5 word ids per example,
concatenated (250) -> Linear(100) -> tanh -> Linear(5) -> softmax
cross-entropy (mean over the batch). Plain SGD, lr 0.1, on the dense
parameters; the embedding matrix gets a sparse row update of the rows looked
up (tapegrad/PyTorch: ``Embedding(sparse=True)`` + ``optim.SGD``; JAX: a jit'ed
step with ``.at[ids].add``; NumPy: ``np.add.at``). Every library starts from
the same initial values (generated once with NumPy: embeddings N(0, 1), Linear
weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), i.e. PyTorch's
defaults) and sees the same pre-generated batches; ``check`` verifies that the
first steps give the same losses everywhere.
"""

import numpy as np

from . import blas_floor
from .common import FLOOR, Unavailable, cycle, lib

VOCAB, DIM, WINDOW, HIDDEN, CLASSES, LR = 20_000, 50, 5, 100, 5, 0.1
IN = WINDOW * DIM
N_BATCHES = 16
ROWS_FLOOR = "BLAS floor + embedding rows"
ROWS_FLOOR_MIN_BATCH = 128  # below it the ~5 us of Python calls would be most of the row


def init_params(seed=0):
    rng = np.random.default_rng(seed)
    b1, b2 = 1 / np.sqrt(IN), 1 / np.sqrt(HIDDEN)
    f32 = np.float32
    return {"E": rng.standard_normal((VOCAB, DIM)).astype(f32),
            "W1": rng.uniform(-b1, b1, (HIDDEN, IN)).astype(f32),
            "b1": rng.uniform(-b1, b1, HIDDEN).astype(f32),
            "W2": rng.uniform(-b2, b2, (CLASSES, HIDDEN)).astype(f32),
            "b2": rng.uniform(-b2, b2, CLASSES).astype(f32)}


def make_batches(batch, seed=1):
    rng = np.random.default_rng(seed + batch)
    return [(rng.integers(0, VOCAB, (batch, WINDOW)).astype(np.int64),
             rng.integers(0, CLASSES, batch).astype(np.int64)) for _ in range(N_BATCHES)]


def _tapegrad(p, batches, compiled=False):
    tg = lib("tapegrad")
    F = tg.nn.functional
    emb = tg.nn.Embedding(VOCAB, DIM, sparse=True)
    l1, l2 = tg.nn.Linear(IN, HIDDEN), tg.nn.Linear(HIDDEN, CLASSES)
    with tg.no_grad():
        for t, a in ((emb.weight, p["E"]), (l1.weight, p["W1"]), (l1.bias, p["b1"]),
                     (l2.weight, p["W2"]), (l2.bias, p["b2"])):
            t.copy_(tg.from_numpy(a.copy()))
    params = [emb.weight, *l1.parameters(), *l2.parameters()]
    opt = tg.optim.SGD(params, lr=LR)
    nxt = cycle([(tg.from_numpy(i), tg.from_numpy(y)) for i, y in batches])

    def train_step(ids, y):
        x = emb(ids).reshape(ids.shape[0], IN)
        loss = F.cross_entropy(l2(tg.tanh(l1(x))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    run = tg.compile(train_step) if compiled else train_step

    def step():
        return run(*nxt())
    return step, lambda loss: float(loss.item())


def _tapegrad_compiled(p, batches):
    return _tapegrad(p, batches, compiled=True)


def _torch(p, batches):
    torch = lib("torch")
    F = torch.nn.functional
    emb = torch.nn.Embedding(VOCAB, DIM, sparse=True)
    l1, l2 = torch.nn.Linear(IN, HIDDEN), torch.nn.Linear(HIDDEN, CLASSES)
    with torch.no_grad():
        for t, a in ((emb.weight, p["E"]), (l1.weight, p["W1"]), (l1.bias, p["b1"]),
                     (l2.weight, p["W2"]), (l2.bias, p["b2"])):
            t.copy_(torch.from_numpy(a))
    params = [emb.weight, *l1.parameters(), *l2.parameters()]
    opt = torch.optim.SGD(params, lr=LR)
    nxt = cycle([(torch.from_numpy(i), torch.from_numpy(y)) for i, y in batches])

    def step():
        ids, y = nxt()
        x = emb(ids).reshape(ids.shape[0], IN)
        loss = F.cross_entropy(l2(torch.tanh(l1(x))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step, lambda loss: float(loss.item())


def _jax(p, batches):
    jax = lib("jax")
    jnp = jax.numpy

    def loss_fn(dense, x, y):
        W1, b1, W2, b2 = dense
        h = jnp.tanh(x.reshape(x.shape[0], IN) @ W1.T + b1)
        logp = jax.nn.log_softmax(h @ W2.T + b2)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def step_fn(E, dense, ids, y):
        x = E[ids]                                        # (B, 5, 50) rows looked up
        loss, (gd, gx) = jax.value_and_grad(loss_fn, argnums=(0, 1))(dense, x, y)
        dense = tuple(w - LR * g for w, g in zip(dense, gd))
        E = E.at[ids].add(-LR * gx)                       # sparse row update (scatter-add)
        return E, dense, loss

    jstep = jax.jit(step_fn, donate_argnums=(0, 1))
    # private copies: the step donates (reuses) these buffers
    state = [jnp.asarray(p["E"].copy()),
             tuple(jnp.asarray(p[k].copy()) for k in ("W1", "b1", "W2", "b2"))]
    nxt = cycle([(jnp.asarray(i.astype(np.int32)), jnp.asarray(y.astype(np.int32)))
                 for i, y in batches])

    def step():
        ids, y = nxt()
        E, dense, loss = jstep(state[0], state[1], ids, y)
        jax.block_until_ready((E, dense, loss))
        state[0], state[1] = E, dense
        return loss
    return step, lambda loss: float(loss)


def _numpy(p, batches):
    E, W1, b1, W2, b2 = (p[k].copy() for k in ("E", "W1", "b1", "W2", "b2"))
    nxt = cycle(batches)
    lr = np.float32(LR)

    def step():
        ids, y = nxt()
        B = ids.shape[0]
        rows = np.arange(B)
        x = E[ids].reshape(B, IN)
        h = np.tanh(x @ W1.T + b1)
        z = h @ W2.T + b2
        z -= z.max(axis=1, keepdims=True)
        ez = np.exp(z)
        s = ez.sum(axis=1, keepdims=True)
        loss = np.log(s[:, 0]).mean() - z[rows, y].mean()
        dz = ez / s
        dz[rows, y] -= 1
        dz /= B
        dW2 = dz.T @ h
        db2 = dz.sum(0)
        da = (dz @ W2) * (1 - h * h)
        dW1 = da.T @ x
        db1 = da.sum(0)
        dx = da @ W1
        for w, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
            w -= lr * g                                   # in place
        np.add.at(E, ids.reshape(-1), (-lr * dx).reshape(-1, DIM))
        return loss
    return step, float


def _rows_floor(p, batches, floor):
    """The floor's GEMMs, then the step's embedding-table traffic alone.

    Note [Embedding rows floor]
    The BLAS floor leaves out the one other cost no implementation of the step
    can skip: reading the batch's B x 5 embedding rows (200 bytes each) and
    writing their SGD update back. On the 2-core VM these mostly come from
    DRAM: the batch-512 gather (2,560 rows of the 4 MB table) right after the
    previous one, after 300 us and after 1 ms of compute that touches no
    memory took ~30 / ~50 / ~100 us in a slow stretch of the machine and
    18 / 21-23 / 31-44 us in a fast one (bench/cpp/table_residency), so
    something outside the process (other tenants of the shared L3, the host)
    evicts the table within a step's ~1 ms, whatever the step does. This row
    runs the floor's GEMMs and then that traffic through the kernels tapegrad's
    step uses (a no_grad F.embedding, then SGD's sparse row update from a saved
    row-sparse gradient of the same rows), with nothing else: its share of the
    floor is the most a step moving those rows with these kernels reaches here, and
    tapegrad's time against it is the rest of the step's overhead (autograd,
    tanh, cross-entropy, biases, the dense updates). ~5 us of it is Python.
    """
    tg = lib("tapegrad")
    emb = tg.nn.Embedding(VOCAB, DIM, sparse=True)
    with tg.no_grad():
        emb.weight.copy_(tg.from_numpy(p["E"].copy()))
    opt = tg.optim.SGD([emb.weight], lr=LR)
    rng = np.random.default_rng(2)
    grads = []
    for ids, _ in batches:  # one row-sparse gradient per batch, made once
        ids = tg.from_numpy(ids)
        dx = rng.standard_normal(ids.shape + (DIM,)).astype(np.float32) * 1e-3
        emb.weight.grad = None
        emb(ids).backward(tg.from_numpy(dx))
        grads.append((ids, emb.weight.grad))
    nxt = cycle(grads)
    embedding = tg.nn.functional.embedding

    def run():
        floor()
        ids, grad = nxt()
        with tg.no_grad():
            embedding(ids, emb.weight)
        emb.weight.grad = grad
        opt.step()
    return run


BUILDERS = {"tapegrad": _tapegrad, "tapegrad tg.compile": _tapegrad_compiled,
            "PyTorch eager": _torch, "JAX jit": _jax,
            "NumPy by hand": _numpy}


def check(n_steps=3, batch=8):
    """Losses of the first steps in every library (same init, same batches)."""
    p, batches = init_params(), make_batches(batch, seed=99)
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
    p = init_params()
    groups, choices = [], []
    for batch in cfg["ner_batches"]:
        batches = make_batches(batch)
        cases = []
        for name, build in BUILDERS.items():
            try:
                cases.append((name, build(p, batches)[0]))
            except Unavailable as e:
                cases.append((name, f"n/a ({e})"))
        floor = blas_floor.make_floor([(batch, IN, HIDDEN, True), (batch, HIDDEN, CLASSES, True)])
        cases.append((FLOOR, floor))
        if batch >= ROWS_FLOOR_MIN_BATCH:
            cases.append((ROWS_FLOOR, _rows_floor(p, batches, floor)))
        log(f"  w2 batch {batch}")
        groups.append({"config": f"batch {batch}", "results": measure(cases)})
        choices.append(f"batch {batch}: {floor.choice}")
    return {"id": "w2", "title": "Workload 2: window NER training step "
                                 "(20k x 50 embeddings, 250 -> 100 -> 5, SGD + sparse rows)",
            "unit": "steps/s", "per_call": 1, "groups": groups, "floor_how": floor.how,
            "libraries": list(BUILDERS), "replay_row": "tapegrad tg.compile",
            "references": {ROWS_FLOOR: f"*{ROWS_FLOOR}*"},
            "note": f"BLAS floor: the {floor.n_gemms} GEMMs of the two Linears "
                    f"(forward x@W^T, dW = dy^T@x, dx = dy@W) alone, {floor.how} "
                    f"({cfg['threads']} thread(s): {'; '.join(choices)}).",
            "rows_note": f"{ROWS_FLOOR} (batch >= {ROWS_FLOOR_MIN_BATCH}): the floor's GEMMs, "
                         f"then the step's embedding traffic alone through tapegrad's kernels "
                         f"(gather B x {WINDOW} rows of {DIM} floats, SGD's sparse update of "
                         f"them), nothing else; its 'BLAS floor / time' is the most a step "
                         f"moving those rows with these kernels reaches on this machine (Note [Embedding rows "
                         f"floor] in bench/workloads/ner.py).",
            "check": check()}
