"""Devices, for scripts written against PyTorch's device API.

tapegrad computes on the CPU only. `device("cpu")` is where every tensor is;
other device types can be named, so that the common
``device = tg.device("cuda" if tg.cuda.is_available() else "cpu")`` runs
unchanged, but asking for a tensor or module on one raises RuntimeError
instead of silently computing on the CPU.
"""

import numbers

_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")


class device:
    """device("cpu"), device("cuda:0"), device("cuda", 1), device(other_device)."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {type!r}")
        name, sep, idx = type.partition(":")
        if name not in _TYPES:
            raise RuntimeError(f"device: expected one of {', '.join(_TYPES)} at the start of the "
                               f"device string, got {type!r}")
        if sep:
            if index is not None or not idx.isdigit():
                raise RuntimeError(f"device: invalid device string {type!r}")
            index = int(idx)
        if index is not None and (not isinstance(index, numbers.Integral) or index < 0):
            raise RuntimeError(f"device: the index must be a non-negative int, got {index!r}")
        object.__setattr__(self, "type", name)
        object.__setattr__(self, "index", None if index is None else int(index))

    def __setattr__(self, name, value):
        raise AttributeError("device is immutable")

    def __eq__(self, other):
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")


def as_device(value, op):
    """`value` (a device, a string, or an int meaning a CUDA index, as in torch) as a
    device that tensors can be on; RuntimeError naming `op` for anything but the CPU."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        d = device("cuda", value)
    elif isinstance(value, (str, device)):
        d = device(value)
    else:
        raise TypeError(f"{op}: expected a device (tapegrad.device, 'cpu', ...), got {value!r}")
    if d.type != "cpu":
        raise RuntimeError(f"{op}: tapegrad computes on the CPU only and cannot use {d}; use "
                           f"'cpu' (tapegrad.cuda.is_available() is False)")
    return CPU


def check_device(value, op):
    """Creation functions' device=: None or the CPU."""
    if value is not None:
        as_device(value, op)
