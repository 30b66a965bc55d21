"""tapegrad.optim: optimizers and learning-rate schedulers, as torch.optim.

    opt = tg.optim.Adam(params, lr=1e-3)
    sched = tg.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    for epoch in range(epochs):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()

Updates run in C++ (one kernel call per parameter, without the GIL) with the
arithmetic of PyTorch's single-tensor code paths, so runs track
torch.optim step by step (see Note [Matching PyTorch's optimizer arithmetic]
in cpp/include/tapegrad/optim.h); Adamax and Adadelta are tensor ops in
Python (see adamax.py). SGD and Adagrad also take row-sparse
gradients (``embedding(..., sparse=True)``); SparseAdam requires them.
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adadelta, Adamax
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "Adadelta",
           "SparseAdam", "lr_scheduler"]
