"""The fused linear op (act(x @ W^T + b) as one record; Note [Fused linear]) against
its composite (matmul, add, activation op) and PyTorch, and nn.Sequential's fusion of
Linear + ReLU/Tanh/Sigmoid (Note [Sequential fuses Linear + activation]).

What is guaranteed, and tested here:
* forward values are bit-identical to ``act(x.matmul(w.t()) + b)`` (same GEMM call,
  same bias addition, same activation kernel) for contiguous, batched, 1-D and
  transposed-weight layouts, float32 and float64;
* gradients equal the composite's up to rounding (the bias gradient is summed in a
  different order), and pass gradcheck in float64;
* values and gradients match PyTorch.
"""

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F

ACTS = ["none", "relu", "tanh", "sigmoid"]
DTYPES = {"float32": np.float32, "float64": np.float64}
LAYOUTS = {
    "2d": ((7, 5), False),
    "batched": ((2, 3, 5), False),
    "1d": ((5,), False),
    "weight_view": ((7, 5), True),  # weight passed as a transposed view
    "empty_rows": ((0, 5), False),
}


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def composite(x, w, b, act):
    z = x.matmul(w.t())
    if b is not None:
        z = z + b
    return {"none": lambda t: t, "relu": tg.relu, "tanh": tg.tanh, "sigmoid": tg.sigmoid}[act](z)


def make(layout, dtype, bias, seed=0):
    shape, wview = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, shape).astype(dtype)
    w = rng.uniform(-1, 1, (4, 5)).astype(dtype)
    b = rng.uniform(-1, 1, (4,)).astype(dtype) if bias else None
    g = rng.standard_normal(shape[:-1] + (4,)).astype(dtype)
    return x, w, b, g, wview


def leaves(x, w, b, wview):
    X = tg.tensor(x, requires_grad=True)
    if wview:  # a (4, 5) view of a (5, 4) leaf
        Wl = tg.tensor(np.ascontiguousarray(w.T), requires_grad=True)
        W = Wl.t()
    else:
        Wl = W = tg.tensor(w, requires_grad=True)
    B = tg.tensor(b, requires_grad=True) if b is not None else None
    return X, W, B, [X, Wl] + ([B] if B is not None else [])


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("act", ACTS)
def test_fused_matches_composite(act, dtype, layout, bias):
    x, w, b, g, wview = make(layout, DTYPES[dtype], bias)
    X, W, B, fused_leaves = leaves(x, w, b, wview)
    y = tg._C._linear(X, W, B, act)
    assert y.grad_fn == "linear_backward"
    X2, W2, B2, comp_leaves = leaves(x, w, b, wview)
    z = composite(X2, W2, B2, act)
    assert y.dtype == z.dtype and tuple(y.shape) == tuple(z.shape)
    # forward: bit for bit
    np.testing.assert_array_equal(to_np(y), to_np(z))
    (y * tg.tensor(g)).sum().backward()
    (z * tg.tensor(g)).sum().backward()
    tol = 1e-5 if dtype == "float32" else 1e-12
    for i, (a, c) in enumerate(zip(fused_leaves, comp_leaves)):
        assert a.grad is not None and a.grad.dtype == a.dtype
        np.testing.assert_allclose(to_np(a.grad), to_np(c.grad), rtol=tol, atol=tol,
                                   err_msg=f"input {i}")


@pytest.mark.parametrize("act", ACTS)
def test_fused_gradcheck_float64(act):
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.uniform(-2, 2, (2, 3, 4)), requires_grad=True)
    w = tg.tensor(rng.uniform(-1, 1, (5, 4)), requires_grad=True)
    b = tg.tensor(rng.uniform(-1, 1, (5,)), requires_grad=True)
    proj = tg.tensor(rng.standard_normal((2, 3, 5)))
    assert tg.gradcheck(lambda x, w, b: (tg._C._linear(x, w, b, act) * proj).sum(), (x, w, b))


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("act", ACTS)
def test_fused_vs_torch(act, dtype):
    torch = pytest.importorskip("torch")
    x, w, b, g, _ = make("batched", DTYPES[dtype], True, seed=2)
    X, W, B, _ = leaves(x, w, b, False)
    y = tg._C._linear(X, W, B, act)
    (y * tg.tensor(g)).sum().backward()
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty = {"none": ty, "relu": torch.relu(ty), "tanh": torch.tanh(ty), "sigmoid": torch.sigmoid(ty)}[act]
    (ty * torch.tensor(g)).sum().backward()
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(to_np(y), ty.detach().numpy(), rtol=tol, atol=tol)
    for a, t in ((X, tx), (W, tw), (B, tb)):
        np.testing.assert_allclose(to_np(a.grad), t.grad.numpy(), rtol=tol, atol=tol)


def test_only_needed_gradients():
    x = tg.tensor(np.ones((3, 2)))
    w = tg.tensor(np.ones((4, 2)), requires_grad=True)
    b = tg.tensor(np.ones(4))
    tg._C._linear(x, w, b, "tanh").sum().backward()
    assert w.grad is not None and x.grad is None and b.grad is None
    x.requires_grad_(True)
    w2 = tg.tensor(np.ones((4, 2)))
    tg._C._linear(x, w2, None, "relu").sum().backward()
    assert x.grad is not None and w2.grad is None


def test_no_record_without_grad():
    x, w = tg.ones(3, 2, requires_grad=True), tg.ones(4, 2)
    with tg.no_grad():
        y = tg._C._linear(x, w, None, "sigmoid")
    assert not y.requires_grad


def test_nan_and_relu_kink_like_composite():
    x = tg.tensor(np.array([[np.nan, 1.0], [0.0, 0.0], [1.0, -1.0]]), requires_grad=True)
    w = tg.tensor(np.array([[1.0, 1.0], [2.0, -1.0]]), requires_grad=True)
    b = tg.tensor(np.array([0.0, 0.0]), requires_grad=True)
    for act in ACTS:
        y = tg._C._linear(x, w, b, act)
        z = composite(x, w, b, act)
        np.testing.assert_array_equal(to_np(y), to_np(z))
        gy = tg.autograd.grad([y.sum()], [x, w, b])
        gz = tg.autograd.grad([z.sum()], [x, w, b])
        for a, c in zip(gy, gz):
            np.testing.assert_array_equal(to_np(a), to_np(c))


@pytest.mark.parametrize("rows,fan_in,fan_out", [(300, 256, 200), (517, 250, 100), (3, 9, 5000)],
                         ids=["300x200", "517x100_partial_block", "rows_longer_than_a_block"])
def test_large_matches_composite(rows, fan_in, fan_out):
    """Big enough to run without the GIL and (Note [Core threads]) on several threads, and
    to take the bias pass's blocks of rows (a partial last block; rows over 4,096 long)."""
    rng = np.random.default_rng(3)
    x = tg.tensor(rng.standard_normal((rows, fan_in)).astype(np.float32))
    w = tg.tensor((rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(np.float32))
    b = tg.tensor(rng.standard_normal(fan_out).astype(np.float32))
    for act in ACTS:
        np.testing.assert_array_equal(to_np(tg._C._linear(x, w, b, act)), to_np(composite(x, w, b, act)))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("args,exc,pattern", [
    ((tg.ones(5, 3), tg.ones(4, 2), None), ValueError, r"linear: input float32\[5, 3\], weight float32\[4, 2\]"),
    ((tg.ones(5, 3), tg.ones(4, 3), tg.ones(5)), ValueError, r"linear: .*bias float32\[5\].*bias must be 1-D of size out_features \(4\)"),
    ((tg.ones(5, 3), tg.ones(3), None), ValueError, r"linear: weight must be 2-D"),
    ((tg.ones(5, 3), tg.ones(4, 3).double(), None), TypeError, r"linear: .*float32\[5, 3\].*float64\[4, 3\]"),
    ((tg.ones(5, 3).long(), tg.ones(4, 3).long(), None), TypeError, r"linear: expected float32 or float64"),
    ((tg.tensor(1.0), tg.ones(4, 3), None), ValueError, r"linear: input must be at least 1-D"),
])
def test_errors_name_op_and_shapes(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        tg._C._linear(*args, "relu")


def test_bad_activation():
    with pytest.raises(ValueError, match="linear: activation must be"):
        tg._C._linear(tg.ones(2, 3), tg.ones(4, 3), None, "gelu")


def test_functional_linear_is_the_fused_op():
    x, w, b = tg.ones(2, 3, requires_grad=True), tg.ones(4, 3), tg.ones(4)
    assert F.linear(x, w, b).grad_fn == "linear_backward"
    assert F.linear(x, w).grad_fn == "linear_backward"
    # torch also accepts a 1-D weight: the composite path
    out = F.linear(x, tg.ones(3), None)
    assert tuple(out.shape) == (2,)


# ---------------------------------------------------------------- nn.Sequential
def _mlp(act_cls, dtype=tg.float64):
    tg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8, dtype=dtype), act_cls(), nn.Linear(8, 3, dtype=dtype))


def _unfused(model, x):
    for m in model:
        x = m(x)
    return x


@pytest.mark.parametrize("dtype", [tg.float32, tg.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("act_cls", [nn.ReLU, nn.Tanh, nn.Sigmoid])
def test_sequential_fuses_and_matches_unfused(act_cls, dtype):
    model = _mlp(act_cls, dtype)
    rng = np.random.default_rng(4)
    x = tg.tensor(rng.standard_normal((5, 6))).to(dtype)
    h = model[:2](x)  # Linear + act through Sequential: fused
    assert h.grad_fn == "linear_backward"
    y = model(x)
    z = _unfused(model, x)
    np.testing.assert_array_equal(to_np(y), to_np(z))
    gy = tg.autograd.grad([y.sum()], list(model.parameters()))
    gz = tg.autograd.grad([z.sum()], list(model.parameters()))
    tol = 1e-5 if dtype == tg.float32 else 1e-12
    for a, c in zip(gy, gz):
        np.testing.assert_allclose(to_np(a), to_np(c), rtol=tol, atol=tol)


def test_sequential_matches_torch():
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Linear(6, 8, dtype=tg.float64), nn.Tanh(), nn.Linear(8, 8, dtype=tg.float64),
                          nn.ReLU(), nn.Linear(8, 3, dtype=tg.float64), nn.Sigmoid())
    tmodel = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                                 torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Sigmoid()).double()
    tmodel.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((7, 6))
    y = model(tg.tensor(x))
    ty = tmodel(torch.tensor(x))
    np.testing.assert_allclose(to_np(y), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        np.testing.assert_allclose(to_np(p.grad), tp.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_sequential_does_not_fuse_when_unsafe():
    class MyLinear(nn.Linear):
        def forward(self, input):
            return super().forward(input) * 2.0

    class MyTanh(nn.Tanh):
        pass

    x = tg.ones(2, 6, dtype=tg.float64)
    tg.manual_seed(0)
    # a subclass of Linear: its own forward runs (the fused op would skip the * 2)
    m = nn.Sequential(MyLinear(6, 4, dtype=tg.float64), nn.Tanh())
    ref = tg.tanh(m[0](x))
    np.testing.assert_array_equal(to_np(m(x)), to_np(ref))
    # a subclass of the activation
    m = nn.Sequential(nn.Linear(6, 4, dtype=tg.float64), MyTanh())
    assert m(x).requires_grad and m(x).grad_fn == "tanh_backward"
    # a forward patched on the instance
    lin = nn.Linear(6, 4, dtype=tg.float64)
    lin.forward = lambda input: F.linear(input, lin.weight, lin.bias) + 1.0
    m = nn.Sequential(lin, nn.ReLU())
    np.testing.assert_array_equal(to_np(m(x)), to_np(tg.relu(lin(x))))
    # an activation that is not fused, and a Linear not followed by an activation
    m = nn.Sequential(nn.Linear(6, 4, dtype=tg.float64), nn.LeakyReLU(0.1), nn.Linear(4, 2, dtype=tg.float64))
    assert m(x).grad_fn == "linear_backward"
    assert m[:2](x).grad_fn == "leaky_relu_backward"


def test_sequential_fusion_with_hooks_attribute_falls_back():
    lin, act = nn.Linear(6, 4, dtype=tg.float64), nn.Tanh()
    object.__setattr__(act, "_forward_hooks", {0: lambda *a: None})
    m = nn.Sequential(lin, act)
    assert m(tg.ones(2, 6, dtype=tg.float64)).grad_fn == "tanh_backward"
