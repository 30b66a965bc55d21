"""Learning-rate schedulers with torch.optim.lr_scheduler's classes, arguments
and values.

A scheduler drives one optimizer: it writes ``group["lr"]`` into every
parameter group when it is built (epoch 0) and again on each ``step()``.
Call ``scheduler.step()`` after ``optimizer.step()``, once per epoch (per
batch for CyclicLR); calling it first warns, as PyTorch does, because the
schedule's first rate is then never used.

Note [Chained and closed-form schedules]
``step()`` derives each new rate from the current one (the chained form), so
schedulers can be stacked on one optimizer and a rate set by hand carries on
from where it is. ``step(epoch)`` (deprecated in PyTorch, and here) jumps to
that epoch with the scheduler's closed form where it has one. Both forms do
their arithmetic in PyTorch's order, so the rates agree with PyTorch's to the
last bit: tests/test_lr_scheduler.py compares them with ``==``.
"""

import bisect
import math
import types
import warnings
from collections import Counter

from .._C import Tensor
from .._grad_mode import no_grad
# A tensor-valued rate is cloned, so that a list of rates never aliases a group.
from .optimizer import Optimizer, _to_scalar, _copy_value as _snapshot

__all__ = [
    "LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "SequentialLR", "CosineAnnealingLR", "CyclicLR", "OneCycleLR",
    "ReduceLROnPlateau",
]


def _rates(optimizer, key):
    return [_snapshot(group[key]) for group in optimizer.param_groups]


def _set_rate(group, key, value):
    """group[key] = value; a tensor-valued entry is filled in place instead."""
    if isinstance(group[key], Tensor):
        with no_grad():
            group[key].fill_(_to_scalar(value))
    else:
        group[key] = value


def _one_per_group(owner, name, optimizer, value):
    """value repeated for every parameter group, or a list with one per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{owner}: {name} has {len(value)} values but the optimizer has "
                             f"{n} parameter group{'s' if n != 1 else ''}")
        return [_snapshot(v) for v in value]
    return [_snapshot(value) for _ in range(n)]


def _check_optimizer(owner, optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: {type(optimizer).__name__} is not an Optimizer "
                        "(expected a tapegrad.optim optimizer)")


def _callable_state(fn):
    """What a state dict keeps of a user function: nothing for a plain function or
    lambda, the attributes of a callable object (PyTorch keeps the same)."""
    if fn is None or isinstance(fn, types.FunctionType):
        return None
    return dict(fn.__dict__)


class LRScheduler:
    r"""Base class of the epoch-driven schedulers.

    Subclasses implement :meth:`get_lr` (the chained form) and may add
    ``_closed_form_lr`` (see Note [Chained and closed-form schedules]).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        last_epoch (int): the last epoch seen. -1 (the default) starts a new
            schedule and stores each group's rate as ``initial_lr``; a resumed
            schedule (``last_epoch >= 0``) needs ``initial_lr`` in every group,
            which the optimizer's state dict carries.
    """

    # Transient flags, never part of the state dict.
    _TRANSIENT = ("optimizer", "_inside_step", "_building")
    _inside_step = False  # get_lr() called by step(), not by the user
    _building = False  # the constructor's own step, which only sets epoch 0's rates

    def __init__(self, optimizer, last_epoch=-1):
        owner = type(self).__name__
        _check_optimizer(owner, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _snapshot(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{owner}: param 'initial_lr' is not specified in param_groups[{i}], "
                        f"which resuming with last_epoch={last_epoch} needs: load the "
                        "optimizer's state dict before building the scheduler, or start a "
                        "new schedule with last_epoch=-1")
        self.base_lrs = _rates(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """The constructor's step, which sets the rates of epoch last_epoch + 1
        (SequentialLR repeats it when it hands over to a scheduler)."""
        self._step_count = 0
        self._building = True
        try:
            self.step()
        finally:
            del self._building

    def state_dict(self):
        """The scheduler's attributes (not the optimizer)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._TRANSIENT}

    def load_state_dict(self, state_dict):
        """Restores what :meth:`state_dict` returned."""
        self.__dict__.update(state_dict)

    def get_last_lr(self):
        """The learning rates set by the last step, one per parameter group."""
        return self._last_lr

    def get_lr(self):
        """The rates for ``self.last_epoch`` (called by :meth:`step`; to read the
        current rates use :meth:`get_last_lr`)."""
        raise NotImplementedError

    def _warn_outside_step(self):
        if not self._inside_step:
            warnings.warn(f"{type(self).__name__}.get_lr() computes the rates of the next "
                          "step; to read the current ones, please use `get_last_lr()`.",
                          UserWarning, stacklevel=3)

    def step(self, epoch=None):
        """Moves to the next epoch (or, deprecated, to ``epoch``) and sets its rates."""
        if self._step_count == 1 and not getattr(self.optimizer, "_step_calls", 0):
            warnings.warn("Detected call of `lr_scheduler.step()` before `optimizer.step()`: "
                          "the schedule's first learning rate is skipped. Call "
                          "optimizer.step() first, then scheduler.step().",
                          UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is not None:
            warnings.warn("The epoch parameter in `scheduler.step()` is deprecated, as in "
                          "PyTorch: step(epoch) jumps to that epoch with the closed-form "
                          "schedule where there is one. Call step() once per epoch instead.",
                          UserWarning, stacklevel=2)
        self._advance(epoch)

    def _advance(self, epoch=None):
        """step() without its warnings and count (SequentialLR jumps with it)."""
        self._inside_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                rates = self.get_lr()
            else:
                self.last_epoch = epoch
                closed = getattr(self, "_closed_form_lr", None)
                rates = closed() if closed is not None else self.get_lr()
        finally:
            del self._inside_step
        for group, lr in zip(self.optimizer.param_groups, rates):
            _set_rate(group, "lr", lr)
        self._last_lr = _rates(self.optimizer, "lr")


_LRScheduler = LRScheduler  # the name PyTorch used before 2.0


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch): one function for every group, or one per group.

    The state dict keeps no functions: a plain function or lambda is saved as
    None, a callable object as its attributes (as in PyTorch).
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("LambdaLR", optimizer)
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR: expected one lr_lambda per parameter group ({n}), "
                                 f"got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        state = super().state_dict()
        state["lr_lambdas"] = [_callable_state(fn) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("lr_lambdas")
        super().load_state_dict(state)
        for fn, attrs in zip(self.lr_lambdas, saved):
            if attrs is not None:
                fn.__dict__.update(attrs)

    def get_lr(self):
        self._warn_outside_step()
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]


class StepLR(LRScheduler):
    """Multiplies the learning rate by gamma every step_size epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        rates = _rates(self.optimizer, "lr")
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return rates
        return [lr * self.gamma for lr in rates]

    def _closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiplies the learning rate by gamma every epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        rates = _rates(self.optimizer, "lr")
        if self._building:  # a resumed schedule stays where it was
            return rates
        return [lr * self.gamma for lr in rates]

    def _closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiplies the learning rate by gamma at each milestone epoch (by gamma**k
    where a milestone is listed k times)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        rates = _rates(self.optimizer, "lr")
        times = self.milestones.get(self.last_epoch, 0)
        if not times:
            return rates
        return [lr * self.gamma ** times for lr in rates]

    def _closed_form_lr(self):
        passed = bisect.bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """The initial rate times factor for the first total_iters epochs, then the rate itself."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not 0 <= factor <= 1.0:
            raise ValueError(f"ConstantLR: the factor must be between 0 and 1, got {factor}")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        rates = _rates(self.optimizer, "lr")
        if self.last_epoch == 0:
            return [lr * self.factor for lr in rates]
        if self.last_epoch == self.total_iters:  # undo the factor, chained
            return [lr * (1.0 / self.factor) for lr in rates]
        return rates

    def _closed_form_lr(self):
        done = self.last_epoch >= self.total_iters
        return [base * (self.factor + done * (1 - self.factor)) for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scales the initial rate by a factor moving linearly from start_factor (epoch 0)
    to end_factor (epoch total_iters), then keeps it.

    Chained, epoch t multiplies the previous rate by the ratio of consecutive
    factors, 1 + (end - start) / (total_iters * start + (t - 1) (end - start)).
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if not 0 < start_factor <= 1.0:
            raise ValueError("LinearLR: start_factor must be greater than 0 and at most 1, got "
                             f"{start_factor}")
        if not 0 <= end_factor <= 1.0:
            raise ValueError(f"LinearLR: end_factor must be between 0 and 1, got {end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        rates = _rates(self.optimizer, "lr")
        t, start, end = self.last_epoch, self.start_factor, self.end_factor
        if t == 0:
            return [lr * start for lr in rates]
        if self._building or t > self.total_iters:
            return rates
        ratio = 1.0 + (end - start) / (self.total_iters * start + (t - 1) * (end - start))
        return [lr * ratio for lr in rates]

    def _closed_form_lr(self):
        start, end = self.start_factor, self.end_factor
        factor = start + (end - start) * min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * factor for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Runs schedulers one after another: schedulers[i] drives the epochs from
    milestones[i - 1] on. Each scheduler after the first starts at its own epoch 0
    (its closed form there, i.e. from its base rates) when its milestone comes.

    The schedulers given have each already taken their constructor's step; that
    step is undone and only the first scheduler's is taken again.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer("SequentialLR", optimizer)
        if len(schedulers) < 1:
            raise ValueError("SequentialLR: expects at least one scheduler, got none")
        for i, sched in enumerate(schedulers):
            if isinstance(sched, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR: scheduler {i} is a ReduceLROnPlateau, whose "
                                 "step() needs a metric; it cannot be sequenced")
            if not hasattr(sched, "optimizer"):
                raise TypeError(f"SequentialLR: scheduler {i} ({type(sched).__name__}) has no "
                                "optimizer")
            if sched.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} ({type(sched).__name__}) drives "
                                 "a different optimizer; all must drive the one given")
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expects one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            _set_rate(group, "lr", group["initial_lr"])
        for sched in self._schedulers:
            sched.last_epoch -= 1
        current = self._schedulers[bisect.bisect_right(milestones, 0)]
        current._initial_step()
        self._last_lr = current.get_last_lr()

    def step(self):
        self.last_epoch += 1
        i = bisect.bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[i]
        if i > 0 and self._milestones[i - 1] == self.last_epoch:
            sched._advance(0)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()

    def state_dict(self):
        """Its own attributes, and the state dicts of its schedulers under "_schedulers"."""
        state = {k: v for k, v in self.__dict__.items()
                 if k not in self._TRANSIENT and k != "_schedulers"}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("_schedulers")
        self.__dict__.update(state)
        for sched, s in zip(self._schedulers, saved):
            sched.load_state_dict(s)


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial rate down to eta_min over T_max epochs
    (SGDR without restarts; past T_max the rate climbs back), chained as

    .. math::
        \eta_{t} = \eta_{\min} + (\eta_{t-1} - \eta_{\min})
            \frac{1 + \cos(t \pi / T_{max})}{1 + \cos((t - 1) \pi / T_{max})}

    with the closed form
    :math:`\eta_t = \eta_{\min} + (\eta_0 - \eta_{\min})(1 + \cos(t\pi/T_{max}))/2`.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        rates = _rates(self.optimizer, "lr")
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        if self._building:
            return rates
        if (t - 1 - T) % (2 * T) == 0:
            # At the trough the ratio below is 0 / 0: climb by the first step's size.
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, rates)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - low) + low for lr in rates]

    def _closed_form_lr(self):
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        return [low + (base - low) * (1 + math.cos(math.pi * t / T)) / 2 for base in self.base_lrs]


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith, 2017) between base_lr and max_lr, stepped
    every batch. Modes: "triangular", "triangular2" (the amplitude halves each
    cycle) and "exp_range" (amplitude times gamma**iteration), or a custom
    ``scale_fn`` of the cycle number (``scale_mode="cycle"``) or of the
    iteration (``"iterations"``). With ``cycle_momentum`` (the default) the
    momentum, or Adam's beta1, cycles the other way between max_momentum and
    base_momentum; an optimizer with neither raises ``ValueError``.
    """

    _MODES = ("triangular", "triangular2", "exp_range")

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        _check_optimizer("CyclicLR", optimizer)
        base_lrs = _one_per_group("CyclicLR", "base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                _set_rate(group, "lr", lr)
        self.max_lrs = _one_per_group("CyclicLR", "max_lr", optimizer, max_lr)

        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size

        if scale_fn is None and mode not in self._MODES:
            raise ValueError(f"CyclicLR: mode must be one of {', '.join(self._MODES)} "
                             f"(got {mode!r}), or pass a scale_fn")
        self.mode = mode
        self.gamma = gamma
        self._custom_scale = scale_fn
        # The built-in modes fix what they scale by.
        self.scale_mode = scale_mode if scale_fn is not None else (
            "iterations" if mode == "exp_range" else "cycle")

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"CyclicLR: cycle_momentum=True needs an optimizer with "
                                 f"'momentum' or 'betas', and {type(optimizer).__name__} has "
                                 "neither; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _one_per_group("CyclicLR", "base_momentum", optimizer,
                                                 base_momentum)
            self.max_momentums = _one_per_group("CyclicLR", "max_momentum", optimizer,
                                                max_momentum)
            if last_epoch == -1:
                for group, low, high in zip(optimizer.param_groups, self.base_momentums,
                                            self.max_momentums):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low

        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def scale_fn(self, x):
        """The amplitude's scale at cycle (or iteration) x."""
        if self._custom_scale is not None:
            return self._custom_scale(x)
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        if self.mode == "exp_range":
            return self.gamma ** x
        return 1.0

    def get_lr(self):
        """The rates for this iteration; with cycle_momentum, also sets the momentums."""
        self._warn_outside_step()
        it = self.last_epoch
        cycle = math.floor(1 + it / self.total_size)
        x = 1.0 + it / self.total_size - cycle  # position within the cycle, in [0, 1)
        if x <= self.step_ratio:
            rise = x / self.step_ratio
        else:
            rise = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else it)
        rates = [low + (high - low) * rise * scale
                 for low, high in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums):
                self._set_momentum(group, high - (high - low) * rise * scale)
        return rates

    def state_dict(self):
        """As LRScheduler's; a custom scale_fn is kept only as a callable object's attributes."""
        state = super().state_dict()
        state["_custom_scale"] = _callable_state(self._custom_scale)
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        attrs = state.pop("_custom_scale", None)
        super().load_state_dict(state)
        if attrs is not None:
            self._custom_scale.__dict__.update(attrs)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), stepped every batch: the rate climbs
    from max_lr / div_factor to max_lr over the first pct_start of total_steps, then
    anneals ("cos" or "linear") to initial_lr / final_div_factor. three_phase=True
    climbs, comes back down to initial_lr symmetrically, then anneals. With
    cycle_momentum the momentum (or Adam's beta1) moves the opposite way between
    max_momentum and base_momentum.

    Each phase interpolates between two group entries ("initial_lr", "max_lr",
    "min_lr", "max_momentum", "base_momentum"), so a resumed schedule finds them in
    the optimizer's state dict.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        _check_optimizer("OneCycleLR", optimizer)

        def positive_int(name, value):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"OneCycleLR: expected a positive int {name}, got {value!r}")
            return value

        if total_steps is not None:
            self.total_steps = positive_int("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (positive_int("epochs", epochs)
                                * positive_int("steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError("OneCycleLR: pass either total_steps, or epochs and steps_per_epoch")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: expected a float pct_start between 0 and 1, got "
                             f"{pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        # (last step of the phase, lr from, lr to, momentum from, momentum to)
        rise_end = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._phases = [
                (rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                 "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]

        max_lrs = _one_per_group("OneCycleLR", "max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, high in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = high / div_factor
                group["max_lr"] = high
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with "
                                 f"'momentum' or 'betas', and {type(optimizer).__name__} has "
                                 "neither; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            highs = _one_per_group("OneCycleLR", "max_momentum", optimizer, max_momentum)
            lows = _one_per_group("OneCycleLR", "base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, highs, lows):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    _set_momentum = CyclicLR._set_momentum

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        """The rates for this step; with cycle_momentum, also sets the momentums."""
        self._warn_outside_step()
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, but total_steps is "
                             f"{self.total_steps}")
        rates = []
        for group in self.optimizer.param_groups:
            begin = 0.0
            for i, (end, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    pct = (step - begin) / (end - begin)
                    break
                begin = end
            rates.append(self._anneal(group[lr_from], group[lr_to], pct))
            if self.cycle_momentum:
                self._set_momentum(group, self._anneal(group[m_from], group[m_to], pct))
        return rates


class ReduceLROnPlateau(LRScheduler):
    """Divides the learning rate by 1 / factor once a metric has stopped improving
    for more than ``patience`` epochs (``step(metric)`` once per epoch, e.g. with
    the dev set's loss, or its F1 with ``mode="max"``).

    An epoch improves on the best so far when the metric beats it by more than
    ``threshold``: relatively (``threshold_mode="rel"``: below best * (1 -
    threshold) in "min" mode, above best * (1 + threshold) in "max" mode) or
    absolutely (``"abs"``: by threshold itself). After a reduction, ``cooldown``
    epochs pass before bad epochs count again. A rate never goes below its
    group's ``min_lr``, and a change smaller than ``eps`` is not made.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer("ReduceLROnPlateau", optimizer)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError("ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got "
                             f"{threshold_mode!r}")
        self.optimizer = optimizer
        self.factor = factor
        self.min_lrs = _one_per_group("ReduceLROnPlateau", "min_lr", optimizer, min_lr)
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.last_epoch = 0
        self._last_lr = _rates(optimizer, "lr")
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def is_better(self, a, best):
        """Whether metric value a improves on best (see the class docstring)."""
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if rel else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if rel else best + self.threshold)

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, metrics, epoch=None):
        """Records one epoch's metric and reduces the rates if it has plateaued."""
        current = float(metrics)
        if epoch is None:
            self.last_epoch += 1
        else:
            warnings.warn("The epoch parameter in `scheduler.step()` is deprecated, as in "
                          "PyTorch; call step(metric) once per epoch instead.",
                          UserWarning, stacklevel=2)
            self.last_epoch = epoch
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _rates(self.optimizer, "lr")

    def _reduce(self):
        groups = self.optimizer.param_groups
        if len(self.min_lrs) != len(groups):  # groups were added since
            if self.default_min_lr is None:
                raise RuntimeError("ReduceLROnPlateau: the optimizer has "
                                   f"{len(groups)} parameter groups but min_lr was given "
                                   f"for {len(self.min_lrs)}")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, floor in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, floor)
            if old - new > self.eps:
                _set_rate(group, "lr", new)
