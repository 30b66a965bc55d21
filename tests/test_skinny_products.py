"""Matrix products the core does not hand to BLAS's GEMM.

One row, one column or an inner size of one go to GEMV, or an outer product
is written directly (Note [Skinny products] in cpp/src/kernels/blas.cpp). A
product with one dimension of 2 to 6 (``kSmallGemmDim``) runs on the core's
own kernels (Note [Small-dimension products] in
cpp/src/kernels/small_gemm.cpp): small k vectors along C's rows, small n dot
products (A contiguous along k) or broadcasts (A contiguous along m), small m
the transposed problem. These tests cover every transposition of both
operands (transposed views are what backward passes hand to the GEMM
wrapper), both float types, operands sliced out of wider matrices, sizes that
leave partial vectors at every edge and 7 on either side of the limit (BLAS
again), the backward of broadcast matmuls (which accumulates into C),
infinities in the last partial vector, one and two threads, and the reuse of a
cached buffer that holds NaN: a path that accumulated into its output instead
of overwriting it would return NaN or a stale sum.
"""

import itertools

import numpy as np
import pytest

import tapegrad as tg

SHAPES = [(1, 7, 5), (6, 1, 5), (6, 7, 1), (1, 1, 5), (1, 7, 1), (6, 1, 1), (1, 1, 1),
          (1, 250, 100), (100, 1, 250),  # (m, k, n); these two: the NER model at batch 1
          # the core's GEMV (Note [Core GEMV]): rows not a multiple of 4, columns
          # not of 16, exact multiples, and more than one 256-column block
          (1, 17, 33), (33, 17, 1), (1, 16, 32), (32, 16, 1), (1, 300, 301), (301, 300, 1)]
# One dimension of 2..7 (m, k, n): the NER model's last layer at batch 512 and
# 32 (n = 5 forward, k = 5 input gradient, m = 5 weight gradient), then each
# small size at each position, with lengths that are and are not multiples of
# 8 (AVX float lanes) or 4 (double).
SMALL = [(512, 100, 5), (5, 512, 100), (512, 5, 100), (32, 100, 5), (5, 32, 100), (32, 5, 100)]
for _s in (2, 3, 4, 5, 6, 7):
    SMALL += [(37, 19, _s), (_s, 37, 19), (37, _s, 19), (16, 8, _s), (_s, 16, 8), (16, _s, 8)]
SMALL += [(6, 6, 6), (2, 3, 4), (300, 2, 2), (2, 300, 2), (2, 2, 300)]


def operand(rng, rows, cols, transposed, dtype, sliced=False):
    """A rows x cols tensor: a .t() view when transposed, a column slice of a
    wider matrix (leading dimension > cols) when sliced."""
    a = rng.standard_normal((rows, cols)).astype(dtype)
    stored = np.ascontiguousarray(a.T) if transposed else a
    if sliced:
        wide = np.zeros((stored.shape[0], stored.shape[1] + 3), dtype)
        wide[:, :stored.shape[1]] = stored
        t = tg.from_numpy(wide)[:, :stored.shape[1]]
    else:
        t = tg.from_numpy(stored)
    return (t.t() if transposed else t), a


def poison_cache(shape, dtype):
    """Leaves a NaN-filled block of the product's size in the allocator's cache."""
    t = tg.full(shape, float("nan"), dtype=dtype)
    del t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES + SMALL)
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


@pytest.mark.parametrize("m,k,n", SHAPES + SMALL)
def test_gradients_match_numpy(m, k, n):
    # backward computes dA = g @ B^T (inner size n) and dB = A^T @ g (inner size
    # m): with m or n equal to one those are the outer-product and GEMV paths,
    # with one of them small the core's kernels
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


TOL = {np.float32: 2e-5, np.float64: 1e-12}


def unbroadcast(g, shape):
    """Sums a broadcast gradient back to the operand's shape."""
    return g.reshape((-1,) + tuple(shape)).sum(0) if g.ndim > len(shape) else g


def check(out, ref, k, dtype):
    tol = TOL[dtype]
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * max(k, 1) ** 0.5 * 4)


@pytest.mark.parametrize("m,k,n", [(37, 19, 5), (5, 37, 19), (37, 5, 19), (512, 100, 5),
                                   (1, 19, 37), (37, 19, 1), (1, 40, 300), (300, 40, 1)])
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
def test_operands_sliced_from_wider_matrices(m, k, n, ta, tb):
    rng = np.random.default_rng(11)
    a, an = operand(rng, m, k, ta, np.float32, sliced=True)
    b, bn = operand(rng, k, n, tb, np.float32, sliced=True)
    # (a slice of one row or column is contiguous whatever the matrix it came from)
    assert min(m, k) == 1 or not a.is_contiguous()
    assert min(k, n) == 1 or not b.is_contiguous()
    check((a @ b).numpy(), an.astype(np.float64) @ bn.astype(np.float64), k, np.float32)


@pytest.mark.parametrize("m,k,n", [(37, 19, 5), (5, 37, 19), (37, 5, 19), (19, 37, 3),
                                   (1, 19, 37), (37, 19, 1), (1, 37, 19), (19, 37, 1)])
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
def test_infinities_in_the_last_partial_vector_stay_infinite(m, k, n, ta, tb):
    # the kernels zero-pad partial vectors: a padded lane that read past the
    # data (or multiplied inf by a padding 0) would turn inf into NaN
    an = np.ones((m, k), np.float32)
    bn = np.ones((k, n), np.float32)
    an[-1, -1] = np.inf
    bn[-1, -1] = np.inf
    a = tg.from_numpy(np.ascontiguousarray(an.T)).t() if ta else tg.from_numpy(an)
    b = tg.from_numpy(np.ascontiguousarray(bn.T)).t() if tb else tg.from_numpy(bn)
    out = (a @ b).numpy()
    with np.errstate(invalid="ignore"):
        ref = an @ bn
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite])


@pytest.mark.parametrize("shape_a,shape_b", [((3, 37, 19), (19, 5)), ((3, 5, 37), (37, 19)),
                                             ((4, 37, 5), (5, 19)), ((37, 19), (2, 19, 4)),
                                             # GEMV with beta = 1: n = 1, then m = 1
                                             ((3, 4, 19), (19, 1)), ((1, 19), (3, 19, 5))])
def test_broadcast_matmul_gradients_accumulate(shape_a, shape_b):
    # the gradient of the broadcast operand sums one product per batch entry
    # into the same output (beta = 1 after the first)
    rng = np.random.default_rng(2)
    an = rng.standard_normal(shape_a)
    bn = rng.standard_normal(shape_b)
    a = tg.tensor(an, requires_grad=True)
    b = tg.tensor(bn, requires_grad=True)
    out = a @ b
    gn = rng.standard_normal(out.shape)
    out.backward(tg.tensor(gn))
    batch = np.broadcast_shapes(an.shape[:-2], bn.shape[:-2])
    a_full = np.broadcast_to(an, batch + an.shape[-2:])
    b_full = np.broadcast_to(bn, batch + bn.shape[-2:])
    ga = unbroadcast(gn @ np.swapaxes(b_full, -1, -2), an.shape)
    gb = unbroadcast(np.swapaxes(a_full, -1, -2) @ gn, bn.shape)
    np.testing.assert_allclose(a.grad.numpy(), ga, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(b.grad.numpy(), gb, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("fan_in,fan_out", [(100, 5), (5, 100), (19, 2), (3, 6)])
def test_linear_gradcheck(fan_in, fan_out):
    x = tg.randn(9, fan_in, dtype=tg.float64, requires_grad=True)
    w = tg.randn(fan_out, fan_in, dtype=tg.float64, requires_grad=True)
    bias = tg.randn(fan_out, dtype=tg.float64, requires_grad=True)
    assert tg.autograd.gradcheck(lambda x, w, b: tg.nn.functional.linear(x, w, b).tanh(),
                                 (x, w, bias))


@pytest.mark.parametrize("m,k,n", [(512, 100, 5), (5, 512, 100), (512, 5, 100), (4096, 64, 3)])
def test_results_do_not_depend_on_the_thread_count(m, k, n):
    rng = np.random.default_rng(4)
    a = tg.from_numpy(rng.standard_normal((m, k)).astype(np.float32))
    bt = tg.from_numpy(rng.standard_normal((n, k)).astype(np.float32)).t()
    before = tg.get_num_threads()
    try:
        tg.set_num_threads(1)
        one = (a @ bt).numpy()
        tg.set_num_threads(2)
        two = (a @ bt).numpy()
    finally:
        tg.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_ner_output_layer_matches_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference here")
    rng = np.random.default_rng(9)
    h = rng.standard_normal((512, 100)).astype(np.float32)
    w = rng.standard_normal((5, 100)).astype(np.float32)
    g = rng.standard_normal((512, 5)).astype(np.float32)
    th, tw = torch.tensor(h, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.linear(th, tw).backward(torch.tensor(g))
    xh, xw = tg.tensor(h, requires_grad=True), tg.tensor(w, requires_grad=True)
    out = tg.nn.functional.linear(xh, xw)
    out.backward(tg.tensor(g))
    np.testing.assert_allclose(out.detach().numpy(), (th @ tw.T).detach().numpy(),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(xh.grad.numpy(), th.grad.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(xw.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-4)
