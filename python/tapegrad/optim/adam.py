"""Adam and AdamW, as torch.optim.Adam / torch.optim.AdamW."""

from .. import _C
from .._creation import tensor, zeros_like
from .._C import Tensor
from .optimizer import (
    Optimizer, _check_betas, _check_implementation_flags, _check_lr, _check_nonneg, _is_sparse,
    _step_tensor, _to_scalar,
)

__all__ = ["Adam", "AdamW"]


def _check_adam_group(group):
    """The hyperparameter checks Adam, AdamW and Adamax share."""
    _check_lr(group["lr"])
    _check_nonneg("epsilon", group["eps"])
    _check_betas(group["betas"])
    _check_nonneg("weight_decay", group["weight_decay"])


def _new_step():
    # PyTorch keeps the step count in a float32 0-d tensor (_get_scalar_dtype()).
    return tensor(0.0)


class Adam(Optimizer):
    r"""Implements Adam (Kingma & Ba, 2014).

    .. math::
        m_t &\leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma \frac{m_t / (1 - \beta_1^t)}
                   {\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

    Args:
        params (iterable): tensors to optimize or dicts defining parameter groups
        lr (float, optional): learning rate (default: 1e-3)
        betas (Tuple[float, float], optional): coefficients of the running averages
            of the gradient and its square (default: (0.9, 0.999))
        eps (float, optional): added to the denominator (default: 1e-8)
        weight_decay (float, optional): L2 penalty added to the gradient
            (default: 0)
        amsgrad (bool, optional): use the running maximum of :math:`v_t`
            (AMSGrad, Reddi et al. 2018) (default: False)
        maximize (bool, optional): maximize the objective (default: False)
        decoupled_weight_decay (bool, optional): decay the parameters directly,
            :math:`\theta \leftarrow \theta (1 - \gamma\lambda)`, as AdamW
            (default: False)

    Sparse gradients raise ``RuntimeError``: use :class:`SparseAdam`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_implementation_flags(type(self).__name__, fused=fused, capturable=capturable,
                                    differentiable=differentiable)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        self._validate_group(defaults)
        if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
                or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))):
            raise ValueError("betas must be either both floats or both Tensors")
        defaults["betas"] = tuple(_to_scalar(b) for b in betas)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        _check_adam_group(group)

    _GROUP_KEY_DEFAULTS = {
        "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
        "differentiable": False, "decoupled_weight_decay": False, "fused": None
    }
    _STEP_IS_TENSOR = True

    def _check_grad(self, group, p, grad):
        if _is_sparse(grad):
            raise RuntimeError(
                "Adam does not support sparse gradients, please consider SparseAdam instead")

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
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = zeros_like(p)
            beta1, beta2 = group["betas"]
            _C._optim_adam(
                p, grad, state["exp_avg"], state["exp_avg_sq"],
                state["max_exp_avg_sq"] if group["amsgrad"] else None, _step_tensor(state),
                _to_scalar(group["lr"]), _to_scalar(beta1), _to_scalar(beta2), group["eps"],
                group["weight_decay"], group["amsgrad"], group["maximize"],
                group["decoupled_weight_decay"])
        return loss


class AdamW(Adam):
    r"""Implements AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight
    decay, :math:`\theta \leftarrow \theta (1 - \gamma\lambda)` before the Adam
    update, so the decay never enters the moment estimates.

    Arguments as :class:`Adam`; ``weight_decay`` defaults to 1e-2.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
