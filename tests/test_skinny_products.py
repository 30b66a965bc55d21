"""Matrix products with one row, one column or an inner size of one.

The core sends them to GEMV, or writes an outer product directly, instead of
GEMM (Note [Skinny products] in cpp/src/kernels/blas.cpp). These tests cover
every transposition of both operands (transposed views are what backward
passes hand to the GEMM wrapper), both float types, and the reuse of a cached
buffer that holds NaN: a path that accumulated into its output instead of
overwriting it would return NaN or a stale sum.
"""

import itertools

import numpy as np
import pytest

import tapegrad as tg

SHAPES = [(1, 7, 5), (6, 1, 5), (6, 7, 1), (1, 1, 5), (1, 7, 1), (6, 1, 1), (1, 1, 1),
          (1, 250, 100), (100, 1, 250)]  # (m, k, n); the last two: the NER model at batch 1


def operand(rng, rows, cols, transposed, dtype):
    """A rows x cols tensor, stored transposed (a .t() view) when asked."""
    a = rng.standard_normal((rows, cols)).astype(dtype)
    if transposed:
        return tg.from_numpy(np.ascontiguousarray(a.T)).t(), a
    return tg.from_numpy(a), a


def poison_cache(shape, dtype):
    """Leaves a NaN-filled block of the product's size in the allocator's cache."""
    t = tg.full(shape, float("nan"), dtype=dtype)
    del t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
def test_forward_matches_numpy(m, k, n, ta, tb, dtype):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, an = operand(rng, m, k, ta, dtype)
    b, bn = operand(rng, k, n, tb, dtype)
    tdt = tg.float32 if dtype == np.float32 else tg.float64
    poison_cache((m, n), tdt)
    out = (a @ b).numpy()
    ref = an.astype(np.float64) @ bn.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * k)
    assert not np.isnan(out).any()


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gradients_match_numpy(m, k, n):
    # backward computes dA = g @ B^T (inner size n) and dB = A^T @ g (inner size
    # m): with m or n equal to one those are the outer-product and GEMV paths
    rng = np.random.default_rng(7 + m + k + n)
    an = rng.standard_normal((m, k))
    bn = rng.standard_normal((k, n))
    gn = rng.standard_normal((m, n))
    a = tg.tensor(an, requires_grad=True)
    b = tg.tensor(bn, requires_grad=True)
    poison_cache((m, k), tg.float64)
    poison_cache((k, n), tg.float64)
    (a @ b).backward(tg.tensor(gn))
    np.testing.assert_allclose(a.grad.numpy(), gn @ bn.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), an.T @ gn, rtol=1e-12, atol=1e-12)


def test_outer_product_through_strided_operands():
    # a column taken out of a wider matrix (stride != 1) times a row of another
    rng = np.random.default_rng(3)
    big_a = rng.standard_normal((9, 4)).astype(np.float32)
    big_b = rng.standard_normal((3, 8)).astype(np.float32)
    a = tg.from_numpy(big_a)[:, 2:3]        # 9 x 1, row stride 4
    b = tg.from_numpy(big_b.T.copy()).t()[1:2, :]  # 1 x 8 from a transposed view
    poison_cache((9, 8), tg.float32)
    out = (a @ b).numpy()
    np.testing.assert_array_equal(out, big_a[:, 2:3] * big_b[1:2, :])


def test_linear_at_batch_one_gradcheck():
    x = tg.randn(1, 6, dtype=tg.float64, requires_grad=True)
    w = tg.randn(4, 6, dtype=tg.float64, requires_grad=True)
    bias = tg.randn(4, dtype=tg.float64, requires_grad=True)
    assert tg.autograd.gradcheck(lambda x, w, b: tg.nn.functional.linear(x, w, b).tanh(),
                                 (x, w, bias))
