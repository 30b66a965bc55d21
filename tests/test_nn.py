"""tapegrad.nn: Module, Parameter, layers, activation and loss modules, init and
gradient clipping, against PyTorch wherever PyTorch has the same thing.

Tests that need torch import it with pytest.importorskip, so the rest of the
file runs without it.
"""

import copy
import math
import sys
from collections import OrderedDict

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn as nn
from tapegrad.nn import init

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0)"


# ============================================================================
# helpers
# ============================================================================
@pytest.fixture(autouse=True)
def _torch_single_threaded():
    """Once some test has imported torch, run it on one thread: these tensors are tiny,
    and torch's thread pool makes them many times slower on a busy machine."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def grad_np(p):
    """A parameter's gradient as a dense NumPy array (sparse ones coalesced)."""
    g = p.grad
    assert g is not None
    if g.is_sparse:
        g = g.coalesce().to_dense()
    return np.array(g.numpy(), copy=True)


def tt(torch, a, requires_grad=False):
    """A torch tensor holding a copy of the NumPy array `a`."""
    return torch.tensor(np.array(a, copy=True), requires_grad=requires_grad)


def tgt(a, requires_grad=False):
    """A tapegrad tensor holding a copy of the NumPy array `a` (dtype kept)."""
    return tg.tensor(np.array(a, copy=True), requires_grad=requires_grad)


def copy_params_from_torch(tg_model, torch_model):
    """Copies every parameter of a torch model into the same-named tapegrad one."""
    src = dict(torch_model.named_parameters())
    dst = dict(tg_model.named_parameters())
    assert list(src) == list(dst)
    with tg.no_grad():
        for name, p in dst.items():
            value = src[name].detach().numpy()
            assert tuple(p.shape) == value.shape, name
            p.copy_(tg.tensor(value.astype(to_np(p).dtype)))


def assert_close(actual, expected, rtol=1e-10, atol=1e-12, err_msg=""):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol,
                               err_msg=err_msg)


# ---------------------------------------------------------------- model builders
class TGNet(nn.Module):
    """An Embedding, a Linear, a ModuleList and buffers (one non-persistent)."""

    def __init__(self, dtype=None):
        super().__init__()
        self.emb = nn.Embedding(10, 4, dtype=dtype)
        self.fc = nn.Linear(4, 3, dtype=dtype)
        self.blocks = nn.ModuleList([nn.Linear(3, 5, dtype=dtype), nn.Tanh(),
                                     nn.Linear(5, 2, dtype=dtype)])
        self.register_buffer("running", tg.zeros(3, dtype=dtype))
        self.register_buffer("scratch", tg.zeros(2, dtype=dtype), persistent=False)
        # assigned last on purpose: a module's own parameters come before its children's
        self.scale = nn.Parameter(tg.ones(2, dtype=dtype))

    def forward(self, idx):
        h = self.fc(self.emb(idx))
        for m in self.blocks:
            h = m(h)
        return h * self.scale


def torch_net(torch, dtype=None):
    tnn = torch.nn

    class TorchNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.emb = tnn.Embedding(10, 4, dtype=dtype)
            self.fc = tnn.Linear(4, 3, dtype=dtype)
            self.blocks = tnn.ModuleList([tnn.Linear(3, 5, dtype=dtype), tnn.Tanh(),
                                          tnn.Linear(5, 2, dtype=dtype)])
            self.register_buffer("running", torch.zeros(3, dtype=dtype))
            self.register_buffer("scratch", torch.zeros(2, dtype=dtype), persistent=False)
            self.scale = tnn.Parameter(torch.ones(2, dtype=dtype))

        def forward(self, idx):
            h = self.fc(self.emb(idx))
            for m in self.blocks:
                h = m(h)
            return h * self.scale

    return TorchNet()


def tg_mlp(dtype=None):
    return nn.Sequential(nn.Linear(3, 4, dtype=dtype), nn.Tanh(), nn.Linear(4, 2, dtype=dtype))


def torch_mlp(torch, dtype=None):
    tnn = torch.nn
    return tnn.Sequential(tnn.Linear(3, 4, dtype=dtype), tnn.Tanh(), tnn.Linear(4, 2, dtype=dtype))


# ============================================================================
# Module: registration
# ============================================================================
def test_attribute_assignment_registers_parameters_modules_and_buffers():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(tg.ones(2, 3))
            self.sub = nn.Linear(3, 1)
            self.register_buffer("buf", tg.zeros(4))
            self.register_buffer("tmp", tg.zeros(5), persistent=False)
            self.plain_tensor = tg.ones(7)  # a plain Tensor is just an attribute
            self.number = 3

    m = M()
    assert [n for n, _ in m.named_parameters()] == ["w", "sub.weight", "sub.bias"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["w"]
    assert [n for n, _ in m.named_buffers()] == ["buf", "tmp"]
    assert list(m.state_dict()) == ["w", "buf", "sub.weight", "sub.bias"]
    assert "tmp" not in m.state_dict()
    assert [n for n, _ in m.named_children()] == ["sub"]
    # attribute access goes through the registries
    assert isinstance(m.w, nn.Parameter) and m.sub.out_features == 1
    assert tuple(m.buf.shape) == (4,) and tuple(m.tmp.shape) == (5,)
    assert m.number == 3 and tuple(m.plain_tensor.shape) == (7,)
    assert all(p is not m.plain_tensor for p in m.parameters())
    # a buffer can be reassigned to another tensor (stays a buffer), a parameter only to None
    m.buf = tg.ones(4)
    assert np.array_equal(to_np(m.state_dict()["buf"]), np.ones(4))
    with pytest.raises(TypeError):
        m.w = tg.ones(2, 3)
    m.w = None
    assert [n for n, _ in m.named_parameters()] == ["sub.weight", "sub.bias"]
    # deleting a submodule unregisters it
    del m.sub
    assert list(m.parameters()) == []
    with pytest.raises(AttributeError):
        m.sub  # noqa: B018


def test_buffers_and_state_dict_keys_match_torch_for_persistent_and_non_persistent():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m, tm = TGNet(), torch_net(torch)
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert list(m.state_dict()) == list(tm.state_dict())
    assert "scratch" not in m.state_dict()


def test_register_parameter_and_buffer_type_errors():
    m = nn.Module()
    with pytest.raises(TypeError):
        m.register_parameter("w", tg.ones(2))  # not a Parameter
    with pytest.raises(TypeError):
        m.register_buffer("b", np.ones(2))
    with pytest.raises(TypeError):
        m.add_module("x", 3)
    m.register_parameter("w", None)
    assert list(m.parameters()) == [] and m.w is None


def test_setattr_before_module_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tg.ones(1))

    with pytest.raises(AttributeError):
        Bad()


def test_module_without_forward_raises():
    with pytest.raises(TypeError):
        nn.Module()(tg.ones(1))


# ============================================================================
# Module: traversal
# ============================================================================
def test_named_parameters_order_and_names_match_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for m, tm in [(tg_mlp(), torch_mlp(torch)), (TGNet(), torch_net(torch))]:
        names = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
        tnames = [(n, tuple(p.shape)) for n, p in tm.named_parameters()]
        assert names == tnames
        assert len(list(m.parameters())) == len(list(tm.parameters()))
        assert [n for n, _ in m.named_parameters(prefix="model")] == \
            [n for n, _ in tm.named_parameters(prefix="model")]


def test_shared_parameters_are_counted_once_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    lin = nn.Linear(3, 3)
    m = nn.Sequential(lin, nn.Tanh(), lin)
    tlin = torch.nn.Linear(3, 3)
    tm = torch.nn.Sequential(tlin, torch.nn.Tanh(), tlin)
    assert len(list(m.parameters())) == 2
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]

    # tied weights: the same Parameter under two names
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    tied = nn.Sequential(a, b)
    ta, tb = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    tb.weight = ta.weight
    ttied = torch.nn.Sequential(ta, tb)
    assert [n for n, _ in tied.named_parameters()] == [n for n, _ in ttied.named_parameters()]
    assert len(list(tied.parameters())) == 3
    # the tied parameter gets the sum of both uses' gradients
    x = tg.randn(2, 4)
    tied(x).sum().backward()
    assert a.weight.grad is not None and b.weight is a.weight


def test_state_dict_keys_of_tied_weights_match_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    ta, tb = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    tb.weight = ta.weight
    assert list(nn.Sequential(a, b).state_dict()) == list(torch.nn.Sequential(ta, tb).state_dict())


def test_state_dict_keys_of_a_module_used_twice_match_torch():
    """torch lists a submodule registered under two names under both (so a checkpoint of
    such a model has keys for both); load_state_dict of torch's checkpoint must succeed."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    lin = nn.Linear(3, 3)
    m = nn.Sequential(lin, nn.Tanh(), lin)
    tlin = torch.nn.Linear(3, 3)
    tm = torch.nn.Sequential(tlin, torch.nn.Tanh(), tlin)
    assert list(m.state_dict()) == list(tm.state_dict())
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})


def test_reassigning_a_parameter_or_submodule_keeps_its_position_like_torch():
    """torch keeps a re-assigned name where it was registered (replacing a model's head,
    `model.fc = nn.Linear(...)`, keeps parameter and state_dict order); tapegrad moves the
    name to the end."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)

    def build(lib):
        m = lib.nn.Module() if lib is torch else nn.Module()
        Linear = torch.nn.Linear if lib is torch else nn.Linear
        m.a = Linear(2, 2)
        m.b = Linear(2, 2)
        m.a = Linear(2, 3)  # replace the first submodule
        m.a.weight = m.b.weight  # tie: re-assign an existing parameter name
        return m

    m, tm = build(tg), build(torch)
    assert [n for n, _ in m.named_children()] == [n for n, _ in tm.named_children()] == ["a", "b"]
    assert list(m.state_dict()) == list(tm.state_dict())


def test_assigning_a_non_module_to_a_submodule_name_raises_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    tm = torch.nn.Module()
    tm.sub = torch.nn.Linear(1, 1)
    with pytest.raises(TypeError):
        tm.sub = 3
    m = nn.Module()
    m.sub = nn.Linear(1, 1)
    with pytest.raises(TypeError):
        m.sub = 3  # tapegrad: silently shadows it, sub's parameters stay registered
    assert isinstance(m.sub, nn.Linear)


def test_children_modules_named_modules_match_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m, tm = TGNet(), torch_net(torch)
    assert [n for n, _ in m.named_children()] == [n for n, _ in tm.named_children()]
    assert [type(c).__name__ for c in m.children()] == [type(c).__name__ for c in tm.children()]
    assert [n for n, _ in m.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [type(x).__name__ for x in m.modules()][1:] == \
        [type(x).__name__ for x in tm.modules()][1:]  # [0] is TGNet / TorchNet
    assert next(iter(m.modules())) is m
    # a module registered twice appears once
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.children())) == 1 and len(list(seq.modules())) == 2


def test_apply_visits_children_then_self():
    m = tg_mlp()
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Tanh", "Linear", "Sequential"]


# ============================================================================
# Module: modes, grads
# ============================================================================
def test_train_eval_propagate_and_dropout_becomes_identity():
    m = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    x = tg.randn(8, 4)
    first = m[0](x)
    np.testing.assert_array_equal(to_np(m[1](first)), np.maximum(to_np(first), 0))
    assert m.train() is m
    assert all(x.training for x in m.modules())
    m.train(False)
    assert not m[1][0].training
    with pytest.raises(ValueError):
        m.train("yes")


def test_zero_grad_set_to_none_and_zeroing():
    m = tg_mlp()
    m(tg.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    for p in m.parameters():
        assert p.grad is not None
        np.testing.assert_array_equal(grad_np(p), np.zeros(tuple(p.shape)))
    m(tg.randn(5, 3)).sum().backward()
    m.zero_grad()  # default set_to_none=True, as torch 2.x
    assert all(p.grad is None for p in m.parameters())
    m(tg.randn(5, 3)).sum().backward()
    m.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in m.parameters())


def test_zero_grad_false_accumulates_from_zero():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m, tm = tg_mlp(tg.float64), torch_mlp(torch, torch.float64)
    copy_params_from_torch(m, tm)
    x = np.random.randn(5, 3)
    for _ in range(2):
        m.zero_grad(set_to_none=False)
        tm.zero_grad(set_to_none=False)
        m(tgt(x)).sum().backward()
        tm(tt(torch, x)).sum().backward()
    for (n, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        assert_close(grad_np(p), tp.grad.numpy(), err_msg=n)


def test_requires_grad_false_freezes():
    m = tg_mlp()
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    x = tg.randn(5, 3, requires_grad=True)
    m(x).sum().backward()
    assert all(p.grad is None for p in m.parameters())
    assert x.grad is not None
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


def test_partial_freeze_only_trains_the_rest():
    m = tg_mlp()
    m[0].requires_grad_(False)
    m(tg.randn(5, 3)).sum().backward()
    assert m[0].weight.grad is None and m[0].bias.grad is None
    assert m[2].weight.grad is not None and m[2].bias.grad is not None


# ============================================================================
# Module: repr
# ============================================================================
def test_repr_of_sequential_equals_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    assert repr(tg_mlp()) == repr(torch_mlp(torch))
    assert repr(nn.Linear(3, 2, bias=False)) == repr(torch.nn.Linear(3, 2, bias=False))
    assert repr(nn.Embedding(10, 4)) == repr(torch.nn.Embedding(10, 4))
    assert repr(nn.Embedding(10, 4, padding_idx=0)) == repr(torch.nn.Embedding(10, 4, padding_idx=0))
    assert repr(nn.Tanh()) == repr(torch.nn.Tanh())
    for make in (lambda m: m.ReLU(), lambda m: m.ReLU(inplace=True), lambda m: m.Dropout(0.3),
                 lambda m: m.Dropout(0.3, inplace=True), lambda m: m.LeakyReLU(0.2, True),
                 lambda m: m.Hardtanh(-2.0, 2.0, inplace=True), lambda m: m.Hardtanh()):
        assert repr(make(nn)) == repr(make(torch.nn))


def test_repr_of_nested_modules_is_readable():
    r = repr(TGNet())
    lines = r.splitlines()
    assert lines[0] == "TGNet(" and lines[-1] == ")"
    assert "(emb): Embedding(10, 4)" in r
    assert "(fc): Linear(in_features=4, out_features=3, bias=True)" in r
    assert "(blocks): ModuleList(" in r
    assert "    (0): Linear(in_features=3, out_features=5, bias=True)" in r
    assert "    (1): Tanh()" in r
    assert "    (2): Linear(in_features=5, out_features=2, bias=True)" in r
    assert "Dropout(p=0.25, inplace=False)" in repr(nn.Dropout(0.25))
    assert "negative_slope=0.2" in repr(nn.LeakyReLU(0.2))
    assert "num_parameters=3" in repr(nn.PReLU(3))


# ============================================================================
# Module: state_dict / load_state_dict
# ============================================================================
def test_state_dict_keys_match_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    assert list(tg_mlp().state_dict()) == list(torch_mlp(torch).state_dict()) == \
        ["0.weight", "0.bias", "2.weight", "2.bias"]
    sd, tsd = TGNet().state_dict(), torch_net(torch).state_dict()
    assert list(sd) == list(tsd)
    assert [tuple(v.shape) for v in sd.values()] == [tuple(v.shape) for v in tsd.values()]


def test_state_dict_values_are_detached_and_share_storage():
    m = tg_mlp()
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict)
    for k, v in sd.items():
        assert not v.requires_grad, k
    with tg.no_grad():
        sd["0.bias"].fill_(3.0)
    np.testing.assert_array_equal(to_np(m[0].bias), np.full(4, 3.0, np.float32))
    kv = m.state_dict(keep_vars=True)
    assert kv["0.weight"] is m[0].weight
    assert list(m.state_dict(prefix="net.")) == ["net." + k for k in sd]


def test_load_state_dict_copies_values():
    src, dst = TGNet(), TGNet()
    with tg.no_grad():
        src.running.copy_(tg.tensor([1.0, 2.0, 3.0]))
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        np.testing.assert_array_equal(to_np(a), to_np(b), err_msg=k)
    # a copy, not an alias
    with tg.no_grad():
        src.fc.weight.fill_(7.0)
    assert not np.any(to_np(dst.fc.weight) == 7.0)
    assert dst.fc.weight is not src.fc.weight and dst.fc.weight.requires_grad
    idx = tg.tensor([1, 2, 3])
    # after loading, both models compute the same function (fc weight restored first)
    dst2 = TGNet()
    dst2.load_state_dict(dst.state_dict())
    np.testing.assert_array_equal(to_np(dst(idx)), to_np(dst2(idx)))


def test_load_state_dict_from_torch_numpy_gives_same_outputs():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    tm = torch_net(torch, torch.float64)
    with torch.no_grad():
        tm.running.copy_(torch.tensor([0.5, -1.0, 2.0]))
    m = TGNet(tg.float64)
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(to_np(m.state_dict()[k]), v.numpy(), err_msg=k)
    idx = np.array([[0, 3, 9], [2, 2, 5]])
    out = m(tg.tensor(idx))
    assert_close(to_np(out), tm(torch.tensor(idx)).detach().numpy())


def test_load_state_dict_strict_names_every_problem():
    m = tg_mlp()
    sd = OrderedDict((k, to_np(v)) for k, v in m.state_dict().items())
    del sd["0.bias"]
    del sd["2.weight"]
    sd["extra.weight"] = np.zeros(3, np.float32)
    sd["2.bias"] = np.zeros(5, np.float32)  # shape (2,) in the model
    before = {k: to_np(v) for k, v in m.state_dict().items()}
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    for needle in ['"0.bias"', '"2.weight"', '"extra.weight"', "2.bias", "Missing key",
                   "Unexpected key", "size mismatch"]:
        assert needle in msg, (needle, msg)
    assert "[5]" in msg and "[2]" in msg
    for k, v in m.state_dict().items():  # nothing copied on error
        np.testing.assert_array_equal(to_np(v), before[k], err_msg=k)


def test_load_state_dict_strict_error_message_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m, tm = tg_mlp(), torch_mlp(torch)
    bad = {"0.weight": np.zeros((4, 3), np.float32), "junk": np.zeros(1, np.float32)}
    with pytest.raises(RuntimeError) as ours:
        m.load_state_dict(bad)
    with pytest.raises(RuntimeError) as theirs:
        tm.load_state_dict({k: torch.tensor(v) for k, v in bad.items()})
    for key in ['"0.bias"', '"2.weight"', '"2.bias"', '"junk"']:
        assert key in str(ours.value) and key in str(theirs.value)


def test_load_state_dict_non_strict_returns_missing_and_unexpected():
    m = tg_mlp()
    src = tg_mlp()
    sd = OrderedDict((k, v) for k, v in src.state_dict().items() if k.startswith("0."))
    sd["head.weight"] = tg.zeros(1)
    result = m.load_state_dict(sd, strict=False)
    missing, unexpected = result
    assert missing == ["2.weight", "2.bias"] and unexpected == ["head.weight"]
    assert result.missing_keys == missing and result.unexpected_keys == unexpected
    np.testing.assert_array_equal(to_np(m[0].weight), to_np(src[0].weight))
    assert not np.array_equal(to_np(m[2].weight), to_np(src[2].weight))


def test_load_state_dict_shape_mismatch_raises_even_when_not_strict():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m, tm = tg_mlp(), torch_mlp(torch)
    with pytest.raises(RuntimeError, match="size mismatch"):
        tm.load_state_dict({"0.weight": torch.zeros(4, 4)}, strict=False)
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        m.load_state_dict({"0.weight": np.zeros((4, 4), np.float32)}, strict=False)


# ============================================================================
# Module: dtype conversion
# ============================================================================
@pytest.mark.parametrize("convert", ["double", "to"])
def test_module_double_and_to_float64(convert):
    m = TGNet()
    before = {k: to_np(v) for k, v in m.state_dict().items()}
    out = m.double() if convert == "double" else m.to(tg.float64)
    assert out is m
    for k, v in m.state_dict().items():
        assert v.dtype == tg.float64, k
        assert_close(to_np(v), before[k].astype(np.float64), rtol=0, atol=0, err_msg=k)
    assert m.scratch.dtype == tg.float64  # non-persistent buffers too
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert m(tg.tensor([1, 2])).dtype == tg.float64
    m(tg.tensor([1, 2])).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == tg.float64
               for n, p in m.named_parameters() if not n.startswith("emb"))
    m.float()
    assert all(p.dtype == tg.float32 for p in m.parameters())
    with pytest.raises(TypeError):
        m.to(tg.int64)


def test_module_double_keeps_frozen_parameters_frozen():
    m = tg_mlp()
    m[0].requires_grad_(False)
    m.double()
    assert not m[0].weight.requires_grad and m[2].weight.requires_grad


def test_module_double_keeps_tied_parameters_tied_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ta, tb = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    tb.weight = ta.weight
    tm = torch.nn.Sequential(ta, tb).double()
    assert tb.weight is ta.weight and len(list(tm.parameters())) == 3
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    m = nn.Sequential(a, b).double()
    assert b.weight.dtype == tg.float64
    assert b.weight is a.weight  # tapegrad: two separate float64 copies, no longer tied
    assert len(list(m.parameters())) == 3


def test_module_double_converts_parameters_in_place_like_torch():
    """torch's Module.double() keeps the Parameter objects (an optimizer built before the
    conversion keeps working); tapegrad's must too."""
    m = nn.Linear(3, 2)
    w = m.weight
    m.double()
    assert m.weight is w
    assert w.dtype == tg.float64


# ============================================================================
# Parameter
# ============================================================================
def test_parameter_is_tensor_requires_grad_and_shares_storage():
    data = tg.zeros(3)
    p = nn.Parameter(data)
    assert isinstance(p, tg.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad is None
    assert not data.requires_grad
    with tg.no_grad():
        data[0] = 5.0
        p[1] = 7.0
    np.testing.assert_array_equal(to_np(p), [5.0, 7.0, 0.0])
    np.testing.assert_array_equal(to_np(data), [5.0, 7.0, 0.0])
    assert not nn.Parameter(tg.ones(2), requires_grad=False).requires_grad
    assert tuple(nn.Parameter().shape) == (0,)
    with pytest.raises(TypeError):
        nn.Parameter(np.ones(3))


def test_parameter_repr():
    r = repr(nn.Parameter(tg.tensor([1.0, 2.0])))
    assert r.startswith("Parameter containing")
    assert "requires_grad=True" in r


def test_parameter_works_in_graph_and_gets_grad():
    p = nn.Parameter(tg.tensor([1.0, 2.0, 3.0]))
    (p * p).sum().backward()
    np.testing.assert_array_equal(grad_np(p), [2.0, 4.0, 6.0])


def test_deepcopy_gives_independent_equal_parameters():
    m = tg_mlp()
    m2 = copy.deepcopy(m)
    for (n, a), (_, b) in zip(m.named_parameters(), m2.named_parameters()):
        assert a is not b and isinstance(b, nn.Parameter) and b.requires_grad
        np.testing.assert_array_equal(to_np(a), to_np(b), err_msg=n)
    with tg.no_grad():
        m2[0].weight.fill_(1.0)
    assert not np.all(to_np(m[0].weight) == 1.0)
    x = tg.randn(2, 3)
    m(x).sum().backward()
    assert m2[0].weight.grad is None
    # shared parameters stay shared inside the copy
    lin = nn.Linear(2, 2)
    c = copy.deepcopy(nn.Sequential(lin, lin))
    assert c[0].weight is c[1].weight and c[0].weight is not lin.weight


def test_deepcopy_of_a_model_with_buffers():
    m = TGNet()
    m2 = copy.deepcopy(m)
    assert list(m2.state_dict()) == list(m.state_dict())
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(to_np(a), to_np(b), err_msg=k)
    with tg.no_grad():
        m2.running.fill_(1.0)
    np.testing.assert_array_equal(to_np(m.running), np.zeros(3))


# ============================================================================
# Linear
# ============================================================================
def test_linear_weight_layout_and_no_bias():
    lin = nn.Linear(5, 3)
    assert tuple(lin.weight.shape) == (3, 5) and tuple(lin.bias.shape) == (3,)
    assert lin.weight.dtype == tg.float32
    nb = nn.Linear(5, 3, bias=False)
    assert nb.bias is None and list(nb.state_dict()) == ["weight"]
    x = tg.randn(4, 5)
    np.testing.assert_allclose(to_np(nb(x)), to_np(x) @ to_np(nb.weight).T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 5), (5,)])
def test_linear_forward_and_grads_match_torch(bias, shape):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    tlin = torch.nn.Linear(5, 3, bias=bias, dtype=torch.float64)
    lin = nn.Linear(5, 3, bias=bias, dtype=tg.float64)
    copy_params_from_torch(lin, tlin)
    x = np.random.randn(*shape)
    up = np.random.randn(*shape[:-1], 3)
    xt, xg = tt(torch, x, True), tgt(x, True)
    yt, yg = tlin(xt), lin(xg)
    w, b = to_np(lin.weight), (to_np(lin.bias) if bias else 0.0)
    assert_close(to_np(yg), x @ w.T + b)
    assert_close(to_np(yg), yt.detach().numpy())
    (yt * tt(torch, up)).sum().backward()
    (yg * tgt(up)).sum().backward()
    assert_close(grad_np(xg), xt.grad.numpy())
    assert_close(grad_np(lin.weight), tlin.weight.grad.numpy())
    if bias:
        assert_close(grad_np(lin.bias), tlin.bias.grad.numpy())


def test_linear_default_init_bounds():
    fan_in = 400
    lin = nn.Linear(fan_in, 300)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)): gain*sqrt(3/fan_in) = 1/sqrt(fan_in)
    w, b = to_np(lin.weight), to_np(lin.bias)
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * bound  # actually spread over the whole range
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(b).max() <= bound * (1 + 1e-6)
    assert np.abs(b).max() > 0.9 * bound


def test_linear_init_bounds_equal_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(0)
    for fan_in, fan_out in [(3, 500), (64, 200)]:
        w = to_np(nn.Linear(fan_in, fan_out).weight)
        tw = torch.nn.Linear(fan_in, fan_out).weight.detach().numpy()
        # same support: the max |w| of both approach the same bound
        assert abs(np.abs(w).max() - np.abs(tw).max()) < 0.02 / math.sqrt(fan_in)


def test_linear_init_is_seeded():
    tg.manual_seed(123)
    a = nn.Linear(8, 4)
    tg.manual_seed(123)
    b = nn.Linear(8, 4)
    tg.manual_seed(124)
    c = nn.Linear(8, 4)
    np.testing.assert_array_equal(to_np(a.weight), to_np(b.weight))
    np.testing.assert_array_equal(to_np(a.bias), to_np(b.bias))
    assert not np.array_equal(to_np(a.weight), to_np(c.weight))
    assert not np.array_equal(to_np(a.weight), to_np(nn.Linear(8, 4).weight))  # stream advances


def test_linear_zero_in_features():
    lin = nn.Linear(0, 3)
    assert tuple(lin.weight.shape) == (3, 0)
    np.testing.assert_array_equal(to_np(lin.bias), np.zeros(3))


# ============================================================================
# Embedding
# ============================================================================
def test_embedding_default_init_is_standard_normal():
    w = to_np(nn.Embedding(2000, 50).weight)
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01


def test_embedding_forward_shapes_and_rows():
    e = nn.Embedding(10, 3)
    idx = np.array([[1, 2, 4], [4, 3, 9]])
    out = e(tg.tensor(idx))
    assert tuple(out.shape) == (2, 3, 3)
    np.testing.assert_array_equal(to_np(out), to_np(e.weight)[idx])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_rows_of_every_width_are_copied_exactly(dtype):
    # Rows are copied in 32-byte chunks plus an overlapping last chunk, and
    # rows under 32 bytes another way: every width around those edges, with
    # output rows that do not start on a chunk boundary.
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 37, (3, 7))
    for dim in list(range(1, 20)) + [31, 32, 33, 50, 64, 65, 100]:
        table = rng.standard_normal((37, dim)).astype(dtype)
        out = tg.nn.functional.embedding(tg.tensor(idx), tg.from_numpy(table))
        np.testing.assert_array_equal(to_np(out), table[idx], err_msg=f"dim {dim}")
        # A column view of a wider table: rows stride past their width.
        wide = rng.standard_normal((37, dim + 3)).astype(dtype)
        out = tg.nn.functional.embedding(tg.tensor(idx), tg.from_numpy(wide)[:, 1:dim + 1])
        np.testing.assert_array_equal(to_np(out), wide[idx, 1:dim + 1], err_msg=f"view, dim {dim}")


@pytest.mark.parametrize("padding_idx", [0, 3, -1])
def test_embedding_padding_idx_zero_row_and_zero_grad_match_torch(padding_idx):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    e = nn.Embedding(6, 4, padding_idx=padding_idx, dtype=tg.float64)
    row = padding_idx % 6
    assert e.padding_idx == row
    np.testing.assert_array_equal(to_np(e.weight)[row], np.zeros(4))
    te = torch.nn.Embedding(6, 4, padding_idx=padding_idx, dtype=torch.float64)
    with torch.no_grad():
        te.weight.copy_(torch.tensor(np.random.randn(6, 4)))  # non-zero padding row too
    copy_params_from_torch(e, te)
    idx = np.array([[row, 1, row], [2, row, 5]])
    up = np.random.randn(2, 3, 4)
    (e(tg.tensor(idx)) * tgt(up)).sum().backward()
    (te(torch.tensor(idx)) * tt(torch, up)).sum().backward()
    g = grad_np(e.weight)
    np.testing.assert_array_equal(g[row], np.zeros(4))
    assert_close(g, te.weight.grad.numpy())
    # the padding row's (non-zero) value is still returned by the lookup, as torch
    assert_close(to_np(e(tg.tensor([row]))), te(torch.tensor([row])).detach().numpy())


def test_embedding_invalid_padding_idx():
    with pytest.raises(ValueError):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError):
        nn.Embedding(5, 2, padding_idx=-6)


def test_embedding_from_pretrained_freeze():
    src = np.random.randn(5, 3).astype(np.float32)
    frozen = nn.Embedding.from_pretrained(src)
    assert not frozen.weight.requires_grad
    assert isinstance(frozen.weight, nn.Parameter)
    assert (frozen.num_embeddings, frozen.embedding_dim) == (5, 3)
    np.testing.assert_array_equal(to_np(frozen.weight), src)
    out = frozen(tg.tensor([0, 4]))
    assert not out.requires_grad

    trainable = nn.Embedding.from_pretrained(src, freeze=False)
    assert trainable.weight.requires_grad
    src[:] = 42.0  # the embedding holds a copy
    assert not np.any(to_np(trainable.weight) == 42.0)
    assert not np.any(to_np(frozen.weight) == 42.0)
    trainable(tg.tensor([1, 1])).sum().backward()
    g = grad_np(trainable.weight)
    np.testing.assert_array_equal(g[1], np.full(3, 2.0))

    t = tg.randn(4, 2)
    e = nn.Embedding.from_pretrained(t, freeze=False)
    with tg.no_grad():
        t.fill_(0.0)
    assert np.any(to_np(e.weight) != 0.0)
    with pytest.raises(ValueError):
        nn.Embedding.from_pretrained(np.zeros(3, np.float32))


def test_embedding_from_pretrained_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    src = np.random.randn(5, 3)
    te = torch.nn.Embedding.from_pretrained(torch.tensor(src), freeze=False, padding_idx=2)
    e = nn.Embedding.from_pretrained(src, freeze=False, padding_idx=2)
    idx = np.array([2, 0, 2, 4])
    assert_close(to_np(e(tg.tensor(idx))), te(torch.tensor(idx)).detach().numpy())
    e(tg.tensor(idx)).sum().backward()
    te(torch.tensor(idx)).sum().backward()
    assert_close(grad_np(e.weight), te.weight.grad.numpy())


def test_embedding_sparse_grad_matches_torch_dense_grad():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    table = np.random.randn(12, 4)
    e = nn.Embedding.from_pretrained(table, freeze=False, sparse=True)
    te = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False)
    idx = np.array([[3, 7, 3], [1, 3, 7]])  # repeated indices
    up = np.random.randn(2, 3, 4)
    (e(tg.tensor(idx)) * tgt(up)).sum().backward()
    (te(torch.tensor(idx)) * tt(torch, up)).sum().backward()
    g = e.weight.grad
    assert g.is_sparse
    assert tuple(g.shape) == (12, 4)
    c = g.coalesce()
    np.testing.assert_array_equal(np.sort(c.indices().numpy()), [1, 3, 7])  # only rows looked up
    assert tuple(c.values().shape) == (3, 4)
    assert_close(c.to_dense().numpy(), te.weight.grad.numpy())
    # torch's own sparse gradient agrees too
    ts = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False, sparse=True)
    (ts(torch.tensor(idx)) * tt(torch, up)).sum().backward()
    assert ts.weight.grad.is_sparse
    assert_close(c.to_dense().numpy(), ts.weight.grad.to_dense().numpy())


def test_embedding_sparse_grad_accumulates_over_backward_calls():
    e = nn.Embedding(8, 2, sparse=True)
    e(tg.tensor([1, 2])).sum().backward()
    e(tg.tensor([2, 5])).sum().backward()
    dense = e.weight.grad.coalesce().to_dense().numpy()
    expected = np.zeros((8, 2))
    expected[[1, 5]] = 1.0
    expected[2] = 2.0
    np.testing.assert_array_equal(dense, expected)
    e.zero_grad(set_to_none=False)  # sparse grads are dropped (nothing to zero in place)
    assert e.weight.grad is None


def test_embedding_sparse_padding_idx_gets_no_grad():
    e = nn.Embedding(6, 2, padding_idx=0, sparse=True)
    e(tg.tensor([0, 0, 3])).sum().backward()
    dense = e.weight.grad.coalesce().to_dense().numpy()
    np.testing.assert_array_equal(dense[0], np.zeros(2))
    np.testing.assert_array_equal(dense[3], np.ones(2))


def test_embedding_dense_and_sparse_use_of_one_table_sum_correctly():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    table = np.random.randn(7, 3)
    c = np.random.randn(7, 3)
    idx = np.array([0, 4, 4, 6])
    e = nn.Embedding.from_pretrained(table, freeze=False, sparse=True)
    loss = (e(tg.tensor(idx)) ** 2).sum() + (e.weight * tgt(c)).sum()
    loss.backward()
    w = tt(torch, table, True)
    tloss = (torch.nn.functional.embedding(torch.tensor(idx), w) ** 2).sum() + (w * tt(torch, c)).sum()
    tloss.backward()
    assert_close(loss.item(), tloss.item())
    assert_close(grad_np(e.weight), w.grad.numpy())


def test_embedding_dense_grad_only_touches_looked_up_rows():
    e = nn.Embedding(6, 2)
    e(tg.tensor([[1, 1], [4, 1]])).sum().backward()
    g = grad_np(e.weight)
    assert not e.weight.grad.is_sparse
    expected = np.zeros((6, 2))
    expected[1], expected[4] = 3.0, 1.0
    np.testing.assert_array_equal(g, expected)


def test_embedding_unsupported_options_raise():
    with pytest.raises(ValueError):
        nn.Embedding(4, 2, max_norm=1.0)
    with pytest.raises(ValueError):
        nn.Embedding(4, 2, scale_grad_by_freq=True)


# ============================================================================
# activation modules
# ============================================================================
ACTIVATIONS = [
    ("ReLU", (), ()),
    ("Tanh", (), ()),
    ("Sigmoid", (), ()),
    ("Hardtanh", (), ()),
    ("Hardtanh", (-0.5, 2.0), (-0.5, 2.0)),
    ("LeakyReLU", (), ()),
    ("LeakyReLU", (0.2,), (0.2,)),
    ("Softmax", (1,), (1,)),
    ("Softmax", (0,), (0,)),
    ("Softmax", (-1,), (-1,)),
    ("LogSoftmax", (1,), (1,)),
    ("LogSoftmax", (0,), (0,)),
    ("Identity", (), ()),
    ("Flatten", (), ()),
]


@pytest.mark.parametrize("name,args,targs", ACTIVATIONS,
                         ids=[f"{n}{a}" for n, a, _ in ACTIVATIONS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activation_modules_match_torch(name, args, targs, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = (np.random.randn(4, 5, 3) * 2.0).astype(dtype)
    up = np.random.randn(*(x.shape if name != "Flatten" else (4, 15))).astype(dtype)
    m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*targs)
    xg, xt = tgt(x, True), tt(torch, x, True)
    yg, yt = m(xg), tm(xt)
    assert tuple(yg.shape) == tuple(yt.shape)
    assert yg.dtype == getattr(tg, dtype)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    assert_close(to_np(yg), yt.detach().numpy(), **tol)
    (yg * tgt(up)).sum().backward()
    (yt * tt(torch, up)).sum().backward()
    assert_close(grad_np(xg), xt.grad.numpy(), **tol)


def test_softmax_modules_need_dim():
    with pytest.raises(TypeError):
        nn.Softmax()(tg.randn(2, 3))
    with pytest.raises(TypeError):
        nn.LogSoftmax()(tg.randn(2, 3))


def test_hardtanh_invalid_range():
    with pytest.raises(ValueError):
        nn.Hardtanh(1.0, 1.0)
    with pytest.raises(ValueError):
        nn.Hardtanh(2.0, -2.0)


@pytest.mark.parametrize("num_parameters,shape", [(1, (6, 4)), (4, (6, 4)), (1, (3, 4, 5)),
                                                  (4, (3, 4, 5)), (1, (7,))])
def test_prelu_forward_and_slope_grad_match_torch(num_parameters, shape):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    m = nn.PReLU(num_parameters, dtype=tg.float64)
    tm = torch.nn.PReLU(num_parameters, dtype=torch.float64)
    np.testing.assert_array_equal(to_np(m.weight), np.full(num_parameters, 0.25))
    slopes = np.random.uniform(-0.5, 0.5, num_parameters)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(slopes))
    copy_params_from_torch(m, tm)
    x = np.random.randn(*shape)
    up = np.random.randn(*shape)
    xg, xt = tgt(x, True), tt(torch, x, True)
    yg, yt = m(xg), tm(xt)
    assert_close(to_np(yg), yt.detach().numpy())
    (yg * tgt(up)).sum().backward()
    (yt * tt(torch, up)).sum().backward()
    assert_close(grad_np(xg), xt.grad.numpy())
    assert_close(grad_np(m.weight), tm.weight.grad.numpy())
    assert [n for n, _ in m.named_parameters()] == ["weight"]


def test_prelu_custom_init():
    m = nn.PReLU(3, init=0.1)
    np.testing.assert_allclose(to_np(m.weight), np.full(3, 0.1, np.float32))


# ---------------------------------------------------------------- Dropout
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_train_zeros_fraction_and_scaling(p):
    x = tg.rand(200, 500) + 0.5  # strictly positive, so a zero means dropped
    d = nn.Dropout(p)
    y = to_np(d(x))
    xv = to_np(x)
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_allclose(y[~dropped], xv[~dropped] / (1 - p), rtol=1e-6)


def test_dropout_gradient_is_the_mask_scaled():
    p = 0.4
    x = tg.ones(50, 40, requires_grad=True)
    y = nn.Dropout(p)(x)
    y.sum().backward()
    g, yv = grad_np(x), to_np(y)
    np.testing.assert_allclose(g, yv, rtol=1e-6)  # x == 1: the output is the scaled mask
    assert np.all(np.isclose(g, 0.0) | np.isclose(g, 1 / (1 - p), rtol=1e-6))
    assert 0.3 < np.isclose(g, 0.0).mean() < 0.5


def test_dropout_draws_a_new_mask_each_call_and_is_seeded():
    d = nn.Dropout(0.5)
    x = tg.ones(1000)
    a, b = to_np(d(x)), to_np(d(x))
    assert not np.array_equal(a, b)
    tg.manual_seed(7)
    c = to_np(d(x))
    tg.manual_seed(7)
    np.testing.assert_array_equal(c, to_np(d(x)))


def test_dropout_eval_is_identity():
    d = nn.Dropout(0.5).eval()
    x = tg.randn(100, requires_grad=True)
    y = d(x)
    np.testing.assert_array_equal(to_np(y), to_np(x))
    y.sum().backward()
    np.testing.assert_array_equal(grad_np(x), np.ones(100))


def test_dropout_edge_probabilities():
    x = tg.randn(100, 10, requires_grad=True)
    y0 = nn.Dropout(0.0)(x)
    np.testing.assert_array_equal(to_np(y0), to_np(x))
    y1 = nn.Dropout(1.0)(x)
    np.testing.assert_array_equal(to_np(y1), np.zeros((100, 10)))
    assert not np.any(np.isnan(to_np(y1)))
    y1.sum().backward()
    np.testing.assert_array_equal(grad_np(x), np.zeros((100, 10)))


@pytest.mark.parametrize("p", [-0.1, 1.5, 2])
def test_dropout_invalid_p(p):
    with pytest.raises(ValueError):
        nn.Dropout(p)
    with pytest.raises(ValueError):
        nn.functional.dropout(tg.ones(3), p)


# ============================================================================
# loss modules
# ============================================================================
REDUCTIONS = ["mean", "sum", "none"]


def _loss_vs_torch(torch, tg_loss, torch_loss, x, target_tg, target_torch):
    """Runs both losses on float64 `x`, compares values and input gradients."""
    xg, xt = tgt(x, True), tt(torch, x, True)
    lg, lt = tg_loss(xg, target_tg), torch_loss(xt, target_torch)
    assert tuple(lg.shape) == tuple(lt.shape)
    assert_close(to_np(lg), lt.detach().numpy())
    up = np.random.randn(*tuple(lt.shape))
    (lg * tgt(up)).sum().backward()
    (lt * tt(torch, up)).sum().backward()
    assert_close(grad_np(xg), xt.grad.numpy())
    return lg, lt


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_torch(reduction):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, y = np.random.randn(4, 5), np.random.randn(4, 5)
    _loss_vs_torch(torch, nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction),
                   x, tgt(y), tt(torch, y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_target_gradient_matches_torch(reduction):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, y = np.random.randn(3, 4), np.random.randn(3, 4)
    yg, yt = tgt(y, True), tt(torch, y, True)
    lg = nn.MSELoss(reduction=reduction)(tgt(x), yg)
    lt = torch.nn.MSELoss(reduction=reduction)(tt(torch, x), yt)
    lg.sum().backward()
    lt.sum().backward()
    assert_close(grad_np(yg), yt.grad.numpy())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_loss_matches_torch(reduction, ignore_index):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(8, 5) * 3
    target = np.array([0, 2, 4, -100, 2, 1, 3, 2]) if ignore_index == -100 else \
        np.array([0, 2, 4, 1, 2, 1, 3, 2])
    _loss_vs_torch(torch, nn.CrossEntropyLoss(ignore_index=ignore_index, reduction=reduction),
                   torch.nn.CrossEntropyLoss(ignore_index=ignore_index, reduction=reduction),
                   x, tg.tensor(target), torch.tensor(target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cls", ["CrossEntropyLoss", "NLLLoss"])
def test_class_losses_with_extra_dims_match_torch(reduction, cls):
    """(N, C, d) input with (N, d) targets: the class dimension is dim 1, as torch."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(2, 4, 3)
    target = np.array([[0, 1, 2], [3, 0, -100]])
    _loss_vs_torch(torch, getattr(nn, cls)(reduction=reduction),
                   getattr(torch.nn, cls)(reduction=reduction),
                   x, tg.tensor(target), torch.tensor(target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cls", ["CrossEntropyLoss", "NLLLoss"])
def test_class_losses_unbatched_match_torch(reduction, cls):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(5)
    _loss_vs_torch(torch, getattr(nn, cls)(reduction=reduction),
                   getattr(torch.nn, cls)(reduction=reduction), x, tg.tensor(3), torch.tensor(3))


def test_class_losses_all_targets_ignored_give_nan_mean_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(3, 4)
    t = np.array([-100, -100, -100])
    for cls in ("CrossEntropyLoss", "NLLLoss"):
        assert math.isnan(getattr(nn, cls)()(tgt(x), tg.tensor(t)).item())
        assert math.isnan(getattr(torch.nn, cls)()(tt(torch, x), torch.tensor(t)).item())
        assert getattr(nn, cls)(reduction="sum")(tgt(x), tg.tensor(t)).item() == 0.0


@pytest.mark.parametrize("cls", ["CrossEntropyLoss", "NLLLoss", "MultiMarginLoss"])
@pytest.mark.parametrize("bad", [4, -1])
def test_class_losses_out_of_range_target(cls, bad):
    with pytest.raises(IndexError):
        getattr(nn, cls)()(tg.randn(2, 4), tg.tensor([0, bad]))


def test_bce_with_logits_target_gradient_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, y = np.random.randn(3, 2), np.random.rand(3, 2)
    yg, yt = tgt(y, True), tt(torch, y, True)
    nn.BCEWithLogitsLoss()(tgt(x), yg).backward()
    torch.nn.BCEWithLogitsLoss()(tt(torch, x), yt).backward()
    assert_close(grad_np(yg), yt.grad.numpy())


def test_cross_entropy_is_stable_for_large_logits():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.array([[1000.0, -1000.0, 0.0], [-500.0, 500.0, 499.0]])
    target = np.array([1, 2])
    lg, _ = _loss_vs_torch(torch, nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), x,
                           tg.tensor(target), torch.tensor(target))
    assert np.isfinite(lg.item())


def test_cross_entropy_float32_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(16, 10).astype(np.float32)
    target = np.random.randint(0, 10, 16)
    xg, xt = tgt(x, True), tt(torch, x, True)
    lg = nn.CrossEntropyLoss()(xg, tg.tensor(target))
    lt = torch.nn.CrossEntropyLoss()(xt, torch.tensor(target))
    assert lg.dtype == tg.float32
    np.testing.assert_allclose(lg.item(), lt.item(), rtol=1e-5)
    lg.backward()
    lt.backward()
    np.testing.assert_allclose(grad_np(xg), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_nll_loss_matches_torch(reduction, ignore_index):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(7, 4)
    target = np.array([0, 3, 1, 0, 2, 3, 0])
    _loss_vs_torch(torch, nn.NLLLoss(ignore_index=ignore_index, reduction=reduction),
                   torch.nn.NLLLoss(ignore_index=ignore_index, reduction=reduction),
                   x, tg.tensor(target), torch.tensor(target))


def test_nll_of_log_softmax_equals_cross_entropy():
    x = tg.randn(6, 4, dtype=tg.float64)
    target = tg.tensor([0, 1, 2, 3, 0, 1])
    a = nn.NLLLoss()(nn.LogSoftmax(dim=1)(x), target)
    b = nn.CrossEntropyLoss()(x, target)
    assert_close(a.item(), b.item())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_loss_matches_torch(reduction):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(6, 3) * 4
    y = np.random.uniform(0, 1, (6, 3))
    y[0] = [0.0, 1.0, 1.0]
    _loss_vs_torch(torch, nn.BCEWithLogitsLoss(reduction=reduction),
                   torch.nn.BCEWithLogitsLoss(reduction=reduction), x, tgt(y), tt(torch, y))


def test_bce_with_logits_is_stable_for_large_logits():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.array([800.0, -800.0, 50.0, -50.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    lg, _ = _loss_vs_torch(torch, nn.BCEWithLogitsLoss(reduction="sum"),
                           torch.nn.BCEWithLogitsLoss(reduction="sum"), x, tgt(y), tt(torch, y))
    assert np.isfinite(lg.item())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,margin", [(1, 1.0), (2, 1.0), (1, 0.3), (2, 2.5)])
def test_multi_margin_loss_matches_torch(reduction, p, margin):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(6, 4)
    target = np.array([0, 3, 1, 2, 3, 0])
    _loss_vs_torch(torch, nn.MultiMarginLoss(p=p, margin=margin, reduction=reduction),
                   torch.nn.MultiMarginLoss(p=p, margin=margin, reduction=reduction),
                   x, tg.tensor(target), torch.tensor(target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multi_margin_loss_unbatched_matches_torch(reduction):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(5)
    _loss_vs_torch(torch, nn.MultiMarginLoss(reduction=reduction),
                   torch.nn.MultiMarginLoss(reduction=reduction),
                   x, tg.tensor(3), torch.tensor(3))


def test_multi_margin_loss_unsupported_options():
    with pytest.raises(ValueError):
        nn.MultiMarginLoss(p=3)(tg.randn(2, 3), tg.tensor([0, 1]))
    with pytest.raises(ValueError):
        nn.functional.multi_margin_loss(tg.randn(2, 3), tg.tensor([0, 1]), weight=tg.ones(3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_hinge_loss_matches_numpy(reduction, margin):
    s = np.random.randn(5, 4) * 2
    y = np.where(np.random.rand(5, 4) < 0.5, -1.0, 1.0)
    sg = tgt(s, True)
    loss = nn.HingeLoss(margin=margin, reduction=reduction)(sg, tgt(y))
    per = np.maximum(0.0, margin - y * s)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    assert_close(to_np(loss), expected)
    up = np.random.randn(*per.shape) if reduction == "none" else np.array(1.0)
    (loss * tgt(up)).sum().backward()
    dper = np.where(margin - y * s > 0, -y, 0.0)
    scale = {"mean": 1.0 / per.size, "sum": 1.0, "none": up}[reduction]
    assert_close(grad_np(sg), dper * scale)


def test_hinge_loss_shape_mismatch():
    with pytest.raises(ValueError):
        nn.HingeLoss()(tg.randn(3), tg.randn(4))


@pytest.mark.parametrize("cls", [nn.MSELoss, nn.CrossEntropyLoss, nn.NLLLoss,
                                 nn.BCEWithLogitsLoss, nn.MultiMarginLoss, nn.HingeLoss])
def test_loss_invalid_reduction(cls):
    with pytest.raises(ValueError):
        cls(reduction="average")
    assert cls().reduction == "mean"


# ============================================================================
# init
# ============================================================================
GAINS = [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
         ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
         ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
         ("leaky_relu", 0.2), ("leaky_relu", 1), ("leaky_relu", math.sqrt(5)), ("selu", None)]


@pytest.mark.parametrize("nonlinearity,param", GAINS)
def test_calculate_gain_matches_torch(nonlinearity, param):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError):
        init.calculate_gain("swish")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", True)


def _fans(shape):
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_uniform_bound(shape, gain):
    fan_in, fan_out = _fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    t = tg.empty(*shape)
    assert init.xavier_uniform_(t, gain=gain) is t
    w = to_np(t)
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier_normal_std(shape, gain):
    fan_in, fan_out = _fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    w = to_np(init.xavier_normal_(tg.empty(*shape), gain=gain))
    assert abs(w.std() - std) < 0.02 * std
    assert abs(w.mean()) < 0.02 * std


KAIMING = [(mode, nl, a) for mode in ("fan_in", "fan_out")
           for nl, a in (("relu", 0), ("leaky_relu", 0), ("leaky_relu", 0.1),
                         ("leaky_relu", math.sqrt(5)), ("tanh", 0), ("linear", 0))]


def _kaiming_std(shape, mode, nonlinearity, a):
    fan_in, fan_out = _fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    if nonlinearity == "leaky_relu":
        gain = math.sqrt(2.0 / (1 + a ** 2))
    else:
        gain = {"relu": math.sqrt(2.0), "tanh": 5.0 / 3, "linear": 1.0}[nonlinearity]
    return gain / math.sqrt(fan)


@pytest.mark.parametrize("mode,nonlinearity,a", KAIMING)
def test_kaiming_uniform_bound(mode, nonlinearity, a):
    shape = (400, 100)
    bound = math.sqrt(3.0) * _kaiming_std(shape, mode, nonlinearity, a)
    w = to_np(init.kaiming_uniform_(tg.empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity))
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * bound


@pytest.mark.parametrize("mode,nonlinearity,a", KAIMING)
def test_kaiming_normal_std(mode, nonlinearity, a):
    shape = (50, 40, 3, 3)
    std = _kaiming_std(shape, mode, nonlinearity, a)
    w = to_np(init.kaiming_normal_(tg.empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity))
    assert abs(w.std() - std) < 0.02 * std


@pytest.mark.parametrize("fn", ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                                "kaiming_normal_"])
def test_fan_based_init_matches_torch_scale(fn):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(0)
    shape = (256, 64, 3)
    kwargs = {} if fn.startswith("xavier") else dict(mode="fan_out", nonlinearity="relu")
    w = to_np(getattr(init, fn)(tg.empty(*shape), **kwargs))
    tw = getattr(torch.nn.init, fn)(torch.empty(*shape), **kwargs).numpy()
    assert abs(w.std() / tw.std() - 1) < 0.03
    if fn.endswith("uniform_"):
        assert abs(np.abs(w).max() / np.abs(tw).max() - 1) < 0.01


@pytest.mark.parametrize("fn", ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                                "kaiming_normal_"])
def test_fan_based_init_rejects_1d(fn):
    with pytest.raises(ValueError):
        getattr(init, fn)(tg.empty(10))
    with pytest.raises(ValueError):
        getattr(init, fn)(tg.tensor(1.0))


def test_kaiming_invalid_mode():
    with pytest.raises(ValueError):
        init.kaiming_uniform_(tg.empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError):
        init.kaiming_normal_(tg.empty(3, 3), nonlinearity="gelu")


def test_simple_inits():
    t = tg.empty(3, 4)
    assert init.zeros_(t) is t
    np.testing.assert_array_equal(to_np(t), np.zeros((3, 4)))
    np.testing.assert_array_equal(to_np(init.ones_(t)), np.ones((3, 4)))
    np.testing.assert_array_equal(to_np(init.constant_(t, -2.5)), np.full((3, 4), -2.5))
    u = to_np(init.uniform_(tg.empty(100000), -3.0, 5.0))
    assert u.min() >= -3.0 and u.max() < 5.0
    assert abs(u.mean() - 1.0) < 0.03 and abs(u.std() - 8 / math.sqrt(12)) < 0.03
    u01 = to_np(init.uniform_(tg.empty(10000)))
    assert u01.min() >= 0.0 and u01.max() < 1.0
    n = to_np(init.normal_(tg.empty(100000), mean=2.0, std=0.5))
    assert abs(n.mean() - 2.0) < 0.01 and abs(n.std() - 0.5) < 0.01
    d = init.normal_(tg.empty(5, dtype=tg.float64))
    assert d.dtype == tg.float64


def test_init_on_parameter_keeps_it_a_leaf_and_records_nothing():
    lin = nn.Linear(4, 3)
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
               init.kaiming_normal_, init.zeros_, init.ones_):
        out = fn(lin.weight)
        assert out is lin.weight
        assert lin.weight.is_leaf and lin.weight.requires_grad and lin.weight.grad_fn is None
    init.constant_(lin.bias, 0.5)
    init.uniform_(lin.bias, -1, 1)
    init.normal_(lin.bias)
    lin(tg.randn(2, 4)).sum().backward()
    assert lin.weight.grad is not None


@pytest.mark.parametrize("fn,kwargs", [("xavier_uniform_", {}), ("xavier_normal_", {}),
                                       ("kaiming_uniform_", {}), ("kaiming_normal_", {}),
                                       ("uniform_", {}), ("normal_", {})])
def test_init_is_seeded(fn, kwargs):
    tg.manual_seed(42)
    a = to_np(getattr(init, fn)(tg.empty(6, 5), **kwargs))
    tg.manual_seed(42)
    b = to_np(getattr(init, fn)(tg.empty(6, 5), **kwargs))
    tg.manual_seed(43)
    c = to_np(getattr(init, fn)(tg.empty(6, 5), **kwargs))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_init_zero_element_tensors():
    t = tg.empty(0, 3)
    init.kaiming_uniform_(t)
    init.kaiming_normal_(t)
    assert tuple(t.shape) == (0, 3)


# ============================================================================
# gradient clipping
# ============================================================================
def _grad_pair(torch, dtype="float64", scale=1.0):
    """Three parameters with grads set, in tapegrad and torch (same numbers)."""
    rng = np.random.RandomState(1)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    values = [rng.randn(*s).astype(dtype) for s in shapes]
    grads = [(rng.randn(*s) * scale).astype(dtype) for s in shapes]
    ps, tps = [], []
    for v, g in zip(values, grads):
        p = nn.Parameter(tgt(v))
        (p * tgt(g)).sum().backward()
        ps.append(p)
        if torch is not None:
            tp = tt(torch, v, True)
            tp.grad = tt(torch, g)
            tps.append(tp)
    return ps, tps, grads


@pytest.mark.parametrize("norm_type", [2, 2.0, 1, 3.0, float("inf"), "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 2.0, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ps, tps, _ = _grad_pair(torch)
    total = nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert isinstance(total, tg.Tensor) and total.ndim == 0
    assert_close(total.item(), ttotal.item())
    for p, tp in zip(ps, tps):
        assert_close(grad_np(p), tp.grad.numpy())


def test_clip_grad_norm_order_zero_matches_torch():
    """torch's total norm is the order-0 norm of the per-tensor order-0 norms."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    grads = [np.array([0.0, 3.0, 0.0]), np.array([[0.0, -1.0], [2.0, 0.0]])]
    ps, tps = [], []
    for g in grads:
        p = nn.Parameter(tg.zeros(*g.shape, dtype=tg.float64))
        (p * tgt(g)).sum().backward()
        ps.append(p)
        tp = torch.zeros(*g.shape, dtype=torch.float64, requires_grad=True)
        tp.grad = tt(torch, g)
        tps.append(tp)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 100.0, norm_type=0)
    total = nn.utils.clip_grad_norm_(ps, 100.0, norm_type=0)
    assert ttotal.item() == 2.0  # two tensors with non-zero entries
    assert total.item() == ttotal.item()


def test_clip_grad_norm_larger_max_norm_leaves_grads_unchanged():
    ps, _, grads = _grad_pair(None)
    total = nn.utils.clip_grad_norm_(ps, 1e9)
    expected = math.sqrt(sum((g ** 2).sum() for g in grads))
    assert_close(total.item(), expected)
    for p, g in zip(ps, grads):
        np.testing.assert_array_equal(grad_np(p), g)


def test_clip_grad_norm_result_has_the_requested_norm():
    ps, _, _ = _grad_pair(None, scale=10.0)
    nn.utils.clip_grad_norm_(ps, 1.0)
    after = math.sqrt(sum((grad_np(p) ** 2).sum() for p in ps))
    assert after == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_single_tensor_generator_and_no_grads():
    ps, _, grads = _grad_pair(None)
    total = nn.utils.clip_grad_norm_(ps[0], 1e9)
    assert_close(total.item(), np.sqrt((grads[0] ** 2).sum()))
    m = tg_mlp()
    m(tg.randn(3, 3)).sum().backward()
    total = nn.utils.clip_grad_norm_(m.parameters(), 0.1)  # a generator
    after = math.sqrt(sum((grad_np(p).astype(np.float64) ** 2).sum() for p in m.parameters()))
    assert total.item() > 0.1 and after == pytest.approx(0.1, rel=1e-4)
    nothing = nn.utils.clip_grad_norm_(tg_mlp().parameters(), 1.0)
    assert nothing.item() == 0.0


def test_clip_grad_norm_float32_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ps, tps, _ = _grad_pair(torch, dtype="float32")
    total = nn.utils.clip_grad_norm_(ps, 0.5)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.5)
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(grad_np(p), tp.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_clip_grad_norm_error_if_nonfinite(bad):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ps, tps, _ = _grad_pair(torch)
    with tg.no_grad():
        ps[1].grad[2] = bad
    tps[1].grad[2] = bad
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(tps, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):
        nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    # without the flag: the total norm is non-finite, like torch's
    total = nn.utils.clip_grad_norm_(ps, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 1.0)
    assert not math.isfinite(total.item()) and not math.isfinite(ttotal.item())


@pytest.mark.parametrize("clip", [0.1, 0.7, 100.0])
def test_clip_grad_value_matches_torch(clip):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ps, tps, _ = _grad_pair(torch)
    assert nn.utils.clip_grad_value_(ps, clip) is None
    torch.nn.utils.clip_grad_value_(tps, clip)
    for p, tp in zip(ps, tps):
        assert_close(grad_np(p), tp.grad.numpy())
        assert np.abs(grad_np(p)).max() <= clip


def _sparse_and_dense_embeddings(torch):
    table = np.random.randn(10, 3)
    idx = np.array([2, 5, 2, 2, 7])  # row 2 three times
    up = np.random.randn(5, 3)
    e = nn.Embedding.from_pretrained(table, freeze=False, sparse=True)
    lin = nn.Linear(3, 2, dtype=tg.float64)
    te = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False)  # dense reference
    tlin = torch.nn.Linear(3, 2, dtype=torch.float64)
    copy_params_from_torch(lin, tlin)
    (lin(e(tg.tensor(idx)) * tgt(up)) ** 2).sum().backward()
    (tlin(te(torch.tensor(idx)) * tt(torch, up)) ** 2).sum().backward()
    assert e.weight.grad.is_sparse
    return [e.weight, *lin.parameters()], [te.weight, *tlin.parameters()]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_with_sparse_embedding_grad_matches_torch_dense(norm_type):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ps, tps = _sparse_and_dense_embeddings(torch)
    total = nn.utils.clip_grad_norm_(ps, 0.5, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, 0.5, norm_type=norm_type)
    assert_close(total.item(), ttotal.item())
    assert ps[0].grad.is_sparse
    for p, tp in zip(ps, tps):
        assert_close(grad_np(p), tp.grad.numpy())


def test_clip_grad_value_with_sparse_embedding_grad_matches_torch_dense():
    """The clamp applies to the gradient's elements: a row looked up three times has one
    gradient entry (the sum of three contributions), clamped once."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ps, tps = _sparse_and_dense_embeddings(torch)
    clip = 0.2
    nn.utils.clip_grad_value_(ps, clip)
    torch.nn.utils.clip_grad_value_(tps, clip)
    for p, tp in zip(ps, tps):
        assert_close(grad_np(p), tp.grad.numpy())
        assert np.abs(grad_np(p)).max() <= clip


# ============================================================================
# end to end
# ============================================================================
@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-5), ("float64", 1e-12)])
def test_mlp_training_matches_torch(dtype, rtol):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(0)
    tdt, gdt = getattr(torch, dtype), getattr(tg, dtype)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 16, dtype=tdt), torch.nn.Tanh(),
                             torch.nn.Linear(16, 3, dtype=tdt))
    m = nn.Sequential(nn.Linear(4, 16, dtype=gdt), nn.Tanh(), nn.Linear(16, 3, dtype=gdt))
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    rng = np.random.RandomState(0)
    x = rng.randn(32, 4).astype(dtype)
    y = rng.randint(0, 3, 32)
    xg, yg, xt, yt = tgt(x), tg.tensor(y), tt(torch, x), torch.tensor(y)
    loss_fn, tloss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    lr = 0.5
    losses, tlosses = [], []
    for _ in range(50):
        m.zero_grad()
        tm.zero_grad()
        loss = loss_fn(m(xg), yg)
        tloss = tloss_fn(tm(xt), yt)
        loss.backward()
        tloss.backward()
        losses.append(loss.item())
        tlosses.append(tloss.item())
        with tg.no_grad():
            for p in m.parameters():
                p -= lr * p.grad
        with torch.no_grad():
            for p in tm.parameters():
                p -= lr * p.grad
    np.testing.assert_allclose(losses, tlosses, rtol=rtol)
    assert losses[-1] < losses[0] - 0.1  # it actually learns
    for (n, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(to_np(p), tp.detach().numpy(), rtol=rtol * 10,
                                   atol=rtol, err_msg=n)
