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
import warnings
from collections import OrderedDict, defaultdict
from itertools import chain

from .. import _C, _compile
from .._C import Tensor
from .._grad_mode import enable_grad, no_grad

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


class _RemovableHandle:
    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = _RemovableHandle._next_id
        _RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


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
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._patch_step_function()

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

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                     "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                     "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        self._patch_step_function()
        self.defaults.setdefault("differentiable", False)

    def __repr__(self):
        format_string = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            format_string += "\n"
            format_string += f"Parameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    format_string += f"    {key}: {group[key]}\n"
        format_string += ")"
        return format_string

    # ------------------------------------------------------------ step hooks
    @staticmethod
    def _hook_step(func):
        def wrapper(self, *args, **kwargs):
            if not (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks):
                return func(self, *args, **kwargs)
            for hook in list(self._optimizer_step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError("optimizer step pre-hook must return None or a tuple "
                                           f"of (new_args, new_kwargs), but got {result}.")
            out = func(self, *args, **kwargs)
            for hook in list(self._optimizer_step_post_hooks.values()):
                hook(self, args, kwargs)
            return out

        wrapper.__name__ = getattr(func, "__name__", "step")
        wrapper.__qualname__ = getattr(func, "__qualname__", "step")
        wrapper.__doc__ = func.__doc__
        wrapper.__wrapped__ = func
        wrapper.hooked = True
        return wrapper

    def _patch_step_function(self):
        cls = self.__class__
        if not getattr(cls.step, "hooked", False):
            cls.step = Optimizer._hook_step(cls.step)

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), run before step()."""
        handle = _RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) -> None, run after step()."""
        handle = _RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, run before state_dict() builds its result."""
        return self._register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> state_dict or None, run on state_dict()'s result."""
        return self._register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """hook(optimizer, state_dict) -> state_dict or None, run before loading."""
        return self._register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """hook(optimizer) -> None, run after loading."""
        return self._register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    @staticmethod
    def _register(hooks, hook, prepend):
        handle = _RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------ state dicts
    def state_dict(self):
        """The optimizer state as a dict with PyTorch's layout::

            {"state": {0: {"momentum_buffer": tensor(...)}, 1: {...}, ...},
             "param_groups": [{"lr": 0.01, ..., "params": [0, 1]}, ...]}

        Parameters are numbered in group order; state tensors are the live
        buffers (not copies), as in PyTorch.
        """
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)

        param_mappings = {}
        start_index = 0

        def pack_group(group):
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            param_mappings.update({id(p): i for i, p in enumerate(group["params"], start_index)
                                   if id(p) not in param_mappings})
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(param_mappings[id(k)] if isinstance(k, Tensor) else k): v
                        for k, v in self.state.items()}
        state_dict = {"state": packed_state, "param_groups": param_groups}

        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    @staticmethod
    def _process_value_according_to_param_policy(param, value, key):
        # Floating-point state follows the parameter's dtype; 'step' keeps its own.
        with no_grad():
            if key != "step" and param.is_floating_point() and value.is_floating_point() \
                    and value.dtype != param.dtype:
                return value.detach().to(param.dtype).contiguous()
            return value.detach().clone()

    def load_state_dict(self, state_dict):
        """Loads a state dict made by ``state_dict()`` (of this optimizer class, over
        the same parameter-group layout). The tensors are copied in."""
        state_dict = dict(state_dict)
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result

        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"loaded state dict has no '{key}' entry (expected the dict "
                                 f"returned by Optimizer.state_dict())")
        groups = self.param_groups
        saved_groups = _copy_value(state_dict["param_groups"])

        if len(groups) != len(saved_groups):
            raise ValueError(
                "loaded state dict has a different number of parameter groups: "
                f"{len(saved_groups)} saved, the optimizer has {len(groups)}")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group: group {i} has {len(s['params'])} parameters saved, "
                    f"the optimizer's has {len(g['params'])}")

        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def _cast(param, value, key=None):
            if isinstance(value, Tensor):
                return Optimizer._process_value_according_to_param_policy(param, value, key)
            if isinstance(value, dict):
                return {k: _cast(param, v, key=k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(_cast(param, v) for v in value)
            return value

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = _cast(param, v)
            else:
                state[k] = v

        def update_group(group, new_group):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})

        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

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
