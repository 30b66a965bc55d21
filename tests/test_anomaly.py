"""tg.autograd.detect_anomaly: the first op whose forward or backward produces
NaN/Inf raises, naming the op and the Python line that recorded it."""

import gc
import inspect
import os
import threading

import pytest

import tapegrad as tg

HERE = os.path.basename(__file__)


def _line():
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno


def test_forward_nan_names_op_and_line():
    x = tg.tensor([1.0, -1.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError) as info:
            line = _line(); tg.log(x)  # noqa: E702  (the op and its line on one line)
    msg = str(info.value)
    assert "'log'" in msg and "nan" in msg, msg
    assert f"{HERE}:{line}" in msg, msg


def test_forward_inf_names_op():
    x = tg.tensor([0.0, 2.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"'div'.*inf"):
            tg.tensor([1.0, 1.0]) / x


def test_backward_inf_names_backward_fn_and_line():
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        line = _line(); y = tg.sqrt(x)  # noqa: E702
        assert y.tolist() == [0.0, 2.0]  # the forward is finite
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
    msg = str(info.value)
    assert "Function 'sqrt_backward' returned inf values in its 0th output" in msg, msg
    assert f"{HERE}:{line}" in msg, msg
    assert x.grad is None  # the walk stopped before touching the leaf


def test_backward_nan_from_mul_by_inf():
    # 0 * inf in a backward: the gradient of log at 0 is inf, times 0 is nan.
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with tg.autograd.detect_anomaly():
        y = tg.sqrt(x) * 0.0
        with pytest.raises(RuntimeError, match="sqrt_backward' returned nan"):
            y.sum().backward()


def test_outside_context_nothing_raises():
    assert not tg.autograd.is_anomaly_enabled()
    x = tg.tensor([-1.0, 0.0], requires_grad=True)
    y = tg.log(x)  # nan, -inf: no error
    assert y.isnan().tolist() == [True, False]
    z = tg.sqrt(tg.tensor([0.0], requires_grad=True))
    z.sum().backward()  # inf gradient, no error


def test_passed_on_nan_is_not_blamed():
    # A NaN/Inf already in an input (e.g. a -inf attention mask) is passed on by
    # the op that receives it without blame; only ops that create one raise.
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    mask = tg.tensor([0.0, float("-inf")])
    with tg.autograd.detect_anomaly():
        p = tg.softmax(x + mask, dim=0)
        assert p.tolist() == [1.0, 0.0]
        p[0].backward()
    assert x.grad.tolist() == [0.0, 0.0]


def test_nested_contexts_restore_and_decorator():
    assert not tg.autograd.is_anomaly_enabled()
    with tg.autograd.detect_anomaly():
        assert tg.autograd.is_anomaly_enabled()
        with tg.autograd.detect_anomaly(check_nan=False):
            assert not tg.autograd.is_anomaly_enabled()
            tg.log(tg.tensor([-1.0], requires_grad=True))  # checks off inside
        assert tg.autograd.is_anomaly_enabled()
        with tg.autograd.set_detect_anomaly(False):
            assert not tg.autograd.is_anomaly_enabled()
        assert tg.autograd.is_anomaly_enabled()
    assert not tg.autograd.is_anomaly_enabled()

    @tg.autograd.detect_anomaly()
    def f(v):
        assert tg.autograd.is_anomaly_enabled()
        return tg.log(v)

    with pytest.raises(RuntimeError, match="'log'"):
        f(tg.tensor([-2.0], requires_grad=True))
    assert not tg.autograd.is_anomaly_enabled()  # restored after the exception

    tg.autograd.set_detect_anomaly(True)
    try:
        assert tg.autograd.is_anomaly_enabled()
    finally:
        tg.autograd.set_detect_anomaly(False)
    assert not tg.autograd.is_anomaly_enabled()


def test_mode_is_per_thread():
    seen = []
    with tg.autograd.detect_anomaly():
        t = threading.Thread(target=lambda: seen.append(tg.autograd.is_anomaly_enabled()))
        t.start()
        t.join()
    assert seen == [False]


def test_training_step_unchanged_and_tape_released():
    # With finite values, anomaly mode changes nothing: same loss, same grads,
    # and the tape is freed as usual after the step (also after an error).
    import tapegrad.nn as nn
    import tapegrad.nn.functional as F

    def step():
        tg.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        x = tg.randn(5, 4)
        loss = F.cross_entropy(model(x), tg.tensor([0, 1, 2, 1, 0]))
        loss.backward()
        return loss.item(), [p.grad.tolist() for p in model.parameters()]

    gc.collect()  # earlier tests' tracebacks may hold graphs in reference cycles
    live = tg._C._tape_live()
    plain = step()
    with tg.autograd.detect_anomaly():
        checked = step()
        with pytest.raises(RuntimeError):
            tg.log(tg.tensor([-1.0], requires_grad=True) * 2)
    assert plain == checked
    assert tg._C._tape_live() == live


def test_location_is_user_code_not_library():
    # An op recorded inside the library (F.linear -> the fused linear op) reports
    # the user's line, not tapegrad's: 3e38 + 3e38 overflows float32 in its GEMM.
    import tapegrad.nn.functional as F

    w = tg.ones(2, 2, requires_grad=True)
    x = tg.tensor([[3e38, 3e38]])
    with tg.autograd.detect_anomaly():
        with pytest.raises(RuntimeError) as info:
            line = _line(); F.linear(x, w)  # noqa: E702
    msg = str(info.value)
    assert "'linear'" in msg and "inf" in msg, msg
    assert f"{HERE}:{line}" in msg, msg
