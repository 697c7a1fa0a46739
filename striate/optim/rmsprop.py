"""RMSprop, as torch.optim.RMSprop."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.parameter import Parameter
from .optimizer import Optimizer, lerp_

__all__ = ['RMSprop']


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square (torch's update rule).

    Per step: g = grad (negated if ``maximize``) + weight_decay * p;
    v = alpha v + (1 - alpha) g^2; with ``centered``, a = alpha a + (1 - alpha) g
    and avg = sqrt(v - a^2), else avg = sqrt(v); avg += eps; then
    b = momentum b + g / avg and p -= lr b (momentum > 0), or p -= lr g / avg.

    Args:
        params: parameters or parameter-group dicts.
        lr: learning rate (>= 0).
        alpha: smoothing constant (>= 0).
        eps: added to the denominator (>= 0).
        weight_decay: L2 penalty (>= 0).
        momentum: momentum factor (>= 0).
        centered: normalise by the estimated variance instead of the second moment.
        maximize: ascend the objective.

    State:
        'step' (a float), 'square_avg', and 'momentum_buffer' (momentum > 0)
        and 'grad_avg' (centered).
    """

    def __init__(self, params: Any, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_min(group, "lr", "learning rate")
        self._check_min(group, "eps", "epsilon")
        self._check_min(group, "momentum", "momentum")
        self._check_min(group, "weight_decay", "weight_decay")
        self._check_min(group, "alpha", "alpha")

    def _update(self, p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0.0
            state["square_avg"] = np.zeros_like(p.data)
        alpha = group["alpha"]
        g = -p.grad if group["maximize"] else p.grad
        state["step"] += 1.0
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(p.data))
            lerp_(grad_avg, g, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
            buf *= group["momentum"]
            buf += g / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (g / avg)
