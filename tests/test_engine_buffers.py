"""Engine buffer reuse (Note [Owned gradient buffers], Note [Backward without
allocation] in cpp/src/tape/tape.cpp): gradients are summed in place only into
buffers nothing else can see, and a leaf's .grad never aliases a tensor the
user, a saved tensor or another .grad holds."""

import numpy as np
import pytest

import tapegrad as tg


def to_np(t):
    return np.array(t.detach().numpy(), copy=True)


def leaf(vals):
    return tg.from_numpy(np.array(vals, dtype=np.float64)).requires_grad_(True)


def test_user_gradient_is_never_adopted_as_grad():
    for make_root in (lambda x: x, lambda x: x + 0.0, lambda x: (x + 1.0) - 1.0):
        x = leaf([1.0, 2.0, 3.0])
        g = tg.from_numpy(np.array([1.0, 10.0, 100.0]))
        make_root(x).backward(g)
        np.testing.assert_array_equal(to_np(x.grad), [1.0, 10.0, 100.0])
        g.mul_(0.0)  # the user's tensor changes; .grad must not
        np.testing.assert_array_equal(to_np(x.grad), [1.0, 10.0, 100.0])
        make_root(x).backward(tg.from_numpy(np.array([1.0, 1.0, 1.0])))
        np.testing.assert_array_equal(to_np(x.grad), [2.0, 11.0, 101.0])
        np.testing.assert_array_equal(to_np(g), [0.0, 0.0, 0.0])


def test_fan_out_sums_correctly_in_place_and_not():
    x = leaf([0.5, -1.0])
    y = x * 2.0
    z = (y * 3.0 + y * 4.0 + y + y).sum()  # four contributions into y's slot
    z.backward()
    np.testing.assert_allclose(to_np(x.grad), [18.0, 18.0])


def test_retained_grad_is_not_written_by_later_accumulation():
    x = leaf([1.0, 2.0])
    y = x * 1.0
    y.retain_grad()
    w = y * 1.0
    w.retain_grad()
    (w * 3.0 + w * 4.0).sum().backward()
    np.testing.assert_array_equal(to_np(w.grad), [7.0, 7.0])
    np.testing.assert_array_equal(to_np(y.grad), [7.0, 7.0])
    np.testing.assert_array_equal(to_np(x.grad), [7.0, 7.0])
    before = to_np(y.grad)
    (x * 5.0).sum().backward()  # x.grad accumulates; the retained grads stay
    np.testing.assert_array_equal(to_np(y.grad), before)
    np.testing.assert_array_equal(to_np(x.grad), [12.0, 12.0])


def test_grads_of_two_leaves_are_distinct_buffers():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert a.grad.data_ptr() != b.grad.data_ptr()
    a.grad.mul_(0.0)
    np.testing.assert_array_equal(to_np(b.grad), [1.0, 1.0])


def test_saved_output_is_never_written():
    x = leaf([0.1, 0.2])
    y = tg.exp(x)  # saves its output
    before = to_np(y)
    (y + y).sum().backward()  # y's slot receives the same gradient twice
    np.testing.assert_array_equal(to_np(y), before)
    np.testing.assert_allclose(to_np(x.grad), 2 * np.exp([0.1, 0.2]))


def test_autograd_grad_results_are_independent():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    (gy, gx) = tg.autograd.grad([(y + 0.0).sum()], [y, x])
    np.testing.assert_array_equal(to_np(gy), [1.0, 1.0])
    np.testing.assert_array_equal(to_np(gx), [2.0, 2.0])
    assert gy.data_ptr() != gx.data_ptr()


@pytest.mark.parametrize("n", [1, 2, 5])
def test_repeated_backwards_reuse_scratch_and_stay_correct(n):
    x = leaf(np.linspace(-1, 1, 16))
    for _ in range(n):
        y = x
        for _ in range(32):
            y = y * 1.0001
            y = y + 0.5
        y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), np.full(16, n * 1.0001 ** 32), rtol=1e-12)


def sparse_embedding_grad(retain=False, user_grad=None, padding_idx=None):
    emb = tg.nn.Embedding(10, 3, sparse=True, padding_idx=padding_idx).double()
    ids = tg.tensor([[1, 4], [4, 7]])
    out = emb(ids)
    if retain:
        out.retain_grad()
    if user_grad is not None:
        out.backward(user_grad)
    else:
        (out * tg.from_numpy(np.arange(12.0).reshape(2, 2, 3))).sum().backward()
    return emb, out


def dense_of(sparse_grad):
    return to_np(sparse_grad.to_dense())


def test_sparse_embedding_grad_keeps_the_incoming_buffer_only_when_unseen():
    # Embedding's backward keeps the upstream gradient as the row-sparse values
    # when nothing else holds it; a retained grad or a user's gradient is copied.
    g = np.arange(12.0).reshape(2, 2, 3)
    ref = np.zeros((10, 3))
    for row, idx in zip(g.reshape(4, 3), [1, 4, 4, 7]):
        ref[idx] += row
    emb, _ = sparse_embedding_grad()
    np.testing.assert_array_equal(dense_of(emb.weight.grad), ref)

    emb, out = sparse_embedding_grad(retain=True)
    out.grad.mul_(0.0)  # the retained gradient changes; the embedding's must not
    np.testing.assert_array_equal(dense_of(emb.weight.grad), ref)

    user = tg.from_numpy(g.copy())
    emb, _ = sparse_embedding_grad(user_grad=user)
    user.mul_(0.0)
    np.testing.assert_array_equal(dense_of(emb.weight.grad), ref)

    emb, _ = sparse_embedding_grad(padding_idx=4)  # rows dropped: always a compacted copy
    ref_pad = ref.copy()
    ref_pad[4] = 0.0
    np.testing.assert_array_equal(dense_of(emb.weight.grad), ref_pad)


# Note [One block per small tensor] (cpp/src/tensor/tensor.cpp): a small
# tensor's impl, storage and data share one allocation owned by the storage.
def test_small_tensor_block_outlives_the_tensor_through_views_and_numpy():
    a = tg.tensor([1.0, 2.0, 3.0])
    v = a[1:]          # a view holds the storage, not the impl
    n = a.numpy()      # so does NumPy
    del a
    n[2] = 7.0
    assert v.tolist() == [2.0, 7.0]
    del v
    assert n.tolist() == [1.0, 2.0, 7.0]


def test_small_tensor_data_reassignment_keeps_both_blocks_alive():
    a = tg.tensor([1.0, 2.0])
    a_view = a[:]                       # keeps a's first storage in use
    b = tg.tensor([5.0, 6.0, 7.0])
    a.data = b                          # a's impl now points at b's storage
    del b
    assert a.tolist() == [5.0, 6.0, 7.0]
    assert a_view.tolist() == [1.0, 2.0]
    a.data = a_view                     # and back at its own block
    del a_view
    assert a.tolist() == [1.0, 2.0]
    w = tg.tensor([3.0], requires_grad=True)
    w.data = tg.tensor([4.0])
    (w * 2).sum().backward()
    assert w.grad.tolist() == [2.0]


def test_scaled_gradient_in_place_only_when_unseen():
    # MulScalar's backward scales a sole-owned gradient in place; a gradient
    # the user passed in (and still holds) must come back untouched.
    x = leaf([1.0, 2.0])
    g = tg.tensor([1.0, 1.0], dtype=tg.float64)
    y = x * 3.0
    y.backward(g)
    assert g.tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [3.0, 3.0]
    z = ((x * 2.0) * 0.5).sum()   # chain of scalings, the seed is the engine's own
    x.grad = None
    z.backward()
    assert x.grad.tolist() == [1.0, 1.0]
