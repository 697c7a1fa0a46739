"""Gradient clipping: clip_grad_norm_ and clip_grad_value_ (torch.nn.utils semantics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, NonFiniteError
from ..nn.parameter import Parameter

__all__ = ['clip_grad_norm_', 'clip_grad_value_']


def _grads(parameters: Any, fn: str) -> list[np.ndarray]:
    """The existing gradients of a Parameter or an iterable of Parameters."""
    params = [parameters] if isinstance(parameters, Parameter) else parameters
    try:
        params = list(params)
    except TypeError:
        raise ConfigError(
            f"{fn}: parameters must be a Parameter or an iterable of Parameters; "
            f"received {type(parameters).__name__}"
        ) from None
    for p in params:
        if not isinstance(p, Parameter):
            raise ConfigError(f"{fn}: parameters must be Parameters; received {type(p).__name__}")
    return [p.grad for p in params if p.grad is not None]


def _nonnegative(value: Any, arg: str, fn: str) -> float:
    """``value`` as a float >= 0, or ConfigError naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, bool) or not v >= 0:
        raise ConfigError(f"{fn}: {arg} must be a number >= 0; received {value!r}")
    return v


def clip_grad_norm_(parameters: Any, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients in place so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of the per-gradient norms (the norm of
    all gradients concatenated); each gradient is multiplied by
    min(max_norm / (total + 1e-6), 1).  Parameters without a gradient are skipped.

    Args:
        parameters: a Parameter or an iterable of Parameters (e.g. model.parameters()).
        max_norm: the largest allowed norm (>= 0).
        norm_type: p of the p-norm; float('inf') or 'inf' for the largest absolute value.
        error_if_nonfinite: raise instead of scaling when the total norm is NaN or infinite.

    Returns:
        The total norm of the gradients before clipping (0.0 when there are none).
    """
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise ConfigError(f"clip_grad_norm_: norm_type must be a number or 'inf'; received {norm_type!r}") from None
    max_norm = _nonnegative(max_norm, "max_norm", "clip_grad_norm_")
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return 0.0
    norms = np.array([np.linalg.norm(g.reshape(-1), ord=p) for g in grads], dtype=np.float64)
    total = float(np.linalg.norm(norms, ord=p))
    if error_if_nonfinite and not np.isfinite(total):
        raise NonFiniteError(
            f"clip_grad_norm_: the total norm of order {p} of the gradients is {total}, so it "
            "cannot be clipped; pass error_if_nonfinite=False to scale by it anyway"
        )
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef
    return total


def clip_grad_value_(parameters: Any, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place.

    Args:
        parameters: a Parameter or an iterable of Parameters.
        clip_value: the largest allowed absolute value (>= 0).
    """
    c = _nonnegative(clip_value, "clip_value", "clip_grad_value_")
    for g in _grads(parameters, "clip_grad_value_"):
        np.clip(g, -c, c, out=g)
