"""Numerical stability at extreme logits.

softmax, log_softmax, logsumexp, cross_entropy, binary_cross_entropy_with_logits,
sigmoid and tanh must give finite, correct values *and gradients* for logits
of magnitude 1e4 in float32 and 1e300 in float64 (where a naive exp overflows
or a difference of huge numbers cancels). References are exact: mpmath at 60
digits, rounded to the dtype; PyTorch is checked too when installed.
"""

import math

import mpmath
import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F

mpmath.mp.dps = 60

# (dtype, numpy dtype, magnitude, relative tolerance)
CASES = [
    pytest.param(tg.float32, np.float32, 1e4, 2e-6, id="float32-1e4"),
    pytest.param(tg.float64, np.float64, 1e300, 1e-13, id="float64-1e300"),
]


def rows(big):
    """Logit rows mixing huge positive and negative values, ties, near-ties and zeros."""
    return [
        [big, -big, 0.0],
        [-big, -big, -big],
        [big, big, -big],
        [big, big * (1 - 2**-20), 0.0],  # a near-tie far from zero: the gap matters
        [-big, 0.0, 1.0],
        [big, big - 1.0 if big < 1e20 else big, -big],
    ]


def mp_logsumexp(row):
    m = max(row)
    return mpmath.mpf(m) + mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - m) for v in row))


def mp_log_softmax(row):
    # (v - m) - log(sum exp(. - m)): never forms m + small, which 60 digits
    # can't hold next to 1e300.
    m = max(row)
    lse0 = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - m) for v in row))
    return [(mpmath.mpf(v) - m) - lse0 for v in row]


def mp_softmax(row):
    return [mpmath.exp(v) for v in mp_log_softmax(row)]


def mp_sigmoid(v):
    v = mpmath.mpf(v)
    return 1 / (1 + mpmath.exp(-v))


def close(actual, expected, rtol, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray([[float(v) for v in r] for r in expected] if np.ndim(expected) == 2
                          else [float(v) for v in np.ravel(expected)], dtype=np.float64
                          ).reshape(actual.shape)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values {actual}"
    # Relative to each value, with an absolute floor at the scale of the row's
    # largest value times the dtype's resolution (log-space results like
    # -2e4 + ... can only be as exact as the inputs).
    scale = np.maximum(np.abs(expected), 1e-300)
    err = np.abs(actual - expected)
    ok = err <= rtol * scale + 1e-300
    assert ok.all(), f"{what}:\n actual   {actual}\n expected {expected}"


def fp_rows(npdt, big):
    # The inputs as the dtype holds them (so references use exactly those values).
    return np.array(rows(big), dtype=npdt)


@pytest.mark.parametrize("dt,npdt,big,rtol", CASES)
def test_softmax_and_grad(dt, npdt, big, rtol):
    data = fp_rows(npdt, big)
    x = tg.tensor(data, dtype=dt, requires_grad=True)
    y = tg.softmax(x, dim=1)
    ref = [mp_softmax([float(v) for v in r]) for r in data]
    close(y.detach().numpy(), ref, rtol, "softmax")
    # d/dx sum(softmax * w) = s * (w - <s, w>)
    w = np.array([1.0, 2.0, -3.0], dtype=npdt)
    (y * tg.tensor(w, dtype=dt)).sum().backward()
    gref = []
    for s in ref:
        dot = mpmath.fsum(si * float(wi) for si, wi in zip(s, w))
        gref.append([si * (float(wi) - dot) for si, wi in zip(s, w)])
    g = x.grad.numpy()
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, np.array(gref, dtype=np.float64), rtol=rtol * 10,
                               atol=rtol * 10)


@pytest.mark.parametrize("dt,npdt,big,rtol", CASES)
def test_log_softmax_and_grad(dt, npdt, big, rtol):
    data = fp_rows(npdt, big)
    x = tg.tensor(data, dtype=dt, requires_grad=True)
    y = tg.log_softmax(x, dim=1)
    ref = [mp_log_softmax([float(v) for v in r]) for r in data]
    close(y.detach().numpy(), ref, rtol, "log_softmax")
    y.sum().backward()  # grad = 1 - n * softmax
    gref = [[1 - 3 * s for s in mp_softmax([float(v) for v in r])] for r in data]
    g = x.grad.numpy()
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, np.array(gref, dtype=np.float64), rtol=rtol * 10,
                               atol=rtol * 10)


@pytest.mark.parametrize("dt,npdt,big,rtol", CASES)
def test_logsumexp_and_grad(dt, npdt, big, rtol):
    data = fp_rows(npdt, big)
    x = tg.tensor(data, dtype=dt, requires_grad=True)
    y = tg.logsumexp(x, dim=1)
    ref = [mp_logsumexp([float(v) for v in r]) for r in data]
    close(y.detach().numpy(), ref, rtol, "logsumexp")
    y.sum().backward()  # grad = softmax
    gref = [mp_softmax([float(v) for v in r]) for r in data]
    g = x.grad.numpy()
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, np.array([[float(v) for v in r] for r in gref]),
                               rtol=rtol * 10, atol=rtol * 10)


@pytest.mark.parametrize("dt,npdt,big,rtol", CASES)
def test_cross_entropy_and_grad(dt, npdt, big, rtol):
    data = fp_rows(npdt, big)
    target = [1, 0, 2, 1, 0, 2]
    x = tg.tensor(data, dtype=dt, requires_grad=True)
    loss = F.cross_entropy(x, tg.tensor(target), reduction="sum")
    per = [-mp_log_softmax([float(v) for v in r])[t] for r, t in zip(data, target)]
    close([loss.item()], [mpmath.fsum(per)], rtol * 10, "cross_entropy")
    loss.backward()
    g = x.grad.numpy()
    gref = []
    for r, t in zip(data, target):
        s = mp_softmax([float(v) for v in r])
        gref.append([float(si) - (1.0 if j == t else 0.0) for j, si in enumerate(s)])
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, np.array(gref), rtol=rtol * 10, atol=rtol * 10)


@pytest.mark.parametrize("dt,npdt,big,rtol", CASES)
def test_bce_with_logits_and_grad(dt, npdt, big, rtol):
    xs = np.array([big, -big, big, -big, 0.0, 1.0], dtype=npdt)
    ys = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.5], dtype=npdt)
    x = tg.tensor(xs, dtype=dt, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, tg.tensor(ys, dtype=dt), reduction="none")
    # loss = -(y log s(x) + (1 - y) log(1 - s(x))) = softplus(x) - x y
    ref = []
    for xv, yv in zip(xs, ys):
        xm, ym = mpmath.mpf(float(xv)), mpmath.mpf(float(yv))
        softplus = (xm if xm > 0 else 0) + mpmath.log1p(mpmath.exp(-abs(xm)))
        ref.append(softplus - xm * ym)
    close(loss.detach().numpy(), ref, rtol, "binary_cross_entropy_with_logits")
    loss.sum().backward()
    gref = [float(mp_sigmoid(float(xv)) - float(yv)) for xv, yv in zip(xs, ys)]
    g = x.grad.numpy()
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, gref, rtol=rtol * 10, atol=rtol * 10)


@pytest.mark.parametrize("dt,npdt,big,rtol", CASES)
def test_sigmoid_tanh_and_grad(dt, npdt, big, rtol):
    xs = np.array([big, -big, 0.0, 30.0, -30.0, 1e-3], dtype=npdt)
    for name, fn, mp_fn, mp_grad in [
        ("sigmoid", tg.sigmoid, mp_sigmoid, lambda v: mp_sigmoid(v) * (1 - mp_sigmoid(v))),
        ("tanh", tg.tanh, lambda v: mpmath.tanh(mpmath.mpf(v)),
         lambda v: 1 / mpmath.cosh(mpmath.mpf(v)) ** 2),
    ]:
        x = tg.tensor(xs, dtype=dt, requires_grad=True)
        y = fn(x)
        close(y.detach().numpy(), [mp_fn(float(v)) for v in xs], rtol, name)
        y.sum().backward()
        g = x.grad.numpy()
        assert np.all(np.isfinite(g)), (name, g)
        # The derivative underflows to exactly 0 at the huge magnitudes. It is
        # computed from the saved output, s * (1 - s) and 1 - t^2 (as PyTorch),
        # so where 1 - s or 1 - t^2 is below the dtype's resolution (|x| = 30)
        # it is exact only to an absolute eps, not relatively.
        gref = np.array([float(mp_grad(float(v))) for v in xs])
        np.testing.assert_allclose(g, gref, rtol=rtol * 10, atol=np.finfo(npdt).eps,
                                   err_msg=name)


@pytest.mark.parametrize("dt,npdt,big,rtol", CASES)
def test_matches_torch(dt, npdt, big, rtol):
    torch = pytest.importorskip("torch")
    tdt = torch.float32 if npdt is np.float32 else torch.float64
    data = fp_rows(npdt, big)
    target = [1, 0, 2, 1, 0, 2]
    fns = [
        ("softmax", lambda m, x: m.softmax(x, dim=1)),
        ("log_softmax", lambda m, x: m.log_softmax(x, dim=1)),
        ("logsumexp", lambda m, x: m.logsumexp(x, dim=1)),
        ("sigmoid", lambda m, x: m.sigmoid(x)),
        ("tanh", lambda m, x: m.tanh(x)),
    ]
    for name, f in fns:
        x = tg.tensor(data, dtype=dt, requires_grad=True)
        tx = torch.tensor(data, dtype=tdt, requires_grad=True)
        y, ty = f(tg, x), f(torch, tx)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=rtol * 10, err_msg=name)
        if name == "logsumexp":
            # PyTorch's logsumexp backward is exp(x - result), which loses the
            # log(sum) next to a huge max: at 1e300 it gives each of n tied
            # logits gradient 1 instead of 1/n (2e-4 off at 1e4 in float32).
            # tapegrad's is exact (test_logsumexp_and_grad); don't compare.
            continue
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol * 10,
                                   atol=rtol * 10, err_msg=name)
    x = tg.tensor(data, dtype=dt, requires_grad=True)
    tx = torch.tensor(data, dtype=tdt, requires_grad=True)
    loss = F.cross_entropy(x, tg.tensor(target))
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(target))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=rtol * 10)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol * 10, atol=rtol * 10)
    xs = data[:, 0]
    ys = np.array([0, 1, 1, 0, 1, 0.5], dtype=npdt)
    x = tg.tensor(xs, dtype=dt, requires_grad=True)
    tx = torch.tensor(xs, dtype=tdt, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, tg.tensor(ys, dtype=dt))
    tloss = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(ys, dtype=tdt))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=rtol * 10)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol * 10, atol=rtol * 10)
