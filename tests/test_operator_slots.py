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
