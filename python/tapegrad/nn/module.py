"""nn.Module: parameter registration by attribute, traversal, modes and state dicts."""

from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from .. import _C, _compile
from .._C import Tensor
from .._device import as_device
from .._grad_mode import no_grad
from ..utils.hooks import RemovableHandle
from .parameter import Parameter


class _IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of all layers, with PyTorch's semantics.

    Assigning a Parameter, a Module or a buffer (register_buffer) to an
    attribute registers it; parameters(), state_dict() and friends walk the
    registered tree in assignment order.
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} has no forward(); subclasses of Module define it")

    def __call__(self, *args, **kwargs):
        if _compile._recorder is not None:  # tg.compile guards on train()/eval()
            _compile._note_module(self)
        d = self.__dict__
        if d.get("_forward_pre_hooks") or d.get("_forward_hooks"):
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- hooks
    # Note [Hooks live in the instance dict]
    # The hook tables are created by the first register_*_hook call, so a module
    # without hooks pays one dict lookup per call, and Sequential's fusion test
    # (layers._plain) sees no hooks on it.
    def _call_with_hooks(self, args, kwargs):
        for hook in list(self.__dict__.get("_forward_pre_hooks", {}).values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self.__dict__.get("_forward_hooks", {}).values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def _add_hook(self, table, hook, prepend):
        if not callable(hook):
            raise TypeError(f"{table[1:]}: hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.setdefault(table, OrderedDict())
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend=False):
        """hook(module, args) runs before forward; a non-None result replaces args
        (a non-tuple result is wrapped in a 1-tuple), as in torch."""
        return self._add_hook("_forward_pre_hooks", hook, prepend)

    def register_forward_hook(self, hook, *, prepend=False):
        """hook(module, args, output) runs after forward; a non-None result replaces output."""
        return self._add_hook("_forward_hooks", hook, prepend)

    # ---------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign '{name}' before Module.__init__() is called")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        # Re-assigning a name keeps its place in the order (as PyTorch).
        if isinstance(value, Parameter):
            self._discard(name, keep=params)
            params[name] = value
        elif isinstance(value, Module):
            self._discard(name, keep=modules)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(tapegrad.nn.Parameter or None expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (tapegrad.nn.Module or None expected)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(Tensor or None expected)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name, keep=None):
        for d in (self.__dict__, self._parameters, self._buffers, self._modules):
            if d is not keep:
                d.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: '{name}' must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._discard(name)
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: '{name}' must be a Module, got {type(module).__name__}")
        self._discard(name)
        self._modules[name] = module

    register_module = add_module

    # ---------------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        memo = set() if memo is None else memo
        if remove_duplicate and id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                               remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, store, prefix, recurse):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def get_submodule(self, target):
        """The submodule at dotted path `target` ("" is self)."""
        mod = self
        if target == "":
            return mod
        walked = []
        for item in target.split("."):
            child = mod._modules.get(item) if isinstance(mod, Module) else None
            if child is None:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(f"get_submodule: {where} has no submodule `{item}` "
                                     f"(looking up {target!r})")
            mod = child
            walked.append(item)
        return mod

    def get_parameter(self, target):
        """The parameter at dotted path `target`, e.g. "encoder.0.weight"."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._parameters or mod._parameters[name] is None:
            raise AttributeError(f"get_parameter: {path or type(self).__name__} has no parameter "
                                 f"`{name}` (looking up {target!r})")
        return mod._parameters[name]

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("train: mode is expected to be a bool")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none or p.grad.is_sparse:
                p.grad = None
            else:
                with no_grad():
                    p.grad.zero_()

    def to(self, *args, **kwargs):
        """to(dtype), to(device), to(device, dtype), to(tensor), as torch's Module.to.

        Converts every floating parameter and buffer to the dtype in place;
        parameters keep their identity (tied weights stay tied, optimizers stay
        valid). The device must be the CPU (see tapegrad/_device.py).
        """
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"Module.to: unexpected keyword argument {next(iter(kwargs))!r}")
        rest = list(args)
        if rest and isinstance(rest[0], _C.Tensor):
            dtype = rest.pop(0).dtype
        elif rest and not isinstance(rest[0], _C.dtype):
            device = rest.pop(0)
        if rest and isinstance(rest[0], _C.dtype):
            dtype = rest.pop(0)
        if rest and isinstance(rest[0], bool):  # non_blocking
            rest.pop(0)
        if rest:
            raise TypeError(f"Module.to: cannot interpret the arguments {args!r}; expected "
                            "to(dtype), to(device), to(device, dtype) or to(tensor)")
        if device is not None:
            as_device(device, "Module.to")
        if dtype is None:
            return self
        if not dtype.is_floating_point:
            raise TypeError(f"Module.to: expected a floating dtype, got {dtype!r}")
        with no_grad():
            for p in self.parameters():
                if p.dtype.is_floating_point and p.dtype != dtype:
                    p.data = p.data.to(dtype)
                    if p.grad is not None and not p.grad.is_sparse:
                        p.grad = p.grad.to(dtype)
            for mod in self.modules():
                for name, b in mod._buffers.items():
                    if b is not None and b.dtype.is_floating_point and b.dtype != dtype:
                        b.data = b.data.to(dtype)
        return self

    def cpu(self):
        return self

    def cuda(self, device=None):
        as_device("cuda" if device is None else device, "Module.cuda")

    def float(self):
        return self.to(_C.dtype.float32)

    def double(self):
        return self.to(_C.dtype.float64)

    # ---------------------------------------------------------------- state
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        out = OrderedDict() if destination is None else destination
        for mod_prefix, mod in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            dot = f"{mod_prefix}." if mod_prefix else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[dot + name] = p if keep_vars else p.detach()
            skip = mod.__dict__.get("_non_persistent", ())
            for name, b in mod._buffers.items():
                if b is not None and name not in skip:
                    out[dot + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copies values into the parameters and buffers (shapes must match).

        Raises RuntimeError listing every missing key, unexpected key and
        shape mismatch (strict=True), like PyTorch.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                value = _C.from_numpy(np.asarray(value))
            if tuple(value.shape) != tuple(target.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{list(value.shape)} from checkpoint, the shape in current model "
                              f"is {list(target.shape)}.")
        if strict:
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for key, target in own.items():
                if key in state_dict:
                    value = state_dict[key]
                    if not isinstance(value, Tensor):
                        value = _C.from_numpy(np.asarray(value))
                    target.copy_(value)
        return _IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------- repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))
