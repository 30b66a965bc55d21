"""The PyTorch API a CPU training script uses around its model: devices,
to()/cpu(), creation with device=, new_*(), random fills, pickling,
inference_mode, randperm/linspace, dtype queries and add/sub alpha=."""

import copy
import pickle

import numpy as np
import pytest

import tapegrad as tg

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0); skipping the PyTorch comparison"


# ---------------------------------------------------------------- devices
def test_device_objects_mirror_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for args in (("cpu",), ("cuda",), ("cuda:1",), ("cuda", 0), ("mps",)):
        d, t = tg.device(*args), torch.device(*args)
        assert (str(d), repr(d), d.type, d.index) == (str(t), repr(t), t.type, t.index)
    assert tg.device("cpu") == tg.device(tg.device("cpu")) and hash(tg.device("cpu")) == hash(tg.device("cpu"))
    assert tg.device("cuda:0") != tg.device("cuda")
    assert pickle.loads(pickle.dumps(tg.device("cuda:2"))) == tg.device("cuda:2")
    for bad in ("gpu", "cuda:x", "cuda:-1"):
        with pytest.raises(RuntimeError, match="device"):
            tg.device(bad)
    with pytest.raises(TypeError, match="device"):
        tg.device(3.5)


def test_the_usual_device_idiom_runs_on_the_cpu():
    assert tg.cuda.is_available() is False and tg.cuda.device_count() == 0
    tg.cuda.manual_seed(0)
    tg.cuda.manual_seed_all(0)
    device = tg.device("cuda" if tg.cuda.is_available() else "cpu")
    model = tg.nn.Linear(3, 2).to(device)
    x = tg.randn(4, 3, device=device).to(device)
    assert model(x).device == tg.device("cpu") and x.device.type == "cpu"
    assert x.is_cpu and not x.is_cuda


@pytest.mark.parametrize("call", [
    lambda: tg.ones(2).to("cuda"), lambda: tg.ones(2).to(tg.device("cuda", 0)),
    lambda: tg.ones(2).to(0), lambda: tg.ones(2).cuda(), lambda: tg.zeros(2, device="cuda"),
    lambda: tg.tensor([1.0], device="cuda:0"), lambda: tg.nn.Linear(2, 2).to("cuda"),
    lambda: tg.nn.Linear(2, 2).cuda(), lambda: tg.randperm(3, device="mps"),
], ids=["to str", "to device", "to int", "cuda()", "zeros", "tensor", "Module.to", "Module.cuda",
        "randperm"])
def test_other_devices_are_refused_not_ignored(call):
    with pytest.raises(RuntimeError, match="CPU only"):
        call()


def test_to_accepts_every_torch_form():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, tx = tg.ones(2, 3), torch.ones(2, 3)
    other, tother = tg.zeros(1, dtype=tg.float64), torch.zeros(1, dtype=torch.float64)
    forms = [
        (lambda m, t, o: t.to(m.float64), True), (lambda m, t, o: t.to("cpu"), True),
        (lambda m, t, o: t.to(m.device("cpu"), m.float64), True),
        (lambda m, t, o: t.to("cpu", m.float32), True), (lambda m, t, o: t.to(o), True),
        (lambda m, t, o: t.to(dtype=m.float64, device="cpu"), True),
        (lambda m, t, o: t.to(m.float32, non_blocking=True), True),
        (lambda m, t, o: t.to(m.float32, copy=True), True),
        (lambda m, t, o: t.to("cpu", non_blocking=True), True),
        (lambda m, t, o: t.cpu(), True), (lambda m, t, o: t.type_as(o), True),
    ]
    for form, _ in forms:
        a, b = form(tg, x, other), form(torch, tx, tother)
        assert str(a.dtype).split(".")[1] == str(b.dtype).split(".")[1]
        assert (a is x) == (b is tx)  # the same tensor back exactly when torch returns it
    with pytest.raises(TypeError, match="to"):
        x.to("cpu", tg.float32, 3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        x.to(dtype=tg.float64, colour="red")


def test_to_is_differentiable():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x.to("cpu", tg.float64) * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_module_to_forms():
    m = tg.nn.Linear(2, 2)
    w = m.weight
    assert m.to("cpu") is m and m.cpu() is m and m.weight.dtype == tg.float32
    m.to("cpu", tg.float64)
    assert m.weight is w and w.dtype == tg.float64
    m.to(tg.zeros(1))  # the tensor's dtype
    assert w.dtype == tg.float32
    m.to(device="cpu", dtype=tg.float64)
    assert w.dtype == tg.float64
    with pytest.raises(TypeError, match="floating dtype"):
        m.to(tg.int64)


# ---------------------------------------------------------------- creation
def test_creation_functions_take_device():
    for make in (lambda d: tg.tensor([1.0], device=d), lambda d: tg.as_tensor([1.0], device=d),
                 lambda d: tg.zeros(2, device=d), lambda d: tg.ones(2, device=d),
                 lambda d: tg.empty(2, device=d), lambda d: tg.full((2,), 1.0, device=d),
                 lambda d: tg.arange(3, device=d), lambda d: tg.eye(2, device=d),
                 lambda d: tg.rand(2, device=d), lambda d: tg.randn(2, device=d),
                 lambda d: tg.randint(0, 3, (2,), device=d),
                 lambda d: tg.zeros_like(tg.ones(2), device=d),
                 lambda d: tg.full_like(tg.ones(2), 3.0, device=d),
                 lambda d: tg.linspace(0, 1, 3, device=d), lambda d: tg.randperm(3, device=d)):
        for d in ("cpu", tg.device("cpu"), None):
            assert make(d).device == tg.device("cpu")


def test_new_methods_follow_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for dt in ("float32", "float64"):
        x, tx = tg.ones(2, dtype=getattr(tg, dt)), torch.ones(2, dtype=getattr(torch, dt))
        for name, args in (("new_zeros", ((2, 3),)), ("new_ones", (3,)), ("new_empty", (2, 2)),
                           ("new_full", ((2,), 7)), ("new_tensor", ([1, 2],))):
            a, b = getattr(x, name)(*args), getattr(tx, name)(*args)
            assert tuple(a.shape) == tuple(b.shape), name
            assert str(a.dtype).split(".")[1] == str(b.dtype).split(".")[1], name
            if name != "new_empty":
                np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert x.new_zeros(2, dtype=tg.int64).dtype == tg.int64
        assert x.new_ones(2, requires_grad=True).requires_grad


def test_linspace_and_randperm():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for args in ((0, 1, 5), (-2.5, 3, 7), (1, 1, 1), (0, 1, 0), (3, -1, 4)):
        np.testing.assert_allclose(tg.linspace(*args).numpy(), torch.linspace(*args).numpy(),
                                   rtol=1e-6, atol=1e-7)
        assert tg.linspace(*args, dtype=tg.float64).dtype == tg.float64
    tg.manual_seed(1)
    p = tg.randperm(50)
    assert p.dtype == tg.int64 and sorted(p.numpy().tolist()) == list(range(50))
    tg.manual_seed(1)
    np.testing.assert_array_equal(tg.randperm(50).numpy(), p.numpy())  # seeded
    assert tg.randperm(0).numel() == 0
    with pytest.raises(ValueError, match="randperm"):
        tg.randperm(-1)
    with pytest.raises(ValueError, match="linspace"):
        tg.linspace(0, 1, -2)


# ---------------------------------------------------------------- random fills
def test_random_fills_have_the_right_distribution():
    tg.manual_seed(0)
    x = tg.empty(200_000, dtype=tg.float64)
    assert x.uniform_(-2.0, 3.0) is x
    v = x.numpy()
    assert v.min() >= -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.02
    x.normal_(1.5, 0.5)
    assert abs(x.numpy().mean() - 1.5) < 0.01 and abs(x.numpy().std() - 0.5) < 0.01
    x.bernoulli_(0.2)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0} and abs(x.numpy().mean() - 0.2) < 0.01
    probs = tg.full((100_000,), 0.7)
    draws = probs.bernoulli()
    assert draws.dtype == tg.float32 and abs(draws.numpy().mean() - 0.7) < 0.01


def test_random_fills_follow_the_in_place_rules():
    w = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.uniform_()
    with tg.no_grad():
        w.normal_()  # the usual init idiom
    assert w.is_leaf and w.requires_grad
    with pytest.raises(TypeError, match="uniform_"):
        tg.zeros(2, dtype=tg.int64).uniform_()
    with pytest.raises(ValueError, match="normal_"):
        tg.zeros(2).normal_(0, -1)


# ---------------------------------------------------------------- pickling
def test_pickle_keeps_values_dtype_and_requires_grad_like_torch():
    a = tg.tensor([[1.5, -2.0]], dtype=tg.float64, requires_grad=True)
    a.grad = tg.ones(1, 2, dtype=tg.float64)
    for t in (a, a * 2.0, tg.tensor([1, 2, 3]), tg.tensor([True, False]), tg.randn(2, 3).t()):
        r = pickle.loads(pickle.dumps(t))
        assert r.dtype == t.dtype and tuple(r.shape) == tuple(t.shape)
        np.testing.assert_array_equal(r.detach().numpy(), t.detach().numpy())
        assert r.requires_grad == t.requires_grad and r.is_leaf and r.grad is None
    p = tg.nn.Parameter(tg.ones(2))
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is tg.nn.Parameter and q.requires_grad
    m = pickle.loads(pickle.dumps(tg.nn.Sequential(tg.nn.Linear(2, 3), tg.nn.ReLU())))
    assert isinstance(m[0].weight, tg.nn.Parameter)
    assert copy.deepcopy(a).requires_grad


# ---------------------------------------------------------------- grad mode, dtypes
def test_inference_mode_is_no_grad():
    x = tg.ones(2, requires_grad=True)
    with tg.inference_mode():
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
    with tg.inference_mode(False):
        assert (x * 2).requires_grad

    @tg.inference_mode()
    def f(v):
        return v * 2

    @tg.inference_mode
    def g(v):
        return v * 2

    assert not f(x).requires_grad and not g(x).requires_grad and tg.is_grad_enabled()


def test_dtype_queries_match_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for dt in ("float32", "float64"):
        a, b = tg.finfo(getattr(tg, dt)), torch.finfo(getattr(torch, dt))
        for k in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(a, k) == getattr(b, k), (dt, k)
    assert tg.finfo().eps == torch.finfo().eps
    i, j = tg.iinfo(tg.int64), torch.iinfo(torch.int64)
    assert (i.bits, i.max, i.min) == (j.bits, j.max, j.min)
    with pytest.raises(TypeError, match="finfo"):
        tg.finfo(tg.int64)
    with pytest.raises(TypeError, match="iinfo"):
        tg.iinfo(tg.float32)
    assert tg.get_default_dtype() == tg.float32
    assert tg.is_tensor(tg.ones(1)) and not tg.is_tensor(np.ones(1))
    assert tg.is_tensor(tg.nn.Parameter(tg.ones(1)))
    assert tg.is_floating_point(tg.ones(1)) and not tg.is_floating_point(tg.ones(1, dtype=tg.int64))
    assert tg.numel(tg.ones(2, 3)) == 6


# ---------------------------------------------------------------- alpha=
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_add_and_sub_with_alpha_match_torch(dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    rng = np.random.default_rng(0)
    xa, ya = rng.normal(size=(3, 4)), rng.normal(size=(4,))
    for alpha in (2, -0.5, 1, -1, 0.0):
        for name in ("add", "sub"):
            for other in ("tensor", 3):
                x = tg.tensor(xa, dtype=getattr(tg, dtype), requires_grad=True)
                tx = torch.tensor(xa, dtype=getattr(torch, dtype), requires_grad=True)
                if other == "tensor":
                    y = tg.tensor(ya, dtype=getattr(tg, dtype), requires_grad=True)
                    ty = torch.tensor(ya, dtype=getattr(torch, dtype), requires_grad=True)
                else:
                    y = ty = other
                got = getattr(tg, name)(x, y, alpha=alpha)
                want = getattr(torch, name)(tx, ty, alpha=alpha)
                method = getattr(x, name)(y, alpha=alpha)
                tol = 1e-6 if dtype == "float32" else 1e-14  # torch fuses alpha*y+x into an FMA
                np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol, atol=tol)
                np.testing.assert_array_equal(method.detach().numpy(), got.detach().numpy())
                got.sum().backward()
                want.sum().backward()
                np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol)
                if other == "tensor":
                    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=tol)
