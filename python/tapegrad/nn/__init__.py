"""tapegrad.nn: neural-network building blocks (functional API)."""

from . import functional

__all__ = ["functional"]
