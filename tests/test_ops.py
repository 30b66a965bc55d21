"""Per-op tests generated from tests/op_specs.py.

For every spec: the forward against NumPy in float64 and float32 (and under
no_grad), tg.gradcheck in float64 (of sum(W * out) for a fixed random W, so
every output element counts), gradient shapes/dtypes, values and gradients
against PyTorch (CPU) in float64 and float32 when torch is installed, the
same results from non-contiguous inputs, and that a dropped graph frees its
inputs. One test fails if an op of the C++ op table has no spec.

Then: gradients at kinks and ties (PyTorch's conventions), and hypothesis
property tests for broadcasting, reductions, indexing, permute/reshape and
matmul shapes against NumPy.
"""

import gc
import weakref

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tapegrad as tg
from op_specs import SPECS, F

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0); skipping the PyTorch comparison"

GRAD_SPECS = [s for s in SPECS if s.differentiable]
GRADCHECK_SPECS = [s for s in GRAD_SPECS if s.gradcheck]


def ids(s):
    return s.id


def tg_dtype(name):
    return getattr(tg, name)


def to_np(t):
    """A NumPy copy of a tapegrad tensor's values."""
    return np.array(t.detach().numpy(), copy=True)


def tg_array(a, requires_grad=False):
    """A tensor with a copy of `a` (from_numpy: exact shape and dtype, 0-d included)."""
    t = tg.from_numpy(np.array(a, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t


def make_tg_inputs(arrays, dtype, requires_grad):
    return [tg_array(a.astype(dtype), requires_grad) for a in arrays]


def check_forward(spec, dtype, requires_grad, rtol, atol):
    arrays = spec.make_inputs()
    if dtype == "float32":
        arrays = [a.astype(np.float32) for a in arrays]
    xs = make_tg_inputs(arrays, dtype, requires_grad)
    for x in xs:
        assert x.dtype == tg_dtype(dtype)
    out = spec.fn(tg, *xs)
    expected_dtype = spec.out_dtype or dtype
    assert out.dtype == tg_dtype(expected_dtype), f"{spec.id}: dtype {out.dtype}, expected {expected_dtype}"
    ref = np.asarray(spec.ref(*[a.astype(np.float64) for a in arrays]))
    got = to_np(out)
    assert tuple(out.shape) == ref.shape, f"{spec.id}: shape {tuple(out.shape)}, expected {ref.shape}"
    assert got.shape == ref.shape
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)
    if spec.differentiable and requires_grad:
        assert out.requires_grad
    else:
        assert not out.requires_grad
    return out


# ---------------------------------------------------------------- table coverage
def test_every_table_op_has_a_spec():
    table = list(tg._C.op_names())
    assert len(table) == len(set(table)), "op_names() has duplicates"
    covered = {s.op for s in SPECS if not s.composite}
    missing = [name for name in table if name not in covered]
    assert not missing, f"ops in tapegrad._C.op_names() without a spec in tests/op_specs.py: {missing}"


def test_every_table_op_has_a_gradient_spec():
    table = list(tg._C.op_names())
    covered = {s.op for s in GRADCHECK_SPECS if not s.composite}
    missing = [name for name in table if name not in covered]
    assert not missing, f"ops without a gradchecked spec: {missing}"


def test_spec_names_are_consistent():
    table = set(tg._C.op_names())
    ids_ = [s.id for s in SPECS]
    assert len(ids_) == len(set(ids_)), "duplicate spec ids"
    unknown = [s.id for s in SPECS if not s.composite and s.op not in table]
    assert not unknown, f"specs naming an op that is not in the table: {unknown}"
    clash = [s.id for s in SPECS if s.composite and s.op in table]
    assert not clash, f"composite specs named after a table op: {clash}"


# ---------------------------------------------------------------- forward
@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_forward_float64(spec):
    tol = 1e-6 if spec.lowp else 1e-10
    check_forward(spec, "float64", requires_grad=spec.differentiable, rtol=tol, atol=tol)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_forward_float32(spec):
    check_forward(spec, "float32", requires_grad=False, rtol=spec.rtol32, atol=spec.atol32)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_forward_no_grad(spec):
    """Under no_grad the same values come out, and nothing requires grad."""
    arrays = spec.make_inputs()
    xs = make_tg_inputs(arrays, "float64", requires_grad=spec.differentiable)
    with tg.no_grad():
        out = spec.fn(tg, *xs)
    if not spec.may_return_input:
        assert not out.requires_grad
    assert out.is_leaf
    ref = np.asarray(spec.ref(*arrays))
    got = to_np(out)
    assert got.shape == ref.shape
    tol = 1e-6 if spec.lowp else 1e-10
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


# ---------------------------------------------------------------- gradients
def projected(spec, fn, out_shape):
    w = tg_array(spec.projection(out_shape))  # float64

    def f(*xs):
        return (fn(*xs) * w).sum()

    return f


@pytest.mark.parametrize("spec", GRADCHECK_SPECS, ids=ids)
def test_gradcheck(spec):
    arrays = spec.make_inputs()
    xs = tuple(make_tg_inputs(arrays, "float64", requires_grad=True))
    out_shape = np.asarray(spec.ref(*arrays)).shape
    f = projected(spec, lambda *t: spec.fn(tg, *t), out_shape)
    assert tg.gradcheck(f, xs) is True


@pytest.mark.parametrize("spec", GRAD_SPECS, ids=ids)
def test_backward_grad_shapes_and_dtypes(spec):
    """Every input gets a .grad of its own shape and dtype (float32 and float64)."""
    arrays = spec.make_inputs()
    out_shape = np.asarray(spec.ref(*arrays)).shape
    for dtype in ("float64", "float32"):
        xs = make_tg_inputs(arrays, dtype, requires_grad=True)
        loss = projected(spec, lambda *t: spec.fn(tg, *t), out_shape)(*xs)
        assert loss.shape == ()
        loss.backward()
        for i, x in enumerate(xs):
            assert x.grad is not None, f"{spec.id}: input {i} got no gradient"
            assert tuple(x.grad.shape) == tuple(x.shape), f"{spec.id}: input {i} grad shape"
            assert x.grad.dtype == x.dtype, f"{spec.id}: input {i} grad dtype {x.grad.dtype}"
            assert np.all(np.isfinite(to_np(x.grad)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", GRAD_SPECS, ids=ids)
def test_grad_vs_torch(spec, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    arrays = spec.make_inputs()
    arrays = [a.astype(dtype) for a in arrays]
    out_shape = np.asarray(spec.ref(*arrays)).shape
    w = spec.projection(out_shape)

    xs = make_tg_inputs(arrays, dtype, requires_grad=True)
    out = spec.fn(tg, *xs)
    (out * tg_array(w)).sum().backward()

    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tout = spec.call_torch(torch, *txs)
    (tout * torch.tensor(w)).sum().backward()

    if dtype == "float64" and not spec.lowp:
        rtol, atol = 1e-9, 1e-10
    else:
        rtol, atol = 2e-4, 2e-5
    assert str(out.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]
    assert tuple(out.shape) == tuple(tout.shape)
    np.testing.assert_allclose(to_np(out), tout.detach().numpy(), rtol=rtol, atol=atol,
                               err_msg=f"{spec.id}: forward differs from torch")
    for i, (x, tx) in enumerate(zip(xs, txs)):
        assert x.grad is not None, f"{spec.id}: input {i} got no gradient"
        np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"{spec.id}: gradient of input {i} differs from torch")


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.differentiable], ids=ids)
def test_forward_only_vs_torch(spec):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    arrays = spec.make_inputs()
    got = to_np(spec.fn(tg, *[tg_array(a) for a in arrays]))
    want = spec.call_torch(torch, *[torch.tensor(a) for a in arrays]).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def _all_dead(refs):
    if all(r() is None for r in refs):
        return True
    gc.collect()
    return all(r() is None for r in refs)


@pytest.mark.parametrize("spec", GRAD_SPECS, ids=ids)
def test_dropped_graph_is_freed(spec):
    """Dropping the output of a graph that was never backwarded frees the whole
    graph: nothing keeps the inputs (NumPy arrays shared via from_numpy) alive.
    Then the same after a backward."""
    for do_backward in (False, True):
        arrays = [np.array(a) for a in spec.make_inputs()]
        refs = [weakref.ref(a) for a in arrays]
        xs = [tg.from_numpy(a).requires_grad_() for a in arrays]
        del arrays
        out = spec.fn(tg, *xs)
        if do_backward:
            (out * tg_array(spec.projection(tuple(out.shape)))).sum().backward()
        del xs
        del out
        assert _all_dead(refs), (
            f"{spec.id}: inputs still alive after the graph was dropped "
            f"({'after' if do_backward else 'without'} backward): the graph leaked")


# ---------------------------------------------------------------- sanity of the harness
def test_gradcheck_detects_a_wrong_gradient():
    """gradcheck must fail on a function whose autograd gradient is wrong:
    x.detach() * x has autograd gradient x but numerical gradient 2x."""
    x = tg.tensor(np.array([0.5, -1.25, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        tg.gradcheck(lambda t: (t.detach() * t).sum(), (x,))
    msg = str(info.value)
    # names the input, the worst element (x[2] = 2.0: analytic 2.0 vs numerical 4.0) and both values
    assert "input 0" in msg and "(2,)" in msg, msg
    assert "2.0" in msg and "4.0" in msg, msg


def test_gradcheck_accepts_a_correct_gradient():
    x = tg.tensor(np.array([0.5, -1.25, 2.0]), requires_grad=True)
    y = tg.tensor(np.array([1.5, 0.25, -2.0]), requires_grad=True)
    assert tg.gradcheck(lambda a, b: (a * b.exp()).sum(), (x, y)) is True


def test_gradient_accumulates_through_repeated_use_of_one_input():
    # d/dx sum(x*x + x) = 2x + 1, independent of any spec machinery.
    a = np.array([0.5, -1.0, 3.0])
    x = tg.tensor(a, requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * a + 1, rtol=1e-12)


# ---------------------------------------------------------------- strided inputs
def strided_copy(a):
    """The same values in a non-contiguous layout: transposed, and every other element."""
    buf = np.zeros(a.shape[::-1] + (2,), dtype=a.dtype)
    buf[..., 0] = a.T
    view = buf[..., 0].T
    assert view.shape == a.shape and (a.size <= 1 or not view.flags.c_contiguous)
    return view


def _grads_for(spec, arrays, make):
    xs = [make(a) for a in arrays]
    for x in xs:
        x.requires_grad_(True)
    out = spec.fn(tg, *xs)
    w = spec.projection(tuple(out.shape))
    if out.ndim >= 2:
        rev = list(range(out.ndim))[::-1]
        loss = (out.permute(rev) * tg_array(w).permute(rev)).sum()  # non-contiguous incoming gradient
    else:
        loss = (out * tg_array(w)).sum()
    loss.backward()
    return to_np(out), [to_np(x.grad) for x in xs]


@pytest.mark.parametrize("spec", [s for s in GRAD_SPECS if not s.contiguous_only], ids=ids)
def test_strided_inputs(spec):
    """Non-contiguous inputs (and a permuted incoming gradient) give the same
    values as the reference and the same gradients as contiguous inputs."""
    arrays = spec.make_inputs()
    out_c, grads_c = _grads_for(spec, arrays, lambda a: tg.from_numpy(np.array(a, copy=True)))
    out_s, grads_s = _grads_for(spec, arrays, lambda a: tg.from_numpy(strided_copy(a)))
    tol = 1e-6 if spec.lowp else 1e-10
    np.testing.assert_allclose(out_s, np.asarray(spec.ref(*arrays)), rtol=tol, atol=tol)
    for i, (gc_, gs) in enumerate(zip(grads_c, grads_s)):
        np.testing.assert_allclose(gs, gc_, rtol=1e-10, atol=1e-12, err_msg=f"{spec.id}: input {i}")


# ---------------------------------------------------------------- kinks and ties (PyTorch's conventions)
NEG_INF = -np.inf
KINKS = {
    # name: (fn(L, *xs) -> tensor, inputs, expected gradient of out.sum() for each input)
    "relu_at_0": (lambda L, x: x.relu(), [[0.0, -1.0, 1.0]], [[0.0, 0.0, 1.0]]),
    "abs_at_0": (lambda L, x: x.abs(), [[0.0, -2.0, 1.0]], [[0.0, -1.0, 1.0]]),
    "leaky_relu_at_0": (lambda L, x: F(L).leaky_relu(x, 0.1), [[0.0, -1.0]], [[0.1, 0.1]]),
    "clamp_at_bounds": (lambda L, x: x.clamp(-1.0, 1.0), [[-1.0, 1.0, 0.5, 2.0]], [[1.0, 1.0, 1.0, 0.0]]),
    "clamp_min_at_bound": (lambda L, x: x.clamp(min=0.0), [[0.0, -1.0]], [[1.0, 0.0]]),
    "clamp_min_above_max": (lambda L, x: x.clamp(min=1.0, max=0.0), [[0.5, 2.0, -1.0]], [[0.0, 0.0, 0.0]]),
    "hardtanh_at_bounds": (lambda L, x: F(L).hardtanh(x), [[-1.0, 1.0, 0.0, -3.0]], [[0.0, 0.0, 1.0, 0.0]]),
    "maximum_tie": (lambda L, x, y: L.maximum(x, y), [[1.0, 2.0], [1.0, 3.0]], [[0.5, 0.0], [0.5, 1.0]]),
    "minimum_tie": (lambda L, x, y: L.minimum(x, y), [[1.0, 2.0], [1.0, 3.0]], [[0.5, 1.0], [0.5, 0.0]]),
    "max_all_ties_split": (lambda L, x: x.max(), [[[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]],
                           [[[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]]),
    "max_dim_tie_first": (lambda L, x: x.max(dim=1).values, [[[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]],
                          [[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]]),
    "min_dim_tie_first": (lambda L, x: x.min(dim=1).values, [[[1.0, 3.0, 1.0], [2.0, 2.0, 0.0]]],
                          [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]),
    "pow_zero_base": (lambda L, a, b: a ** b, [[0.0, 2.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, np.log(2.0)]]),
    "pow_scalar_zero_exponent_at_0": (lambda L, x: x ** 0, [[0.0, 1.0]], [[0.0, 0.0]]),
    "pow_scalar_square_at_0": (lambda L, x: x ** 2.0, [[0.0]], [[0.0]]),
    "logsumexp_neg_inf": (lambda L, x: x.logsumexp(dim=0), [[NEG_INF, 0.0, 1.0]],
                          [[0.0, 1 / (1 + np.e), np.e / (1 + np.e)]]),
    "cross_entropy_all_ignored": (lambda L, x: F(L).cross_entropy(x, const_index(L, [-100])),
                                  [[[1.0, 0.0, 1.0]]], [[[0.0, 0.0, 0.0]]]),
}


def const_index(lib, values):
    return lib.tensor(np.array(values, dtype=np.int64))


@pytest.mark.parametrize("name", list(KINKS))
def test_kink_and_tie_gradients(name):
    fn, inputs, want = KINKS[name]
    xs = [tg_array(np.array(a, dtype=np.float64), requires_grad=True) for a in inputs]
    with np.errstate(all="ignore"):
        out = fn(tg, *xs)
        out.sum().backward()
    for i, (x, g) in enumerate(zip(xs, want)):
        np.testing.assert_allclose(to_np(x.grad), np.array(g), rtol=1e-12, atol=1e-15, err_msg=f"input {i}")


@pytest.mark.parametrize("name", list(KINKS))
def test_kink_and_tie_gradients_vs_torch(name):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    fn, inputs, _ = KINKS[name]
    xs = [tg_array(np.array(a, dtype=np.float64), requires_grad=True) for a in inputs]
    txs = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in inputs]
    with np.errstate(all="ignore"):
        out = fn(tg, *xs)
        out.sum().backward()
    tout = fn(torch, *txs)
    tout.sum().backward()
    np.testing.assert_allclose(to_np(out), tout.detach().numpy(), rtol=1e-12)
    for x, tx in zip(xs, txs):
        np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- property tests (hypothesis)

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)


def sum_to(g, shape):
    """Sums a broadcast gradient back to `shape` (NumPy reference)."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b, w: (w, w)),
    "sub": (lambda a, b: a - b, lambda a, b, w: (w, -w)),
    "mul": (lambda a, b: a * b, lambda a, b, w: (w * b, w * a)),
    "div": (lambda a, b: a / b, lambda a, b, w: (w / b, -w * a / b ** 2)),
}


@PROPERTY
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_property_broadcast_binary(shapes, op, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = rng.uniform(-2, 2, sa)
    b = rng.uniform(0.5, 2, sb)
    f, df = BINARY[op]
    want = f(a, b)
    w = rng.standard_normal(want.shape)
    x, y = tg_array(a, True), tg_array(b, True)
    out = f(x, y)
    assert tuple(out.shape) == want.shape
    np.testing.assert_allclose(to_np(out), want, rtol=1e-12, atol=1e-12)
    (out * tg_array(w)).sum().backward()
    ga, gb = df(np.broadcast_to(a, want.shape), np.broadcast_to(b, want.shape), w)
    np.testing.assert_allclose(to_np(x.grad), sum_to(ga, sa).reshape(sa), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(y.grad), sum_to(gb, sb).reshape(sb), rtol=1e-10, atol=1e-12)


@st.composite
def shape_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    nd = len(shape)
    dims = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    dims = tuple(d - nd if draw(st.booleans()) else d for d in dims)  # some negative
    return shape, dims, draw(st.booleans())


@PROPERTY
@given(case=shape_and_dims(), op=st.sampled_from(["sum", "mean", "logsumexp"]), seed=st.integers(0, 2**16))
def test_property_reductions(case, op, seed):
    shape, dims, keepdim = case
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, shape)
    axes = tuple(d % len(shape) for d in dims)
    if op == "sum":
        want = a.sum(axis=axes, keepdims=keepdim)
    elif op == "mean":
        want = a.mean(axis=axes, keepdims=keepdim)
    else:
        want = np_logsumexp_keep(a, axes, keepdim)
    x = tg_array(a, True)
    d = dims if len(dims) > 1 else dims[0]
    out = getattr(x, op)(dim=d, keepdim=keepdim)
    assert tuple(out.shape) == np.shape(want)
    np.testing.assert_allclose(to_np(out), want, rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(np.shape(want))
    (out * tg_array(w)).sum().backward()
    wk = w if keepdim else np.expand_dims(w, axes)
    if op == "sum":
        g = np.broadcast_to(wk, shape)
    elif op == "mean":
        g = np.broadcast_to(wk, shape) / np.prod([shape[i] for i in axes])
    else:
        lse = np_logsumexp_keep(a, axes, True)
        g = wk * np.exp(a - lse)
    np.testing.assert_allclose(to_np(x.grad), g, rtol=1e-10, atol=1e-12)


def np_logsumexp_keep(a, axes, keepdim):
    m = a.max(axis=axes, keepdims=True)
    out = np.log(np.exp(a - m).sum(axis=axes, keepdims=True)) + m
    return out if keepdim else np.squeeze(out, axis=axes)


@st.composite
def shape_and_basic_index(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    idx = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    parts = idx if isinstance(idx, tuple) else (idx,)
    # PyTorch (and so tapegrad) only takes positive slice steps
    assume(all(not (isinstance(p, slice) and p.step is not None and p.step < 0) for p in parts))
    return shape, idx


@PROPERTY
@given(case=shape_and_basic_index(), seed=st.integers(0, 2**16))
def test_property_basic_indexing(case, seed):
    shape, idx = case
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, shape)
    want = np.asarray(a[idx])
    x = tg_array(a, True)
    out = x[idx]
    assert tuple(out.shape) == want.shape, (shape, idx)
    np.testing.assert_array_equal(to_np(out), want)
    w = rng.standard_normal(want.shape)
    (out * tg_array(w)).sum().backward()
    g = np.zeros(shape)
    g[idx] += w
    np.testing.assert_allclose(to_np(x.grad), g, rtol=1e-12)


@PROPERTY
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
       idx_len=st.integers(0, 6), seed=st.integers(0, 2**16))
def test_property_integer_array_indexing(shape, idx_len, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, shape)
    idx = rng.integers(-shape[0], shape[0], idx_len)  # repeats and negatives
    want = a[idx]
    x = tg_array(a, True)
    out = x[tg.tensor(idx)]
    assert tuple(out.shape) == want.shape
    np.testing.assert_array_equal(to_np(out), want)
    w = rng.standard_normal(want.shape)
    (out * tg_array(w)).sum().backward()
    g = np.zeros(shape)
    np.add.at(g, idx, w)
    np.testing.assert_allclose(to_np(x.grad), g, rtol=1e-12, atol=1e-15)


@PROPERTY
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), data=st.data())
def test_property_permute_reshape(shape, data):
    perm = data.draw(st.permutations(range(len(shape))))
    rng = np.random.default_rng(len(shape))
    a = rng.uniform(-2, 2, shape)
    n = a.size
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    d0 = data.draw(st.sampled_from(divisors))
    x = tg_array(a, True)
    out = x.permute(*perm).reshape(d0, -1)
    want = a.transpose(perm).reshape(d0, -1)
    assert tuple(out.shape) == want.shape
    np.testing.assert_array_equal(to_np(out), want)
    w = rng.standard_normal(want.shape)
    (out * tg_array(w)).sum().backward()
    g = w.reshape(a.transpose(perm).shape).transpose(np.argsort(perm))
    np.testing.assert_allclose(to_np(x.grad), g, rtol=1e-12)


@PROPERTY
@given(sa=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
       k=st.integers(1, 4), n=st.integers(1, 4), batch_b=st.booleans(), seed=st.integers(0, 2**16))
def test_property_matmul_shapes(sa, k, n, batch_b, seed):
    rng = np.random.default_rng(seed)
    sa = tuple(sa[:-1]) + (k,)
    sb = ((sa[:-2][-1:] if batch_b and len(sa) > 2 else ()) + (k, n)) if n > 1 else (k,)
    a = rng.uniform(-1, 1, sa)
    b = rng.uniform(-1, 1, sb)
    want = np.matmul(a, b)
    x, y = tg_array(a, True), tg_array(b, True)
    out = x @ y
    assert tuple(out.shape) == np.shape(want), (sa, sb)
    np.testing.assert_allclose(to_np(out), want, rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(np.shape(want))
    (out * tg_array(w)).sum().backward()
    # reference gradients via the same formula in NumPy, with 1-D promotion
    a2 = a if a.ndim > 1 else a[None, :]
    b2 = b if b.ndim > 1 else b[:, None]
    w2 = np.reshape(w, np.matmul(a2, b2).shape)
    ga = sum_to(np.matmul(w2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
    gb = sum_to(np.matmul(np.swapaxes(a2, -1, -2), w2), b2.shape).reshape(b.shape)
    np.testing.assert_allclose(to_np(x.grad), ga, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(y.grad), gb, rtol=1e-10, atol=1e-12)
