"""The Tensor type's raw operator slots (+ - * / @, unary -) and the
hand-written Tensor object (cpp/bindings/tensor_object.*): every operand kind
the old pybind11 overloads accepted gives the same result as the explicit
scalar/tensor forms, reflected operators swap correctly, subclasses go
through the same slots, and unsupported operands still raise TypeError."""

import copy
import gc
import weakref

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn

DTYPES = [tg.float32, tg.float64, tg.int64, tg.bool]


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def make(dtype):
    vals = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]])
    if dtype == tg.bool:
        return tg.from_numpy(vals > 0)
    if dtype == tg.int64:
        return tg.from_numpy(np.round(vals).astype(np.int64) + 5)
    return tg.from_numpy(vals.astype(np.float64)).to(dtype)


def same(a, b):
    assert type(a) is tg.Tensor and type(b) is tg.Tensor
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(to_np(a), to_np(b))


# Scalars the old `double` overloads took (with pybind11's conversion): floats,
# ints, bools and NumPy scalars, each meaning float(s).
SCALARS = [2.5, 3, -1, 0, True, False, np.float32(1.5), np.int64(4), np.float64(-0.25)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("s", SCALARS, ids=lambda s: f"{type(s).__name__}({s})")
def test_tensor_op_scalar_matches_scalar_form(dtype, s):
    x = make(dtype)
    f = float(s)
    if dtype != tg.bool:
        same(x + s, tg.add(x, f))
        same(x - s, tg.sub(x, f))
        same(x * s, tg.mul(x, f))
    if dtype in (tg.float32, tg.float64) and f != 0:
        same(x / s, tg.div(x, f))


@pytest.mark.parametrize("dtype", [tg.float32, tg.float64, tg.int64])
@pytest.mark.parametrize("s", [2.5, 3, True, np.float32(1.5)], ids=repr)
def test_reflected_operators(dtype, s):
    x = make(dtype)
    f = float(s)
    if not isinstance(s, np.generic):  # NumPy scalars answer s + x themselves
        same(s + x, x + f)
        same(s * x, x * f)
        same(s - x, tg.add(-x, f))
    r = f / x
    expect = f / to_np(x).astype(np.float64)
    assert r.dtype == (dtype if dtype != tg.int64 else tg.float32)
    np.testing.assert_allclose(to_np(r), expect, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_op_tensor_matches_function_form(dtype):
    x, y = make(dtype), make(dtype)
    z = make(tg.float64)
    if dtype != tg.bool:
        same(x + y, tg.add(x, y))
        same(x - y, tg.sub(x, y))
        same(x * z, tg.mul(x, z))
        same(x / z, tg.div(x, z))
        same(-x, tg.neg(x))
    same(x.float() @ z.float().t(), tg.matmul(x.float(), z.float().t()))


def test_unsupported_operands_raise_type_error():
    x = tg.ones(3)
    for bad in (None, "a", object(), [1.0, 2.0, 3.0]):
        for op in (lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a / b,
                   lambda a, b: a @ b):
            with pytest.raises(TypeError):
                op(x, bad)
            with pytest.raises(TypeError):
                op(bad, x)
    with pytest.raises(TypeError):
        x + 10**400  # too big for a double: not a scalar operand, as before
    with pytest.raises(TypeError):
        x @ 2.0


def test_not_implemented_lets_the_other_operand_answer():
    class Other:
        def __radd__(self, t):
            return "radd"

        def __rmul__(self, t):
            return "rmul"

        def __sub__(self, t):
            return "sub"

    x = tg.ones(2)
    assert x + Other() == "radd"
    assert x * Other() == "rmul"
    assert Other() - x == "sub"


def test_operator_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \[3\] and \[2\]"):
        tg.ones(3) + tg.ones(2)
    with pytest.raises(ValueError, match=r"mul: shapes \[3\] and \[2\]"):
        tg.ones(3) * tg.ones(2)
    with pytest.raises(TypeError, match="neg: negation of a bool tensor"):
        -tg.ones(2, dtype=tg.bool)
    with pytest.raises(TypeError, match="sub: subtraction with a bool tensor"):
        1.0 - tg.ones(2, dtype=tg.bool)


def test_subclass_goes_through_the_slots_and_gradients_flow():
    torch = pytest.importorskip("torch")
    v = np.array([0.5, -1.25, 2.0])
    p = nn.Parameter(tg.from_numpy(v.copy()))
    tp = torch.nn.Parameter(torch.from_numpy(v.copy()))
    for a, lib in ((p, tg), (tp, torch)):
        y = (2.0 * a + 1) * a - 3 / (a * a + 1) + (a - 0.5) / 4 - (-a) * True
        y = y @ a if lib is tg else y @ a
        y.backward()
    assert type(p * 2.0) is tg.Tensor  # results are plain tensors, as before
    np.testing.assert_allclose(to_np(p.grad), tp.grad.numpy(), rtol=1e-12)


def test_results_match_with_and_without_grad():
    x = tg.from_numpy(np.linspace(-1, 1, 16).astype(np.float32)).requires_grad_(True)
    with tg.no_grad():
        a = (x * 1.0001 + 0.5 - 2) / 3
    b = (x * 1.0001 + 0.5 - 2) / 3
    assert not a.requires_grad and b.requires_grad
    np.testing.assert_array_equal(to_np(a), to_np(b))
    b.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), np.full(16, 1.0001 / 3, np.float32), rtol=1e-6)


def test_tensor_object_basics():
    x = tg.ones(2)
    ref = weakref.ref(x)
    assert ref() is x
    del x
    gc.collect()
    assert ref() is None
    p = nn.Parameter(tg.ones(2))
    p.tag = "w"  # subclasses have a __dict__
    assert p.__dict__ == {"tag": "w"} and weakref.ref(p)() is p
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q.requires_grad and q is not p
    with pytest.raises(AttributeError):
        tg.ones(2).tag = 1  # plain tensors have none, as before
    with pytest.raises(TypeError):
        tg.Tensor(3)
    assert tg.ones(2).grad is None
    assert hash(p) == hash(p) and {p: 1}[p] == 1


def test_subclass_that_skips_init_raises_instead_of_crashing():
    class Bad(tg.Tensor):
        def __init__(self):
            pass

    b = Bad()
    for use in (lambda: b + 1, lambda: b.sum(), lambda: -b, lambda: tg.exp(b),
                lambda: tg.ones(1) * b):
        with pytest.raises(TypeError, match="never initialized"):
            use()


# ---------------------------------------------------------------- & | ^ // %
INT_OPS = {
    "and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b,
    "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b,
}


def _torch_pair(dtype):
    torch = pytest.importorskip("torch", reason="torch is not installed; the operators are checked "
                                "against it")
    x = make(dtype)
    return torch, x, torch.from_numpy(to_np(x))


def _same_as_torch(got, want):
    assert type(got) is tg.Tensor
    w = want.numpy()
    g = to_np(got)
    assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype, g.shape, w.shape)
    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [tg.int64, tg.bool])
@pytest.mark.parametrize("op", ["and", "or", "xor"])
def test_bitwise_operators_match_torch(dtype, op):
    torch, x, tx = _torch_pair(dtype)
    f = INT_OPS[op]
    y = make(dtype).flip([1])
    _same_as_torch(f(x, y), f(tx, torch.from_numpy(to_np(y))))
    s = True if dtype == tg.bool else 6
    _same_as_torch(f(x, s), f(tx, s))
    _same_as_torch(f(s, x), f(s, tx))  # reflected
    _same_as_torch(getattr(tg, f"bitwise_{op}")(x, y), getattr(torch, f"bitwise_{op}")(tx, torch.from_numpy(to_np(y))))


@pytest.mark.parametrize("dtype", [tg.int64, tg.float32, tg.float64])
@pytest.mark.parametrize("op", ["floordiv", "mod"])
def test_floordiv_and_mod_match_torch(dtype, op):
    torch, x, tx = _torch_pair(dtype)
    f = INT_OPS[op]
    d = tg.from_numpy(np.array([[3, -2, 2], [-4, 5, 7]])).to(dtype)
    td = torch.from_numpy(to_np(d))
    _same_as_torch(f(x, d), f(tx, td))
    for s in (2, -3, 2.5, -0.75):
        _same_as_torch(f(x, s), f(tx, s))
        _same_as_torch(f(s, d), f(s, td))  # reflected
    name = "floor_divide" if op == "floordiv" else "remainder"
    _same_as_torch(getattr(tg, name)(x, d), getattr(torch, name)(tx, td))
    _same_as_torch(getattr(x, name)(2), getattr(tx, name)(2))


def test_mod_takes_the_sign_of_the_divisor_and_has_torch_gradients():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    a = np.array([5.5, -5.5, 5.5, -5.5, 0.25])
    b = np.array([2.0, 2.0, -2.0, -2.0, 0.5])
    np.testing.assert_array_equal(to_np(tg.from_numpy(a) % tg.from_numpy(b)), a % b)  # Python's %
    x, y = tg.from_numpy(a.copy()).requires_grad_(), tg.from_numpy(b.copy()).requires_grad_()
    tx, ty = torch.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(b.copy()).requires_grad_()
    (x % y).sum().backward()
    (tx % ty).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), tx.grad.numpy())
    np.testing.assert_array_equal(to_np(y.grad), ty.grad.numpy())


def test_integer_division_by_zero_raises():
    x = tg.tensor([5, -3])
    for f in (lambda: x // 0, lambda: x % tg.tensor([1, 0]), lambda: 3 // tg.tensor([0, 1])):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            f()
    r = to_np(tg.tensor([1.0, -1.0, 0.0]) // 0.0)  # floats: IEEE, as torch
    assert np.isinf(r[0]) and r[0] > 0 and np.isinf(r[1]) and r[1] < 0 and np.isnan(r[2])


def test_bitwise_on_floats_and_bad_operands_raise_type_error():
    x = tg.ones(3)
    for op in ("and", "or", "xor"):
        with pytest.raises(TypeError, match="bitwise_.*bool and integer"):
            INT_OPS[op](x, x)
        with pytest.raises(TypeError, match="bitwise_.*bool and integer"):
            INT_OPS[op](tg.tensor([1, 2]), 1.5)
    for name, f in INT_OPS.items():
        for bad in (None, "a", [1, 2, 3]):
            with pytest.raises(TypeError):
                f(x, bad)
            if not (name == "mod" and bad == "a"):  # "a" % x is str formatting (x has __getitem__)
                with pytest.raises(TypeError):
                    f(bad, x)
