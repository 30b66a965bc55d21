"""Losses added on top of the fused kernels: cross_entropy/nll_loss with weight= and
label_smoothing=, l1, smooth_l1, huber, binary_cross_entropy, BCE with logits with
weight=/pos_weight=, kl_div. Values and gradients against torch in float64 and
float32, float64 gradcheck, and the error cases.
"""

import math

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn as nn
import tapegrad.nn.functional as F

from _torch_compare import TORCH_REASON, _compare, _gradcheck, tgt, to_np, tt  # noqa: F401
REDUCTIONS = ["mean", "sum", "none"]


# ============================================================================
# cross_entropy / nll_loss with weight=, label_smoothing=, ignore_index
# ============================================================================
CE_TARGETS = {
    "plain": np.array([0, 2, 4, 1, 2, 1, 3, 2]),
    "ignored": np.array([0, 2, -100, 1, 2, -100, 3, 2]),
}


@pytest.mark.parametrize("classes", [2, 5, 16])
def test_cross_entropy_few_classes_float32_is_within_three_ulp(classes):
    # Rows of <= 16 classes take the block path (one vectorised exp, the sums of each
    # row's terms but the max's in double, one vectorised log1p for all rows: Note
    # [Vectorised log]). Each row's loss against double arithmetic on the same float32
    # shifted logits x - max (a float32 kernel must round those, as PyTorch's does),
    # with ignored rows, a NaN row, huge logits and rows whose loss is tiny (~1e-9),
    # which a log of the float sum would give as 0.
    rng = np.random.default_rng(classes)
    x = (rng.standard_normal((515, classes)) * 4).astype(np.float32)
    x[7] *= 1e4
    x[8, 0] = np.nan
    t = rng.integers(0, classes, 515)
    t[[3, 400]] = -100
    x[20:30] = 0
    x[20:30, 0] = 21.0  # loss ~ (classes - 1) e^-21
    t[20:30] = 0
    out = F.cross_entropy(tg.from_numpy(x), tg.from_numpy(t), reduction="none").numpy()
    d = (x - x.max(axis=1, keepdims=True)).astype(np.float64)  # rounded to float32 first
    ref = np.log(np.exp(d).sum(axis=1)) - d[np.arange(515), t % classes]
    ref[[3, 400]] = 0.0
    assert np.isnan(out[8]) and out[3] == 0 and out[400] == 0
    assert np.all(out[20:30] > 0)
    ok = np.arange(515) != 8
    ulp = np.spacing(np.abs(ref[ok]).astype(np.float32)).astype(np.float64)
    err = np.where(ref[ok] == 0, np.abs(out[ok]), np.abs(out[ok] - ref[ok]) / ulp)
    assert err.max() <= 3.0, (err.max(), int(np.flatnonzero(ok)[np.argmax(err)]))
    mean = F.cross_entropy(tg.from_numpy(x[ok]), tg.from_numpy(t[ok])).item()
    np.testing.assert_allclose(mean, ref[ok][t[ok] != -100].mean(), rtol=2e-7)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("targets", list(CE_TARGETS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_options_match_torch(reduction, weighted, smoothing, targets, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(8, 5) * 2
    t = CE_TARGETS[targets]
    w = (np.random.rand(5) + 0.2).astype(dtype) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    _compare(torch,
             lambda a, y: F.cross_entropy(a, y, weight=None if w is None else tgt(w), **kw),
             lambda a, y: torch.nn.functional.cross_entropy(
                 a, y, weight=None if w is None else tt(torch, w), **kw),
             [x], [t], dtype=dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_cross_entropy_module_with_weight_smoothing_and_extra_dims_matches_torch(reduction,
                                                                             ignore_index):
    """(N, C, d1, d2) scores, a custom ignore_index, weight and smoothing together."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(2, 4, 3, 2)
    t = np.random.randint(0, 4, (2, 3, 2))
    t[0, 0, 0] = ignore_index
    w = np.random.rand(4) + 0.5
    m = nn.CrossEntropyLoss(weight=tgt(w), ignore_index=ignore_index, reduction=reduction,
                            label_smoothing=0.1)
    tm = torch.nn.CrossEntropyLoss(weight=tt(torch, w), ignore_index=ignore_index,
                                   reduction=reduction, label_smoothing=0.1)
    _compare(torch, m, tm, [x], [t])
    assert list(m.state_dict()) == list(tm.state_dict()) == ["weight"]


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_unbatched_with_options_matches_torch(weighted):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(5)
    w = np.random.rand(5) + 0.5 if weighted else None
    _compare(torch,
             lambda a, y: F.cross_entropy(a, y, None if w is None else tgt(w),
                                          label_smoothing=0.3),
             lambda a, y: torch.nn.functional.cross_entropy(
                 a, y, None if w is None else tt(torch, w), label_smoothing=0.3),
             [x], [np.array(3)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_match_torch(reduction, weighted, smoothing):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(6, 4)
    p = np.random.rand(6, 4)
    p /= p.sum(1, keepdims=True)
    w = np.random.rand(4) + 0.5 if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    _compare(torch,
             lambda a, y: F.cross_entropy(a, y, weight=None if w is None else tgt(w), **kw),
             lambda a, y: torch.nn.functional.cross_entropy(
                 a, y, weight=None if w is None else tt(torch, w), **kw),
             [x, p])  # the target's gradient too


def test_cross_entropy_weighted_mean_divides_by_the_targets_weights():
    """A hand-computed case, torch-free: the weighted mean is sum(w_y * nll) / sum(w_y)."""
    x = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    t = np.array([0, 1, -100])
    w = np.array([2.0, 1.0, 7.0])
    loss = F.cross_entropy(tgt(x), tg.tensor(t), weight=tgt(w)).item()
    expected = (2.0 * -math.log(0.5) + 1.0 * -math.log(0.8)) / 3.0
    assert loss == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_default_arguments_keep_the_fused_record():
    x = tg.randn(4, 3, requires_grad=True)
    y = tg.tensor([0, 1, 2, 1])
    before = tg._C._tape_size()
    fused = F.cross_entropy(x, y)  # noqa: F841  (kept alive: a dropped result frees its record)
    assert tg._C._tape_size() - before == 1
    before = tg._C._tape_size()
    composite = F.cross_entropy(x, y, label_smoothing=0.1)  # noqa: F841
    assert tg._C._tape_size() - before > 1


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_options_gradcheck(smoothing):
    w = np.random.rand(4) + 0.5
    t = np.array([0, 3, -100, 2, 1])
    _gradcheck(lambda a, y: F.cross_entropy(a, y, weight=tgt(w), label_smoothing=smoothing,
                                            reduction="none"),
               [np.random.randn(5, 4)], [t])
    _gradcheck(lambda a, y: F.cross_entropy(a, y, weight=tgt(w), label_smoothing=smoothing),
               [np.random.randn(5, 4)], [t])


def test_cross_entropy_all_targets_ignored_with_weight_gives_nan_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(3, 4)
    t = np.array([-100, -100, -100])
    w = np.ones(4)
    a = F.cross_entropy(tgt(x), tg.tensor(t), weight=tgt(w), label_smoothing=0.1).item()
    b = torch.nn.functional.cross_entropy(tt(torch, x), torch.tensor(t), weight=tt(torch, w),
                                          label_smoothing=0.1).item()
    assert math.isnan(a) and math.isnan(b)


def test_cross_entropy_option_errors():
    x, y = tg.randn(3, 4), tg.tensor([0, 1, 2])
    with pytest.raises(RuntimeError, match="label_smoothing"):
        F.cross_entropy(x, y, label_smoothing=1.5)
    with pytest.raises(RuntimeError, match=r"weight.*\[3\]"):
        F.cross_entropy(x, y, weight=tg.ones(3))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, tg.tensor([0, 4, 1]), label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"\[3, 4\].*\[2\]"):
        F.cross_entropy(x, tg.tensor([0, 1]), weight=tg.ones(4))
    with pytest.raises(ValueError, match="shaped like input"):
        F.cross_entropy(x, tg.rand(3, 5))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, y, label_smoothing=0.1, reduction="avg")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 0])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nll_loss_weight_matches_torch(reduction, ignore_index, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(7, 4)
    t = np.array([0, 3, 1, 0, 2, 3, -100 if ignore_index == -100 else 1])
    w = (np.random.rand(4) + 0.5).astype(dtype)
    m = nn.NLLLoss(weight=tgt(w), ignore_index=ignore_index, reduction=reduction)
    tm = torch.nn.NLLLoss(weight=tt(torch, w), ignore_index=ignore_index, reduction=reduction)
    _compare(torch, m, tm, [x], [t], dtype=dtype)
    assert list(m.state_dict()) == list(tm.state_dict())


def test_nll_loss_weight_gradcheck_and_positional_weight():
    w = np.random.rand(4) + 0.5
    t = np.array([0, 3, 1, 2])
    _gradcheck(lambda a, y: F.nll_loss(a, y, tgt(w)), [np.random.randn(4, 4)], [t])
    x = tg.randn(4, 4, dtype=tg.float64)
    a = F.nll_loss(x, tg.tensor(t), tgt(w)).item()  # weight is the third positional, as torch
    b = F.nll_loss(x, tg.tensor(t), weight=tgt(w)).item()
    assert a == b


def test_legacy_size_average_and_reduce_map_to_reduction_with_a_warning():
    x, y = tg.randn(3, 4, dtype=tg.float64), tg.tensor([0, 1, 2])
    with pytest.warns(UserWarning, match="reduction='sum'"):
        a = F.cross_entropy(x, y, size_average=False)
    assert a.item() == pytest.approx(F.cross_entropy(x, y, reduction="sum").item(), rel=1e-12)
    with pytest.warns(UserWarning, match="reduction='none'"):
        m = nn.L1Loss(reduce=False)
    assert m.reduction == "none"


# ============================================================================
# regression losses
# ============================================================================
REGRESSION = [
    ("L1Loss", {}, {}),
    ("SmoothL1Loss", {}, {}),
    ("SmoothL1Loss", {"beta": 0.5}, {"beta": 0.5}),
    ("SmoothL1Loss", {"beta": 0.0}, {"beta": 0.0}),
    ("HuberLoss", {}, {}),
    ("HuberLoss", {"delta": 0.3}, {"delta": 0.3}),
]


@pytest.mark.parametrize("name,kw,tkw", REGRESSION, ids=[f"{n}{k}" for n, k, _ in REGRESSION])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_regression_losses_match_torch(name, kw, tkw, reduction, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, y = np.random.randn(5, 4) * 2, np.random.randn(5, 4)
    _compare(torch, getattr(nn, name)(reduction=reduction, **kw),
             getattr(torch.nn, name)(reduction=reduction, **tkw), [x, y], dtype=dtype)


@pytest.mark.parametrize("fn,kw", [(F.l1_loss, {}), (F.smooth_l1_loss, {"beta": 0.7}),
                                   (F.huber_loss, {"delta": 0.7})])
def test_regression_losses_gradcheck(fn, kw):
    x, y = np.random.randn(4, 3), np.random.randn(4, 3)
    _gradcheck(lambda a, b: fn(a, b, reduction="none", **kw), [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fn,kw", [("l1_loss", {}), ("huber_loss", {"delta": 0.6})])
def test_weighted_l1_and_huber_match_torch(fn, kw, reduction):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, y, w = np.random.randn(5, 4), np.random.randn(5, 4), np.random.rand(5, 4) + 0.1
    _compare(torch, lambda a, b, c: getattr(F, fn)(a, b, reduction=reduction, weight=c, **kw),
             lambda a, b, c: getattr(torch.nn.functional, fn)(a, b, reduction=reduction,
                                                              weight=c, **kw),
             [x, y, w])  # the weight's gradient too


@pytest.mark.parametrize("fn", ["l1_loss", "smooth_l1_loss", "huber_loss"])
def test_regression_losses_broadcast_a_target_with_a_warning_like_torch(fn):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x, y = np.random.randn(3, 4), np.random.randn(4)
    with pytest.warns(UserWarning, match="different to the input size") as record:
        _compare(torch, lambda a, b: getattr(F, fn)(a, b, reduction="none"),
                 lambda a, b: getattr(torch.nn.functional, fn)(a, b, reduction="none"), [x, y])
    assert sum(str(w.message).startswith(fn) for w in record) == 1


def test_regression_loss_errors():
    x = tg.randn(3, 2)
    with pytest.raises(ValueError, match=r"l1_loss.*\[3, 3\].*\[3, 2\]"):
        F.l1_loss(x, tg.randn(3, 3))
    with pytest.raises(ValueError, match=r"huber_loss: weights.*\[2\]"):
        F.huber_loss(x, x, weight=tg.ones(2))
    with pytest.raises(RuntimeError, match="beta"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(RuntimeError, match="delta"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        nn.HuberLoss(reduction="avg")


# ============================================================================
# binary cross entropy
# ============================================================================
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bce_matches_torch(reduction, weighted, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    p = np.random.uniform(0.02, 0.98, (6, 3))
    y = np.random.uniform(0, 1, (6, 3))
    y[0] = [0.0, 1.0, 1.0]
    w = (np.random.rand(3) + 0.5).astype(dtype) if weighted else None
    m = nn.BCELoss(weight=None if w is None else tgt(w), reduction=reduction)
    tm = torch.nn.BCELoss(weight=None if w is None else tt(torch, w), reduction=reduction)
    _compare(torch, m, tm, [p, y], dtype=dtype)
    assert list(m.state_dict()) == list(tm.state_dict())


def test_bce_clamps_the_log_at_minus_100_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    a = to_np(F.binary_cross_entropy(tgt(p), tgt(y), reduction="none"))
    b = torch.nn.functional.binary_cross_entropy(tt(torch, p), tt(torch, y),
                                                 reduction="none").numpy()
    np.testing.assert_array_equal(a, b)
    assert a[0] == 100.0
    x = tgt(p, True)
    F.binary_cross_entropy(x, tgt(y)).backward()
    assert np.isfinite(to_np(x.grad)).all()


def test_bce_gradcheck():
    p = np.random.uniform(0.1, 0.9, (4, 3))
    y = np.random.uniform(0, 1, (4, 3))
    w = np.random.rand(3) + 0.5
    _gradcheck(lambda a, b: F.binary_cross_entropy(a, b, tgt(w), reduction="none"), [p, y])


def test_bce_errors():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(tg.tensor([0.5, 1.5]), tg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[2\].*\[3\]"):
        F.binary_cross_entropy(tg.tensor([0.5, 0.5, 0.5]), tg.tensor([0.0, 1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bce_with_logits_weight_and_pos_weight_match_torch(reduction, weighted, pos_weighted,
                                                           dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.randn(6, 3) * 4
    y = np.random.uniform(0, 1, (6, 3))
    w = (np.random.rand(6, 1) + 0.5).astype(dtype) if weighted else None
    pw = (np.random.rand(3) * 3).astype(dtype) if pos_weighted else None
    m = nn.BCEWithLogitsLoss(weight=None if w is None else tgt(w), reduction=reduction,
                             pos_weight=None if pw is None else tgt(pw))
    tm = torch.nn.BCEWithLogitsLoss(weight=None if w is None else tt(torch, w),
                                    reduction=reduction,
                                    pos_weight=None if pw is None else tt(torch, pw))
    _compare(torch, m, tm, [x, y], dtype=dtype)
    assert list(m.state_dict()) == list(tm.state_dict())


def test_bce_with_logits_pos_weight_is_stable_and_gradchecks():
    pw = tgt(np.array([0.5, 2.0, 3.0]))
    x = tgt(np.array([[800.0, -800.0, 30.0]]), True)
    loss = F.binary_cross_entropy_with_logits(x, tgt(np.array([[1.0, 0.0, 1.0]])),
                                              pos_weight=pw, reduction="none")
    assert np.isfinite(to_np(loss)).all()
    loss.sum().backward()
    assert np.isfinite(to_np(x.grad)).all()
    _gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw,
                                                               reduction="none"),
               [np.random.randn(4, 3), np.random.rand(4, 3)])


# ============================================================================
# kl_div
# ============================================================================
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kl_div_matches_torch(reduction, log_target, dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    logq = np.log(np.random.dirichlet(np.ones(5), 4))
    p = np.random.dirichlet(np.ones(5), 4)
    target = np.log(p) if log_target else p
    m = nn.KLDivLoss(reduction=reduction, log_target=log_target)
    tm = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)
    if reduction == "mean":  # both warn that 'mean' is not the KL divergence
        with pytest.warns(UserWarning, match="batchmean") as record:
            _compare(torch, m, tm, [logq, target], dtype=dtype)
        assert sum("kl_div: reduction='mean'" in str(w.message) for w in record) == 1
    else:
        _compare(torch, m, tm, [logq, target], dtype=dtype)


def test_kl_div_zero_target_contributes_zero_like_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    logq = np.log(np.array([[0.2, 0.3, 0.5]]))
    p = np.array([[0.0, 0.4, 0.6]])
    x = tgt(logq, True)
    a = F.kl_div(x, tgt(p), reduction="none")
    b = torch.nn.functional.kl_div(tt(torch, logq), tt(torch, p), reduction="none")
    np.testing.assert_allclose(to_np(a), b.numpy(), rtol=1e-12)
    assert to_np(a)[0, 0] == 0.0
    a.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), -p)  # d/dinput = -target


def test_kl_div_gradcheck_and_errors():
    logq = np.log(np.random.dirichlet(np.ones(3), 4))
    p = np.random.dirichlet(np.ones(3), 4)
    _gradcheck(lambda a, b: F.kl_div(a, b, reduction="none"), [logq, p])
    _gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=True),
               [logq, np.log(p)])
    with pytest.raises(ValueError, match="batchmean"):
        F.kl_div(tgt(logq), tgt(p), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.KLDivLoss(reduction="avg")
