"""tapegrad.optim against torch.optim: every optimizer and option combination
step by step (dense and row-sparse gradients), parameter groups, zero_grad,
state dicts, and the validation errors.

Tests that need torch import it with pytest.importorskip, so the rest of the
file runs without it.

Note [Comparing optimizer steps with PyTorch]
Both optimizers get the same gradients: tapegrad computes them from its own
parameters and torch's .grad is set to a copy. What remains is the update
arithmetic, which follows torch's single-tensor code op by op (optim.h); the
one rounding difference left is PyTorch's float32/float64 sqrt (MKL's vector
sqrt is not always correctly rounded), so the comparisons use rtol 1e-6 plus
an absolute 3e-7, a few ulps of these O(1) parameters (float32) / rtol 1e-12
(float64) rather than equality. RMSprop with momentum gets 2e-6: its buffer
sums g / sqrt(v), about 1 / sqrt(1 - alpha) = 10 in size, so one ulp of a sqrt
becomes ~1e-6 in the buffer and accumulates over the steps. SGD has no sqrt and
is compared bit for bit.
"""

import threading
import warnings

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F
from tapegrad import optim

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0)"


def _torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


# torch's sparse optimizer paths build sparse tensors and warn (once per process)
# that "Sparse invariant checks are implicitly disabled".
torch_sparse_warning = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")

DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=1e-6, atol=3e-7), "float64": dict(rtol=1e-12, atol=1e-14)}


# ---------------------------------------------------------------- a tiny MLP
def _arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(5, 4), (5,), (3, 5), (3,)]
    params = [rng.standard_normal(s).astype(dtype) * 0.5 for s in shapes]
    x = rng.standard_normal((8, 4)).astype(dtype)
    t = rng.standard_normal((8, 3)).astype(dtype)
    return params, x, t


def _tg_loss(ps, x, t):
    w1, b1, w2, b2 = ps
    h = tg.tanh(x @ w1.t() + b1)
    y = h @ w2.t() + b2
    return ((y - t) ** 2).mean()


def _torch_loss(torch, ps, x, t):
    w1, b1, w2, b2 = ps
    h = torch.tanh(x @ w1.t() + b1)
    y = h @ w2.t() + b2
    return ((y - t) ** 2).mean()


def _leaves(arrays):
    return [tg.tensor(a, requires_grad=True) for a in arrays]


def _torch_leaves(torch, arrays):
    return [torch.tensor(a, requires_grad=True) for a in arrays]


def _np(t):
    return t.detach().numpy()


def _make_torch_opt(torch, name, params, kw):
    cls = getattr(torch.optim, name)
    extra = {} if name == "SparseAdam" else {"foreach": False}
    return cls(params, **kw, **extra)


def _copy_grads(torch, ours, theirs):
    for p, q in zip(ours, theirs):
        q.grad = None if p.grad is None else torch.from_numpy(_np(p.grad).copy())


def _assert_state_close(torch, opt, topt, ours, theirs, tol):
    for p, q in zip(ours, theirs):
        s, ts = opt.state.get(p, {}), topt.state.get(q, {})
        assert sorted(s) == sorted(ts)
        for k, v in ts.items():
            if isinstance(v, torch.Tensor) and v.is_sparse:
                np.testing.assert_allclose(_np(s[k].to_dense()), v.to_dense().numpy(), **tol)
            elif isinstance(v, torch.Tensor):
                assert s[k].dtype == getattr(tg, str(v.dtype).replace("torch.", ""))
                np.testing.assert_allclose(_np(s[k]), v.numpy(), **tol, err_msg=k)
            else:
                assert s[k] == v, k


DENSE_CASES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"weight_decay": 0.1}),
    ("SGD", {"maximize": True}),
    ("SGD", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"weight_decay": 0.1}),
    ("Adam", {"maximize": True}),
    ("Adam", {"betas": (0.3, 0.6), "eps": 1e-3}),  # lerp's |w| >= 0.5 branch
    ("Adam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.05, "maximize": True, "betas": (0.8, 0.99)}),
    ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"maximize": True, "betas": (0.4, 0.9)}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.1}),
    ("Adagrad", {"weight_decay": 0.1}),
    ("Adagrad", {"initial_accumulator_value": 0.1, "eps": 1e-3}),
    ("Adagrad", {"maximize": True}),
    ("Adagrad", {"lr_decay": 0.05, "weight_decay": 0.01, "initial_accumulator_value": 0.5,
                 "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5}),
    ("RMSprop", {"weight_decay": 0.1}),
    ("RMSprop", {"alpha": 0.3}),  # lerp's |w| >= 0.5 branch (centered)
    ("RMSprop", {"alpha": 0.3, "centered": True, "maximize": True, "eps": 1e-4}),
    ("Adamax", {}),
    ("Adamax", {"weight_decay": 0.1}),
    ("Adamax", {"betas": (0.3, 0.6), "eps": 1e-3, "maximize": True}),  # lerp's w >= 0.5 branch
    ("Adadelta", {}),
    ("Adadelta", {"rho": 0.5, "eps": 1e-4}),
    ("Adadelta", {"weight_decay": 0.1, "maximize": True}),
]


def _case_id(case):
    name, kw = case
    return name + "".join(f"-{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", DENSE_CASES, ids=[_case_id(c) for c in DENSE_CASES])
def test_dense_steps_match_torch(case, dtype):
    """20 steps on a tiny MLP, the same gradients fed to both: parameters agree after
    every step and the state agrees at the end (Note [Comparing optimizer steps with PyTorch])."""
    torch = _torch()
    name, kw = case
    arrays, x, t = _arrays(dtype)
    ours, theirs = _leaves(arrays), _torch_leaves(torch, arrays)
    opt = getattr(optim, name)(ours, lr=0.05, **kw)
    topt = _make_torch_opt(torch, name, theirs, dict(lr=0.05, **kw))
    xs, ts = tg.tensor(x), tg.tensor(t)
    exact = name == "SGD"
    tol = dict(TOL[dtype])
    if name == "RMSprop" and kw.get("momentum") and dtype == "float32":
        tol["atol"] = 2e-6
    for step in range(20):
        opt.zero_grad()
        _tg_loss(ours, xs, ts).backward()
        _copy_grads(torch, ours, theirs)
        opt.step()
        topt.step()
        for p, q in zip(ours, theirs):
            if exact:
                np.testing.assert_array_equal(_np(p), q.detach().numpy(), err_msg=f"step {step}")
            else:
                np.testing.assert_allclose(_np(p), q.detach().numpy(), **tol,
                                           err_msg=f"step {step}")
    _assert_state_close(torch, opt, topt, ours, theirs, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", [("SGD", {"momentum": 0.9, "nesterov": True}),
                                     ("Adam", {"amsgrad": True}), ("AdamW", {}),
                                     ("Adagrad", {"lr_decay": 0.01}),
                                     ("RMSprop", {"centered": True, "momentum": 0.5})])
def test_training_tracks_torch_with_own_gradients(name, kw, dtype):
    """Each framework computes its own gradients of the same MLP: the runs stay together
    (the forward/backward rounding differs a little, so the tolerance is looser)."""
    torch = _torch()
    arrays, x, t = _arrays(dtype, seed=3)
    ours, theirs = _leaves(arrays), _torch_leaves(torch, arrays)
    opt = getattr(optim, name)(ours, lr=0.02, **kw)
    topt = _make_torch_opt(torch, name, theirs, dict(lr=0.02, **kw))
    xs, ts, tx, tt = tg.tensor(x), tg.tensor(t), torch.tensor(x), torch.tensor(t)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        topt.zero_grad()
        loss = _tg_loss(ours, xs, ts)
        loss.backward()
        _torch_loss(torch, theirs, tx, tt).backward()
        opt.step()
        topt.step()
        losses.append(loss.item())
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(_np(p), q.detach().numpy(), **tol)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_moments_bit_exact(dtype):
    """Away from sqrt, the kernels reproduce torch's rounding exactly: Adam's moment
    estimates (lerp, mul, addcmul) are bit-identical given the same inputs."""
    torch = _torch()
    rng = np.random.default_rng(5)
    a = rng.standard_normal(1000).astype(dtype)
    p, q = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)
    topt = torch.optim.Adam([q], lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, foreach=False)
    for s in range(5):
        g = rng.standard_normal(1000).astype(dtype)
        p.grad = tg.tensor(g)
        q.grad = torch.tensor(g)
        # Same parameters going in, so the same gradient + weight decay.
        with tg.no_grad():
            p.copy_(tg.tensor(q.detach().numpy()))
        opt.step()
        topt.step()
        np.testing.assert_array_equal(_np(opt.state[p]["exp_avg"]), topt.state[q]["exp_avg"].numpy())
        np.testing.assert_array_equal(_np(opt.state[p]["exp_avg_sq"]),
                                      topt.state[q]["exp_avg_sq"].numpy())


# ---------------------------------------------------------------- sparse gradients
def _sparse_batches():
    # Repeated rows within a batch, rows that come and go, and rows never looked up.
    return [[[1, 2, 1], [4, 1, 0]], [[3, 3, 3]], [[5, 0], [2, 5]], [[1]], [[0, 2, 4, 6]],
            [[6, 6], [1, 3]], [[2]], [[7, 1, 7]]]


SPARSE_CASES = [
    ("SGD", {}),
    ("SGD", {"maximize": True}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"momentum": 0.7, "nesterov": True, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.2}),
    ("Adagrad", {"maximize": True, "eps": 1e-3}),
    ("SparseAdam", {}),
    ("SparseAdam", {"betas": (0.5, 0.9), "eps": 1e-4}),
    ("SparseAdam", {"maximize": True}),
]


@torch_sparse_warning
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SPARSE_CASES, ids=[_case_id(c) for c in SPARSE_CASES])
def test_sparse_embedding_steps_match_torch(case, dtype):
    """An embedding looked up with sparse=True on both sides (torch.nn.Embedding(sparse=True)):
    the tables agree after every step, and rows never looked up are never touched."""
    torch = _torch()
    name, kw = case
    rng = np.random.default_rng(1)
    table = rng.standard_normal((10, 3)).astype(dtype)
    coef = rng.standard_normal((10, 3)).astype(dtype)
    w = tg.tensor(table, requires_grad=True)
    temb = torch.nn.Embedding(10, 3, sparse=True, dtype=getattr(torch, dtype))
    with torch.no_grad():
        temb.weight.copy_(torch.from_numpy(table))
    opt = getattr(optim, name)([w], lr=0.1, **kw)
    topt = _make_torch_opt(torch, name, temb.parameters(), dict(lr=0.1, **kw))
    for step, batch in enumerate(_sparse_batches()):
        idx = np.array(batch, dtype=np.int64)
        c = coef[: idx.shape[-1]]
        opt.zero_grad()
        topt.zero_grad()
        e = F.embedding(tg.tensor(idx), w, sparse=True)
        (e * tg.tensor(c) + 0.5 * e * e).sum().backward()
        te = temb(torch.from_numpy(idx))
        (te * torch.from_numpy(c) + 0.5 * te * te).sum().backward()
        assert w.grad.is_sparse and temb.weight.grad.is_sparse
        opt.step()
        topt.step()
        np.testing.assert_allclose(_np(w), temb.weight.detach().numpy(), **TOL[dtype],
                                   err_msg=f"step {step}")
    untouched = [8, 9]
    np.testing.assert_array_equal(_np(w)[untouched], table[untouched])
    _assert_state_close(torch, opt, topt, [w], [temb.weight], TOL[dtype])


@torch_sparse_warning
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [{}, {"maximize": True}])
def test_sparse_sgd_without_momentum_is_bit_exact(kw, dtype):
    """Plain sparse SGD applies each (uncoalesced) gradient row in order with one fused
    add, as torch's dense += sparse does: bit-identical, repeated rows included."""
    torch = _torch()
    rng = np.random.default_rng(4)
    table = rng.standard_normal((50, 16)).astype(dtype)
    w, q = tg.tensor(table, requires_grad=True), torch.tensor(table, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, **kw)
    topt = torch.optim.SGD([q], lr=0.1, foreach=False, **kw)
    for _ in range(5):
        idx = rng.integers(0, 50, 30)
        vals = rng.standard_normal((30, 16)).astype(dtype)
        w.grad = None
        F.embedding(tg.tensor(idx), w, sparse=True).backward(tg.tensor(vals))
        q.grad = torch.sparse_coo_tensor(torch.tensor(idx)[None], torch.tensor(vals), (50, 16))
        opt.step()
        topt.step()
        np.testing.assert_array_equal(_np(w), q.detach().numpy())


def test_row_sparse_grad_factory():
    g = tg._C._row_sparse_grad(tg.tensor([3, 1, 3]), tg.ones(3, 2), [5, 2])
    assert g.is_sparse and tuple(g.shape) == (5, 2) and g._nnz() == 3
    assert g.coalesce().indices().tolist() == [1, 3]
    np.testing.assert_array_equal(_np(g.to_dense())[3], [2.0, 2.0])
    with pytest.raises(IndexError, match="row 7 is out of range"):
        tg._C._row_sparse_grad(tg.tensor([7]), tg.ones(1, 2), [5, 2])
    with pytest.raises(ValueError, match="do not match 1 rows"):
        tg._C._row_sparse_grad(tg.tensor([1]), tg.ones(1, 3), [5, 2])
    # SGD accepts a rebuilt momentum buffer (as a checkpoint loader would make one).
    w = tg.zeros(5, 2, requires_grad=True)
    opt = optim.SGD([w], lr=1.0, momentum=0.5)
    opt.state[w]["momentum_buffer"] = g
    F.embedding(tg.tensor([0]), w, sparse=True).sum().backward()
    opt.step()
    np.testing.assert_array_equal(_np(w)[:, 0], [-1.0, -0.5, 0.0, -1.0, 0.0])


@pytest.mark.parametrize("name,kw", [("SGD", {}), ("Adagrad", {}), ("SparseAdam", {})])
def test_sparse_gradient_touches_only_its_rows(name, kw):
    w = tg.randn(1000, 4, requires_grad=True)
    before = _np(w).copy()
    opt = getattr(optim, name)([w], lr=0.1, **kw)
    F.embedding(tg.tensor([3, 997, 3]), w, sparse=True).sum().backward()
    opt.step()
    after = _np(w)
    changed = np.nonzero((after != before).any(axis=1))[0].tolist()
    assert changed == [3, 997]
    if name == "SparseAdam":
        assert opt.state[w]["step"] == 1 and isinstance(opt.state[w]["step"], int)


def test_sparse_sgd_momentum_buffer_is_row_sparse_and_covers_rows_seen():
    w = tg.randn(50, 2, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    for idx in ([4, 7, 4], [9], [7]):
        opt.zero_grad()
        F.embedding(tg.tensor(idx), w, sparse=True).sum().backward()
        opt.step()
    buf = opt.state[w]["momentum_buffer"]
    assert buf.is_sparse
    assert buf.indices().tolist() == [4, 7, 9]


@pytest.mark.parametrize("name,kw,msg", [
    ("SGD", {"weight_decay": 0.1}, "add(sparse, dense) is not supported"),
    ("Adagrad", {"weight_decay": 0.1}, "weight_decay option is not compatible with sparse gradients"),
])
@torch_sparse_warning
def test_sparse_weight_decay_errors_like_torch(name, kw, msg):
    torch = _torch()
    temb = torch.nn.Embedding(5, 2, sparse=True)
    topt = _make_torch_opt(torch, name, temb.parameters(), dict(lr=0.1, **kw))
    temb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        topt.step()
    w = tg.randn(5, 2, requires_grad=True)
    opt = getattr(optim, name)([w], lr=0.1, **kw)
    F.embedding(tg.tensor([1, 2]), w, sparse=True).sum().backward()
    before = _np(w).copy()
    with pytest.raises(RuntimeError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        opt.step()
    np.testing.assert_array_equal(_np(w), before)


@torch_sparse_warning
def test_sparse_momentum_then_dense_gradient_errors_like_torch():
    torch = _torch()
    temb = torch.nn.Embedding(5, 2, sparse=True)
    topt = torch.optim.SGD(temb.parameters(), lr=0.1, momentum=0.9, foreach=False)
    temb(torch.tensor([1, 2])).sum().backward()
    topt.step()
    temb.weight.grad = torch.ones(5, 2)
    with pytest.raises(RuntimeError, match="add\\(sparse, dense\\) is not supported"):
        topt.step()
    w = tg.randn(5, 2, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    F.embedding(tg.tensor([1, 2]), w, sparse=True).sum().backward()
    opt.step()
    w.grad = tg.ones(5, 2)
    with pytest.raises(RuntimeError, match="add\\(sparse, dense\\) is not supported"):
        opt.step()


@torch_sparse_warning
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_momentum_then_sparse_gradient_matches_torch(dtype):
    torch = _torch()
    rng = np.random.default_rng(2)
    table = rng.standard_normal((6, 2)).astype(dtype)
    w = tg.tensor(table, requires_grad=True)
    temb = torch.nn.Embedding(6, 2, sparse=True, dtype=getattr(torch, dtype))
    with torch.no_grad():
        temb.weight.copy_(torch.from_numpy(table))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(temb.parameters(), lr=0.1, momentum=0.9, foreach=False)
    g = rng.standard_normal((6, 2)).astype(dtype)
    w.grad = tg.tensor(g)
    temb.weight.grad = torch.from_numpy(g.copy())
    opt.step()
    topt.step()
    for idx in ([1, 2, 1], [5]):
        opt.zero_grad()
        topt.zero_grad()
        F.embedding(tg.tensor(idx), w, sparse=True).sum().backward()
        temb(torch.tensor(idx)).sum().backward()
        opt.step()
        topt.step()
        np.testing.assert_allclose(_np(w), temb.weight.detach().numpy(), **TOL[dtype])


@torch_sparse_warning
def test_sparse_adam_zero_grad_keeps_an_empty_sparse_gradient_like_torch():
    """zero_grad(set_to_none=False) leaves a sparse gradient with no rows: SparseAdam still
    counts the step (and changes nothing), as in PyTorch."""
    torch = _torch()
    table = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    w = tg.tensor(table, requires_grad=True)
    temb = torch.nn.Embedding(6, 2, sparse=True)
    with torch.no_grad():
        temb.weight.copy_(torch.from_numpy(table))
    opt = optim.SparseAdam([w], lr=0.1)
    topt = torch.optim.SparseAdam(temb.parameters(), lr=0.1)
    for idx in ([1, 2], None, [2, 3], None, [1]):
        opt.zero_grad(set_to_none=False)
        topt.zero_grad(set_to_none=False)
        if idx is not None:
            F.embedding(tg.tensor(idx), w, sparse=True).sum().backward()
            temb(torch.tensor(idx)).sum().backward()
        assert w.grad is None or w.grad.is_sparse
        opt.step()
        topt.step()
        np.testing.assert_allclose(_np(w), temb.weight.detach().numpy(), rtol=1e-6, atol=1e-7)
        assert opt.state[w]["step"] == topt.state[temb.weight]["step"]
    g = w.grad
    assert g.is_sparse and g._nnz() == 1  # accumulated into the emptied gradient


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [{}, {"maximize": True}, {"weight_decay": 0.01}])
def test_plain_sgd_one_call_path_equals_per_parameter_path(kw, dtype):
    """A momentum-free group is stepped by one core call (_optim_sgd_group): with one group
    directly, with two after SGD's own checks. Both must agree bit for bit with stepping each
    parameter by hand through the per-parameter kernels, with a row-sparse embedding, dense
    parameters and a parameter without a gradient."""
    rng = np.random.default_rng(11)
    table, w1 = rng.standard_normal((30, 4)).astype(dtype), rng.standard_normal((3, 8)).astype(dtype)
    b1 = rng.standard_normal(3).astype(dtype)
    sparse = not kw.get("weight_decay")  # torch too rejects weight decay on sparse gradients

    def model():
        ps = [tg.tensor(a.copy(), requires_grad=True) for a in (table, w1, b1)]
        return ps + [tg.zeros(2, dtype=getattr(tg, dtype), requires_grad=True)]  # never gets a gradient

    one, two, ref = model(), model(), model()
    opt1 = optim.SGD(one, lr=0.1, **kw)
    opt2 = optim.SGD([{"params": two[:2]}, {"params": two[2:]}], lr=0.1, **kw)

    def by_hand():
        args = (0.1, 0.0, 0.0, kw.get("weight_decay", 0.0), False, kw.get("maximize", False))
        for p in ref:
            if p.grad is None:
                continue
            step = tg._C._optim_sgd_sparse if p.grad.is_sparse else tg._C._optim_sgd
            step(p, p.grad, None, *args)

    for step in range(4):
        idx = tg.tensor(rng.integers(0, 30, (5, 2)))
        for ps, zero, step_fn in ((one, opt1.zero_grad, opt1.step),
                                  (two, opt2.zero_grad, opt2.step),
                                  (ref, lambda: [setattr(p, "grad", None) for p in ref], by_hand)):
            zero()
            assert all(p.grad is None for p in ps)
            x = F.embedding(idx, ps[0], sparse=sparse).reshape(5, 8)
            tg.tanh(F.linear(x, ps[1], ps[2])).sum().backward()
            assert ps[0].grad.is_sparse == sparse
            step_fn()
        for p, q, r in zip(one, two, ref):
            np.testing.assert_array_equal(_np(p), _np(r))
            np.testing.assert_array_equal(_np(q), _np(r))
    assert one[3].grad is None and not (_np(one[3]) != 0).any()


def test_plain_sgd_checks_every_gradient_before_changing_any_parameter():
    """The dense parameter comes first, the sparse one with weight decay fails: nothing moves."""
    a = tg.randn(3, requires_grad=True)
    w = tg.randn(5, 2, requires_grad=True)
    opt = optim.SGD([a, w], lr=0.1, weight_decay=0.1)
    (a * a).sum().backward()
    F.embedding(tg.tensor([1, 2]), w, sparse=True).sum().backward()
    before = _np(a).copy(), _np(w).copy()
    with pytest.raises(RuntimeError, match=r"SGD: weight_decay is not supported with sparse"):
        opt.step()
    np.testing.assert_array_equal(_np(a), before[0])
    np.testing.assert_array_equal(_np(w), before[1])


def test_sparse_steps_with_nn_embedding_and_parameters():
    emb = tg.nn.Embedding(20, 4, sparse=True)
    opt = optim.SparseAdam(emb.parameters(), lr=0.05)
    before = _np(emb.weight).copy()
    for idx in ([1, 2, 3], [3, 4]):
        opt.zero_grad()
        (emb(tg.tensor(idx)) ** 2).sum().backward()
        opt.step()
    changed = np.nonzero((_np(emb.weight) != before).any(axis=1))[0].tolist()
    assert changed == [1, 2, 3, 4]


# ---------------------------------------------------------------- groups, zero_grad, skipping
def test_param_groups_with_their_own_options_match_torch():
    torch = _torch()
    arrays, x, t = _arrays("float64", seed=7)
    ours, theirs = _leaves(arrays), _torch_leaves(torch, arrays)

    def groups(ps):
        return [{"params": ps[:2], "lr": 0.1, "weight_decay": 0.1},
                {"params": ps[2:], "momentum": 0.5}]

    opt = optim.SGD(groups(ours), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(groups(theirs), lr=0.01, momentum=0.9, foreach=False)
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.01
    xs, ts = tg.tensor(x), tg.tensor(t)
    for _ in range(10):
        opt.zero_grad()
        _tg_loss(ours, xs, ts).backward()
        _copy_grads(torch, ours, theirs)
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(_np(p), q.detach().numpy())
    assert [len(g["params"]) for g in opt.state_dict()["param_groups"]] == [2, 2]


def test_add_param_group_matches_torch():
    torch = _torch()
    arrays, x, t = _arrays("float64", seed=8)
    ours, theirs = _leaves(arrays), _torch_leaves(torch, arrays)
    opt = optim.Adam(ours[:2], lr=0.01)
    topt = torch.optim.Adam(theirs[:2], lr=0.01, foreach=False)
    xs, ts = tg.tensor(x), tg.tensor(t)
    for step in range(8):
        if step == 3:
            opt.add_param_group({"params": ours[2:], "lr": 0.05, "amsgrad": True})
            topt.add_param_group({"params": theirs[2:], "lr": 0.05, "amsgrad": True})
        opt.zero_grad()
        _tg_loss(ours, xs, ts).backward()
        _copy_grads(torch, ours, theirs)
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(_np(p), q.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert sorted(opt.param_groups[1]) == sorted(topt.param_groups[1])


def test_params_without_grad_are_skipped():
    a = tg.randn(3, requires_grad=True)
    b = tg.randn(3, requires_grad=True)
    frozen = tg.randn(3)  # doesn't require grad: allowed, never updated
    opt = optim.Adam([a, b, frozen], lr=0.1)
    before_b = _np(b).copy()
    (a * a).sum().backward()
    opt.step()
    np.testing.assert_array_equal(_np(b), before_b)
    assert b not in opt.state and frozen not in opt.state
    assert opt.state[a]["step"].item() == 1.0


def test_zero_grad():
    a = tg.randn(3, requires_grad=True)
    w = tg.randn(6, 2, requires_grad=True)
    opt = optim.SGD([a, w], lr=0.1)
    (a * a).sum().backward()
    F.embedding(tg.tensor([1, 1]), w, sparse=True).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(_np(a.grad), np.zeros(3, np.float32))
    assert w.grad.is_sparse and w.grad._nnz() == 0 and tuple(w.grad.shape) == (6, 2)
    np.testing.assert_array_equal(_np(w.grad.to_dense()), np.zeros((6, 2), np.float32))
    opt.zero_grad()
    assert a.grad is None and w.grad is None


def test_step_closure_runs_with_grad_enabled_and_returns_its_loss():
    a = tg.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([a], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    with tg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_array_equal(_np(a), [0.0, 0.0])


def test_step_writes_in_place_bumps_version_and_works_in_grad_mode():
    a = tg.randn(4, requires_grad=True)
    ptr, version = a.data_ptr(), a._version
    opt = optim.Adam([a], lr=0.1)
    (a * a).sum().backward()
    assert tg.is_grad_enabled()
    opt.step()
    assert a.data_ptr() == ptr and a._version > version
    assert a.requires_grad and a.is_leaf and a.grad_fn is None


def test_saved_parameter_changed_by_step_is_caught_by_backward():
    a = tg.randn(3, requires_grad=True)
    opt = optim.SGD([a], lr=0.1)
    y = (a * a).sum()  # saves `a` for backward
    a.grad = tg.ones(3)
    opt.step()
    with pytest.raises(RuntimeError):
        y.backward()


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_non_contiguous_parameter(name):
    base = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    p = tg.from_numpy(base.copy().T).requires_grad_()  # a transposed leaf
    q = tg.tensor(base.T.copy(), requires_grad=True)
    assert not p.is_contiguous()
    kw = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    o1, o2 = getattr(optim, name)([p], lr=0.1, **kw), getattr(optim, name)([q], lr=0.1, **kw)
    for _ in range(3):
        g = tg.randn(3, 4)
        p.grad, q.grad = g, g.clone()
        o1.step()
        o2.step()
    np.testing.assert_array_equal(_np(p), _np(q))


def test_parameters_from_nn_modules():
    model = tg.nn.Sequential(tg.nn.Linear(4, 3), tg.nn.Tanh(), tg.nn.Linear(3, 1))
    opt = optim.AdamW(model.parameters(), lr=0.01)
    x, y = tg.randn(16, 4), tg.randn(16, 1)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_named_parameters_are_accepted():
    a, b = tg.randn(2, requires_grad=True), tg.randn(2, requires_grad=True)
    opt = optim.SGD([("a", a), ("b", b)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["a", "b"]
    with pytest.raises(ValueError, match="Some param names are missing"):
        optim.SGD([("a", a), b], lr=0.1)


def test_steps_from_threads():
    """Kernels run without the GIL: optimizers in several threads, each on its own
    parameters, give the same result as one after another."""
    def run(p):
        opt = optim.Adam([p], lr=0.01)
        g = tg.ones(*p.shape)
        for _ in range(20):
            p.grad = g
            opt.step()

    ps = [tg.zeros(200_000, requires_grad=True) for _ in range(4)]
    threads = [threading.Thread(target=run, args=(p,)) for p in ps]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ref = tg.zeros(200_000, requires_grad=True)
    run(ref)
    for p in ps:
        np.testing.assert_array_equal(_np(p), _np(ref))


def test_step_hooks():
    a = tg.randn(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    opt.step()
    h1.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


def test_step_pre_hook_may_replace_the_arguments_and_must_return_a_pair():
    a = tg.randn(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1)
    seen = []

    def closure():
        seen.append("closure")
        return tg.tensor(1.0)

    h = opt.register_step_pre_hook(lambda o, args, kwargs: ((), {"closure": closure}))
    assert opt.step().item() == 1.0 and seen == ["closure"]
    h.remove()
    opt.register_step_pre_hook(lambda o, args, kwargs: "oops")
    with pytest.raises(RuntimeError, match="SGD: a step pre-hook must return None or "
                                           "\\(args, kwargs\\) for step\\(\\), got 'oops'"):
        opt.step()
    assert opt.step.__name__ == "step" and opt.step.__doc__ == optim.SGD.step.__wrapped__.__doc__


def test_repr_lists_groups():
    opt = optim.SGD([tg.randn(2, requires_grad=True)], lr=0.1, momentum=0.9)
    r = repr(opt)
    assert r.startswith("SGD (") and "Parameter Group 0" in r and "momentum: 0.9" in r


@pytest.mark.parametrize("name,kw", [("SGD", {"momentum": 0.9}), ("Adam", {}), ("RMSprop", {})])
def test_repr_is_torchs(name, kw):
    torch = _torch()

    def build(lib, make):
        return getattr(lib.optim, name)([{"params": [make()]}, {"params": [make()], "lr": 0.5}],
                                        lr=0.1, **kw)
    ours = build(tg, lambda: tg.randn(2, requires_grad=True))
    theirs = build(torch, lambda: torch.randn(2, requires_grad=True))
    assert repr(ours) == repr(theirs)


# ---------------------------------------------------------------- state dicts
OPTIMIZER_CASES = [
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {"weight_decay": 0.1}),
    ("Adagrad", {"lr_decay": 0.01}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adamax", {"weight_decay": 0.01}),
    ("Adadelta", {"rho": 0.8}),
]


@torch_sparse_warning
@pytest.mark.parametrize("name,kw", OPTIMIZER_CASES + [("SparseAdam", {})])
def test_state_dict_layout_matches_torch(name, kw):
    torch = _torch()
    ps = [tg.randn(3, 2, requires_grad=True), tg.randn(4, 2, requires_grad=True)]
    tps = [torch.randn(3, 2, requires_grad=True), torch.randn(4, 2, requires_grad=True)]
    opt = getattr(optim, name)([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.1, **kw)
    topt = getattr(torch.optim, name)([{"params": tps[:1]}, {"params": tps[1:], "lr": 0.5}],
                                      lr=0.1, **kw)
    for p, q in zip(ps, tps):
        if name == "SparseAdam":
            F.embedding(tg.tensor([0, 2]), p, sparse=True).sum().backward()
            torch.nn.functional.embedding(torch.tensor([0, 2]), q, sparse=True).sum().backward()
        else:
            p.grad = tg.ones(*p.shape)
            q.grad = torch.ones(*q.shape)
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    for g, tgroup in zip(sd["param_groups"], tsd["param_groups"]):
        assert sorted(g) == sorted(tgroup)
        for k in tgroup:
            if k != "params":
                assert g[k] == tgroup[k], k
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i in tsd["state"]:
        assert sorted(sd["state"][i]) == sorted(tsd["state"][i])


def _state_copy(sd):
    """A deep copy of a state dict (tensors cloned), as saving and loading would give."""
    def cp(v):
        if isinstance(v, tg.Tensor):
            return v.detach().clone()
        if isinstance(v, dict):
            return {k: cp(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(cp(x) for x in v)
        return v
    return cp(sd)


@pytest.mark.parametrize("name,kw", OPTIMIZER_CASES)
def test_state_dict_round_trip_continues_identically(name, kw):
    arrays, x, t = _arrays("float32", seed=4)
    xs, ts = tg.tensor(x), tg.tensor(t)

    def train(ps, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            _tg_loss(ps, xs, ts).backward()
            opt.step()

    ref = _leaves(arrays)
    ref_opt = getattr(optim, name)(ref, lr=0.01, **kw)
    train(ref, ref_opt, 10)

    ps = _leaves(arrays)
    opt = getattr(optim, name)(ps, lr=0.01, **kw)
    train(ps, opt, 5)
    saved_params = [_np(p).copy() for p in ps]
    saved = _state_copy(opt.state_dict())
    train(ps, opt, 3)  # the saved copy must not follow

    fresh = _leaves(saved_params)
    opt2 = getattr(optim, name)(fresh, lr=0.5)  # its own options are replaced by the saved ones
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.01
    train(fresh, opt2, 5)
    for p, q in zip(fresh, ref):
        np.testing.assert_array_equal(_np(p), _np(q))


def test_state_dict_round_trip_sparse_adam_and_sparse_sgd():
    for make in (lambda ps: optim.SparseAdam(ps, lr=0.1),
                 lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)):
        table = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
        batches = [[1, 2], [2, 3], [5], [1, 5, 5], [0, 7]]

        def train(w, opt, bs):
            for idx in bs:
                opt.zero_grad()
                (F.embedding(tg.tensor(idx), w, sparse=True) ** 2).sum().backward()
                opt.step()

        ref = tg.tensor(table, requires_grad=True)
        train(ref, make([ref]), batches)
        w = tg.tensor(table, requires_grad=True)
        opt = make([w])
        train(w, opt, batches[:2])
        saved = _state_copy(opt.state_dict())
        w2 = tg.tensor(_np(w), requires_grad=True)
        opt2 = make([w2])
        opt2.load_state_dict(saved)
        train(w2, opt2, batches[2:])
        np.testing.assert_array_equal(_np(w2), _np(ref))


def test_load_state_dict_casts_state_to_the_parameter_dtype_and_copies():
    p64 = tg.randn(3, dtype=tg.float64, requires_grad=True)
    opt = optim.Adam([p64], lr=0.1)
    p64.grad = tg.ones(3, dtype=tg.float64)
    opt.step()
    sd = opt.state_dict()
    p32 = tg.randn(3, requires_grad=True)
    opt32 = optim.Adam([p32], lr=0.1)
    opt32.load_state_dict(sd)
    st = opt32.state[p32]
    assert st["exp_avg"].dtype == tg.float32 and st["step"].dtype == tg.float32
    opt64 = optim.Adam([tg.randn(3, dtype=tg.float64, requires_grad=True)], lr=0.1)
    opt64.load_state_dict(sd)
    loaded = next(iter(opt64.state.values()))["exp_avg"]
    assert loaded.data_ptr() != sd["state"][0]["exp_avg"].data_ptr()


def test_load_state_dict_from_torch_converted_to_tapegrad():
    """A torch state dict with its tensors converted loads and continues like torch."""
    torch = _torch()
    arrays, x, t = _arrays("float64", seed=9)
    ours, theirs = _leaves(arrays), _torch_leaves(torch, arrays)
    topt = torch.optim.Adam(theirs, lr=0.01, amsgrad=True, foreach=False)
    tx, tt = torch.tensor(x), torch.tensor(t)
    for _ in range(3):
        topt.zero_grad()
        _torch_loss(torch, theirs, tx, tt).backward()
        topt.step()
    tsd = topt.state_dict()
    conv = {"state": {i: {k: tg.tensor(v.numpy()) for k, v in s.items()}
                      for i, s in tsd["state"].items()},
            "param_groups": [dict(g) for g in tsd["param_groups"]]}
    with tg.no_grad():
        for p, q in zip(ours, theirs):
            p.copy_(tg.tensor(q.detach().numpy()))
    opt = optim.Adam(ours, lr=0.01, amsgrad=True)
    opt.load_state_dict(conv)
    xs, ts = tg.tensor(x), tg.tensor(t)
    for _ in range(3):
        opt.zero_grad()
        _tg_loss(ours, xs, ts).backward()
        _copy_grads(torch, ours, theirs)
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(_np(p), q.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_load_state_dict_validates_group_and_parameter_counts():
    a, b, c = (tg.randn(2, requires_grad=True) for _ in range(3))
    sd = optim.SGD([{"params": [a]}, {"params": [b, c]}], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups: 2 saved, "
                                         "the optimizer has 1"):
        optim.SGD([a, b, c], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group: group 0 "
                                         "has 1 parameters saved, the optimizer's has 2"):
        optim.SGD([{"params": [a, b]}, {"params": [c]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="no 'param_groups' entry"):
        optim.SGD([a], lr=0.1).load_state_dict({"state": {}})


def test_torch_raises_on_the_same_state_dict_mismatches():
    torch = _torch()
    ps = [torch.randn(2, requires_grad=True) for _ in range(3)]
    sd = torch.optim.SGD([{"params": ps[:1]}, {"params": ps[1:]}], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        torch.optim.SGD(ps, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        torch.optim.SGD([{"params": ps[:2]}, {"params": ps[2:]}], lr=0.1).load_state_dict(sd)


# ---------------------------------------------------------------- validation
def test_empty_parameter_list():
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.Adam(iter([]))


def test_params_must_be_an_iterable_of_tensors():
    a = tg.randn(2, requires_grad=True)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got "
                                        "tapegrad.Tensor"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the "
                                        "params is int"):
        optim.SGD([a, 3], lr=0.1)
    with pytest.raises(TypeError, match="but one of the params is numpy.ndarray"):
        optim.Adam([np.zeros(3)])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {a}}], lr=0.1)


def test_non_leaf_tensor_is_refused():
    a = tg.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([a * 2], lr=0.1)
    b = a * 2
    b.retain_grad()
    optim.SGD([b], lr=0.1)  # as torch: a non-leaf that retains its grad is accepted


def test_tensor_that_does_not_require_grad_is_accepted():
    optim.SGD([tg.randn(2)], lr=0.1).step()


def test_duplicate_parameters_warn_and_shared_parameters_raise():
    a, b = tg.randn(2, requires_grad=True), tg.randn(2, requires_grad=True)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [a]}, {"params": [b, a]}], lr=0.1)


ALL = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "SparseAdam", "Adamax", "Adadelta"]

INVALID = [  # (optimizer, kwargs, message); torch raises the same ValueError for all of these
    (name, {"lr": -1.0}, "Invalid learning rate: -1.0") for name in ALL
] + [
    ("SparseAdam", {"lr": 0.0}, "Invalid learning rate: 0.0"),
    ("SGD", {"lr": 0.1, "momentum": -0.5}, "Invalid momentum value: -0.5"),
    ("SGD", {"lr": 0.1, "weight_decay": -1e-4}, "Invalid weight_decay value: -0.0001"),
    ("SGD", {"lr": 0.1, "nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", {"lr": 0.1, "nesterov": True, "momentum": 0.9, "dampening": 0.1},
     "Nesterov momentum requires a momentum and zero dampening"),
    ("Adam", {"eps": -1.0}, "Invalid epsilon value: -1.0"),
    ("Adam", {"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0"),
    ("Adam", {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
    ("Adam", {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    ("Adam", {"betas": (0, 0.9)}, "betas must be either both floats or both Tensors"),
    ("AdamW", {"betas": (0.9, 1.5)}, "Invalid beta parameter at index 1: 1.5"),
    ("Adagrad", {"lr_decay": -0.1}, "Invalid lr_decay value: -0.1"),
    ("Adagrad", {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    ("Adagrad", {"initial_accumulator_value": -1.0},
     "Invalid initial_accumulator_value value: -1.0"),
    ("Adagrad", {"eps": -1e-10}, "Invalid epsilon value: -1e-10"),
    ("RMSprop", {"alpha": -0.5}, "Invalid alpha value: -0.5"),
    ("RMSprop", {"momentum": -0.5}, "Invalid momentum value: -0.5"),
    ("RMSprop", {"eps": -1.0}, "Invalid epsilon value: -1.0"),
    ("RMSprop", {"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
    ("SparseAdam", {"eps": 0.0}, "Invalid epsilon value: 0.0"),
    ("SparseAdam", {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
    ("Adamax", {"eps": -1.0}, "Invalid epsilon value: -1.0"),
    ("Adamax", {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
    ("Adamax", {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    ("Adadelta", {"rho": 1.5}, "Invalid rho value: 1.5"),
    ("Adadelta", {"eps": -1.0}, "Invalid epsilon value: -1.0"),
    ("Adadelta", {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
]


@pytest.mark.parametrize("name,kw,msg", INVALID, ids=[f"{n}-{m}" for n, _, m in INVALID])
def test_invalid_hyperparameters(name, kw, msg):
    with pytest.raises(ValueError) as exc:
        getattr(optim, name)([tg.randn(2, requires_grad=True)], **kw)
    assert str(exc.value) == msg


@pytest.mark.parametrize("name,kw,msg", INVALID, ids=[f"{n}-{m}" for n, _, m in INVALID])
def test_torch_raises_the_same_errors(name, kw, msg):
    torch = _torch()
    with pytest.raises(ValueError) as exc:
        getattr(torch.optim, name)([torch.randn(2, requires_grad=True)], **kw)
    assert str(exc.value) == msg


@pytest.mark.parametrize("name", ALL)
def test_nan_learning_rate_is_rejected(name):
    # A deliberate difference: torch.optim.SGD lets lr=nan through (`lr < 0.0` is False).
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        getattr(optim, name)([tg.randn(2, requires_grad=True)], lr=float("nan"))


@pytest.mark.parametrize("kw", [{"momentum": float("nan")}, {"weight_decay": float("nan")}])
def test_nan_sgd_options_are_rejected(kw):
    with pytest.raises(ValueError, match="Invalid"):
        optim.SGD([tg.randn(2, requires_grad=True)], lr=0.1, **kw)


def test_group_options_are_validated():
    a, b = tg.randn(2, requires_grad=True), tg.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.SGD([{"params": [a]}, {"params": [b], "lr": -1}], lr=0.1)
    opt = optim.Adam([a])
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 2.0"):
        opt.add_param_group({"params": [b], "betas": (2.0, 0.9)})
    assert len(opt.param_groups) == 1


def test_tensor_learning_rate():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([a], lr=tg.tensor(0.5))
    a.grad = tg.ones(2)
    opt.step()
    np.testing.assert_array_equal(_np(a), [0.5, 1.5])
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.Adam([a], lr=tg.tensor([0.1, 0.2]))


@pytest.mark.parametrize("name,flag", [("SGD", "fused"), ("Adam", "fused"), ("Adam", "capturable"),
                                       ("AdamW", "differentiable"), ("Adagrad", "fused"),
                                       ("RMSprop", "capturable")])
def test_unsupported_implementation_flags(name, flag):
    with pytest.raises(ValueError, match=f"{flag}=True is not supported"):
        getattr(optim, name)([tg.randn(2, requires_grad=True)], lr=0.1, **{flag: True})


def test_foreach_is_accepted_and_kept():
    opt = optim.Adam([tg.randn(2, requires_grad=True)], foreach=False)
    assert opt.param_groups[0]["foreach"] is False


@pytest.mark.parametrize("name,msg", [
    ("Adam", "Adam does not support sparse gradients, please consider SparseAdam instead"),
    ("AdamW", "Adam does not support sparse gradients, please consider SparseAdam instead"),
    ("RMSprop", "RMSprop does not support sparse gradients"),
])
def test_sparse_gradient_refused(name, msg):
    dense = tg.randn(3, requires_grad=True)
    w = tg.randn(5, 2, requires_grad=True)
    opt = getattr(optim, name)([dense, w])
    dense.grad = tg.ones(3)
    F.embedding(tg.tensor([1]), w, sparse=True).sum().backward()
    before = _np(dense).copy()
    with pytest.raises(RuntimeError) as exc:
        opt.step()
    assert str(exc.value) == msg
    np.testing.assert_array_equal(_np(dense), before)  # nothing was updated


@pytest.mark.parametrize("name,msg", [
    ("Adam", "Adam does not support sparse gradients, please consider SparseAdam instead"),
    ("AdamW", "Adam does not support sparse gradients, please consider SparseAdam instead"),
    ("RMSprop", "RMSprop does not support sparse gradients"),
    ("SparseAdam", "SparseAdam does not support dense gradients, please consider Adam instead"),
])
@torch_sparse_warning
def test_torch_sparse_dense_errors_are_the_same(name, msg):
    torch = _torch()
    sparse = name != "SparseAdam"
    emb = torch.nn.Embedding(5, 2, sparse=sparse)
    opt = getattr(torch.optim, name)(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError) as exc:
        opt.step()
    assert str(exc.value) == msg


def test_sparse_adam_refuses_dense_gradients():
    a = tg.randn(3, requires_grad=True)
    opt = optim.SparseAdam([a])
    (a * a).sum().backward()
    with pytest.raises(RuntimeError) as exc:
        opt.step()
    assert str(exc.value) == ("SparseAdam does not support dense gradients, please consider "
                              "Adam instead")


def test_integer_parameter_is_refused_at_step():
    p = tg.tensor([1, 2])
    opt = optim.SGD([p], lr=0.1)
    p.grad = None
    opt.step()  # no grad: skipped
    with pytest.raises(TypeError, match="float32 or float64"):
        tg._C._optim_sgd(p, p, None, 0.1, 0.0, 0.0, 0.0, False, False)


def test_kernel_argument_checks():
    p = tg.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="does not match parameter"):
        tg._C._optim_sgd(p, tg.randn(4), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="different dtype"):
        tg._C._optim_sgd(p, tg.randn(3, dtype=tg.float64), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(RuntimeError, match="state 'exp_avg'"):
        tg._C._optim_adam(p, tg.randn(3), tg.zeros(4), tg.zeros(3), None, tg.tensor(0.0),
                          0.1, 0.9, 0.999, 1e-8, 0.0, False, False, False)


def test_no_warnings_in_a_normal_run():
    a = tg.randn(3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = optim.Adam([a])
        for _ in range(3):
            opt.zero_grad()
            (a * a).sum().backward()
            opt.step()


@pytest.mark.parametrize("name", ["Adamax", "Adadelta"])
def test_tensor_op_optimizers_reject_sparse_gradients_and_record_nothing(name):
    w = tg.randn(4, 2, requires_grad=True)
    F.embedding(tg.tensor([0, 2]), w, sparse=True).sum().backward()
    opt = getattr(optim, name)([w])
    with pytest.raises(RuntimeError, match=f"{name} does not support sparse gradients"):
        opt.step()
    w.grad = tg.ones(4, 2)
    before = _np(w).copy()
    opt.step()
    assert w.is_leaf and w.grad_fn is None
    assert not np.array_equal(_np(w), before)


@pytest.mark.parametrize("make", [
    lambda ps: tg.optim.Adam(ps, lr=0.1), lambda ps: tg.optim.Adagrad(ps, lr=0.1),
    lambda ps: tg.optim.RMSprop(ps, lr=0.1), lambda ps: tg.optim.Adamax(ps),
    lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.5),
], ids=["Adam", "Adagrad", "RMSprop", "Adamax", "SGD"])
def test_unpickling_an_older_layout_fills_missing_keys_and_step_tensors(make):
    import pickle

    w = tg.nn.Parameter(tg.ones(3))
    opt = make([w])
    (w * w).sum().backward()
    opt.step()
    state = opt.__getstate__()
    group = state["param_groups"][0]
    dropped = {k: group.pop(k) for k in type(opt)._GROUP_KEY_DEFAULTS}  # an older version's groups
    had_step = "step" in state["state"][w]
    if had_step:
        state["state"][w]["step"] = 1  # older versions kept a Python number
    old = type(opt).__new__(type(opt))
    old.__setstate__(state)
    assert {k: old.param_groups[0][k] for k in dropped} == type(opt)._GROUP_KEY_DEFAULTS
    if had_step:
        assert isinstance(old.state[w]["step"], tg.Tensor) and old.state[w]["step"].item() == 1
    old.step()  # and it still steps
    copy = pickle.loads(pickle.dumps(opt))
    assert copy.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
