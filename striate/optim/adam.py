"""Adam and AdamW (decoupled weight decay), as torch.optim.Adam / torch.optim.AdamW."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..nn.parameter import Parameter
from .optimizer import Optimizer, lerp_

__all__ = ['Adam', 'AdamW']


class Adam(Optimizer):
    """Adam: adaptive moment estimation, with bias correction (torch's update rule).

    Per step t: g = grad (negated if ``maximize``); weight decay either adds
    weight_decay * p to g (Adam) or multiplies p by 1 - lr * weight_decay
    (``decoupled_weight_decay``, AdamW); m = beta1 m + (1 - beta1) g;
    v = beta2 v + (1 - beta2) g^2 (v_max = max(v_max, v) with amsgrad);
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).

    Args:
        params: parameters or parameter-group dicts.
        lr: learning rate (>= 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: L2 penalty (>= 0).
        amsgrad: use the running maximum of v.
        maximize: ascend the objective.
        decoupled_weight_decay: decay the weights directly (AdamW).

    State:
        'step' (a float), 'exp_avg', 'exp_avg_sq' and, with amsgrad, 'max_exp_avg_sq'.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        self._check_min(group, "lr", "learning rate")
        self._check_min(group, "eps", "epsilon")
        betas = group["betas"]
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: betas must be a pair of floats; received {betas!r}") from None
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise ConfigError(f"{name}: invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
        group["betas"] = (b1, b2)
        self._check_min(group, "weight_decay", "weight_decay")

    def _update(self, p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        g = -p.grad if group["maximize"] else p.grad
        state["step"] += 1.0
        step = state["step"]
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.data *= 1 - lr * wd
            else:
                g = g + wd * p.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_(exp_avg, g, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        step_size = lr / (1 - beta1 ** step)
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        if group["amsgrad"]:
            second = state.setdefault("max_exp_avg_sq", np.zeros_like(p.data))
            np.maximum(second, exp_avg_sq, out=second)
        else:
            second = exp_avg_sq
        denom = np.sqrt(second) / bias_correction2_sqrt + group["eps"]
        p.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step.

    Args:
        as :class:`Adam`, with weight_decay=1e-2 by default.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As :meth:`Optimizer.load_state_dict`; AdamW's decay stays decoupled."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
