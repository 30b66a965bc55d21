"""tapegrad.nn: modules, layers, losses, initialisers and gradient clipping."""

from . import functional, init, utils
from .layers import (
    Dropout, Embedding, Flatten, Hardtanh, Identity, LeakyReLU, Linear, LogSoftmax, ModuleList,
    PReLU, ReLU, Sequential, Sigmoid, Softmax, Tanh,
)
from .loss import (
    BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, MSELoss, MultiMarginLoss, NLLLoss,
)
from .module import Module
from .parameter import Parameter

__all__ = [
    "Module", "Parameter", "Linear", "Embedding", "Dropout", "Flatten", "Identity", "Sequential",
    "ModuleList", "ReLU", "Tanh", "Sigmoid", "Hardtanh", "LeakyReLU", "PReLU", "Softmax",
    "LogSoftmax", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss",
    "MultiMarginLoss", "HingeLoss", "functional", "init", "utils",
]
