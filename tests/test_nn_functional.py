"""Composite activations (SiLU, ELU, Softplus, LogSigmoid, ReLU6, Softsign, GELU),
one_hot, pad, normalize, cosine_similarity, layer_norm / LayerNorm, the containers
ModuleDict / ParameterList / ParameterDict, forward hooks, get_submodule, the
orthogonal_ and trunc_normal_ initialisers and parameters_to_vector: against torch
where torch has the same thing, with float64 gradchecks and the error cases.
"""

import math
from collections import OrderedDict

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad.nn import init

from _torch_compare import TORCH_REASON, _compare, _gradcheck, tgt, to_np, tt  # noqa: F401


# ============================================================================
# activations
# ============================================================================
ACTIVATIONS = [
    ("SiLU", (), "silu", {}),
    ("ELU", (), "elu", {}),
    ("ELU", (0.5,), "elu", {"alpha": 0.5}),
    ("Softplus", (), "softplus", {}),
    ("Softplus", (2.0, 5.0), "softplus", {"beta": 2.0, "threshold": 5.0}),
    ("LogSigmoid", (), "logsigmoid", {}),
    ("ReLU6", (), "relu6", {}),
    ("Softsign", (), "softsign", {}),
    ("GELU", ("tanh",), "gelu", {"approximate": "tanh"}),
    ("GELU", (), "gelu", {}),
]
IDS = [f"{m}{a}" for m, a, _, _ in ACTIVATIONS]


def _activation_input():
    x = np.random.randn(4, 5) * 4
    x[0, :3] = [7.0, -0.0001, 3.0]  # crosses ReLU6's and softplus's (beta 2, threshold 5) kinks
    return x


@pytest.mark.parametrize("name,args,fname,kw", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activation_modules_and_functions_match_torch(name, args, fname, kw, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = _activation_input()
    _compare(torch, getattr(nn, name)(*args), getattr(torch.nn, name)(*args), [x], dtype=dtype)
    _compare(torch, lambda a: getattr(F, fname)(a, **kw),
             lambda a: getattr(torch.nn.functional, fname)(a, **kw), [x], dtype=dtype)


@pytest.mark.parametrize("name,args,fname,kw", ACTIVATIONS, ids=IDS)
def test_activation_gradcheck(name, args, fname, kw):
    x = np.random.randn(3, 4) * 3
    x[np.abs(x - 6) < 0.01] += 0.1  # keep finite differences off the kinks
    _gradcheck(lambda a: getattr(F, fname)(a, **kw), [x])


def test_softplus_and_logsigmoid_are_stable_for_large_inputs():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.array([-1000.0, -60.0, -30.0, 0.0, 15.0, 30.0, 800.0])
    for fn, kw in ((F.softplus, {}), (F.softplus, {"threshold": 1e9}), (F.logsigmoid, {})):
        xg = tgt(x, True)
        y = fn(xg, **kw)
        yt = getattr(torch.nn.functional, fn.__name__)(tt(torch, x), **kw)
        assert np.isfinite(to_np(y)).all()
        finite = np.isfinite(yt.numpy())  # torch overflows to inf with threshold=1e9 at 800
        np.testing.assert_allclose(to_np(y)[finite], yt.numpy()[finite], rtol=1e-14, atol=0)
        y.sum().backward()
        assert np.isfinite(to_np(xg.grad)).all()
    assert F.softplus(tgt([-60.0])).item() > 0  # log1p precision, not log(1 + tiny) = 0
    assert F.softplus(tgt([800.0]), threshold=1e9).item() == 800.0


def test_elu_large_inputs_have_finite_gradients():
    x = tgt([1000.0, -1000.0, 0.5], True)
    F.elu(x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [1.0, 0.0, 1.0])


def test_gelu_rejects_unknown_approximations():
    x = tg.randn(3, dtype=tg.float64)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


# ============================================================================
# one_hot, pad
# ============================================================================
@pytest.mark.parametrize("shape,num_classes", [((5,), -1), ((2, 3), 7), ((), 4), ((0,), 3)])
def test_one_hot_matches_torch(shape, num_classes):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    labels = np.random.randint(0, 4, shape).astype(np.int64)
    a = F.one_hot(tg.tensor(labels), num_classes)
    b = torch.nn.functional.one_hot(torch.tensor(labels), num_classes)
    assert a.dtype == tg.int64
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(tg.tensor([0, -1]))
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(tg.tensor([0, 3]), 3)
    with pytest.raises(TypeError, match="int64"):
        F.one_hot(tg.tensor([0.0, 1.0]))


PADS = [(1, 2), (0, 0, 2, 1), (-1, 2), (1, -2, -1, 0), (2, 1, 0, 1, 1, 1), (-2, -1)]


@pytest.mark.parametrize("pad", PADS, ids=[str(p) for p in PADS])
@pytest.mark.parametrize("value", [0.0, -1.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pad_constant_matches_torch(pad, value, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(2, 3, 4)
    _compare(torch, lambda a: F.pad(a, pad, value=value),
             lambda a: torch.nn.functional.pad(a, pad, value=value), [x], dtype=dtype)


def test_pad_gradcheck_and_errors():
    _gradcheck(lambda a: F.pad(a, (1, -1, 2, 0), value=3.0), [np.random.randn(3, 4)])
    x = tg.randn(2, 3)
    with pytest.raises(ValueError, match="even"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="twice the number of dimensions"):
        F.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="below size 0"):
        F.pad(x, (-2, -2))
    with pytest.raises(NotImplementedError, match="reflect"):
        F.pad(x, (1, 1), mode="reflect")


# ============================================================================
# normalize, cosine_similarity, layer_norm
# ============================================================================
@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, 0), (3.0, -1), (math.inf, 1)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_normalize_matches_torch(p, dim, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(4, 5)
    _compare(torch, lambda a: F.normalize(a, p, dim), lambda a: torch.nn.functional.normalize(
        a, p, dim), [x], dtype=dtype)


def test_normalize_zero_vector_has_zero_gradient_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    _compare(torch, F.normalize, torch.nn.functional.normalize, [x])


@pytest.mark.parametrize("shapes,dim", [(((4, 5), (4, 5)), 1), (((3, 4, 2), (1, 4, 2)), 1),
                                        (((6,), (6,)), 0), (((3, 4), (3, 4)), -1)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cosine_similarity_matches_torch(shapes, dim, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    a, b = (np.random.randn(*s) for s in shapes)
    _compare(torch, lambda x, y: F.cosine_similarity(x, y, dim),
             lambda x, y: torch.nn.functional.cosine_similarity(x, y, dim), [a, b], dtype=dtype)


def test_cosine_similarity_small_norms_are_clamped_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    a = np.array([[1e-10, 0.0], [3.0, 4.0], [0.0, 0.0]])
    b = np.array([[1.0, 1.0], [1e-9, -1e-9], [1.0, 2.0]])
    _compare(torch, F.cosine_similarity, torch.nn.functional.cosine_similarity, [a, b])


def test_normalize_and_cosine_similarity_gradcheck_and_errors():
    _gradcheck(lambda a: F.normalize(a, 2.0, 1), [np.random.randn(3, 4)])
    _gradcheck(lambda a, b: F.cosine_similarity(a, b), [np.random.randn(3, 4),
                                                        np.random.randn(3, 4)])
    with pytest.raises(ValueError, match=r"\[3, 4\].*\[2, 4\]"):
        F.cosine_similarity(tg.randn(3, 4), tg.randn(2, 4))
    with pytest.raises(IndexError, match="dim 2"):
        F.cosine_similarity(tg.randn(3, 4), tg.randn(3, 4), dim=2)


@pytest.mark.parametrize("shape,normalized", [((4, 6), (6,)), ((2, 3, 4), (3, 4)),
                                              ((5,), (5,))])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layer_norm_matches_torch(shape, normalized, affine, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(*shape) * 3 + 1
    inputs = [x] + ([np.random.randn(*normalized), np.random.randn(*normalized)] if affine else [])
    _compare(torch, lambda a, *wb: F.layer_norm(a, normalized, *wb, eps=1e-4),
             lambda a, *wb: torch.nn.functional.layer_norm(a, normalized, *wb, eps=1e-4),
             inputs, dtype=dtype)


def test_layer_norm_gradcheck_and_errors():
    _gradcheck(lambda a, w, b: F.layer_norm(a, (4,), w, b),
               [np.random.randn(3, 4), np.random.randn(4), np.random.randn(4)])
    with pytest.raises(ValueError, match=r"\[3, 4\].*\[3\]"):
        F.layer_norm(tg.randn(3, 4), (3,))
    with pytest.raises(ValueError, match="weight"):
        F.layer_norm(tg.randn(3, 4), (4,), weight=tg.ones(3))


@pytest.mark.parametrize("kw", [{}, {"elementwise_affine": False}, {"bias": False},
                                {"eps": 1e-3}])
def test_layer_norm_module_matches_torch(kw):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m = nn.LayerNorm((3, 4), dtype=tg.float64, **kw)
    tm = torch.nn.LayerNorm((3, 4), dtype=torch.float64, **kw)
    assert list(m.state_dict()) == list(tm.state_dict())
    assert repr(m) == repr(tm)
    if m.weight is not None:
        with torch.no_grad():
            tm.weight.copy_(torch.randn(3, 4, dtype=torch.float64))
        m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.randn(2, 3, 4)
    _compare(torch, m, tm, [x])
    if m.weight is not None:
        np.testing.assert_allclose(to_np(m.weight.grad), tm.weight.grad.numpy(), rtol=1e-10)


# ============================================================================
# containers
# ============================================================================
def test_module_dict_registers_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m = nn.ModuleDict({"enc": nn.Linear(2, 3), "dec": nn.Linear(3, 2)})
    tm = torch.nn.ModuleDict({"enc": torch.nn.Linear(2, 3), "dec": torch.nn.Linear(3, 2)})
    m["act"] = nn.Tanh()
    tm["act"] = torch.nn.Tanh()
    assert list(m.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(m.keys()) == ["enc", "dec", "act"] and len(m) == 3 and "dec" in m
    assert repr(m) == repr(tm)
    m.update([("extra", nn.Linear(1, 1))])
    assert len(list(m.parameters())) == 6
    del m["extra"]
    assert m.pop("act").__class__ is nn.Tanh and list(m) == ["enc", "dec"]
    with pytest.raises(TypeError, match="pair"):
        m.update([nn.Linear(1, 1)])
    with pytest.raises(TypeError, match="not callable"):
        m(tg.ones(2))


def test_parameter_list_and_dict_register_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = nn.ParameterList([nn.Parameter(tg.ones(2)), tg.zeros(3)])
            self.pdict = nn.ParameterDict({"a": nn.Parameter(tg.ones(1)), "b": tg.zeros(2, 2)})

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2)),
                                                 torch.zeros(3)])
            self.pdict = torch.nn.ParameterDict({"a": torch.nn.Parameter(torch.ones(1)),
                                                 "b": torch.zeros(2, 2)})

    net, tnet = Net(), TNet()
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert all(isinstance(p, nn.Parameter) for p in net.plist)
    assert isinstance(net.pdict["b"], nn.Parameter)
    net.load_state_dict({k: v.detach().numpy() + 1 for k, v in tnet.state_dict().items()})
    np.testing.assert_array_equal(to_np(net.plist[1]), np.ones(3))
    np.testing.assert_array_equal(to_np(net.pdict["b"]), np.ones((2, 2)))
    net.plist.append(tg.ones(4))
    net.plist[0] = nn.Parameter(tg.full((2,), 5.0))
    assert len(net.plist) == 3 and to_np(net.plist[-1]).shape == (4,)
    assert to_np(net.plist[0]).tolist() == [5.0, 5.0]
    assert [n for n, _ in net.named_parameters()][:3] == ["plist.0", "plist.1", "plist.2"]
    net.pdict["a"] = tg.full((1,), 2.0)
    assert list(net.pdict) == ["a", "b"] and net.pdict["a"].item() == 2.0
    with pytest.raises(IndexError, match="out of range"):
        net.plist[3]
    with pytest.raises(TypeError, match="index 3"):
        net.plist.append("weight")
    with pytest.raises(TypeError, match="'c'"):
        net.pdict["c"] = 1.0


def test_parameter_list_parameters_get_gradients_and_optimised():
    plist = nn.ParameterList([tg.ones(2, requires_grad=True), tg.ones(2, requires_grad=True)])
    opt = tg.optim.SGD(plist.parameters(), lr=0.5)
    (plist[0] * 2 + plist[1] * 3).sum().backward()
    opt.step()
    assert to_np(plist[0]).tolist() == [0.0, 0.0] and to_np(plist[1]).tolist() == [-0.5, -0.5]


# ============================================================================
# hooks, get_submodule / get_parameter
# ============================================================================
def test_forward_hooks_order_replacement_and_removal():
    lin = nn.Linear(3, 2, dtype=tg.float64)
    seen = []
    h1 = lin.register_forward_pre_hook(lambda m, args: seen.append(("pre", m is lin)))
    h2 = lin.register_forward_pre_hook(lambda m, args: args[0] * 0.0)  # one tensor, not a tuple
    h3 = lin.register_forward_hook(lambda m, args, out: seen.append(("fwd", len(args))))
    h4 = lin.register_forward_hook(lambda m, args, out: out + 1.0)
    x = tg.randn(4, 3, dtype=tg.float64)
    y = lin(x)
    assert seen == [("pre", True), ("fwd", 1)]
    expected = to_np(lin.bias)[None, :] + 1.0  # the input was zeroed, the output shifted
    np.testing.assert_allclose(to_np(y), np.broadcast_to(expected, (4, 2)), rtol=1e-15)
    for h in (h2, h4):
        h.remove()
    h.remove()  # removing twice is harmless, as in torch
    np.testing.assert_allclose(to_np(lin(x)), to_np(F.linear(x, lin.weight, lin.bias)))
    h1.remove()
    h3.remove()
    seen.clear()
    lin(x)
    assert seen == []


def test_forward_hooks_match_torch_semantics():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    results = []
    for lib in (tg, torch):
        m = (nn if lib is tg else torch.nn).Sequential(
            (nn if lib is tg else torch.nn).Linear(2, 2), (nn if lib is tg else torch.nn).ReLU())
        calls = []
        m[0].register_forward_pre_hook(lambda mod, args: calls.append("pre0"))
        m[0].register_forward_hook(lambda mod, args, out: calls.append("fwd0"))
        m.register_forward_hook(lambda mod, args, out: calls.append("fwd-seq"))
        m[1].register_forward_pre_hook(lambda mod, args: calls.append("pre1"), prepend=True)
        m[1].register_forward_pre_hook(lambda mod, args: calls.append("pre1-first"),
                                       prepend=True)
        m(lib.ones(1, 2))
        results.append(calls)
    assert results[0] == results[1]


def test_hooked_linear_is_not_fused_by_sequential():
    seq = nn.Sequential(nn.Linear(2, 2, dtype=tg.float64), nn.ReLU())
    seen = []
    with seq[0].register_forward_hook(lambda m, a, out: seen.append(1)):
        seq(tg.ones(1, 2, dtype=tg.float64))
    seq(tg.ones(1, 2, dtype=tg.float64))  # the handle's context removed the hook
    assert seen == [1]


def test_hook_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        nn.Linear(1, 1).register_forward_hook(3)


def test_get_submodule_and_get_parameter_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m = nn.Sequential(OrderedDict(enc=nn.Sequential(nn.Linear(2, 3)), out=nn.Linear(3, 1)))
    tm = torch.nn.Sequential(OrderedDict(enc=torch.nn.Sequential(torch.nn.Linear(2, 3)),
                                         out=torch.nn.Linear(3, 1)))
    assert m.get_submodule("enc.0") is m.enc[0]
    assert m.get_submodule("") is m
    assert m.get_parameter("enc.0.weight") is m.enc[0].weight
    assert tuple(m.get_parameter("out.bias").shape) == tuple(tm.get_parameter("out.bias").shape)
    with pytest.raises(AttributeError, match="dec"):
        m.get_submodule("enc.dec")
    with pytest.raises(AttributeError):
        tm.get_submodule("enc.dec")
    with pytest.raises(AttributeError, match="scale"):
        m.get_parameter("out.scale")


# ============================================================================
# init.orthogonal_, init.trunc_normal_, parameters_to_vector
# ============================================================================
@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (8, 3), (4, 2, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, gain):
    w = init.orthogonal_(tg.empty(*shape, dtype=tg.float64), gain)
    q = to_np(w).reshape(shape[0], -1) / gain
    small = min(q.shape)
    gram = q @ q.T if q.shape[0] == small else q.T @ q
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_orthogonal_is_seeded_float32_and_errors():
    tg.manual_seed(3)
    a = to_np(init.orthogonal_(tg.empty(4, 6)))
    tg.manual_seed(3)
    b = to_np(init.orthogonal_(tg.empty(4, 6)))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert not np.array_equal(a, to_np(init.orthogonal_(tg.empty(4, 6))))
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(tg.empty(4))


def test_orthogonal_is_uniform_over_signs():
    """The sign correction: diagonal entries of Q are positive and negative equally often."""
    tg.manual_seed(0)
    diag = np.concatenate([np.diag(to_np(init.orthogonal_(tg.empty(3, 3, dtype=tg.float64))))
                           for _ in range(300)])
    assert 0.4 < (diag > 0).mean() < 0.6


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (1.0, 0.5, 0.8, 3.0),
                                          (0.0, 0.02, -0.04, 0.04)])
def test_trunc_normal_range_and_moments(mean, std, a, b):
    tg.manual_seed(1)
    x = to_np(init.trunc_normal_(tg.empty(200, 200, dtype=tg.float64), mean, std, a, b))
    assert x.min() >= a and x.max() <= b
    # the truncated normal's mean: mean + std (phi(alpha) - phi(beta)) / Z
    al, be = (a - mean) / std, (b - mean) / std
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    expected = mean + std * (phi(al) - phi(be)) / (cdf(be) - cdf(al))
    assert abs(x.mean() - expected) < 5 * std / 200


def test_trunc_normal_is_seeded_and_errors():
    tg.manual_seed(5)
    a = to_np(init.trunc_normal_(tg.empty(50)))
    tg.manual_seed(5)
    np.testing.assert_array_equal(a, to_np(init.trunc_normal_(tg.empty(50))))
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(tg.empty(3), a=1.0, b=-1.0)
    with pytest.raises(ValueError, match="mass"):
        init.trunc_normal_(tg.empty(3), a=10.0, b=11.0)


def test_parameters_to_vector_round_trip_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    from tapegrad.nn.utils import parameters_to_vector, vector_to_parameters
    m = nn.Sequential(nn.Linear(3, 2, dtype=tg.float64), nn.Linear(2, 1, dtype=tg.float64))
    tm = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)).double()
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    v = parameters_to_vector(m.parameters())
    np.testing.assert_array_equal(
        to_np(v), torch.nn.utils.parameters_to_vector(tm.parameters()).detach().numpy())
    (v * v).sum().backward()  # differentiable, as torch's
    np.testing.assert_allclose(to_np(m[0].weight.grad), 2 * to_np(m[0].weight))
    new = np.arange(v.shape[0], dtype=np.float64)
    vector_to_parameters(tgt(new), m.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tm.parameters())
    for (k, a), b in zip(m.state_dict().items(), tm.state_dict().values()):
        np.testing.assert_array_equal(to_np(a), b.numpy(), err_msg=k)
    with pytest.raises(ValueError, match="11 elements"):
        vector_to_parameters(tg.zeros(3, dtype=tg.float64), m.parameters())
    with pytest.raises(TypeError, match="Tensor"):
        vector_to_parameters(new, m.parameters())
