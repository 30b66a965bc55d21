"""tapegrad.nn: modules, layers, losses, initialisers and gradient clipping."""

from . import functional, init, utils
from .layers import (
    ELU, GELU, Dropout, Embedding, Flatten, Hardtanh, Identity, LayerNorm, LeakyReLU, Linear,
    LogSigmoid, LogSoftmax, ModuleDict, ModuleList, ParameterDict, ParameterList, PReLU, ReLU,
    ReLU6, Sequential, Sigmoid, SiLU, Softmax, Softplus, Softsign, Tanh,
)
from .loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, HuberLoss, KLDivLoss, L1Loss,
    MSELoss, MultiMarginLoss, NLLLoss, SmoothL1Loss,
)
from .module import Module
from .parameter import Parameter

__all__ = [
    "Module", "Parameter", "Linear", "Embedding", "Dropout", "Flatten", "Identity", "Sequential",
    "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "LayerNorm", "ReLU", "Tanh",
    "Sigmoid", "Hardtanh", "LeakyReLU", "PReLU", "Softmax", "LogSoftmax", "SiLU", "ELU",
    "Softplus", "LogSigmoid", "ReLU6", "Softsign", "GELU", "MSELoss", "L1Loss", "SmoothL1Loss",
    "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
    "MultiMarginLoss", "HingeLoss", "functional", "init", "utils",
]
