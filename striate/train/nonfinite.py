"""Finding where a value first went non-finite: which layer's output, which gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.module import Module, no_grad


def first_nonfinite_gradient(model: Module) -> str | None:
    """The name of the first parameter whose gradient has a NaN or Inf, else None."""
    for name, p in model.named_parameters():
        if p.grad is not None and not np.all(np.isfinite(p.grad)):
            return name
    return None


def first_nonfinite_output(model: Module, x: Any) -> str | None:
    """Re-run ``model(x)`` and return the first leaf layer ('features.3 (Conv2d)') whose
    output has a NaN or Inf, or 'the input' if the input already has one; None if none."""
    if not np.all(np.isfinite(np.asarray(x, dtype=np.float64))):
        return "the input"
    leaves = [m for m in model.modules() if not m._modules]
    found: list[str] = []

    def wrap(m: Module) -> None:
        original = m.forward

        def checked(*args: Any, **kwargs: Any) -> Any:
            y = original(*args, **kwargs)
            if not found and isinstance(y, np.ndarray) and y.dtype.kind == "f" \
                    and not np.all(np.isfinite(y)):
                found.append(m.where())
            return y

        m.forward = checked  # instance attribute shadows the method until removed

    for m in leaves:
        wrap(m)
    try:
        with no_grad():
            model(x)
    except Exception:  # noqa: BLE001 - locating is best effort; the caller reports anyway
        pass
    finally:
        for m in leaves:
            m.__dict__.pop("forward", None)
    return found[0] if found else None
