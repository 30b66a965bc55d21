"""nn.Parameter: a tensor that a Module registers as one of its parameters."""

from .._C import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and is registered by Modules.

    Parameter(data) shares data's storage, like torch.nn.Parameter.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            from .. import _C
            data = _C._empty([0], _C.dtype.float32)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor, got {type(data).__name__}")
        super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = Parameter(self.detach().clone(), self.requires_grad)
        return memo[id(self)]
