"""SparseAdam, as torch.optim.SparseAdam: lazy Adam for row-sparse gradients."""

from .. import _C
from .._creation import zeros_like
from .optimizer import Optimizer, _check_betas, _check_lr, _is_sparse, _to_scalar

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    r"""Implements the lazy version of Adam for row-sparse gradients
    (``embedding(..., sparse=True)``): only the rows present in the gradient have
    their moments and values updated, with bias correction from the parameter's
    own step count (the number of steps it had a gradient in).

    Args:
        params (iterable): tensors to optimize or dicts defining parameter groups
        lr (float, optional): learning rate (default: 1e-3)
        betas (Tuple[float, float], optional): coefficients of the running averages
            of the gradient and its square (default: (0.9, 0.999))
        eps (float, optional): added to the denominator (default: 1e-8)
        maximize (bool, optional): maximize the objective (default: False)

    A dense gradient raises ``RuntimeError``: use :class:`Adam`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "maximize": maximize}
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        lr = group["lr"]
        _check_lr(lr)
        if not 0.0 < _to_scalar(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        _check_betas(group["betas"])

    def _check_grad(self, group, p, grad):
        if not _is_sparse(grad):
            raise RuntimeError(
                "SparseAdam does not support dense gradients, please consider Adam instead")

    def step(self, closure=None):
        """Performs a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        if _C._trace_recording():
            raise RuntimeError(
                "SparseAdam: its step count is a Python int (state['step'], as in PyTorch), "
                "which a tg.compile replay cannot advance; call SparseAdam.step() outside the "
                "compiled function, or use Adam / Adagrad / SGD inside it")
        for group, p, grad in self._grads_with(self._check_grad):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0  # a Python int here, as in PyTorch
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            state["step"] += 1
            beta1, beta2 = group["betas"]
            _C._optim_sparse_adam(p, grad, state["exp_avg"], state["exp_avg_sq"],
                                  float(state["step"]), _to_scalar(group["lr"]),
                                  _to_scalar(beta1), _to_scalar(beta2), group["eps"],
                                  group.get("maximize", False))
        return loss
