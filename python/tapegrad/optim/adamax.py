"""Adamax and Adadelta, as torch.optim.Adamax / torch.optim.Adadelta.

Note [Optimizers written with tensor ops]
These two have no C++ kernel: each step is a few in-place tensor ops under
no_grad, in the order of PyTorch's single-tensor code, so their values track
torch's up to the rounding of the (separately rounded) fused multiply-adds.
They cost a handful of kernel launches per parameter instead of one.
"""

from .._creation import zeros_like
from .._C import maximum
from .._grad_mode import no_grad
from .adam import _check_adam_group, _new_step, _step_tensor
from .optimizer import (
    Optimizer, _check_implementation_flags, _check_lr, _check_nonneg, _is_sparse,
    _to_scalar,
)

__all__ = ["Adamax", "Adadelta"]


class _TensorOpOptimizer(Optimizer):
    _STATE = ()  # names of the per-parameter buffers, created as zeros

    _GROUP_KEY_DEFAULTS = {
        "foreach": None, "maximize": False, "differentiable": False, "capturable": False
    }
    _STEP_IS_TENSOR = True

    def _check_grad(self, group, p, grad):
        if _is_sparse(grad):
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")

    def step(self, closure=None):
        """Performs a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        loss = self._eval_closure(closure)
        with no_grad():
            for group, p, grad in self._grads_with(self._check_grad):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step()
                    for name in self._STATE:
                        state[name] = zeros_like(p)
                step = _step_tensor(state)
                step.add_(1.0)
                if group["maximize"]:
                    grad = -grad
                if group["weight_decay"] != 0:
                    grad = grad + p * group["weight_decay"]
                self._update(group, p, grad, state, step.item())
        return loss


class Adamax(_TensorOpOptimizer):
    r"""Implements Adamax (Kingma & Ba, 2014, section 7.1): Adam with the infinity norm.

    .. math::
        m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        u_t &\leftarrow \max(\beta_2 u_{t-1}, |g_t| + \epsilon) \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \frac{m_t}{u_t}

    Args:
        params (iterable): tensors to optimize or dicts defining parameter groups
        lr (float, optional): learning rate (default: 2e-3)
        betas (Tuple[float, float], optional): (default: (0.9, 0.999))
        eps (float, optional): (default: 1e-8)
        weight_decay (float, optional): L2 penalty (default: 0)
        maximize (bool, optional): maximize the objective (default: False)

    See Note [Optimizers written with tensor ops].
    """

    _STATE = ("exp_avg", "exp_inf")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_implementation_flags("Adamax", capturable=capturable,
                                    differentiable=differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        _check_adam_group(group)

    def _update(self, group, p, grad, state, t):
        beta1, beta2 = (_to_scalar(b) for b in group["betas"])
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        # torch's lerp(m, g, w) = m + w (g - m) for w < 0.5, g - (g - m)(1 - w) otherwise
        w = 1 - beta1
        diff = grad - exp_avg
        exp_avg.copy_(exp_avg + diff * w if w < 0.5 else grad - diff * (1 - w))
        exp_inf.copy_(maximum(exp_inf * beta2, grad.abs() + group["eps"]))
        clr = _to_scalar(group["lr"]) / (1 - beta1 ** t)
        p.sub_(exp_avg / exp_inf * clr)


class Adadelta(_TensorOpOptimizer):
    r"""Implements Adadelta (Zeiler, 2012).

    .. math::
        v_t &\leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta_t &\leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t \\
        u_t &\leftarrow \rho u_{t-1} + (1 - \rho) \Delta_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma \Delta_t

    Args:
        params (iterable): tensors to optimize or dicts defining parameter groups
        lr (float, optional): scales the step (default: 1.0)
        rho (float, optional): decay of the running averages (default: 0.9)
        eps (float, optional): (default: 1e-6)
        weight_decay (float, optional): L2 penalty (default: 0)
        maximize (bool, optional): maximize the objective (default: False)

    See Note [Optimizers written with tensor ops].
    """

    _STATE = ("square_avg", "acc_delta")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _check_implementation_flags("Adadelta", capturable=capturable,
                                    differentiable=differentiable)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        _check_lr(group["lr"])
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")
        _check_nonneg("epsilon", group["eps"])
        _check_nonneg("weight_decay", group["weight_decay"])

    def _update(self, group, p, grad, state, t):
        rho, eps = group["rho"], group["eps"]
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.copy_(square_avg * rho + grad * (1 - rho) * grad)
        delta = (acc_delta + eps).sqrt() / (square_avg + eps).sqrt() * grad
        acc_delta.copy_(acc_delta * rho + delta * (1 - rho) * delta)
        p.sub_(delta * _to_scalar(group["lr"]))
