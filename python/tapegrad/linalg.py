"""tapegrad.linalg: the vector and Frobenius norms of torch.linalg (composites;
see Note [Composite ops] in _composite_ops.py)."""

from ._composite_ops import linalg_norm as norm, vector_norm

__all__ = ["norm", "vector_norm"]
