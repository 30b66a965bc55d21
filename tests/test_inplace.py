"""In-place ops under autograd (Note [In-place ops with autograd] in
cpp/src/ops/elementwise.cpp): values and gradients against PyTorch and against
float64 finite differences, the tensor's identity, and the cases refused."""

import numpy as np
import pytest

import tapegrad as tg

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0); skipping the PyTorch comparison"

A = np.array([[0.7, -1.3, 2.1], [-0.4, 1.6, -2.2]])
B = np.array([[1.5, 0.6, -0.8], [1.1, -0.9, 0.35]])
MASK = np.array([[True, False, False], [False, True, True]])


def _mask(lib):
    return lib.tensor(MASK) if lib is tg else lib.from_numpy(MASK)


# Each step takes (lib, a, b), a and b float64 leaves that require grad, and
# returns a tensor built with in-place ops on intermediates (and, in the first
# two, on a plain tensor that becomes part of the graph).
STEPS = {
    "add_ into plain": lambda lib, a, b: lib.zeros(2, 3, dtype=lib.float64).add_(a) * b,
    "copy_ into plain": lambda lib, a, b: lib.zeros(2, 3, dtype=lib.float64).copy_(a * b) + a,
    "add_ alpha": lambda lib, a, b: (a * 2).add_(b, alpha=-0.5) * a,
    "sub_": lambda lib, a, b: (a + 1).sub_(b).sub_(0.25) * b,
    "mul_ tensor": lambda lib, a, b: (a + 0).mul_(b).mul_(a),
    "mul_ scalar": lambda lib, a, b: (a * b).mul_(3.0),
    "div_ tensor": lambda lib, a, b: (a * a).div_(b),
    "div_ scalar": lambda lib, a, b: (a - b).div_(4.0),
    "iadd isub imul idiv": lambda lib, a, b: _augmented(a * 1, b),
    "broadcast other": lambda lib, a, b: (a * 1).mul_(b[0]).add_(b[1]),
    "float32 other": lambda lib, a, b: (a * 1).add_(b.float()),
    "relu_": lambda lib, a, b: (a * b).relu_() * a,
    "tanh_": lambda lib, a, b: (a + b).tanh_() * b,
    "sigmoid_": lambda lib, a, b: (a * b).sigmoid_(),
    "exp_": lambda lib, a, b: (a * 0.5).exp_() * b,
    "log_": lambda lib, a, b: (a * a + b * b + 1).log_(),
    "sqrt_": lambda lib, a, b: (b * b + 0.5).sqrt_() * a,
    "abs_": lambda lib, a, b: (a - b).abs_(),
    "neg_": lambda lib, a, b: (a * b).neg_(),
    "sin_ cos_": lambda lib, a, b: (a * 1).sin_() + (b * 1).cos_(),
    "square_": lambda lib, a, b: (a + b).square_(),
    "clamp_": lambda lib, a, b: (a * b).clamp_(-0.5, 0.8) + (a * 1).clamp_(min=0.1),
    "leaky_relu_": lambda lib, a, b: lib.nn.functional.leaky_relu_(a * b, 0.2),
    "hardtanh_": lambda lib, a, b: lib.nn.functional.hardtanh_(a * b * 2, -1.0, 1.5),
    "masked_fill_ number": lambda lib, a, b: (a * b).masked_fill_(_mask(lib), 0.5),
    "masked_fill_ grad value": lambda lib, a, b: (a * 1).masked_fill_(_mask(lib), b.sum()),
    "fill_ and zero_ drop the old value": lambda lib, a, b: (a * 1).fill_(2.0) * a + (b * 1).zero_(),
    "fan-out before the write": lambda lib, a, b: _fan_out(a, b),
}


def _augmented(h, b):
    h += b
    h -= 0.5
    h *= b
    h /= 2.0
    return h


def _fan_out(a, b):
    h = a + b
    before = h * 2.0  # mul by a scalar saves nothing of h
    h.relu_()
    return before + h * b


def _run(lib, name):
    a = lib.tensor(A, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(B, dtype=lib.float64, requires_grad=True)
    out = STEPS[name](lib, a, b)
    weights = lib.tensor(np.arange(1.0, 7.0).reshape(2, 3), dtype=lib.float64)
    (out * weights).sum().backward()
    return out.detach().numpy(), a.grad.numpy(), b.grad.numpy()


@pytest.mark.parametrize("name", sorted(STEPS))
def test_values_and_gradients_match_torch(name):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for got, want in zip(_run(tg, name), _run(torch, name)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


# Central differences through a float32 cast resolve only ~1e-3; torch checks it.
@pytest.mark.parametrize("name", sorted(set(STEPS) - {"float32 other"}))
def test_gradients_match_finite_differences(name):
    a = tg.tensor(A, dtype=tg.float64, requires_grad=True)
    b = tg.tensor(B, dtype=tg.float64, requires_grad=True)
    assert tg.gradcheck(lambda x, y: STEPS[name](tg, x, y), (a, b)) is True


def test_the_silent_lost_gradient_is_gone():
    # Written before in-place ops were recorded: b.add_(w) ran unrecorded, and
    # w's gradient came out as b alone (1 instead of 2), with no error.
    b = tg.zeros(3)
    w = tg.ones(3, requires_grad=True)
    b.add_(w)
    assert b.requires_grad and not b.is_leaf
    (b * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])


def test_identity_history_and_returned_object():
    a = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = a * 2.0
    assert h.relu_() is h
    assert h.grad_fn is not None and not h.is_leaf and h.requires_grad
    np.testing.assert_array_equal(h.detach().numpy(), [2.0, 0.0, 6.0])
    h.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 0.0, 2.0])


def test_retained_grad_is_the_gradient_of_the_latest_value():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    grads = []
    for lib in (tg, torch):
        a = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        h = a * 3.0
        h.retain_grad()
        h.mul_(a)
        (h * h).sum().backward()
        grads.append((h.grad.numpy(), a.grad.numpy()))
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_no_grad_writes_in_place_without_history():
    w = tg.ones(3, requires_grad=True)
    with tg.no_grad():
        w.mul_(2.0).relu_().clamp_(max=1.5)
    assert w.is_leaf and w.grad_fn is None
    np.testing.assert_array_equal(w.detach().numpy(), [1.5, 1.5, 1.5])


def test_plain_tensors_stay_plain():
    x = tg.tensor([-1.0, 2.0])
    x.relu_().mul_(3.0).masked_fill_(x > 5.0, 0.0)
    assert not x.requires_grad and x.is_leaf
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.0])


def test_overwriting_keeps_the_old_value_in_the_graph_with_zero_gradient():
    a = tg.ones(2, requires_grad=True)
    for overwrite in (lambda h: h.fill_(5.0), lambda h: h.zero_(), lambda h: h.copy_(tg.ones(2))):
        a.grad = None
        h = a * 2.0
        overwrite(h)
        assert h.requires_grad and not h.is_leaf  # as in torch: a.grad is zeros, not None
        h.sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal((a * 2.0).fill_(-1.0).detach().numpy(), [-1.0, -1.0])


def test_refused_on_a_leaf_that_requires_grad():
    w = tg.ones(3, requires_grad=True)
    for op in (lambda t: t.relu_(), lambda t: t.clamp_(0, 1), lambda t: t.masked_fill_(t > 0, 0.0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            op(w)
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("make_alias", [
    lambda h: h.reshape(3), lambda h: h[1:], lambda h: h.detach(),
], ids=["view", "slice", "detached alias"])
def test_refused_when_memory_is_shared(make_alias):
    a = tg.ones(3, requires_grad=True)
    h = a * 2.0
    alias = make_alias(h)  # noqa: F841  (kept alive: it shares h's memory)
    with pytest.raises(RuntimeError, match="relu_: .*shares its memory"):
        h.relu_()
    np.testing.assert_array_equal(h.detach().numpy(), [2.0, 2.0, 2.0])
    with pytest.raises(RuntimeError, match="shares its memory"):
        alias_of_base = h[:2]
        alias_of_base.mul_(a[:2])


def test_a_saved_value_overwritten_is_caught_at_backward():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    h = a * 1.0
    y = h * h  # saves h itself
    h.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_integer_targets_are_refused_where_the_result_needs_grad_or_floats():
    w = tg.ones(3, requires_grad=True)
    n = tg.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="add_: the result requires grad"):
        n.add_(w)
    with pytest.raises(RuntimeError, match="exp_: the result is float32"):
        n.exp_()
    np.testing.assert_array_equal(n.numpy(), [1, 2, 3])


def test_shape_errors_name_the_op():
    h = tg.ones(2, 3, requires_grad=True) * 1.0
    with pytest.raises(ValueError, match="mul_"):
        h.mul_(tg.ones(4))
    with pytest.raises(ValueError, match="masked_fill_"):
        h.masked_fill_(tg.ones(2, 2, 3) > 0, 1.0)
    with pytest.raises(TypeError, match="masked_fill_: the mask must be bool"):
        h.masked_fill_(tg.ones(2, 3), 1.0)


def test_compiled_step_with_in_place_ops_replays_like_eager():
    def make():
        tg.manual_seed(3)
        w = tg.randn(4, 3, dtype=tg.float64, requires_grad=True)
        return w, tg.optim.SGD([w], lr=0.1)

    def step(w, opt, x):
        opt.zero_grad()
        h = x @ w
        h.relu_().mul_(2.0)
        h.add_(x.sum(1, keepdim=True))
        loss = (h * h).mean()
        loss.backward()
        opt.step()
        return loss

    (wa, oa), (wb, ob) = make(), make()
    compiled = tg.compile(lambda x: step(wa, oa, x))
    for i in range(5):
        x = tg.randn(6, 4, dtype=tg.float64)
        la, lb = compiled(x), step(wb, ob, x)
        assert la.item() == lb.item(), i
        np.testing.assert_array_equal(wa.detach().numpy(), wb.detach().numpy())
    assert compiled.replays >= 1


@pytest.mark.parametrize("call", [
    lambda F, x: F.relu(x, inplace=True), lambda F, x: F.relu_(x),
    lambda F, x: F.leaky_relu(x, 0.1, inplace=True), lambda F, x: F.leaky_relu_(x, 0.1),
    lambda F, x: F.hardtanh(x, -0.5, 0.5, inplace=True), lambda F, x: F.hardtanh_(x, -0.5, 0.5),
    lambda F, x: F.dropout(x, 0.0, True, inplace=True), lambda F, x: F.silu(x, inplace=True),
    lambda F, x: F.elu(x, 0.5, inplace=True), lambda F, x: F.relu6(x, inplace=True),
], ids=["relu", "relu_", "leaky_relu", "leaky_relu_", "hardtanh", "hardtanh_", "dropout p=0",
        "silu", "elu", "relu6"])
def test_functional_inplace_returns_its_input_overwritten(call):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, tx = tg.tensor(A.tolist()), torch.tensor(A.tolist())
    assert call(tg.nn.functional, x) is x
    call(torch.nn.functional, tx)
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-6)  # float32: exp differs by an ulp


def test_dropout_inplace_keeps_the_same_mask_arithmetic():
    x = tg.ones(1000, 4)
    tg.manual_seed(5)
    want = tg.nn.functional.dropout(x, 0.3)
    tg.manual_seed(5)
    got = tg.nn.functional.dropout(x.clone(), 0.3, inplace=True)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_inplace_modules_train_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)

    def build(nn):
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 4),
                             nn.LeakyReLU(0.1, inplace=True), nn.Linear(4, 4),
                             nn.Hardtanh(inplace=True), nn.Dropout(0.0, inplace=True),
                             nn.Linear(4, 4), nn.SiLU(inplace=True), nn.Linear(4, 4),
                             nn.ELU(0.7, inplace=True), nn.Linear(4, 4), nn.ReLU6(inplace=True),
                             nn.Linear(4, 2)).double()

    a, b = build(tg.nn), build(torch.nn)
    with torch.no_grad():
        for p, q in zip(a.parameters(), b.parameters()):
            q.copy_(torch.from_numpy(p.detach().numpy()))
    x = np.random.default_rng(0).normal(size=(5, 3))
    ya = a(tg.tensor(x, dtype=tg.float64))
    yb = b(torch.from_numpy(x))
    ya.square().sum().backward()
    yb.square().sum().backward()
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-12)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12)
