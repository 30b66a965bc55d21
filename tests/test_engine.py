"""The autograd engine: the lectures' worked examples, gradient accumulation,
retain_graph, grad modes, autograd.grad, long chains, memory, dtype promotion
and threads."""

import gc
import math
import os
import threading
import weakref

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def f64(a, requires_grad=False):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# ============================================================================
# worked examples
# ============================================================================
def test_lecture_example_max_graph():
    # f(x, y, z) = (x + y) * max(y, z) at (1, 2, 0): f = 6, grad = (2, 5, 0).
    x = tg.tensor(1.0, requires_grad=True)
    y = tg.tensor(2.0, requires_grad=True)
    z = tg.tensor(0.0, requires_grad=True)
    f = (x + y) * tg.maximum(y, z)
    assert f.shape == ()
    assert f.item() == 6.0
    f.backward()
    assert x.grad.item() == 2.0
    assert y.grad.item() == 5.0
    assert z.grad.item() == 0.0


def test_lecture_example_max_graph_z_wins():
    # Same function at (1, 2, 3): f = 9, df/dx = 3, df/dy = 3, df/dz = 3.
    x, y, z = (tg.tensor(v, requires_grad=True) for v in (1.0, 2.0, 3.0))
    f = (x + y) * tg.maximum(y, z)
    f.backward()
    assert f.item() == 9.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (3.0, 3.0, 3.0)


@pytest.fixture
def quad():
    rng = np.random.default_rng(7)
    n = 5
    return dict(A=rng.standard_normal((n, n)), b=rng.standard_normal(n), c=1.25, x=rng.standard_normal(n))


def test_quadratic_form_gradient_formula(quad):
    A, b, c, xv = quad["A"], quad["b"], quad["c"], quad["x"]
    x = f64(xv, requires_grad=True)
    At, bt = f64(A), f64(b)
    f = x @ At @ x + bt @ x + c
    assert f.shape == ()
    np.testing.assert_allclose(f.item(), xv @ A @ xv + b @ xv + c, rtol=1e-12)
    f.backward()
    np.testing.assert_allclose(to_np(x.grad), (A + A.T) @ xv + b, rtol=1e-11, atol=1e-12)


def test_quadratic_form_gradients_wrt_parameters(quad):
    A, b, c, xv = quad["A"], quad["b"], quad["c"], quad["x"]
    x, At, bt = f64(xv), f64(A, True), f64(b, True)
    ct = tg.tensor(c, dtype=tg.float64, requires_grad=True)
    f = x @ At @ x + bt @ x + ct
    f.backward()
    np.testing.assert_allclose(to_np(At.grad), np.outer(xv, xv), rtol=1e-12)
    np.testing.assert_allclose(to_np(bt.grad), xv, rtol=1e-12)
    assert ct.grad.item() == 1.0


def test_quadratic_form_gradcheck(quad):
    A, b = f64(quad["A"]), f64(quad["b"])
    x = f64(quad["x"], requires_grad=True)
    assert tg.gradcheck(lambda v: v @ A @ v + b @ v + 1.25, (x,)) is True
    # and with respect to all of x, A, b at once
    A2 = f64(quad["A"], True)
    b2 = f64(quad["b"], True)
    assert tg.gradcheck(lambda v, M, w: v @ M @ v + w @ v, (x, A2, b2)) is True


def numpy_two_layer(x, V, b, W, a, ystar):
    z = V @ x + b
    h = np.tanh(z)
    y = W @ h + a
    loss = 0.5 * np.sum((y - ystar) ** 2)
    dy = y - ystar
    dW = np.outer(dy, h)
    da = dy
    dh = W.T @ dy
    dz = dh * (1 - h ** 2)
    dV = np.outer(dz, x)
    db = dz
    dx = V.T @ dz
    return loss, dict(x=dx, V=dV, b=db, W=dW, a=da)


@pytest.fixture
def net():
    rng = np.random.default_rng(3)
    return dict(x=rng.standard_normal(3), V=rng.standard_normal((4, 3)), b=rng.standard_normal(4),
                W=rng.standard_normal((2, 4)), a=rng.standard_normal(2), ystar=rng.standard_normal(2))


@pytest.mark.parametrize("loss_form", ["explicit", "mse_half_sum"])
def test_two_layer_net_backprop(net, loss_form):
    want_loss, want = numpy_two_layer(**net)
    p = {k: f64(net[k], True) for k in ("x", "V", "b", "W", "a")}
    ystar = f64(net["ystar"])
    h = tg.tanh(p["V"] @ p["x"] + p["b"])
    y = p["W"] @ h + p["a"]
    if loss_form == "explicit":
        loss = 0.5 * ((y - ystar) ** 2).sum()
    else:
        loss = F.mse_loss(y, ystar, reduction="sum", half=True)
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-12)
    loss.backward()
    for k, g in want.items():
        np.testing.assert_allclose(to_np(p[k].grad), g, rtol=1e-10, atol=1e-12, err_msg=k)


def test_two_layer_net_batched_matches_per_example_sum(net):
    # A batch of 3 examples through F.linear: the gradient is the sum of the
    # per-example hand-derived gradients.
    rng = np.random.default_rng(11)
    X = rng.standard_normal((3, 3))
    Ys = rng.standard_normal((3, 2))
    total = {k: 0.0 for k in ("V", "b", "W", "a")}
    total_loss = 0.0
    for i in range(3):
        l, g = numpy_two_layer(X[i], net["V"], net["b"], net["W"], net["a"], Ys[i])
        total_loss += l
        for k in total:
            total[k] = total[k] + g[k]
    p = {k: f64(net[k], True) for k in ("V", "b", "W", "a")}
    h = F.linear(f64(X), p["V"], p["b"]).tanh()
    y = F.linear(h, p["W"], p["a"])
    loss = F.mse_loss(y, f64(Ys), reduction="sum", half=True)
    np.testing.assert_allclose(loss.item(), total_loss, rtol=1e-12)
    loss.backward()
    for k in total:
        np.testing.assert_allclose(to_np(p[k].grad), total[k], rtol=1e-10, atol=1e-12, err_msg=k)


# ============================================================================
# accumulation, backward(gradient), retain_graph
# ============================================================================
def test_fan_out_accumulates():
    a = np.array([1.5, -2.0, 0.25])
    x = f64(a, True)
    y = x * x + x
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * a + 1, rtol=1e-12)


def test_fan_out_through_intermediate():
    # h = 2x used three times: L = sum(h*h + h.exp() + h)
    a = np.array([0.3, -0.7])
    x = f64(a, True)
    h = x * 2.0
    (h * h + h.exp() + h).sum().backward()
    hv = 2 * a
    np.testing.assert_allclose(to_np(x.grad), 2 * (2 * hv + np.exp(hv) + 1), rtol=1e-12)


def test_grad_accumulates_across_backward_calls_until_zeroed():
    a = np.array([1.0, 2.0, 3.0])
    x = f64(a, True)
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * a)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * a + 3)
    with tg.no_grad():
        x.grad.zero_()
    np.testing.assert_allclose(to_np(x.grad), 0.0)
    x.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 1.0)


def test_grad_is_not_an_alias_of_the_seed_or_intermediates():
    x = f64([1.0, 2.0], True)
    g = f64([1.0, 1.0])
    y = x * 1.0
    y.backward(g)
    with tg.no_grad():
        x.grad.add_(tg.ones(2, dtype=tg.float64))
    np.testing.assert_array_equal(to_np(g), [1.0, 1.0])


def test_grad_set_to_none_restarts_accumulation():
    x = f64([1.0, 2.0], True)
    (x * 2.0).sum().backward()
    x.grad = None
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 3.0])


def test_backward_with_gradient_for_non_scalar():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    x = f64(a, True)
    y = x * x * 3.0
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    y.backward(f64(g))
    np.testing.assert_allclose(to_np(x.grad), 6 * a * g, rtol=1e-12)


def test_backward_gradient_keyword():
    x = f64([1.0, 2.0], True)
    (x * 5.0).backward(gradient=f64([1.0, -1.0]))
    np.testing.assert_allclose(to_np(x.grad), [5.0, -5.0])


def test_backward_on_leaf_itself():
    x = f64([1.0, 2.0], True)
    x.backward(f64([3.0, 4.0]))
    np.testing.assert_allclose(to_np(x.grad), [3.0, 4.0])


def test_retain_graph_allows_second_backward():
    a = np.array([0.5, 1.5])
    x = f64(a, True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = to_np(x.grad)
    np.testing.assert_allclose(g1, np.exp(a) * (1 + a), rtol=1e-12)
    y.backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * g1, rtol=1e-12)


def test_backward_twice_without_retain_graph_raises():
    x = f64([0.5, 1.5], True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward"):
        y.backward()


def test_backward_through_shared_subgraph_after_partial_backward():
    # Two losses share h; backward of the first with retain_graph, then the second.
    a = np.array([0.2, -0.4, 0.9])
    x = f64(a, True)
    h = x.sin()
    l1 = (h * 2.0).sum()
    l2 = (h * h).sum()
    l1.backward(retain_graph=True)
    l2.backward()
    np.testing.assert_allclose(to_np(x.grad), np.cos(a) * (2 + 2 * np.sin(a)), rtol=1e-12)


def test_autograd_backward_multiple_roots_via_sum():
    a = np.array([1.0, 2.0])
    x = f64(a, True)
    (x.exp().sum() + (x * x).sum()).backward()
    np.testing.assert_allclose(to_np(x.grad), np.exp(a) + 2 * a, rtol=1e-12)


# ============================================================================
# grad modes
# ============================================================================
def test_no_grad_context_records_nothing():
    x = f64([1.0, 2.0], True)
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2.0 + x.exp()
        z = tg.matmul(x, x)
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert not z.requires_grad and z.is_leaf
    np.testing.assert_allclose(to_np(y), [2 + math.e, 4 + math.e ** 2], rtol=1e-12)


def test_no_grad_decorator():
    x = f64([1.0, 2.0], True)

    @tg.no_grad()
    def f(t):
        assert not tg.is_grad_enabled()
        return t * 3.0

    y = f(x)
    assert tg.is_grad_enabled()
    assert not y.requires_grad
    np.testing.assert_allclose(to_np(y), [3.0, 6.0])


def test_no_grad_restores_mode_after_exception():
    with pytest.raises(KeyError):
        with tg.no_grad():
            raise KeyError("boom")
    assert tg.is_grad_enabled()


def test_no_grad_bare_decorator():
    x = f64([1.0], True)

    @tg.no_grad
    def f(t):
        return t * 3.0

    assert not f(x).requires_grad
    assert tg.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = f64([1.0, 2.0], True)
    with tg.no_grad():
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            y = (x * x).sum()
        assert not tg.is_grad_enabled()
        w = x * 2.0
    assert y.requires_grad and not y.is_leaf
    assert not w.requires_grad
    y.backward()
    np.testing.assert_allclose(to_np(x.grad), [2.0, 4.0])


def test_set_grad_enabled():
    x = f64([1.0], True)
    try:
        tg.set_grad_enabled(False)
        assert not tg.is_grad_enabled()
        assert not (x * 2.0).requires_grad
        tg.set_grad_enabled(True)
        assert tg.is_grad_enabled()
        assert (x * 2.0).requires_grad
    finally:
        tg.set_grad_enabled(True)


def test_set_grad_enabled_as_context_manager():
    x = f64([1.0], True)
    with tg.set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    assert tg.is_grad_enabled()
    with tg.no_grad():
        with tg.set_grad_enabled(True):
            assert (x * 2.0).requires_grad
        assert not tg.is_grad_enabled()


def test_detach():
    x = f64([1.0, 2.0], True)
    y = x * 3.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(to_np(d), [3.0, 6.0])
    # a graph through the detached value does not reach x
    z = (d * x).sum()
    z.backward()
    np.testing.assert_allclose(to_np(x.grad), [3.0, 6.0])


def test_detach_shares_storage():
    x = f64([1.0, 2.0], True)
    d = x.detach()
    with tg.no_grad():
        d.add_(f64([10.0, 10.0]))
    np.testing.assert_array_equal(to_np(x), [11.0, 12.0])


def test_requires_grad_():
    x = f64([1.0, 2.0])
    assert not x.requires_grad
    assert x.grad is None
    r = x.requires_grad_()
    assert r is x
    assert x.requires_grad and x.is_leaf
    (x * x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [2.0, 4.0])
    x.requires_grad_(False)
    assert not x.requires_grad
    assert not (x * 2.0).requires_grad


def test_leaf_and_non_leaf_flags():
    x = f64([1.0], True)
    c = f64([1.0])
    y = x * 2.0
    assert x.is_leaf and c.is_leaf
    assert not y.is_leaf and y.requires_grad
    assert not (c * 2.0).requires_grad  # no input requires grad: nothing recorded
    assert (c * x).requires_grad


def test_retain_grad_on_non_leaf():
    a = np.array([1.0, -2.0, 0.5])
    x = f64(a, True)
    y = x * 2.0
    y.retain_grad()
    z = (y * y).sum()
    z.backward()
    np.testing.assert_allclose(to_np(y.grad), 2 * (2 * a), rtol=1e-12)
    np.testing.assert_allclose(to_np(x.grad), 8 * a, rtol=1e-12)


# ============================================================================
# autograd.grad
# ============================================================================
def test_autograd_grad_leaf_does_not_touch_dot_grad():
    a = np.array([1.0, 2.0, 3.0])
    x = f64(a, True)
    y = (x ** 3).sum()
    (g,) = tg.autograd.grad(y, [x])
    np.testing.assert_allclose(to_np(g), 3 * a ** 2, rtol=1e-12)
    assert x.grad is None


def test_autograd_grad_non_leaf_input():
    a = np.array([1.0, -1.5])
    x = f64(a, True)
    h = x * 3.0
    out = (h * h).sum()
    gh, gx = tg.autograd.grad(out, [h, x])
    np.testing.assert_allclose(to_np(gh), 2 * 3 * a, rtol=1e-12)
    np.testing.assert_allclose(to_np(gx), 18 * a, rtol=1e-12)
    assert x.grad is None


def test_autograd_grad_with_grad_outputs_and_retain_graph():
    a = np.array([1.0, 2.0])
    x = f64(a, True)
    y = x.exp()
    (g,) = tg.autograd.grad([y], [x], grad_outputs=[f64([1.0, 0.5])], retain_graph=True)
    np.testing.assert_allclose(to_np(g), np.exp(a) * [1.0, 0.5], rtol=1e-12)
    (g2,) = tg.autograd.grad(y.sum(), x)
    np.testing.assert_allclose(to_np(g2), np.exp(a), rtol=1e-12)


def test_autograd_grad_frees_graph_by_default():
    x = f64([1.0, 2.0], True)
    y = (x.exp() * x).sum()
    tg.autograd.grad(y, [x])
    with pytest.raises(RuntimeError, match="backward"):
        y.backward()


def test_autograd_grad_allow_unused():
    x = f64([1.0], True)
    u = f64([2.0], True)
    y = (x * 2.0).sum()
    gx, gu = tg.autograd.grad(y, [x, u], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(to_np(gx), [2.0])


def test_autograd_grad_unused_without_allow_unused_raises():
    x = f64([1.0], True)
    u = f64([2.0], True)
    y = (x * 2.0).sum()
    with pytest.raises(RuntimeError):
        tg.autograd.grad(y, [x, u])


def test_autograd_grad_result_does_not_require_grad():
    x = f64([1.0, 2.0], True)
    (g,) = tg.autograd.grad((x * x).sum(), [x])
    assert not g.requires_grad


# ============================================================================
# long chains
# ============================================================================
def test_long_chain_backward_no_stack_overflow():
    n = 100_000
    x = tg.tensor(1.0, dtype=tg.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.00001
    y.backward()
    want = 1.00001 ** n
    np.testing.assert_allclose(y.item(), want, rtol=1e-9)
    np.testing.assert_allclose(x.grad.item(), want, rtol=1e-9)


def test_long_chain_dropped_without_backward():
    x = tg.tensor(1.0, dtype=tg.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    assert y.item() == 100_001.0
    del y  # releasing the chain must not recurse
    gc.collect()
    z = (x * 2.0)
    z.backward()
    assert x.grad.item() == 2.0


def test_wide_fan_in():
    xs = [tg.tensor(float(i), dtype=tg.float64, requires_grad=True) for i in range(2000)]
    total = xs[0]
    for t in xs[1:]:
        total = total + t * t
    total.backward()
    assert xs[0].grad.item() == 1.0
    for i in (1, 7, 1999):
        assert xs[i].grad.item() == 2.0 * i


# ============================================================================
# memory
# ============================================================================
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def make_model(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    w1 = tg.tensor((rng.standard_normal((8, 16)) * 0.3).astype(dtype), requires_grad=True)
    b1 = tg.tensor(np.zeros(16, dtype), requires_grad=True)
    w2 = tg.tensor((rng.standard_normal((16, 3)) * 0.3).astype(dtype), requires_grad=True)
    b2 = tg.tensor(np.zeros(3, dtype), requires_grad=True)
    return [w1, b1, w2, b2]


def forward(params, x):
    w1, b1, w2, b2 = params
    return (x @ w1 + b1).tanh() @ w2 + b2


def sgd_step(params, x, target, lr=0.05):
    out = forward(params, x)
    loss = F.cross_entropy(out, target)
    loss.backward()
    with tg.no_grad():
        for p in params:
            p.add_(p.grad * -lr)
            p.grad.zero_()
    return loss.item()


def test_training_loop_memory_is_flat():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((32, 8)))
    target = tg.tensor(rng.integers(0, 3, 32))
    params = make_model()
    losses = [sgd_step(params, x, target) for _ in range(300)]  # warm-up
    gc.collect()
    before = rss_bytes()
    for _ in range(3000):
        losses.append(sgd_step(params, x, target))
    gc.collect()
    growth = rss_bytes() - before
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 3000 steps"
    assert losses[-1] < losses[0]  # it trained


def test_graph_never_backwarded_does_not_grow_memory():
    # The `out = model(x)` pattern: each iteration's graph dies when `out` is rebound.
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((32, 8)))
    params = make_model()
    out = None
    for _ in range(1000):  # warm-up: the tape and the heap reach their steady size
        out = forward(params, x).sum()
    gc.collect()
    before = rss_bytes()
    for _ in range(3000):
        out = forward(params, x).sum()
    gc.collect()
    growth = rss_bytes() - before
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 3000 forward passes"
    out.backward()  # the last graph is still intact
    assert params[0].grad is not None


def test_long_lived_graph_survives_many_dead_graphs():
    # A graph kept alive while thousands of other graphs are built and dropped on
    # top of it: memory stays flat, and the old graph still backwards correctly.
    rng = np.random.default_rng(2)
    xv = rng.standard_normal((4, 8))
    x = tg.tensor(xv)
    params = make_model()
    keep = forward(params, x).sum()
    for _ in range(200):
        forward(params, x).sum()
    gc.collect()
    before = rss_bytes()
    for _ in range(3000):
        tmp = forward(params, x).sum()  # noqa: F841
    del tmp
    gc.collect()
    growth = rss_bytes() - before
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"
    keep.backward()
    w1, b1, w2, b2 = [to_np(p) for p in params]
    h = np.tanh(xv @ w1 + b1)
    dh = np.ones((4, 3)) @ w2.T * (1 - h ** 2)
    np.testing.assert_allclose(to_np(params[2].grad), h.T @ np.ones((4, 3)), rtol=1e-10)
    np.testing.assert_allclose(to_np(params[0].grad), xv.T @ dh, rtol=1e-10)


def numpy_forward_grads(params, xv):
    """Gradients of sum(tanh(x W1 + b1) W2 + b2) w.r.t. W1, b1, W2, b2 (hand-derived)."""
    w1, b1, w2, b2 = [to_np(p) for p in params]
    h = np.tanh(xv @ w1 + b1)
    ones = np.ones((xv.shape[0], w2.shape[1]))
    dh = ones @ w2.T * (1 - h ** 2)
    return [xv.T @ dh, dh.sum(0), h.T @ ones, ones.sum(0)]


def test_tape_compaction_keeps_live_graphs_correct():
    # A sliding window of live graphs over many dropped ones leaves dead records
    # below live ones, so the tape must compact; the live graphs must survive it.
    rng = np.random.default_rng(4)
    xv = rng.standard_normal((4, 8))
    x = tg.tensor(xv)
    params = make_model()
    anchor = forward(params, x).sum()
    window = []
    for i in range(6000):
        window.append((i, forward(params, x * float(i % 5 + 1)).sum()))
        if len(window) > 3:
            window.pop(0)
        if i == 3000:
            gc.collect()
            mid = rss_bytes()
    gc.collect()
    assert rss_bytes() - mid < 4 * 2**20
    anchor.backward()
    for p, g in zip(params, numpy_forward_grads(params, xv)):
        np.testing.assert_allclose(to_np(p.grad), g, rtol=1e-10, atol=1e-12)
    for i, out in window:
        with tg.no_grad():
            for p in params:
                p.grad.zero_()
        out.backward()
        for p, g in zip(params, numpy_forward_grads(params, xv * float(i % 5 + 1))):
            np.testing.assert_allclose(to_np(p.grad), g, rtol=1e-10, atol=1e-12)


def test_saved_tensors_released_when_graph_dropped():
    # from_numpy shares memory: the array stays alive exactly as long as some
    # tensor (or a graph that saved it) references the storage.
    arr = np.arange(4.0)
    ref = weakref.ref(arr)
    w = tg.from_numpy(arr)
    del arr
    x = f64(np.ones(4), True)
    y = (x * w).sum()  # mul saves w for the gradient of x
    del w
    gc.collect()
    assert ref() is not None
    del y
    gc.collect()
    assert ref() is None, "the dropped graph still holds its saved tensor"


def test_saved_tensors_released_by_backward():
    arr = np.arange(4.0)
    ref = weakref.ref(arr)
    w = tg.from_numpy(arr)
    del arr
    x = f64(np.ones(4), True)
    y = (x * w).sum()
    del w
    y.backward()
    gc.collect()
    assert ref() is None, "backward without retain_graph did not free the saved tensors"
    np.testing.assert_array_equal(to_np(x.grad), np.arange(4.0))


def test_dropped_graph_frees_large_buffers():
    n = 5_000_000  # 40 MB per float64 tensor: well above malloc's mmap threshold
    x = tg.tensor(np.linspace(-1.0, 1.0, n), requires_grad=True)
    gc.collect()
    before = rss_bytes()
    y = x.exp()
    z = (y * x).sin()
    loss = (z * y).sum()
    peak = rss_bytes()
    assert peak - before > 100 * 2**20  # the graph really holds its buffers
    del y, z, loss
    gc.collect()
    after = rss_bytes()
    assert after - before < 20 * 2**20, f"{(after - before) / 2**20:.0f} MiB still held after the graph was dropped"


# ============================================================================
# dtype promotion
# ============================================================================
@pytest.mark.parametrize(
    "a_dtype,b_dtype,want",
    [
        ("float32", "float64", "float64"),
        ("float64", "float32", "float64"),
        ("float32", "int64", "float32"),
        ("int64", "float64", "float64"),
        ("int64", "bool", "int64"),
        ("bool", "float32", "float32"),
        ("int64", "int64", "int64"),
    ],
)
@pytest.mark.parametrize("op", ["add", "mul", "maximum"])
def test_binary_promotion_like_torch(a_dtype, b_dtype, op, want):
    a = tg.ones(3, dtype=getattr(tg, a_dtype))
    b = tg.ones(3, dtype=getattr(tg, b_dtype))
    out = getattr(tg, op)(a, b)
    assert out.dtype == getattr(tg, want)


@pytest.mark.parametrize(
    "a_dtype,b_dtype,want",
    [("float32", "float64", "float64"), ("int64", "int64", "float32"), ("int64", "float64", "float64"),
     ("float32", "int64", "float32")],
)
def test_division_promotion_like_torch(a_dtype, b_dtype, want):
    a = tg.full((2,), 3, dtype=getattr(tg, a_dtype))
    b = tg.full((2,), 2, dtype=getattr(tg, b_dtype))
    out = a / b
    assert out.dtype == getattr(tg, want)
    np.testing.assert_allclose(to_np(out), [1.5, 1.5])


def test_python_scalars_do_not_promote():
    x32 = tg.ones(2)
    assert (x32 * 2.5).dtype == tg.float32
    assert (2.5 + x32).dtype == tg.float32
    assert (x32 ** 2).dtype == tg.float32
    i = tg.tensor([1, 2])
    assert (i * 2).dtype == tg.int64
    assert (i + 1).dtype == tg.int64
    assert (i * 2.5).dtype == tg.float32
    np.testing.assert_allclose(to_np(i * 2.5), [2.5, 5.0])


def test_mixed_precision_gradients_come_back_in_input_dtype():
    a = np.array([0.5, 1.0, 2.0])
    x32 = tg.tensor(a.astype(np.float32), requires_grad=True)
    y64 = tg.tensor(a * 2, requires_grad=True)
    z = x32 * y64
    assert z.dtype == tg.float64
    z.sum().backward()
    assert x32.grad.dtype == tg.float32
    assert y64.grad.dtype == tg.float64
    np.testing.assert_allclose(to_np(x32.grad), a * 2, rtol=1e-6)
    np.testing.assert_allclose(to_np(y64.grad), a.astype(np.float32), rtol=1e-12)


def test_mixed_promotion_vs_torch():
    torch = pytest.importorskip("torch", reason="torch is not installed (CI installs torch==2.13.0)")
    names = ["float32", "float64", "int64", "bool"]
    for an in names:
        for bn in names:
            if "bool" in (an, bn):
                continue
            a = tg.ones(2, dtype=getattr(tg, an))
            b = tg.ones(2, dtype=getattr(tg, bn))
            ta = torch.ones(2, dtype=getattr(torch, an))
            tb = torch.ones(2, dtype=getattr(torch, bn))
            for f in (lambda u, v: u + v, lambda u, v: u * v, lambda u, v: u / v, lambda u, v: u - v):
                assert str(f(a, b).dtype).split(".")[-1] == str(f(ta, tb).dtype).split(".")[-1], (an, bn)


# ============================================================================
# threads
# ============================================================================
def train_tiny(seed, steps=200):
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((16, 8)))
    target = tg.tensor(rng.integers(0, 3, 16))
    params = make_model(seed)
    losses = [sgd_step(params, x, target) for _ in range(steps)]
    return losses, [to_np(p) for p in params]


def test_threads_training_own_models_match_sequential():
    seq = [train_tiny(s) for s in (10, 20)]
    results = [None, None]
    errors = []
    barrier = threading.Barrier(2)

    def worker(i, seed):
        try:
            barrier.wait()
            results[i] = train_tiny(seed)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i, s)) for i, s in enumerate((10, 20))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for (seq_losses, seq_params), (thr_losses, thr_params) in zip(seq, results):
        np.testing.assert_allclose(thr_losses, seq_losses, rtol=1e-12)
        for a, b in zip(seq_params, thr_params):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_threads_accumulating_into_a_shared_parameter():
    # Two threads backward their own graphs into the same leaf many times: no
    # accumulation may be lost (leaf .grad updates must not race), as in torch.
    n = 200_000
    steps = 150
    c = tg.tensor(np.ones(n))
    for _ in range(3):  # a lost update is a race: give it a few chances to show
        w = tg.tensor(np.zeros(n), requires_grad=True)
        barrier = threading.Barrier(2)
        errors = []

        def worker():
            try:
                barrier.wait()
                for _ in range(steps):
                    (w * c).sum().backward()
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        g = to_np(w.grad)
        lost = int(np.sum(g != 2.0 * steps))
        assert lost == 0, f"{lost} of {n} gradient elements lost updates (min {g.min()}, want {2.0 * steps})"


def run_in_thread(fn):
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    return box


def test_non_leaf_from_another_threads_graph_raises():
    x = f64([1.0, 2.0], True)
    h = x * 2.0  # recorded on the main thread's tape
    box = run_in_thread(lambda: h * 3.0)
    assert isinstance(box.get("error"), RuntimeError), box
    assert "thread" in str(box["error"])


def test_backward_from_another_thread_raises():
    x = f64([1.0, 2.0], True)
    y = (x * x).sum()
    box = run_in_thread(lambda: y.backward())
    assert isinstance(box.get("error"), RuntimeError), box
    y.backward()  # still usable from its own thread
    np.testing.assert_allclose(to_np(x.grad), [2.0, 4.0])


def test_leaves_and_detached_values_cross_threads():
    x = f64([1.0, 2.0], True)
    h = (x * 2.0).detach()

    def work():
        (x * h).sum().backward()
        return True

    box = run_in_thread(work)
    assert box.get("value") is True, box
    np.testing.assert_allclose(to_np(x.grad), [2.0, 4.0])


def test_grad_mode_is_thread_local():
    x = f64([1.0], True)
    with tg.no_grad():
        box = run_in_thread(lambda: (tg.is_grad_enabled(), (x * 2.0).requires_grad))
        assert not tg.is_grad_enabled()
    assert box.get("value") == (True, True), box
