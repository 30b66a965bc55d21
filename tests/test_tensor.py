"""Tensors: creation, dtypes, NumPy interop, attributes, repr, seeding,
indexing and in-place ops, against NumPy / PyTorch semantics."""

import numpy as np
import pytest

import tapegrad as tg


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def dname(dt):
    return str(dt).split(".")[-1]


# ============================================================================
# creation and dtypes
# ============================================================================
def test_dtypes_exist_and_are_distinct():
    dts = [tg.float32, tg.float64, tg.int64, tg.bool]
    assert len(set(map(str, dts))) == 4
    assert [dname(d) for d in dts] == ["float32", "float64", "int64", "bool"]


@pytest.mark.parametrize(
    "data,dtype,np_dtype",
    [
        ([1.0, 2.5], "float32", np.float32),
        ([1, 2, 3], "int64", np.int64),
        ([True, False], "bool", np.bool_),
        ([1, 2.5], "float32", np.float32),  # mixed ints and floats -> default float
        ([[1.0, 2.0], [3.0, 4.0]], "float32", np.float32),
        (3.5, "float32", np.float32),
        (7, "int64", np.int64),
        (True, "bool", np.bool_),
    ],
)
def test_tensor_infers_dtype_like_torch(data, dtype, np_dtype):
    t = tg.tensor(data)
    assert t.dtype == getattr(tg, dtype)
    expected = np.array(data, dtype=np_dtype)
    assert tuple(t.shape) == expected.shape
    np.testing.assert_array_equal(to_np(t), expected)
    assert to_np(t).dtype == np_dtype


def test_tensor_from_numpy_array_keeps_dtype_and_copies():
    a = np.array([1.0, 2.0])
    t = tg.tensor(a)
    assert t.dtype == tg.float64
    a[0] = 100.0
    assert t[0].item() == 1.0  # tg.tensor copies
    assert tg.tensor(np.array([1, 2], dtype=np.int64)).dtype == tg.int64
    assert tg.tensor(np.array([1.0], dtype=np.float32)).dtype == tg.float32


def test_tensor_explicit_dtype():
    t = tg.tensor([1, 2, 3], dtype=tg.float64)
    assert t.dtype == tg.float64
    np.testing.assert_array_equal(to_np(t), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(to_np(tg.tensor([1.7, -1.7], dtype=tg.int64)), [1, -1])


def test_tensor_requires_grad_flag():
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert not tg.tensor([1.0]).requires_grad


@pytest.mark.parametrize("fn,value", [("zeros", 0.0), ("ones", 1.0)])
def test_zeros_ones(fn, value):
    for args in [((2, 3),), (2, 3), ([2, 3],)]:
        t = getattr(tg, fn)(*args)
        assert tuple(t.shape) == (2, 3)
        assert t.dtype == tg.float32
        np.testing.assert_array_equal(to_np(t), np.full((2, 3), value))
    t = getattr(tg, fn)(4, dtype=tg.int64)
    assert t.dtype == tg.int64 and tuple(t.shape) == (4,)
    assert tuple(getattr(tg, fn)(()).shape) == ()
    assert tuple(getattr(tg, fn)(0, 3).shape) == (0, 3)
    assert getattr(tg, fn)(2, requires_grad=True).requires_grad


def test_full_dtype_inference_like_torch():
    assert tg.full((2,), 3.5).dtype == tg.float32
    assert tg.full((2,), 3).dtype == tg.int64
    assert tg.full((2,), True).dtype == tg.bool
    t = tg.full((2, 2), 2.5, dtype=tg.float64)
    assert t.dtype == tg.float64
    np.testing.assert_array_equal(to_np(t), np.full((2, 2), 2.5))


def test_empty():
    t = tg.empty(3, 2)
    assert tuple(t.shape) == (3, 2) and t.dtype == tg.float32
    assert tg.empty((2,), dtype=tg.float64).dtype == tg.float64


@pytest.mark.parametrize(
    "args,np_args,dtype",
    [
        ((5,), (5,), "int64"),
        ((2, 7), (2, 7), "int64"),
        ((1, 10, 3), (1, 10, 3), "int64"),
        ((0, 1, 0.25), (0, 1, 0.25), "float32"),
        ((1.0, 4.0), (1.0, 4.0), "float32"),
        ((5, 0, -1), (5, 0, -1), "int64"),
    ],
)
def test_arange(args, np_args, dtype):
    t = tg.arange(*args)
    assert t.dtype == getattr(tg, dtype)
    np.testing.assert_allclose(to_np(t), np.arange(*np_args))


def test_arange_dtype_kw():
    t = tg.arange(4, dtype=tg.float64)
    assert t.dtype == tg.float64
    np.testing.assert_array_equal(to_np(t), [0.0, 1.0, 2.0, 3.0])


def test_eye():
    np.testing.assert_array_equal(to_np(tg.eye(3)), np.eye(3))
    np.testing.assert_array_equal(to_np(tg.eye(2, 4)), np.eye(2, 4))
    assert tg.eye(2).dtype == tg.float32
    assert tg.eye(2, dtype=tg.float64).dtype == tg.float64


def test_rand_randn_randint():
    tg.manual_seed(0)
    r = to_np(tg.rand(20000))
    assert r.dtype == np.float32
    assert r.min() >= 0.0 and r.max() < 1.0
    assert abs(r.mean() - 0.5) < 0.02
    n = to_np(tg.randn(20000, dtype=tg.float64))
    assert n.dtype == np.float64
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    assert tuple(tg.rand(2, 3).shape) == (2, 3)
    assert tuple(tg.randn((4, 1)).shape) == (4, 1)
    i = to_np(tg.randint(2, 7, (1000,)))
    assert i.dtype == np.int64
    assert i.min() == 2 and i.max() == 6
    k = tg.randint(0, 3, size=(4,))
    assert tuple(k.shape) == (4,)


def test_randint_high_only_like_torch():
    # torch.randint(high, size): low defaults to 0
    j = tg.randint(3, (5, 2))
    assert tuple(j.shape) == (5, 2) and j.dtype == tg.int64
    assert to_np(j).min() >= 0 and to_np(j).max() < 3


def test_like_functions():
    x = tg.tensor(np.arange(6.0).reshape(2, 3))  # float64
    for fn, check in [
        (tg.zeros_like, lambda a: np.all(a == 0)),
        (tg.ones_like, lambda a: np.all(a == 1)),
        (tg.empty_like, lambda a: True),
        (tg.rand_like, lambda a: np.all((a >= 0) & (a < 1))),
        (tg.randn_like, lambda a: np.all(np.isfinite(a))),
    ]:
        t = fn(x)
        assert tuple(t.shape) == (2, 3) and t.dtype == tg.float64, fn
        assert check(to_np(t))
    f = tg.full_like(x, 7.0)
    assert f.dtype == tg.float64
    np.testing.assert_array_equal(to_np(f), np.full((2, 3), 7.0))
    assert tg.zeros_like(x, dtype=tg.int64).dtype == tg.int64


def test_manual_seed_reproducible():
    tg.manual_seed(1234)
    a, b, c = to_np(tg.rand(50)), to_np(tg.randn(50)), to_np(tg.randint(0, 1000, (50,)))
    tg.manual_seed(1234)
    a2, b2, c2 = to_np(tg.rand(50)), to_np(tg.randn(50)), to_np(tg.randint(0, 1000, (50,)))
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    np.testing.assert_array_equal(c, c2)
    tg.manual_seed(4321)
    assert not np.array_equal(a, to_np(tg.rand(50)))
    # consecutive draws differ
    assert not np.array_equal(to_np(tg.rand(50)), to_np(tg.rand(50)))


# ============================================================================
# NumPy interop
# ============================================================================
@pytest.mark.parametrize("np_dtype,dtype", [(np.float32, "float32"), (np.float64, "float64"),
                                            (np.int64, "int64"), (np.bool_, "bool")])
def test_from_numpy_dtype(np_dtype, dtype):
    a = np.array([1, 0, 1], dtype=np_dtype)
    t = tg.from_numpy(a)
    assert t.dtype == getattr(tg, dtype)
    np.testing.assert_array_equal(to_np(t), a)


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros((2, 3))
    t = tg.from_numpy(a)
    a[1, 2] = 5.0
    assert t[1, 2].item() == 5.0
    with tg.no_grad():
        t.add_(tg.ones(2, 3, dtype=tg.float64))
    assert a[0, 0] == 1.0 and a[1, 2] == 6.0


def test_from_numpy_keeps_array_alive():
    t = tg.from_numpy(np.arange(5.0))
    import gc

    gc.collect()
    np.testing.assert_array_equal(to_np(t), np.arange(5.0))


def test_from_numpy_non_contiguous():
    a = np.arange(12.0).reshape(3, 4)
    t = tg.from_numpy(a[:, ::2])
    np.testing.assert_array_equal(to_np(t), a[:, ::2])
    t2 = tg.from_numpy(a.T)
    np.testing.assert_array_equal(to_np(t2), a.T)
    np.testing.assert_array_equal(to_np(t2 * 1.0), a.T)


def test_numpy_shares_memory():
    t = tg.zeros(3, dtype=tg.float64)
    a = t.numpy()
    assert a.dtype == np.float64
    a[0] = 7.0
    assert t[0].item() == 7.0
    with tg.no_grad():
        t.fill_(2.0)
    np.testing.assert_array_equal(a, [2.0, 2.0, 2.0])


def test_numpy_of_view():
    t = tg.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(t.T.numpy(), np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(t[:, 1].numpy(), [1.0, 4.0])


def test_array_protocol():
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (2, 2)
    np.testing.assert_array_equal(a, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float64), [[1, 2], [3, 4]])
    b = np.array(t)  # numpy 2 passes copy=; must not warn (warnings are errors)
    np.testing.assert_array_equal(b, a)
    c = np.array(t, copy=True)
    c[0, 0] = 99
    assert t[0, 0].item() == 1.0


def test_array_protocol_on_tensor_requiring_grad():
    t = tg.tensor([1.0, 2.0], requires_grad=True)
    np.testing.assert_array_equal(np.asarray(t.detach()), [1.0, 2.0])


# ============================================================================
# attributes
# ============================================================================
def test_shape_ndim_len_T():
    t = tg.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4)
    assert isinstance(t.shape, tuple)
    assert t.ndim == 3
    assert len(t) == 2
    m = tg.tensor(np.arange(6.0).reshape(2, 3))
    assert m.T.shape == (3, 2)
    np.testing.assert_array_equal(to_np(m.T), np.arange(6.0).reshape(2, 3).T)
    v = tg.zeros(5)
    assert v.T.shape == (5,)
    s = tg.tensor(2.0)
    assert s.shape == () and s.ndim == 0


def test_len_of_0d_raises():
    with pytest.raises(TypeError):
        len(tg.tensor(1.0))


def test_item():
    x = tg.tensor([2.5])
    assert x.item() == 2.5 and isinstance(x.item(), float)
    i = tg.tensor(3)
    assert i.item() == 3 and isinstance(i.item(), int)
    b = tg.tensor(True)
    assert b.item() is True
    assert tg.tensor([[1.5]], dtype=tg.float64).item() == 1.5


def test_item_of_many_raises():
    with pytest.raises((RuntimeError, ValueError), match="item"):
        tg.tensor([1.0, 2.0]).item()


def test_repr():
    t = tg.tensor([1.5, -2.25], dtype=tg.float64, requires_grad=True)
    r = repr(t)
    assert "1.5" in r and "-2.25" in r
    assert "float64" in r
    assert "requires_grad=True" in r
    r2 = repr(tg.tensor([3, 4]))
    assert "3" in r2 and "4" in r2
    assert "requires_grad" not in repr(tg.tensor([1.0]))
    assert "tensor" in repr(tg.ones(2)).lower()
    repr(tg.zeros(0, 3))
    repr(tg.tensor(1.0))
    repr(tg.zeros(100, 100))
    str(tg.ones(2))


# ============================================================================
# conversions
# ============================================================================
def test_conversions():
    x = tg.tensor([-1.7, 0.4, 2.9])
    assert x.double().dtype == tg.float64
    assert x.float().dtype == tg.float32
    lo = x.long()
    assert lo.dtype == tg.int64
    np.testing.assert_array_equal(to_np(lo), [-1, 0, 2])  # truncation toward zero, like torch
    np.testing.assert_allclose(to_np(x.to(tg.float64)), np.array([-1.7, 0.4, 2.9], dtype=np.float32))
    b = tg.tensor([True, False])
    np.testing.assert_array_equal(to_np(b.float()), [1.0, 0.0])
    assert to_np(tg.tensor([0.0, 2.0]).to(tg.bool)).tolist() == [False, True]
    assert x.to(tg.float32) is x or np.array_equal(to_np(x.to(tg.float32)), to_np(x))


def test_float_to_int_does_not_require_grad():
    x = tg.tensor([1.5], requires_grad=True)
    assert not x.long().requires_grad
    assert x.double().requires_grad


def test_clone_is_independent():
    x = tg.tensor([1.0, 2.0])
    y = x.clone()
    with tg.no_grad():
        y.fill_(0.0)
    np.testing.assert_array_equal(to_np(x), [1.0, 2.0])


def test_contiguous_of_transpose():
    x = tg.tensor(np.arange(6.0).reshape(2, 3))
    c = x.T.contiguous()
    np.testing.assert_array_equal(to_np(c), np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(to_np(c.view(-1)), np.arange(6.0).reshape(2, 3).T.reshape(-1))


# ============================================================================
# comparisons and reductions without gradient
# ============================================================================
def test_comparisons_give_bool():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([3.0, 2.0, 1.0])
    x, y = tg.tensor(a), tg.tensor(b)
    for op, want in [
        (lambda u, v: u == v, a == b), (lambda u, v: u != v, a != b), (lambda u, v: u < v, a < b),
        (lambda u, v: u <= v, a <= b), (lambda u, v: u > v, a > b), (lambda u, v: u >= v, a >= b),
    ]:
        r = op(x, y)
        assert r.dtype == tg.bool
        np.testing.assert_array_equal(to_np(r), want)
    np.testing.assert_array_equal(to_np(x > 1.5), a > 1.5)
    np.testing.assert_array_equal(to_np(2 < x), 2 < a)
    np.testing.assert_array_equal(to_np(2.0 >= x), 2.0 >= a)
    np.testing.assert_array_equal(to_np(x == 2), a == 2)


def test_max_min_namedtuple():
    a = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    x = tg.tensor(a)
    r = x.max(dim=1)
    np.testing.assert_array_equal(to_np(r.values), [5.0, 6.0])
    np.testing.assert_array_equal(to_np(r.indices), [1, 2])
    assert r.indices.dtype == tg.int64
    v, i = x.min(dim=0)
    np.testing.assert_array_equal(to_np(v), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(to_np(i), [0, 1, 0])
    assert x.max().item() == 6.0 and x.min().item() == 1.0
    assert tg.max(x).item() == 6.0
    k = x.max(dim=0, keepdim=True)
    assert k.values.shape == (1, 3) and k.indices.shape == (1, 3)


def test_argmax_argmin():
    a = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    x = tg.tensor(a)
    assert x.argmax().item() == 5
    assert x.argmin().item() == 0
    np.testing.assert_array_equal(to_np(x.argmax(dim=1)), [1, 2])
    np.testing.assert_array_equal(to_np(tg.argmin(x, dim=1)), [0, 1])
    assert x.argmax(dim=1, keepdim=True).shape == (2, 1)


def test_int_tensor_ops():
    i = tg.tensor([3, -1, 2])
    np.testing.assert_array_equal(to_np(i + i), [6, -2, 4])
    np.testing.assert_array_equal(to_np(i * 2), [6, -2, 4])
    np.testing.assert_array_equal(to_np(i.abs()), [3, 1, 2])
    assert (i + i).dtype == tg.int64
    assert i.sum().item() == 4 and i.sum().dtype == tg.int64
    np.testing.assert_array_equal(to_np(-i), [-3, 1, -2])


def test_bool_sum_counts():
    b = tg.tensor([True, False, True])
    assert b.sum().item() == 2
    assert b.sum().dtype == tg.int64


# ============================================================================
# indexing
# ============================================================================
A = np.arange(24.0).reshape(2, 3, 4)
INDEX_CASES = {
    "int": lambda t: t[1],
    "neg_int": lambda t: t[-1],
    "slice": lambda t: t[:, 1:3],
    "step": lambda t: t[:, ::2, 1::2],
    "neg_slice": lambda t: t[..., -3:-1],
    "int_and_slice": lambda t: t[0, 1:, 2],
    "none": lambda t: t[None],
    "none_mid": lambda t: t[:, None, 1],
    "ellipsis": lambda t: t[..., 0],
    "ellipsis_mid": lambda t: t[1, ..., 2],
    "all_ints": lambda t: t[1, 2, 3],
    "list": lambda t: t[[1, 0, 1]],
    "empty_slice": lambda t: t[:, 2:1],
}


@pytest.mark.parametrize("case", list(INDEX_CASES))
def test_indexing_matches_numpy(case):
    f = INDEX_CASES[case]
    got = f(tg.tensor(A))
    want = np.asarray(f(A))
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(to_np(got), want)


@pytest.mark.parametrize("idx", [[2, 0, 2], [-1, 0], [[0, 1], [2, 2]]])
def test_integer_array_indexing(idx):
    idx = np.array(idx)
    got = tg.tensor(A[0])[tg.tensor(idx)]
    want = A[0][idx]
    assert tuple(got.shape) == want.shape
    np.testing.assert_array_equal(to_np(got), want)


def test_slices_are_views():
    t = tg.zeros(3, 4)
    with tg.no_grad():
        t[1].fill_(2.0)
        t[:, 3].fill_(5.0)
        t[0:1, 0:2].zero_()
    want = np.zeros((3, 4))
    want[1] = 2.0
    want[:, 3] = 5.0
    np.testing.assert_array_equal(to_np(t), want)


def test_transpose_is_a_view():
    t = tg.zeros(2, 3)
    with tg.no_grad():
        t.T[2].fill_(1.0)
    np.testing.assert_array_equal(to_np(t), [[0, 0, 1], [0, 0, 1]])


def test_reshape_view_shares_when_contiguous():
    t = tg.zeros(2, 3)
    v = t.view(6)
    with tg.no_grad():
        v.fill_(4.0)
    np.testing.assert_array_equal(to_np(t), np.full((2, 3), 4.0))


# ============================================================================
# in-place ops
# ============================================================================
def test_inplace_ops_values():
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64)
    with tg.no_grad():
        x.add_(tg.tensor([1.0, 1.0, 1.0], dtype=tg.float64))
        np.testing.assert_array_equal(to_np(x), [2.0, 3.0, 4.0])
        x.mul_(2.0)
        np.testing.assert_array_equal(to_np(x), [4.0, 6.0, 8.0])
        x.add_(1.0)
        np.testing.assert_array_equal(to_np(x), [5.0, 7.0, 9.0])
        x.copy_(tg.tensor([0.5, 0.25, 0.125]))  # float32 source is cast
        np.testing.assert_array_equal(to_np(x), [0.5, 0.25, 0.125])
        x.fill_(3.0)
        np.testing.assert_array_equal(to_np(x), [3.0, 3.0, 3.0])
        x.zero_()
        np.testing.assert_array_equal(to_np(x), [0.0, 0.0, 0.0])


def test_inplace_ops_return_self():
    x = tg.ones(3)
    with tg.no_grad():
        assert x.add_(1.0) is x
        assert x.mul_(2.0) is x
        assert x.zero_() is x
        assert x.fill_(1.0) is x
        assert x.copy_(tg.zeros(3)) is x


def test_inplace_broadcast():
    x = tg.zeros(2, 3)
    x.add_(tg.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(to_np(x), [[1, 2, 3], [1, 2, 3]])
    x.copy_(tg.tensor([[7.0], [8.0]]))
    np.testing.assert_array_equal(to_np(x), [[7, 7, 7], [8, 8, 8]])


def test_inplace_on_leaf_requiring_grad_under_no_grad_is_allowed():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        w.add_(tg.tensor([0.5, 0.5]))
        w.mul_(2.0)
    np.testing.assert_array_equal(to_np(w), [3.0, 5.0])
    assert w.requires_grad and w.is_leaf
    (w * w).sum().backward()
    np.testing.assert_array_equal(to_np(w.grad), [6.0, 10.0])


def test_inplace_on_plain_tensor_with_grad_enabled():
    x = tg.ones(2)
    x.mul_(3.0)  # no grad involved: allowed outside no_grad too
    np.testing.assert_array_equal(to_np(x), [3.0, 3.0])


# ============================================================================
# more PyTorch semantics
# ============================================================================
@pytest.mark.parametrize("name", ["exp", "sqrt", "sin", "sigmoid", "tanh", "log"])
def test_float_ops_on_int_tensors_give_float32(name):
    i = tg.tensor([1, 2, 3])
    out = getattr(i, name)()
    assert out.dtype == tg.float32
    ref = (lambda a: 1 / (1 + np.exp(-a))) if name == "sigmoid" else getattr(np, name)
    np.testing.assert_allclose(to_np(out), ref(np.array([1.0, 2.0, 3.0])), rtol=1e-6)


def test_argmax_ties_pick_first():
    x = tg.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(to_np(x.argmax(dim=1)), [1, 0])
    np.testing.assert_array_equal(to_np(x.max(dim=1).indices), [1, 0])
    np.testing.assert_array_equal(to_np(x.argmin(dim=1)), [0, 2])
    assert x.argmax().item() == 1


def test_max_indices_do_not_require_grad():
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    r = x.max(dim=1)
    assert r.values.requires_grad
    assert not r.indices.requires_grad
    assert not x.argmax().requires_grad
    assert not (x > 1.0).requires_grad


def test_bool_mask_indexing():
    a = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    x = tg.tensor(a, requires_grad=True)
    m = x > 0
    y = x[m]
    np.testing.assert_array_equal(to_np(y), a[a > 0])
    (y * 2.0).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), np.where(a > 0, 2.0, 0.0))


def test_where_with_python_scalars():
    a = np.array([1.0, -2.0, 3.0])
    x = tg.tensor(a, requires_grad=True)
    y = tg.where(x > 0, x, 0.0)
    np.testing.assert_array_equal(to_np(y), np.where(a > 0, a, 0.0))
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [1.0, 0.0, 1.0])


def test_iteration_over_rows():
    a = np.arange(6.0).reshape(3, 2)
    rows = [to_np(r) for r in tg.tensor(a)]
    assert len(rows) == 3
    for r, want in zip(rows, a):
        np.testing.assert_array_equal(r, want)


def test_item_of_tensor_requiring_grad():
    x = tg.tensor([1.5], requires_grad=True)
    assert (x * 2.0).item() == 3.0


def test_zero_dim_indexing():
    s = tg.tensor(2.0)
    assert s[None].shape == (1,)
    assert s[...].shape == ()
    assert s[...].item() == 2.0


def test_inplace_on_view_of_parameter_under_no_grad():
    w = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with tg.no_grad():
        w[0].fill_(0.0)
        w[:, 1].mul_(10.0)
    np.testing.assert_array_equal(to_np(w), [[0.0, 0.0], [3.0, 40.0]])
    assert w.is_leaf and w.requires_grad


def test_add_with_alpha():
    x = tg.ones(2)
    with tg.no_grad():
        x.add_(tg.tensor([1.0, 2.0]), alpha=-0.5)
    np.testing.assert_array_equal(to_np(x), [0.5, 0.0])


@pytest.mark.parametrize("make", [tg.from_numpy, tg.tensor], ids=["from_numpy", "tensor"])
def test_non_native_byte_order(make):
    """A big-endian array is either converted correctly or refused (torch refuses
    with ValueError); silently reinterpreting its bytes is wrong."""
    a = np.array([1.0, 2.0, -3.5], dtype=">f8")
    try:
        t = make(a)
    except (ValueError, TypeError):
        return
    assert t.dtype == tg.float64  # a NumPy float64 array keeps its dtype
    np.testing.assert_array_equal(to_np(t), [1.0, 2.0, -3.5])


@pytest.mark.parametrize("np_dtype", [np.int32, np.float16, np.complex128, np.uint8])
def test_from_numpy_unsupported_dtype(np_dtype):
    with pytest.raises(TypeError, match="from_numpy"):
        tg.from_numpy(np.zeros(2, dtype=np_dtype))


def test_numpy_of_tensor_requiring_grad_refused_like_torch():
    with pytest.raises(RuntimeError, match="numpy"):
        tg.ones(2, requires_grad=True).numpy()


def test_python_number_conversions():
    assert float(tg.tensor(2.5)) == 2.5
    assert int(tg.tensor(3)) == 3
    assert bool(tg.tensor(True)) is True
    with pytest.raises(RuntimeError):
        bool(tg.ones(2))
