"""Adagrad, as torch.optim.Adagrad (dense and row-sparse gradients)."""

from .. import _C
from .._creation import full_like
from .adam import _new_step, _step_tensor
from .optimizer import (
    Optimizer, _check_implementation_flags, _check_lr, _check_nonneg, _is_sparse, _to_scalar,
)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Implements Adagrad (Duchi et al., 2011).

    .. math::
        \tilde\gamma &\leftarrow \gamma / (1 + (t - 1) \eta) \\
        s_t &\leftarrow s_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma \frac{g_t}{\sqrt{s_t} + \epsilon}

    Args:
        params (iterable): tensors to optimize or dicts defining parameter groups
        lr (float, optional): learning rate (default: 1e-2)
        lr_decay (float, optional): learning rate decay :math:`\eta` (default: 0)
        weight_decay (float, optional): L2 penalty (default: 0)
        initial_accumulator_value (float, optional): initial value of the sums
            :math:`s_0` (default: 0)
        eps (float, optional): added to the denominator (default: 1e-10)
        maximize (bool, optional): maximize the objective (default: False)

    Row-sparse gradients update only their rows, as PyTorch's sparse path
    (``weight_decay != 0`` then raises ``RuntimeError``). As in PyTorch, the
    state is created at construction, and sums are initialised from the
    optimizer-wide ``initial_accumulator_value`` even in groups that set their own.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_implementation_flags("Adagrad", fused=fused, differentiable=differentiable)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        self._validate_group(defaults)
        super().__init__(params, defaults)

        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _new_step()
                state["sum"] = full_like(p, initial_accumulator_value)

    def _validate_group(self, group):
        _check_lr(group["lr"])
        _check_nonneg("lr_decay", group["lr_decay"])
        _check_nonneg("weight_decay", group["weight_decay"])
        _check_nonneg("initial_accumulator_value", group["initial_accumulator_value"])
        _check_nonneg("epsilon", group["eps"])

    _GROUP_KEY_DEFAULTS = {
        "foreach": None, "maximize": False, "differentiable": False, "fused": None
    }
    _STEP_IS_TENSOR = True

    def _check_grad(self, group, p, grad):
        if _is_sparse(grad) and group["weight_decay"] != 0:
            raise RuntimeError("weight_decay option is not compatible with sparse gradients")

    def step(self, closure=None):
        """Performs a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        for group, p, grad in self._grads_with(self._check_grad):
            state = self.state[p]
            if len(state) == 0:  # a parameter added with add_param_group
                state["step"] = _new_step()
                state["sum"] = full_like(p, self.defaults["initial_accumulator_value"])
            kernel = _C._optim_adagrad_sparse if _is_sparse(grad) else _C._optim_adagrad
            kernel(p, grad, state["sum"], _step_tensor(state), _to_scalar(group["lr"]),
                   group["lr_decay"], group["weight_decay"], group["eps"], group["maximize"])
        return loss
