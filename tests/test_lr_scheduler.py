"""tapegrad.optim.lr_scheduler against torch.optim.lr_scheduler: the learning
rates (and, for CyclicLR, momentums) epoch by epoch, state dict round trips,
step(epoch), resuming, and the warnings and errors.

The learning rates are plain Python floats computed by the same formulas in the
same order, so they are compared for equality. The reference loops call
optimizer.step() before scheduler.step(), as torch asks, so torch emits no
warnings (pytest runs with filterwarnings=error).
"""

import math

import pytest

import tapegrad as tg
from tapegrad import optim
from tapegrad.optim import lr_scheduler as sched

TORCH_REASON = "torch is not installed (CI installs torch==2.13.0)"


def _torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def _groups(make, opt_name="SGD", **opt_kw):
    ps = [make(), make()]
    return [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01}], opt_kw


def _ours(opt_name="SGD", **opt_kw):
    groups, kw = _groups(lambda: tg.randn(2, requires_grad=True), opt_name, **opt_kw)
    return getattr(optim, opt_name)(groups, lr=0.1, **kw)


def _theirs(torch, opt_name="SGD", **opt_kw):
    groups, kw = _groups(lambda: torch.randn(2, requires_grad=True), opt_name, **opt_kw)
    return getattr(torch.optim, opt_name)(groups, lr=0.1, **kw)


def _lambda_a(epoch):
    return 0.95 ** epoch


def _lambda_b(epoch):
    return 1.0 / (1 + epoch)


CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5), {}),
    ("StepLR", dict(step_size=1), {}),
    ("ExponentialLR", dict(gamma=0.9), {}),
    ("LambdaLR", dict(lr_lambda=_lambda_a), {}),
    ("LambdaLR", dict(lr_lambda=[_lambda_a, _lambda_b]), {}),
    ("CosineAnnealingLR", dict(T_max=10), {}),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), {}),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4), {"momentum": 0.9}),
    ("CyclicLR", dict(base_lr=[0.01, 0.001], max_lr=[0.1, 0.05], step_size_up=3,
                      step_size_down=5, mode="triangular2"), {"momentum": 0.9}),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.95,
                      base_momentum=0.7, max_momentum=0.95), {"momentum": 0.9}),
    ("CyclicLR", dict(base_lr=0.001, max_lr=0.01, step_size_up=5, cycle_momentum=False), {}),
    ("CyclicLR", dict(base_lr=0.001, max_lr=0.01, step_size_up=3, scale_fn=_lambda_b,
                      scale_mode="iterations"), {"momentum": 0.5}),
    ("MultiStepLR", dict(milestones=[3, 8, 8, 20], gamma=0.3), {}),
    ("MultiStepLR", dict(milestones=[5]), {}),
    ("ConstantLR", dict(), {}),
    ("ConstantLR", dict(factor=0.7, total_iters=11), {}),
    ("LinearLR", dict(), {}),
    ("LinearLR", dict(start_factor=0.05, end_factor=0.6, total_iters=13), {}),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=30), {}),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=45), {"momentum": 0.9}),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], epochs=5, steps_per_epoch=9, pct_start=0.4,
                        anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0),
     {"momentum": 0.9}),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=41, three_phase=True, base_momentum=0.7,
                        max_momentum=[0.9, 0.95]), {"momentum": 0.9}),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=50, three_phase=True, anneal_strategy="linear",
                        cycle_momentum=False), {}),
]


def _case_id(case):
    name, kw, okw = case
    return name + "".join(f"-{k}={getattr(v, '__name__', v)}" for k, v in kw.items())


def _opt_values(opt):
    out = []
    for g in opt.param_groups:
        out.append((g["lr"], g.get("momentum"), tuple(g["betas"]) if "betas" in g else None))
    return out


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_learning_rates_match_torch_epoch_by_epoch(case):
    torch = _torch()
    name, kw, okw = case
    opt, topt = _ours(**okw), _theirs(torch, **okw)
    s, ts = getattr(sched, name)(opt, **kw), getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    assert s.get_last_lr() == ts.get_last_lr()
    assert _opt_values(opt) == _opt_values(topt)
    for epoch in range(40):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        assert s.get_last_lr() == ts.get_last_lr(), f"epoch {epoch}"
        assert _opt_values(opt) == _opt_values(topt), f"epoch {epoch}"
        assert s.last_epoch == ts.last_epoch == epoch + 1


@pytest.mark.parametrize("name,kw,steps", [
    ("CyclicLR", dict(base_lr=0.001, max_lr=0.01, step_size_up=2, base_momentum=0.8,
                      max_momentum=0.95), 9),
    ("OneCycleLR", dict(max_lr=0.01, total_steps=20, base_momentum=0.8, max_momentum=0.95), 20),
])
def test_cycling_schedulers_cycle_adam_beta1_like_torch(name, kw, steps):
    torch = _torch()
    opt, topt = _ours("Adam"), _theirs(torch, "Adam")
    s, ts = getattr(sched, name)(opt, **kw), getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(steps):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        assert s.get_last_lr() == ts.get_last_lr()
        assert [g["betas"] for g in opt.param_groups] == [g["betas"] for g in topt.param_groups]
    assert opt.param_groups[0]["betas"][1] == 0.999


def test_cyclic_lr_needs_momentum_or_betas_like_torch():
    torch = _torch()
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        torch.optim.lr_scheduler.CyclicLR(_theirs(torch, "Adagrad"), base_lr=0.01, max_lr=0.1)
    with pytest.raises(ValueError, match="CyclicLR: cycle_momentum=True needs an optimizer with "
                                         "'momentum' or 'betas', and Adagrad has neither"):
        sched.CyclicLR(_ours("Adagrad"), base_lr=0.01, max_lr=0.1)
    sched.CyclicLR(_ours("Adagrad"), base_lr=0.01, max_lr=0.1, cycle_momentum=False)


def test_cyclic_lr_errors():
    with pytest.raises(ValueError, match="CyclicLR: mode must be one of triangular, "
                                         "triangular2, exp_range \\(got 'sawtooth'\\)"):
        sched.CyclicLR(_ours(), base_lr=0.01, max_lr=0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="CyclicLR: base_lr has 3 values but the optimizer has "
                                         "2 parameter groups"):
        sched.CyclicLR(_ours(), base_lr=[0.1, 0.2, 0.3], max_lr=0.5)
    # a custom scale_fn makes any mode name acceptable, as in torch
    sched.CyclicLR(_ours(), base_lr=0.01, max_lr=0.1, mode="sawtooth", scale_fn=_lambda_b)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_state_dict_round_trip_continues_like_torch(case):
    """Save after 7 epochs, build a fresh optimizer and scheduler, load both, go on:
    the learning rates are those of an uninterrupted torch run."""
    torch = _torch()
    name, kw, okw = case
    opt = _ours(**okw)
    s = getattr(sched, name)(opt, **kw)
    topt = _theirs(torch, **okw)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(7):
        opt.step()
        topt.step()
        s.step()
        ts.step()
    saved_opt, saved_sched = opt.state_dict(), s.state_dict()
    theirs = ts.state_dict()
    # The public attributes and the schedule's position are saved as torch saves them
    # (the private bookkeeping has names of its own).
    for k in [k for k in theirs if not k.startswith("_")] + ["_last_lr", "_step_count"]:
        assert k in saved_sched, k
        if not callable(theirs[k]):
            assert saved_sched[k] == theirs[k], k
    assert "optimizer" not in saved_sched
    assert not any(callable(v) for v in saved_sched.values())

    opt2 = _ours(**okw)
    s2 = getattr(sched, name)(opt2, **kw)
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved_sched)
    assert s2.get_last_lr() == ts.get_last_lr()
    for epoch in range(15):
        opt2.step()
        topt.step()
        s2.step()
        ts.step()
        assert s2.get_last_lr() == ts.get_last_lr(), f"epoch {epoch}"
        assert _opt_values(opt2) == _opt_values(topt)


def test_lambda_lr_state_dict_does_not_save_functions_but_saves_callable_objects():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.n)

    opt = _ours()
    s = sched.LambdaLR(opt, [_lambda_a, Warmup(5)])
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [None, {"n": 5}]
    assert "optimizer" not in sd
    w = Warmup(2)
    s2 = sched.LambdaLR(_ours(), [lambda e: 1.0, w])
    s2.load_state_dict(sd)
    assert w.n == 5 and sd["lr_lambdas"] == [None, {"n": 5}]


def test_lambda_lr_needs_one_lambda_per_group():
    with pytest.raises(ValueError, match="LambdaLR: expected one lr_lambda per parameter "
                                         "group \\(2\\), got 3"):
        sched.LambdaLR(_ours(), [_lambda_a] * 3)


@pytest.mark.filterwarnings("ignore:The epoch parameter:UserWarning")
@pytest.mark.parametrize("name,kw", [("MultiStepLR", dict(milestones=[3, 3, 10], gamma=0.5)),
                                     ("ConstantLR", dict(factor=0.25, total_iters=7)),
                                     ("LinearLR", dict(start_factor=0.2, total_iters=8)),
                                     ("StepLR", dict(step_size=3, gamma=0.5)),
                                     ("ExponentialLR", dict(gamma=0.9)),
                                     ("CosineAnnealingLR", dict(T_max=10, eta_min=0.01)),
                                     ("LambdaLR", dict(lr_lambda=_lambda_b))])
def test_step_with_epoch_uses_the_closed_form_like_torch(name, kw):
    torch = _torch()
    opt, topt = _ours(), _theirs(torch)
    s, ts = getattr(sched, name)(opt, **kw), getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for epoch in (4, 9, 2, 15):
        opt.step()
        topt.step()
        s.step(epoch)
        ts.step(epoch)
        assert s.get_last_lr() == ts.get_last_lr()
        assert s.last_epoch == epoch


def test_step_with_epoch_warns():
    opt = _ours()
    s = sched.StepLR(opt, step_size=2)
    opt.step()
    with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)`"):
        s.step(3)
    assert s.get_last_lr() == [0.1 * 0.1, 0.01 * 0.1]


@pytest.mark.parametrize("name,kw", [("StepLR", dict(step_size=3, gamma=0.5)),
                                     ("ExponentialLR", dict(gamma=0.9)),
                                     ("CosineAnnealingLR", dict(T_max=10)),
                                     ("MultiStepLR", dict(milestones=[2, 7, 9])),
                                     ("ConstantLR", dict(factor=0.5, total_iters=8)),
                                     ("LinearLR", dict(start_factor=0.25, total_iters=9))])
def test_resuming_with_last_epoch_matches_torch(name, kw):
    torch = _torch()
    opt, topt = _ours(), _theirs(torch)
    for o in (opt, topt):
        for g in o.param_groups:
            g["initial_lr"] = g["lr"]
    s = getattr(sched, name)(opt, last_epoch=5, **kw)
    ts = getattr(torch.optim.lr_scheduler, name)(topt, last_epoch=5, **kw)
    assert s.get_last_lr() == ts.get_last_lr()
    for _ in range(8):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        assert s.get_last_lr() == ts.get_last_lr()


def test_resuming_without_initial_lr_raises():
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\]"):
        sched.StepLR(_ours(), step_size=2, last_epoch=3)


def test_scheduler_step_before_optimizer_step_warns_like_torch():
    torch = _torch()
    msg = "Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`"
    ts = torch.optim.lr_scheduler.StepLR(_theirs(torch), step_size=2)
    with pytest.warns(UserWarning, match=msg):
        ts.step()
    s = sched.StepLR(_ours(), step_size=2)
    with pytest.warns(UserWarning, match=msg):
        s.step()


def test_get_lr_outside_step_warns():
    s = sched.ExponentialLR(_ours(), gamma=0.5)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        s.get_lr()


def test_scheduler_needs_an_optimizer():
    torch = _torch()
    with pytest.raises(TypeError, match="SGD is not an Optimizer"):
        sched.StepLR(_theirs(torch), step_size=2)
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        sched.CyclicLR([], base_lr=0.1, max_lr=1.0)


def test_scheduled_lr_drives_the_updates():
    a = tg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([a], lr=1.0)
    s = sched.StepLR(opt, step_size=1, gamma=0.5)
    for lr in (1.0, 0.5, 0.25):
        before = a.item()
        a.grad = tg.ones(1)
        opt.step()
        s.step()
        assert before - a.item() == lr
    assert opt.param_groups[0]["initial_lr"] == 1.0


def test_cosine_annealing_values():
    opt = _ours()
    s = sched.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    lrs = []
    for _ in range(4):
        opt.step()
        s.step()
        lrs.append(s.get_last_lr()[0])
    expected = [0.1 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)]
    assert lrs == pytest.approx(expected, abs=1e-15)


def test_old_name_and_exports():
    assert issubclass(sched._LRScheduler, sched.LRScheduler)
    assert set(sched.__all__) >= {"LRScheduler", "LambdaLR", "StepLR", "ExponentialLR",
                                  "CosineAnnealingLR", "CyclicLR", "ReduceLROnPlateau"}


def test_cyclic_lr_state_dict_keeps_a_callable_objects_attributes():
    class Halving:
        def __init__(self, base):
            self.base = base

        def __call__(self, x):
            return self.base ** x

    s = sched.CyclicLR(_ours(), base_lr=0.01, max_lr=0.1, step_size_up=2, scale_fn=Halving(0.5),
                       cycle_momentum=False)
    sd = s.state_dict()
    assert sd["_custom_scale"] == {"base": 0.5}
    target = Halving(0.9)
    s2 = sched.CyclicLR(_ours(), base_lr=0.01, max_lr=0.1, step_size_up=2, scale_fn=target,
                        cycle_momentum=False)
    s2.load_state_dict(sd)
    assert target.base == 0.5 and sd["_custom_scale"] == {"base": 0.5}
    assert s2.scale_fn(2) == 0.25


# ---------------------------------------------------------------- ReduceLROnPlateau
# A metric that improves, plateaus (with changes below the threshold), improves
# again and plateaus long enough for several reductions down to min_lr.
PLATEAU_METRICS = [1.0, 0.9, 0.85, 0.85, 0.84999, 0.85, 0.86, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8,
                   0.79999, 0.8, 0.81, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]

PLATEAU_CASES = [
    dict(),
    dict(patience=2),
    dict(patience=1, factor=0.5, cooldown=2),
    dict(patience=0, factor=0.5, min_lr=0.004),
    dict(patience=1, factor=0.5, min_lr=[0.02, 0.001]),
    dict(patience=1, threshold=0.05, threshold_mode="abs"),
    dict(mode="max", patience=1, factor=0.3),
    dict(mode="max", patience=1, threshold_mode="abs", threshold=0.001),
    dict(patience=0, factor=0.999999999, eps=0.01),  # changes below eps are skipped
]


@pytest.mark.parametrize("kw", PLATEAU_CASES, ids=[str(k) for k in PLATEAU_CASES])
def test_reduce_lr_on_plateau_matches_torch(kw):
    torch = _torch()
    opt, topt = _ours(), _theirs(torch)
    s = sched.ReduceLROnPlateau(opt, **kw)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    assert s.get_last_lr() == ts.get_last_lr()
    metrics = PLATEAU_METRICS if kw.get("mode") != "max" else [-m for m in PLATEAU_METRICS]
    for epoch, m in enumerate(metrics):
        opt.step()
        topt.step()
        s.step(m)
        ts.step(m)
        assert s.get_last_lr() == ts.get_last_lr(), f"epoch {epoch}"
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
        assert (s.best, s.num_bad_epochs, s.cooldown_counter, s.last_epoch) == \
            (ts.best, ts.num_bad_epochs, ts.cooldown_counter, ts.last_epoch), f"epoch {epoch}"


def test_reduce_lr_on_plateau_reduces_and_round_trips():
    opt = _ours()
    s = sched.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for m in (1.0, 1.0, 1.0):  # the third epoch is the second without improvement
        s.step(m)
    assert s.get_last_lr() == [0.05, 0.005]
    sd = s.state_dict()
    assert "optimizer" not in sd
    s2 = sched.ReduceLROnPlateau(_ours(), patience=7)
    s2.load_state_dict(sd)
    assert (s2.patience, s2.best, s2.last_epoch) == (1, 1.0, 3)
    s.step(tg.tensor(0.5))  # a 0-d tensor metric, as loss.item() would give
    assert s.best == 0.5


def test_reduce_lr_on_plateau_errors():
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor must be < 1.0, got 1.5"):
        sched.ReduceLROnPlateau(_ours(), factor=1.5)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode must be 'min' or 'max'"):
        sched.ReduceLROnPlateau(_ours(), mode="up")
    with pytest.raises(ValueError, match="threshold_mode must be 'rel' or 'abs'"):
        sched.ReduceLROnPlateau(_ours(), threshold_mode="pct")
    with pytest.raises(ValueError, match="ReduceLROnPlateau: min_lr has 3 values but the "
                                         "optimizer has 2 parameter groups"):
        sched.ReduceLROnPlateau(_ours(), min_lr=[0.0] * 3)
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        sched.ReduceLROnPlateau([])
    # min_lr given per group, then a group added: which floor applies is unknown
    opt = _ours()
    s = sched.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
    opt.add_param_group({"params": [tg.randn(2, requires_grad=True)]})
    s.step(1.0)
    with pytest.raises(RuntimeError, match="has 3 parameter groups but min_lr was given for 2"):
        s.step(2.0)


# ---------------------------------------------------------------- OneCycleLR, SequentialLR
def test_one_cycle_lr_errors_like_torch():
    torch = _torch()
    for lib, o in ((sched, _ours()), (torch.optim.lr_scheduler, _theirs(torch))):
        for kw in (dict(), dict(total_steps=0), dict(epochs=2), dict(total_steps=10, pct_start=2.0),
                   dict(total_steps=10, anneal_strategy="exp"),
                   dict(epochs=2, steps_per_epoch=1.5)):
            with pytest.raises(ValueError):
                lib.OneCycleLR(o, max_lr=0.1, **kw)
    with pytest.raises(ValueError, match="'momentum' or 'betas', and Adagrad has neither"):
        sched.OneCycleLR(_ours("Adagrad"), max_lr=0.1, total_steps=5)
    opt = _ours()
    s = sched.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        s.step()
    with pytest.raises(ValueError, match="tried to step 4 times, but total_steps is 3"):
        s.step()


def _sequential(lib, opt):
    first = lib.LinearLR(opt, start_factor=0.1, total_iters=4)
    second = lib.ExponentialLR(opt, gamma=0.8)
    third = lib.CosineAnnealingLR(opt, T_max=6, eta_min=0.001)
    return lib.SequentialLR(opt, [first, second, third], milestones=[4, 11])


def test_sequential_lr_matches_torch_and_round_trips():
    torch = _torch()
    opt, topt = _ours(), _theirs(torch)
    s, ts = _sequential(sched, opt), _sequential(torch.optim.lr_scheduler, topt)
    assert s.get_last_lr() == ts.get_last_lr()
    for epoch in range(9):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        assert s.get_last_lr() == ts.get_last_lr(), f"epoch {epoch}"
        assert _opt_values(opt) == _opt_values(topt)
    saved_opt, saved = opt.state_dict(), s.state_dict()
    assert len(saved["_schedulers"]) == 3 and "optimizer" not in saved
    assert saved["_milestones"] == ts.state_dict()["_milestones"]
    opt2 = _ours()
    s2 = _sequential(sched, opt2)
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved)
    assert "_schedulers" in saved  # loading does not consume the dict
    for epoch in range(20):
        opt2.step()
        topt.step()
        s2.step()
        ts.step()
        assert s2.get_last_lr() == ts.get_last_lr(), f"epoch {epoch + 9}"
        assert _opt_values(opt2) == _opt_values(topt)


def test_sequential_lr_with_a_single_scheduler_and_milestone_warmup_like_torch():
    torch = _torch()
    rates = []
    for lib, opt in ((sched, _ours()), (torch.optim.lr_scheduler, _theirs(torch))):
        warm = lib.ConstantLR(opt, factor=0.5, total_iters=3)
        decay = lib.MultiStepLR(opt, milestones=[2, 5], gamma=0.5)
        s = lib.SequentialLR(opt, [warm, decay], milestones=[3])
        seen = [s.get_last_lr()]
        for _ in range(10):
            opt.step()
            s.step()
            seen.append(s.get_last_lr())
        rates.append(seen)
    assert rates[0] == rates[1]


def test_sequential_lr_errors():
    opt = _ours()
    a, b = sched.StepLR(opt, 2), sched.ExponentialLR(opt, 0.9)
    with pytest.raises(ValueError, match="at least one scheduler"):
        sched.SequentialLR(opt, [], [])
    with pytest.raises(ValueError, match="one milestone fewer than schedulers, got 2 "
                                         "schedulers and 2 milestones"):
        sched.SequentialLR(opt, [a, b], [3, 5])
    with pytest.raises(ValueError, match="scheduler 1 \\(StepLR\\) drives a different"):
        sched.SequentialLR(opt, [a, sched.StepLR(_ours(), 2)], [3])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        sched.SequentialLR(opt, [a, sched.ReduceLROnPlateau(opt)], [3])


def test_new_schedulers_argument_errors():
    with pytest.raises(ValueError, match="ConstantLR: the factor must be between 0 and 1"):
        sched.ConstantLR(_ours(), factor=1.5)
    with pytest.raises(ValueError, match="LinearLR: start_factor"):
        sched.LinearLR(_ours(), start_factor=0.0)
    with pytest.raises(ValueError, match="LinearLR: end_factor"):
        sched.LinearLR(_ours(), end_factor=1.5)
