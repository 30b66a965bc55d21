"""Stochastic gradient descent (optionally with momentum), as torch.optim.SGD."""

from .. import _C, _compile
from .optimizer import (
    Optimizer, _check_implementation_flags, _check_lr, _check_nonneg, _is_sparse, _to_scalar,
)

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Implements stochastic gradient descent (optionally with momentum).

    With gradient :math:`g_t` (negated when ``maximize``):

    .. math::
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad (\lambda = \text{weight\_decay}) \\
        b_t &\leftarrow \mu b_{t-1} + (1 - \tau) g_t \quad (b_1 = g_1) \\
        g_t &\leftarrow g_t + \mu b_t \ \text{(nesterov)} \quad\text{or}\quad b_t \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma g_t

    Args:
        params (iterable): tensors to optimize or dicts defining parameter groups
        lr (float, optional): learning rate :math:`\gamma` (default: 1e-3)
        momentum (float, optional): momentum factor :math:`\mu` (default: 0)
        dampening (float, optional): dampening for momentum :math:`\tau` (default: 0)
        weight_decay (float, optional): L2 penalty :math:`\lambda` (default: 0)
        nesterov (bool, optional): enables Nesterov momentum (default: False)
        maximize (bool, optional): maximize the objective instead of minimizing
            (default: False)

    Row-sparse gradients (``embedding(..., sparse=True)``) update only the rows
    they hold; as in PyTorch, momentum then keeps a row-sparse buffer (covering
    every row seen so far) and ``weight_decay != 0`` raises ``RuntimeError``.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        _check_implementation_flags("SGD", fused=fused, differentiable=differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        _check_lr(group["lr"])
        _check_nonneg("momentum", group["momentum"])
        _check_nonneg("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    _GROUP_KEY_DEFAULTS = {
        "nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
        "fused": False
    }

    def _check_grad(self, group, p, grad):
        if not _is_sparse(grad):
            if group["momentum"] != 0 and _is_sparse(self.state.get(p, {}).get("momentum_buffer")):
                raise RuntimeError(
                    "SGD: a dense gradient can't be added to the sparse momentum buffer this "
                    "parameter has from earlier sparse gradients (PyTorch raises \"add(sparse, "
                    "dense) is not supported. Use add(dense, sparse) instead.\")")
            return
        if group["weight_decay"] != 0:
            raise RuntimeError(
                "SGD: weight_decay is not supported with sparse gradients (PyTorch raises "
                "\"add(sparse, dense) is not supported. Use add(dense, sparse) instead.\")")

    @staticmethod
    def _plain_step(group):
        """A momentum-free step of every parameter of `group` that has a gradient."""
        _C._optim_sgd_group(group["params"], _to_scalar(group["lr"]), group["weight_decay"],
                            group["maximize"])

    def step(self, closure=None):
        """Performs a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        groups = self.param_groups
        if len(groups) == 1 and groups[0]["momentum"] == 0:
            # Plain SGD, the common case: the core reads and checks every
            # gradient before it updates any parameter, so no loop here.
            if _compile._recorder is not None:  # tg.compile guards on the hyperparameters
                _compile._note_optimizer(self)
            self._plain_step(groups[0])
            return loss
        plain = {}  # id(group) -> group: momentum-free groups, one core call each
        for group, p, grad in self._grads_with(self._check_grad):  # checks them all first
            momentum = group["momentum"]
            if momentum == 0:
                plain[id(group)] = group
                continue
            args = (_to_scalar(group["lr"]), momentum, group["dampening"],
                    group["weight_decay"], group["nesterov"], group["maximize"])
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if _is_sparse(grad) and (buf is None or _is_sparse(buf)):
                buf = _C._optim_sgd_sparse(p, grad, buf, *args)
            else:
                if _is_sparse(grad):  # a dense buffer from earlier dense gradients
                    grad = grad.to_dense()
                buf = _C._optim_sgd(p, grad, buf, *args)
            state["momentum_buffer"] = buf
        for group in plain.values():
            self._plain_step(group)
        return loss
