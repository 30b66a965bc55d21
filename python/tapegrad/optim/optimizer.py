"""The optimizer base class: parameter groups, per-parameter state, state dicts.

Mirrors ``torch.optim.Optimizer``: the same constructor forms (an iterable of
tensors, of ``(name, tensor)`` pairs, or of parameter-group dicts), the same
``state_dict()`` format (state keyed by the parameter's index in group order,
``param_groups`` holding index lists) and the same errors. Updates run in the
C++ kernels of ``tapegrad._C`` (one call per parameter, without the GIL), which
write parameters in place and bump their version counters.

Deliberate differences from PyTorch:

* hyper-parameters are validated with ``not 0.0 <= x`` everywhere, so NaN is
  rejected (``torch.optim.SGD`` lets a NaN lr, momentum or weight_decay
  through), and a parameter group's own values are validated like the
  constructor's (PyTorch accepts ``{"params": ..., "lr": -1}``);
* ``step()`` checks every gradient (sparse where not supported, dense where
  sparse is required) before it updates any parameter, so a failed step
  changes nothing; PyTorch may have updated earlier groups when it raises;
* ``load_state_dict()`` copies the loaded tensors; PyTorch aliases them when
  the dtype already matches, so the dict it was given changes as training goes
  on;
* ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are accepted
  and kept in the parameter groups (so state dicts have PyTorch's keys), but
  there is one implementation: ``fused=True``, ``capturable=True`` and
  ``differentiable=True`` raise ``ValueError``.
"""

import copy
import functools
import warnings
from collections import OrderedDict, defaultdict

from .. import _C, _compile, _creation
from .._C import Tensor
from .._grad_mode import enable_grad, no_grad
from ..utils.hooks import RemovableHandle

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking a hyper-parameter that has no default."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj):
    """Like torch.typename: 'int', 'numpy.ndarray', 'tapegrad.Tensor'."""
    if isinstance(obj, Tensor):
        return "tapegrad.Tensor"
    cls = obj if isinstance(obj, type) else type(obj)
    module = getattr(cls, "__module__", "") or ""
    name = getattr(cls, "__qualname__", cls.__name__)
    return name if module in ("", "builtins") else f"{module}.{name}"


def _to_scalar(x):
    """A one-element tensor hyper-parameter (lr, betas) as a Python number."""
    if isinstance(x, Tensor):
        if x.numel() != 1:
            raise ValueError(f"expected a one-element tensor, got shape {tuple(x.shape)}")
        return x.item()
    return x


def _is_sparse(grad):
    return getattr(grad, "is_sparse", False)


def _check_nonneg(name, value, message=None):
    """`not 0.0 <= value` rejects negatives and NaN alike."""
    if not 0.0 <= _to_scalar(value):
        raise ValueError(message or f"Invalid {name} value: {value}")


def _check_lr(lr):
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _to_scalar(lr):
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_betas(betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if isinstance(b, Tensor) and b.numel() != 1:
            raise ValueError(f"Tensor betas[{i}] must be 1-element")
        if not 0.0 <= _to_scalar(b) < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b}")


def _check_implementation_flags(name, fused=None, capturable=False, differentiable=False):
    for flag, value in (("fused", fused), ("capturable", capturable),
                        ("differentiable", differentiable)):
        if value:
            raise ValueError(f"{name}: {flag}=True is not supported by tapegrad; its optimizers "
                             f"have one implementation (C++ kernels, never recorded on the tape)")


def _copy_value(value):
    """A deep copy of optimizer state (tensors cloned; row-sparse values are immutable)."""
    if isinstance(value, Tensor):
        with no_grad():
            return value.detach().clone()
    if isinstance(value, dict):
        out = {k: _copy_value(v) for k, v in value.items()}
        return type(value)(out) if not isinstance(value, defaultdict) else out
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_value(v) for v in value)
    if _is_sparse(value):
        return value
    return copy.deepcopy(value)


def _step_tensor(state):
    """state['step'] as a tensor (a Python number from an older checkpoint is converted)."""
    step = state["step"]
    if not isinstance(step, Tensor):
        step = state["step"] = _creation.tensor(float(step))
    return step


class Optimizer:
    r"""Base class for all optimizers.

    Args:
        params (iterable): an iterable of Tensors (leaves that require grad),
            of ``(name, Tensor)`` pairs, or of dicts defining parameter groups.
        defaults (dict): default values of the optimization options (used when
            a parameter group doesn't specify them).

    Subclasses implement ``step()`` and may override ``_validate_group`` to
    check a group's hyper-parameters.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self._add_hook_tables()
        self._wrap_step()

        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got " + _typename(params))

        self.state = defaultdict(dict)
        self.param_groups = []

        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ------------------------------------------------------------ pickling, repr
    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    # Group keys that an optimizer pickled by an older version may lack, with
    # the behaviour it had before the key existed; and whether the per-parameter
    # 'step' is a tensor (older pickles hold a Python number).
    _GROUP_KEY_DEFAULTS = {}
    _STEP_IS_TENSOR = False

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._add_hook_tables()  # hooks are not pickled
        self._wrap_step()
        self.defaults.setdefault("differentiable", False)
        for group in self.param_groups:
            for key, value in self._GROUP_KEY_DEFAULTS.items():
                group.setdefault(key, value)
            if self._STEP_IS_TENSOR:
                for p in group["params"]:
                    p_state = self.state.get(p, {})
                    if "step" in p_state:
                        _step_tensor(p_state)

    _HOOK_TABLES = ("_step_pre_hooks", "_step_post_hooks", "_state_dict_pre_hooks",
                    "_state_dict_post_hooks", "_load_state_dict_pre_hooks",
                    "_load_state_dict_post_hooks")

    def _add_hook_tables(self):
        for name in self._HOOK_TABLES:
            self.__dict__.setdefault(name, OrderedDict())

    def __repr__(self):
        # PyTorch's layout: one block per group, its options sorted, blank lines between.
        blocks = []
        for i, group in enumerate(self.param_groups):
            options = "".join(f"    {k}: {group[k]}\n" for k in sorted(group) if k != "params")
            blocks.append(f"Parameter Group {i}\n{options}")
        return f"{type(self).__name__} (" + "".join("\n" + b for b in blocks) + ")"

    # ------------------------------------------------------------ step hooks
    # Every subclass's step() is wrapped once, when its first instance is
    # built, so that the step hooks run (and the lr schedulers can see that the
    # optimizer stepped) however the subclass writes step().
    @staticmethod
    def _with_step_hooks(step):
        def step_with_hooks(self, *args, **kwargs):
            self._step_calls = self.__dict__.get("_step_calls", 0) + 1
            if not (self._step_pre_hooks or self._step_post_hooks):
                return step(self, *args, **kwargs)
            for hook in list(self._step_pre_hooks.values()):
                changed = hook(self, args, kwargs)
                if changed is None:
                    continue
                if not (isinstance(changed, tuple) and len(changed) == 2):
                    raise RuntimeError(f"{type(self).__name__}: a step pre-hook must return "
                                       "None or (args, kwargs) for step(), got "
                                       f"{changed!r}")
                args, kwargs = changed
            out = step(self, *args, **kwargs)
            for hook in list(self._step_post_hooks.values()):
                hook(self, args, kwargs)
            return out

        functools.update_wrapper(step_with_hooks, step)
        step_with_hooks._tg_step_hooks = True
        return step_with_hooks

    def _wrap_step(self):
        cls = type(self)
        if not getattr(cls.step, "_tg_step_hooks", False):
            cls.step = Optimizer._with_step_hooks(cls.step)

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), run before step()."""
        return self._register(self._step_pre_hooks, hook, False)

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None, run after step()."""
        return self._register(self._step_post_hooks, hook, False)

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, run before state_dict() builds its result."""
        return self._register(self._state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> state_dict or None, run on state_dict()'s result."""
        return self._register(self._state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> state_dict or None, run before loading."""
        return self._register(self._load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, run after loading."""
        return self._register(self._load_state_dict_post_hooks, hook, prepend)

    @staticmethod
    def _register(hooks, hook, prepend):
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------ state dicts
    def _param_numbers(self):
        """id(param) -> the number that stands for it in a state dict: positions in
        group order, each group's numbers starting after every earlier group's
        entries (PyTorch's numbering, so the layouts agree)."""
        numbers, first = {}, 0
        for group in self.param_groups:
            for k, p in enumerate(group["params"]):
                numbers.setdefault(id(p), first + k)
            first += len(group["params"])
        return numbers

    def state_dict(self):
        """The optimizer state as a dict with PyTorch's layout::

            {"state": {0: {"momentum_buffer": tensor(...)}, 1: {...}, ...},
             "param_groups": [{"lr": 0.01, ..., "params": [0, 1]}, ...]}

        Parameters are numbered in group order; state tensors are the live
        buffers (not copies), as in PyTorch.
        """
        for hook in self._state_dict_pre_hooks.values():
            hook(self)
        numbers = self._param_numbers()
        groups = []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = [numbers[id(p)] for p in group["params"]]
            groups.append(saved)
        state = {(numbers[id(p)] if isinstance(p, Tensor) else p): v for p, v in self.state.items()}
        result = {"state": state, "param_groups": groups}
        for hook in self._state_dict_post_hooks.values():
            changed = hook(self, result)
            if changed is not None:
                result = changed
        return result

    @staticmethod
    def _adopt_state_tensor(param, value, key):
        """A copy of saved state for param: floating state takes the parameter's
        dtype, except the step count, which keeps its own."""
        with no_grad():
            value = value.detach()
            if (key != "step" and param.is_floating_point() and value.is_floating_point()
                    and value.dtype != param.dtype):
                return value.to(param.dtype).contiguous()
            return value.clone()

    def load_state_dict(self, state_dict):
        """Loads a state dict made by ``state_dict()`` (of this optimizer class, over
        the same parameter-group layout). The tensors are copied in."""
        state_dict = dict(state_dict)
        for hook in self._load_state_dict_pre_hooks.values():
            changed = hook(self, state_dict)
            if changed is not None:
                state_dict = changed
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"loaded state dict has no '{key}' entry (expected the dict "
                                 f"returned by Optimizer.state_dict())")
        saved_groups = _copy_value(state_dict["param_groups"])
        if len(self.param_groups) != len(saved_groups):
            raise ValueError(
                "loaded state dict has a different number of parameter groups: "
                f"{len(saved_groups)} saved, the optimizer has {len(self.param_groups)}")
        param_of = {}  # saved number -> this optimizer's parameter
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group: group {i} has {len(saved['params'])} parameters "
                    f"saved, the optimizer's has {len(group['params'])}")
            param_of.update(zip(saved["params"], group["params"]))

        def adopt(param, value, key=None):
            if isinstance(value, Tensor):
                return self._adopt_state_tensor(param, value, key)
            if isinstance(value, dict):
                return {k: adopt(param, v, k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(adopt(param, v) for v in value)
            return value

        state = defaultdict(dict)
        for number, value in state_dict["state"].items():
            param = param_of.get(number)
            if param is None:  # not a parameter of ours: kept as saved
                state[number] = value
            else:
                state[param] = adopt(param, value)
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group:
                saved.setdefault("param_names", group["param_names"])
        self.__setstate__({"state": state, "param_groups": saved_groups})
        for hook in self._load_state_dict_post_hooks.values():
            hook(self)

    # ------------------------------------------------------------ gradients, steps
    def zero_grad(self, set_to_none=True):
        """Resets the gradients of all optimized tensors: to None (the default), or,
        with ``set_to_none=False``, to zeros (a row-sparse gradient to one with no rows)."""
        if set_to_none:  # one core call per group
            for group in self.param_groups:
                _C._optim_grads_to_none(group["params"])
            return
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if _is_sparse(grad):
                    _C._optim_zero_sparse_grad(p)
                else:
                    with no_grad():
                        grad.requires_grad_(False)
                        grad.zero_()

    def step(self, closure=None):
        """Performs a single optimization step (parameter update).

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        raise NotImplementedError

    def _eval_closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _validate_group(self, group):
        """Checks a parameter group's hyper-parameters (subclasses override)."""

    def add_param_group(self, param_group):
        """Adds a parameter group (a dict with 'params' and optional per-group options)
        to ``param_groups``, e.g. to start training frozen layers."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")

        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            param_group["params"] = list(params)

        tensors, names = [], []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) == len(tensors):
                param_group["param_names"] = names
            else:
                raise ValueError("all optimizer params should be with/without names. "
                                 "Some param names are missing")

        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + _typename(param))
            if not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        self._validate_group(param_group)

        params = param_group["params"]
        if len(params) != len({id(p) for p in params}):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)

        param_ids = set()
        for group in self.param_groups:
            param_ids.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                current = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {current} to the optimizer")
        if not param_ids.isdisjoint(id(p) for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")

        self.param_groups.append(param_group)

    # ------------------------------------------------------------ helpers for subclasses
    def _grads_with(self, check):
        """(group, param, grad) for every parameter with a gradient, after running
        ``check(group, param, grad)`` on all of them (so a bad gradient raises
        before any parameter changes)."""
        if _compile._recorder is not None:  # tg.compile guards on the hyperparameters
            _compile._note_optimizer(self)
        todo = []
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is not None:
                    check(group, p, grad)
                    todo.append((group, p, grad))
        return todo
