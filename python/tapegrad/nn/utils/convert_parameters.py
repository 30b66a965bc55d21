"""All parameters as one flat vector and back, as torch.nn.utils."""

from ... import _C
from ..._C import Tensor
from ..._grad_mode import no_grad


def _tensors(op, parameters):
    if isinstance(parameters, Tensor):
        raise TypeError(f"{op}: expected an iterable of tensors, got a single Tensor")
    return list(parameters)


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated, in order (differentiable)."""
    params = _tensors("parameters_to_vector", parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return _C.cat([p.reshape(-1) for p in params], 0)


def vector_to_parameters(vec, parameters):
    """Copies consecutive slices of the 1-D `vec` into the parameters (not recorded)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got "
                        f"{type(vec).__name__}")
    params = _tensors("vector_to_parameters", parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec has shape {list(vec.shape)}, but the "
                         f"parameters hold {total} elements")
    offset = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec.narrow(0, offset, n).reshape(list(p.shape)))
            offset += n
