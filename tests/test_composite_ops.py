"""The composite ops of tapegrad._composite_ops that tests/op_specs.py cannot
cover: integer and bool results (indices, counts, masks), ties, edge cases
(zeros, infinities, empty inputs) and the errors bad input raises. The
differentiable ones have specs in tests/op_specs.py."""

import math

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip(
    "torch", reason="torch is not installed (CI installs torch==2.13.0); the composite ops are "
    "checked against it")


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def both(a):
    """The same values as a tapegrad and a torch tensor."""
    a = np.asarray(a)
    return tg.from_numpy(a.copy()), torch.from_numpy(a.copy())


def same(got, want):
    """Equal values, shape and dtype (a tapegrad tensor against a torch one)."""
    assert isinstance(got, tg.Tensor), type(got)
    w = want.detach().numpy()
    g = to_np(got)
    assert g.dtype == w.dtype, (g.dtype, w.dtype)
    assert g.shape == w.shape, (g.shape, w.shape)
    np.testing.assert_array_equal(g, w)


RNG = np.random.default_rng(0)
TIES = np.array([[3.0, 1.0, 3.0, 2.0, 1.0], [0.0, 0.0, -1.0, 0.0, 5.0]])


# ---------------------------------------------------------------- sorting
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sort_ties_are_stable_like_torch(descending, dim):
    x, tx = both(TIES)
    got = tg.sort(x, dim=dim, descending=descending)
    want = torch.sort(tx, dim=dim, descending=descending, stable=True)
    same(got.values, want.values)
    same(got.indices, want.indices)
    same(x.argsort(dim=dim, descending=descending), torch.argsort(tx, dim=dim, descending=descending,
                                                                  stable=True))


def test_sort_returns_a_namedtuple_and_handles_nan_int_bool_0d():
    r = tg.sort(tg.tensor([2.0, 1.0]))
    assert type(r).__name__ == "sort" and r._fields == ("values", "indices")
    v, i = r
    assert v is r.values and i is r.indices
    for arr in (np.array([1.0, np.nan, -1.0, np.nan]), np.array([3, -1, 3, 0]),
                np.array([True, False, True])):
        x, tx = both(arr)
        for desc in (False, True):
            got, want = tg.sort(x, descending=desc), torch.sort(tx, descending=desc, stable=True)
            same(got.indices, want.indices)
            np.testing.assert_array_equal(to_np(got.values), want.values.numpy())
    x, tx = both(np.array(2.5))
    same(tg.sort(x).indices, torch.sort(tx).indices)
    same(tg.sort(x).values, torch.sort(tx).values)


def test_topk_matches_torch():
    a = RNG.permutation(24).reshape(4, 6).astype(np.float64)
    x, tx = both(a)
    for k, dim, largest in ((3, -1, True), (2, 0, False), (0, 1, True), (6, 1, False)):
        got, want = tg.topk(x, k, dim=dim, largest=largest), torch.topk(tx, k, dim=dim, largest=largest)
        assert type(got).__name__ == "topk"
        same(got.values, want.values)
        same(got.indices, want.indices)


def test_sort_values_are_differentiable_through_gather():
    a = RNG.permutation(6).astype(np.float64)
    x = tg.from_numpy(a.copy()).requires_grad_()
    v = x.topk(2).values
    assert v.requires_grad
    v.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), (a >= 4).astype(np.float64))


def test_sort_errors():
    with pytest.raises(IndexError, match="sort.*dimension 2"):
        tg.sort(tg.ones(2, 3), dim=2)
    with pytest.raises(RuntimeError, match=r"topk.*k=4.*size 3"):
        tg.topk(tg.ones(2, 3), 4)
    with pytest.raises(RuntimeError, match="topk"):
        tg.ones(3).topk(-1)
    with pytest.raises(TypeError, match="sort"):
        tg.sort([1.0, 2.0])


# ---------------------------------------------------------------- masked_fill
def test_masked_fill_matches_torch_and_is_out_of_place():
    a = RNG.standard_normal((3, 4))
    x, tx = both(a)
    m, tm = both(a > 0.3)
    same(x.masked_fill(m, 2), tx.masked_fill(tm, 2))
    same(tg.masked_fill(x, m[0], float("-inf")), torch.masked_fill(tx, tm[0], float("-inf")))
    same(x.masked_fill(m, tg.tensor(7.0, dtype=tg.float64)), tx.masked_fill(tm, torch.tensor(7.0)))
    xi, txi = both(np.arange(6).reshape(2, 3))
    mi, tmi = both(np.array([True, False, True]))
    same(xi.masked_fill(mi, -1), txi.masked_fill(tmi, -1))
    np.testing.assert_array_equal(to_np(x), a)  # the input is untouched


def test_masked_fill_errors():
    x = tg.ones(2, 3)
    with pytest.raises(RuntimeError, match="masked_fill.*boolean masks.*int64"):
        x.masked_fill(tg.tensor([1, 0, 1]), 0.0)
    with pytest.raises(RuntimeError, match="masked_fill.*0-dimensional"):
        x.masked_fill(x > 0, tg.ones(3))
    with pytest.raises(ValueError, match=r"\[2, 3\].*\[2\]|\[2\].*\[2, 3\]"):
        x.masked_fill(tg.tensor([True, False]), 0.0)
    with pytest.raises(TypeError, match="masked_fill"):
        x.masked_fill(x > 0, "a")


# ---------------------------------------------------------------- shapes
def test_shape_ops_match_torch_on_integers():
    a = np.arange(24).reshape(2, 3, 4)
    x, tx = both(a)
    same(x.repeat(2, 1, 1, 2), tx.repeat(2, 1, 1, 2))
    same(x.repeat([1, 2, 1]), tx.repeat([1, 2, 1]))
    for got, want in zip(tg.unbind(x, 1), torch.unbind(tx, 1)):
        same(got, want)
    same(x.unflatten(2, (2, 2)), tx.unflatten(2, (2, 2)))
    same(tg.unflatten(x, -1, (-1, 2)), torch.unflatten(tx, -1, (-1, 2)))
    same(tg.flip(x, [0, -1]), torch.flip(tx, [0, -1]))
    same(tg.roll(x, 5), torch.roll(tx, 5))
    same(tg.roll(x, (-1, 7), (2, 1)), torch.roll(tx, (-1, 7), (2, 1)))
    same(tg.broadcast_to(x[:, :1], (5, 2, 3, 4)), torch.broadcast_to(tx[:, :1], (5, 2, 3, 4)))
    for k in (-2, 0, 1, 5):
        same(tg.tril(x, k), torch.tril(tx, k))
        same(x.triu(k), tx.triu(k))
        same(tg.diag(x[0], k), torch.diag(tx[0], k))
        same(tg.diag(x[0, 0], k), torch.diag(tx[0, 0], k))
    same(tg.trace(x[0]), torch.trace(tx[0]))
    idx, tidx = both(np.array([[0, -1], [23, 5]]))
    same(tg.take(x, idx), torch.take(tx, tidx))
    for indexing in ("ij", "xy"):
        a1, b1, c1 = both(np.arange(3)), both(np.arange(4) * 10), both(np.array(7))
        got = tg.meshgrid(a1[0], b1[0], c1[0], indexing=indexing)
        want = torch.meshgrid(a1[1], b1[1], c1[1], indexing=indexing)
        for g, w in zip(got, want):
            same(g, w)


def test_shape_op_errors():
    x = tg.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"repeat.*\[2\].*\[2, 3\]"):
        x.repeat(2)
    with pytest.raises(RuntimeError, match=r"unflatten.*\[2, 2\].*3"):
        x.unflatten(1, (2, 2))
    with pytest.raises(IndexError, match="unbind"):
        tg.unbind(tg.tensor(1.0))
    with pytest.raises(RuntimeError, match="flip.*repeated"):
        tg.flip(x, (0, 0))
    with pytest.raises(RuntimeError, match="roll.*shifts: 2, dims: 1"):
        tg.roll(x, (1, 2), (0,))
    with pytest.raises(RuntimeError, match=r"broadcast_to.*\[2, 3\].*\[3, 3\]"):
        tg.broadcast_to(x, (3, 3))
    with pytest.raises(RuntimeError, match=r"tril.*at least 2.*\[3\]"):
        tg.tril(tg.ones(3))
    with pytest.raises(RuntimeError, match=r"diag.*3D"):
        tg.diag(tg.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match=r"trace.*\[3\]"):
        tg.trace(tg.ones(3))
    with pytest.raises(IndexError, match="take.*index 6.*6 elements"):
        tg.take(x, tg.tensor([6]))
    with pytest.raises(TypeError, match="take.*int64"):
        tg.take(x, tg.tensor([0.0]))
    with pytest.raises(RuntimeError, match="meshgrid.*0D or 1D"):
        tg.meshgrid(x, indexing="ij")
    with pytest.raises(ValueError, match="meshgrid.*indexing"):
        tg.meshgrid(tg.ones(2), indexing="yx")


# ---------------------------------------------------------------- scans
def test_cumsum_cumprod_dtypes_and_values_match_torch():
    for arr in (np.arange(12).reshape(3, 4) - 5, np.array([[True, False], [True, True]]),
                RNG.standard_normal((3, 4)).astype(np.float32)):
        x, tx = both(arr)
        for dim in (0, -1):
            for name in ("cumsum", "cumprod"):
                got, want = getattr(tg, name)(x, dim), getattr(torch, name)(tx, dim)
                assert to_np(got).dtype == want.numpy().dtype
                np.testing.assert_allclose(to_np(got), want.numpy(), rtol=1e-6)
    x, tx = both(np.arange(4))
    same(x.cumsum(0, dtype=tg.float64), tx.cumsum(0, dtype=torch.float64))
    with pytest.raises(IndexError, match="cumsum.*dimension 2"):
        tg.cumsum(tg.ones(2, 2), 2)


def test_cumsum_is_linear_time():
    # A triangular-matmul cumsum of 2e6 elements would need 4e12 multiply-adds.
    x = tg.ones(2_000_000, dtype=tg.float64, requires_grad=True)
    y = x.cumsum(0)
    assert y[-1].item() == 2_000_000
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad)[[0, -1]], [2_000_000, 1])


@pytest.mark.parametrize("vals", [[2.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, -2.0, 4.0]])
def test_prod_and_cumprod_gradients_with_zeros_match_torch(vals):
    x = tg.tensor(vals, dtype=tg.float64, requires_grad=True)
    tx = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
    w = np.arange(1.0, len(vals) + 1)
    ((x.cumprod(0) * tg.from_numpy(w)).sum() + x.prod()).backward()
    ((tx.cumprod(0) * torch.from_numpy(w)).sum() + tx.prod()).backward()
    np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=1e-12)


def test_prod_dtypes_and_empty():
    for arr in (np.array([[1, 2], [3, 4]]), np.array([True, True]), np.zeros((0, 3))):
        x, tx = both(arr)
        same(tg.prod(x), torch.prod(tx))
        same(x.prod(0), tx.prod(0))
        same(x.prod(-1, keepdim=True), tx.prod(-1, keepdim=True))


# ---------------------------------------------------------------- elementwise
def test_log1p_expm1_accurate_for_tiny_inputs():
    tiny = np.array([1e-12, -3e-15, 1e-300, 0.0])
    x, tx = both(tiny)
    np.testing.assert_allclose(to_np(tg.log1p(x)), np.log1p(tiny), rtol=1e-15)
    np.testing.assert_allclose(to_np(tg.expm1(x)), np.expm1(tiny), rtol=1e-15)
    same(x.log1p(), tx.log1p())


def test_erf_matches_math():
    a = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(to_np(tg.erf(tg.from_numpy(a))), [math.erf(v) for v in a], rtol=1e-14)


def test_rounding_matches_torch_with_ties_and_specials():
    a = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 1.7, -1.7, np.inf, -np.inf, np.nan, -0.2])
    x, tx = both(a)
    for name in ("floor", "ceil", "round", "trunc", "frac"):
        np.testing.assert_array_equal(to_np(getattr(tg, name)(x)), getattr(torch, name)(tx).numpy(),
                                      err_msg=name)
    np.testing.assert_array_equal(to_np(x.round(decimals=1)), tx.round(decimals=1).numpy())
    xi, txi = both(np.array([3, -2]))
    for name in ("floor", "ceil", "round", "trunc"):
        same(getattr(xi, name)(), getattr(txi, name)())


def test_rounding_gradients_are_zero_and_present():
    x = tg.tensor([0.3, 1.7], requires_grad=True)
    for f in (tg.floor, tg.ceil, tg.round, tg.trunc):
        y = f(x)
        assert y.requires_grad
        y.sum().backward()
        np.testing.assert_array_equal(to_np(x.grad), [0.0, 0.0])
        x.grad = None
    with tg.no_grad():
        assert not tg.floor(x).requires_grad


def test_nan_to_num_isinf_isfinite_match_torch():
    a = np.array([1.0, np.nan, np.inf, -np.inf, -0.0])
    for dt in (np.float32, np.float64):
        x, tx = both(a.astype(dt))
        same(tg.nan_to_num(x), torch.nan_to_num(tx))
        same(x.nan_to_num(nan=2.0, posinf=1.0, neginf=-1.0), tx.nan_to_num(nan=2.0, posinf=1.0, neginf=-1.0))
        same(tg.isinf(x), torch.isinf(tx))
        same(x.isfinite(), tx.isfinite())
    for ints in (np.array([1, 2]), np.array([True, False]), np.array(-np.inf)):
        xi, txi = both(ints)
        same(tg.isinf(xi), torch.isinf(txi))
        same(tg.isfinite(xi), torch.isfinite(txi))
    g = tg.tensor(a, requires_grad=True)
    tg.nan_to_num(g).sum().backward()
    np.testing.assert_array_equal(to_np(g.grad), [1.0, 0.0, 0.0, 0.0, 1.0])


def test_int_inputs_promote_like_torch():
    x, tx = both(np.array([1, 4, 9]))
    for name in ("log2", "log10", "rsqrt", "reciprocal", "log1p", "expm1", "erf"):
        got, want = getattr(tg, name)(x), getattr(torch, name)(tx)
        assert to_np(got).dtype == want.numpy().dtype, name
        np.testing.assert_allclose(to_np(got), want.numpy(), rtol=1e-6, err_msg=name)
    same(tg.clamp_min(x, 3), torch.clamp_min(tx, 3))
    same(x.clamp_max(tg.tensor([2, 2, 20])), tx.clamp_max(torch.tensor([2, 2, 20])))


# ---------------------------------------------------------------- reductions and logic
def test_any_all_count_nonzero_match_torch():
    a = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    x, tx = both(a)
    same(tg.any(x), torch.any(tx))
    same(x.all(), tx.all())
    same(tg.any(x, dim=1), torch.any(tx, dim=1))
    same(x.all(0, keepdim=True), tx.all(0, keepdim=True))
    same(tg.any(x, dim=(0, 1)), torch.any(tx, dim=(0, 1)))
    same(tg.count_nonzero(x), torch.count_nonzero(tx))
    same(x.count_nonzero(dim=0), tx.count_nonzero(dim=0))
    same(tg.all(tg.tensor(2.0)), torch.all(torch.tensor(2.0)))
    with pytest.raises(IndexError, match="any.*dimension 2"):
        x.any(dim=2)


def test_nonzero_unique_bincount_match_torch():
    a = np.array([[0, 3, 0], [5, 0, 3]])
    x, tx = both(a)
    same(tg.nonzero(x), torch.nonzero(tx))
    for g, w in zip(x.nonzero(as_tuple=True), tx.nonzero(as_tuple=True)):
        same(g, w)
    x0, tx0 = both(np.array(3.0))
    same(tg.nonzero(x0), torch.nonzero(tx0))
    for kw in ({}, {"return_inverse": True}, {"return_counts": True},
               {"return_inverse": True, "return_counts": True}):
        got, want = tg.unique(x, **kw), torch.unique(tx, **kw)
        for g, w in zip(got if kw else [got], want if kw else [want]):
            same(g, w)
    f, tf = both(np.array([2.5, np.nan, 2.5, -1.0]))
    same(tg.unique(f)[:2], torch.unique(tf)[:2])
    with pytest.raises(NotImplementedError, match="unique.*dim"):
        tg.unique(x, dim=0)
    b, tb = both(np.array([1, 1, 4, 0]))
    same(tg.bincount(b), torch.bincount(tb))
    same(b.bincount(minlength=7), tb.bincount(minlength=7))
    for dt in (np.float32, np.float64):
        w, tw = both(np.array([0.5, 1.0, 2.0, -1.0], dtype=dt))
        same(tg.bincount(b, weights=w), torch.bincount(tb, weights=tw))
    for bad in (tg.tensor([-1]), tg.tensor([[1]]), tg.tensor([1.0])):
        with pytest.raises(RuntimeError, match="bincount.*non-negative"):
            tg.bincount(bad)


def test_norm_gradient_at_zero_is_zero_like_torch():
    for fn in (lambda L, x: L.linalg.vector_norm(x), lambda L, x: L.norm(x),
               lambda L, x: L.linalg.norm(x), lambda L, x: L.norm(x, p=3, dim=1),
               lambda L, x: L.linalg.vector_norm(x, ord=float("inf"))):
        x = tg.zeros(2, 3, dtype=tg.float64, requires_grad=True)
        tx = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
        y, ty = fn(tg, x), fn(torch, tx)
        np.testing.assert_array_equal(to_np(y), ty.detach().numpy())
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_array_equal(to_np(x.grad), tx.grad.numpy())


def test_norm_orders_match_torch_and_errors():
    a = RNG.standard_normal((3, 4))
    x, tx = both(a)
    for ord_ in (0, 1, 2, 3.5, float("inf"), -float("inf")):
        np.testing.assert_allclose(to_np(tg.linalg.vector_norm(x, ord_, dim=1)),
                                   torch.linalg.vector_norm(tx, ord_, dim=1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_np(tg.linalg.norm(x, "fro", keepdim=True)),
                               torch.linalg.norm(tx, "fro", keepdim=True).numpy(), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="nuc"):
        tg.norm(x, p="nuc")
    with pytest.raises(NotImplementedError, match="matrix norm"):
        tg.linalg.norm(x, 2)
    with pytest.raises(RuntimeError, match="vector_norm.*floating"):
        tg.linalg.vector_norm(tg.tensor([1, 2]))


def test_isclose_allclose_equal_match_torch():
    a = np.array([1.0, np.nan, np.inf, 1e-9, 2.0])
    b = np.array([1.0 + 1e-6, np.nan, np.inf, 0.0, 2.1])
    (x, tx), (y, ty) = both(a), both(b)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1, "atol": 0.0}):
        same(tg.isclose(x, y, **kw), torch.isclose(tx, ty, **kw))
        assert tg.allclose(x, y, **kw) == torch.allclose(tx, ty, **kw)
    assert x.allclose(x, equal_nan=True) is True
    assert tg.equal(y, y) is False  # NaN != NaN, as torch
    assert tg.equal(x[:1], y[:1]) is torch.equal(tx[:1], ty[:1]) is False
    assert tg.equal(tg.tensor([1, 2]), tg.tensor([1, 2])) and not tg.equal(tg.ones(2), tg.ones(3))
    with pytest.raises(RuntimeError, match="isclose.*same dtype"):
        tg.isclose(tg.ones(2), tg.ones(2, dtype=tg.float64))
    with pytest.raises(RuntimeError, match=r"isclose.*\[2\].*\[3\]"):
        tg.isclose(tg.ones(2), tg.ones(3))


def test_logical_ops_match_torch():
    a = np.array([0.0, 1.5, -2.0, 0.0])
    b = np.array([1, 0, 3, 0])
    (x, tx), (y, ty) = both(a), both(b)
    for name in ("logical_and", "logical_or", "logical_xor"):
        same(getattr(tg, name)(x, y), getattr(torch, name)(tx, ty))
        same(getattr(x, name)(y), getattr(tx, name)(ty))


# ---------------------------------------------------------------- matrix products
def test_matrix_product_errors_and_addmm_beta_zero():
    with pytest.raises(RuntimeError, match=r"bmm.*\[2, 3\]"):
        tg.bmm(tg.ones(2, 3), tg.ones(2, 3, 4))
    with pytest.raises(RuntimeError, match=r"bmm.*\[2, 3, 4\].*\[3, 4, 5\]"):
        tg.bmm(tg.ones(2, 3, 4), tg.ones(3, 4, 5))
    with pytest.raises(RuntimeError, match=r"mv.*\[2, 3\].*\[2\]"):
        tg.mv(tg.ones(2, 3), tg.ones(2))
    with pytest.raises(RuntimeError, match=r"addmm.*\[2, 3\].*\[2, 3\]"):
        tg.addmm(tg.ones(2, 3), tg.ones(2, 3), tg.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"addmm.*\[4\].*\[2, 3\]"):
        tg.addmm(tg.ones(4), tg.ones(2, 2), tg.ones(2, 3))
    c = np.full((2, 3), np.nan)
    a, b = RNG.standard_normal((2, 4)), RNG.standard_normal((4, 3))
    got = tg.addmm(tg.from_numpy(c), tg.from_numpy(a), tg.from_numpy(b), beta=0, alpha=2)
    want = torch.addmm(torch.from_numpy(c), torch.from_numpy(a), torch.from_numpy(b), beta=0, alpha=2)
    np.testing.assert_allclose(to_np(got), want.numpy(), rtol=1e-12)


def test_einsum_matches_torch_and_rejects_what_it_does_not_support():
    cases = [("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij->", [(3, 4)]), ("i,j->ij", [(3,), (4,)]),
             ("ijk,k->ij", [(2, 3, 4), (4,)]), ("ij,jk->ki", [(3, 4), (4, 5)]), ("ji", [(2, 3)])]
    for eq, shapes in cases:
        arrs = [RNG.standard_normal(s) for s in shapes]
        got = tg.einsum(eq, *[tg.from_numpy(a.copy()) for a in arrs])
        want = torch.einsum(eq, *[torch.from_numpy(a.copy()) for a in arrs])
        assert tuple(got.shape) == tuple(want.shape), eq
        np.testing.assert_allclose(to_np(got), want.numpy(), rtol=1e-12, atol=1e-12, err_msg=eq)
    x = tg.ones(3, 3)
    with pytest.raises(NotImplementedError, match=r"einsum.*'\.\.\.'"):
        tg.einsum("...ij->...ji", x)
    with pytest.raises(ValueError, match="einsum.*repeated"):
        tg.einsum("ii->i", x)
    with pytest.raises(ValueError, match="einsum.*1 or 2"):
        tg.einsum("ij,jk,kl->il", x, x, x)
    with pytest.raises(RuntimeError, match="einsum.*'j' has size 2"):
        tg.einsum("ij,jk->ik", x, tg.ones(2, 3))


def test_amax_amin_take_tuples_of_dims_as_torch():
    a = RNG.permutation(24).reshape(2, 3, 4).astype(np.float64)
    x, tx = both(a)
    for dim in ((), 1, (0, 2), (-1, 0)):
        for keepdim in (False, True):
            same(tg.amax(x, dim, keepdim), torch.amax(tx, dim, keepdim))
            same(x.amin(dim=dim, keepdim=keepdim), tx.amin(dim=dim, keepdim=keepdim))


def test_shape_only_composites_are_recorded_by_compile():
    """Composites that build their constants from shapes alone replay under
    tg.compile; those that read values (sort) raise the core's clear error."""
    def step(x, m):
        return (tg.tril(x) + tg.diag(x.diag()) + x.masked_fill(m, 0.5) + x.flip(0).roll(1, 1)
                + x.repeat(1, 2)[:, :3] + tg.einsum("ij,jk->ik", x, x)).sum()

    f = tg.compile(step)
    for _ in range(4):
        x = tg.randn(3, 3)
        assert f(x, x > 0).item() == step(x, x > 0).item()
    g = tg.compile(lambda x: x.sort().values.sum())
    with pytest.raises(RuntimeError, match="tg.compile records"):
        for _ in range(3):
            g(tg.randn(3))


def test_unflatten_and_rounding_edge_errors():
    x = tg.ones(2, 6)
    for bad in ((4, -1), (-1, -1), (), (0, -1)):
        with pytest.raises(RuntimeError, match="unflatten"):
            x.unflatten(1, bad)
    same(x.unflatten(1, (3, -1)), torch.ones(2, 6).unflatten(1, (3, -1)))
    for name in ("floor", "ceil", "round", "trunc"):
        with pytest.raises(TypeError, match=f"{name}.*bool"):
            getattr(tg, name)(tg.tensor([True]))
        with pytest.raises(RuntimeError):  # torch: NotImplementedError, a RuntimeError
            getattr(torch, name)(torch.tensor([True]))


def test_wrong_argument_types_raise_type_error_naming_the_function():
    x = tg.ones(2, 2)
    cases = {
        "bincount": lambda: tg.bincount(tg.tensor([0, 1]), weights=[1.0, 2.0]),
        "logical_and": lambda: tg.logical_and(x, "a"),
        "bmm": lambda: tg.bmm(x, [[1.0]]),
        "mv": lambda: tg.mv([[1.0]], x),
        "addmm": lambda: tg.addmm(1.0, x, x),
        "einsum": lambda: tg.einsum(3, x),
        "flip": lambda: tg.flip(x, None),
        "sort": lambda: tg.sort(x, dim=0.5),
        "isclose": lambda: tg.isclose(x, 1.0),
    }
    for name, f in cases.items():
        with pytest.raises(TypeError, match=name):
            f()
    with pytest.raises(RuntimeError, match="meshgrid.*non-empty"):
        tg.meshgrid()
