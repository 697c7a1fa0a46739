"""Stochastic gradient descent with optional (Nesterov) momentum, as torch.optim.SGD."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..nn.parameter import Parameter
from .optimizer import Optimizer

__all__ = ['SGD']


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum and weight decay.

    Update per step (torch's rule): g = grad (negated if ``maximize``) + weight_decay * p;
    with momentum, b = g on the first step, else b = momentum * b + (1 - dampening) * g,
    and g = g + momentum * b (nesterov) or g = b; then p -= lr * g.

    Args:
        params: parameters or parameter-group dicts.
        lr: learning rate (>= 0).
        momentum: momentum factor (>= 0).
        dampening: dampening of the momentum.
        weight_decay: L2 penalty added to the gradient (>= 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: ascend the objective instead of descending it.

    State:
        'momentum_buffer' (the parameter's shape) when momentum != 0.
    """

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_min(group, "lr", "learning rate")
        self._check_min(group, "momentum", "momentum")
        self._check_min(group, "weight_decay", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ConfigError(
                "SGD: Nesterov momentum requires a momentum and zero dampening; received "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(self, p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:
        g = -p.grad if group["maximize"] else p.grad
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(g, dtype=p.data.dtype, copy=True)
                state["momentum_buffer"] = buf
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * g
