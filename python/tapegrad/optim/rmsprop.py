"""RMSprop, as torch.optim.RMSprop."""

from .. import _C
from .._creation import zeros_like
from .adam import _new_step, _step_tensor
from .optimizer import (
    Optimizer, _check_implementation_flags, _check_lr, _check_nonneg, _is_sparse, _to_scalar,
)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""Implements RMSprop (Hinton's lecture 6e; centered version from Graves, 2013).

    .. math::
        v_t &\leftarrow \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \bar g_t &\leftarrow \alpha \bar g_{t-1} + (1 - \alpha) g_t \quad\text{(centered)} \\
        d_t &\leftarrow \sqrt{v_t - \bar g_t^2} + \epsilon \quad\text{or}\quad \sqrt{v_t} + \epsilon \\
        b_t &\leftarrow \mu b_{t-1} + g_t / d_t, \quad \theta_t \leftarrow \theta_{t-1} - \gamma b_t
            \quad (\mu > 0) \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma g_t / d_t \quad (\mu = 0)

    Args:
        params (iterable): tensors to optimize or dicts defining parameter groups
        lr (float, optional): learning rate (default: 1e-2)
        alpha (float, optional): smoothing constant (default: 0.99)
        eps (float, optional): added to the denominator (default: 1e-8)
        weight_decay (float, optional): L2 penalty (default: 0)
        momentum (float, optional): momentum factor (default: 0)
        centered (bool, optional): normalise by the estimated variance of the
            gradient (default: False)
        maximize (bool, optional): maximize the objective (default: False)

    Sparse gradients raise ``RuntimeError``.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        _check_implementation_flags("RMSprop", capturable=capturable,
                                    differentiable=differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        _check_lr(group["lr"])
        _check_nonneg("epsilon", group["eps"])
        _check_nonneg("momentum", group["momentum"])
        _check_nonneg("weight_decay", group["weight_decay"])
        _check_nonneg("alpha", group["alpha"])

    _GROUP_KEY_DEFAULTS = {
        "momentum": 0, "centered": False, "foreach": None, "maximize": False,
        "differentiable": False, "capturable": False
    }
    _STEP_IS_TENSOR = True

    def _check_grad(self, group, p, grad):
        if _is_sparse(grad):
            raise RuntimeError("RMSprop does not support sparse gradients")

    def step(self, closure=None):
        """Performs a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        for group, p, grad in self._grads_with(self._check_grad):
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _new_step()
                state["square_avg"] = zeros_like(p)
                if group["momentum"] > 0:
                    state["momentum_buffer"] = zeros_like(p)
                if group["centered"]:
                    state["grad_avg"] = zeros_like(p)
            momentum, centered = group["momentum"], group["centered"]
            _C._optim_rmsprop(
                p, grad, state["square_avg"],
                state["momentum_buffer"] if momentum > 0 else None,
                state["grad_avg"] if centered else None, _step_tensor(state),
                _to_scalar(group["lr"]), group["alpha"], group["eps"], group["weight_decay"],
                momentum, centered, group["maximize"])
        return loss
