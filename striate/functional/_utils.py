"""Argument normalisation shared by the kernels and layers."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


def ntuple(value: Any, n: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Turn an int or a sequence into an n-tuple of ints >= minimum.

    Raises:
        ConfigError: if the value is not an int or an n-sequence of ints >= minimum.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an int or a tuple of {n} ints; received {value!r}")
    if isinstance(value, int):
        out = (value,) * n
    else:
        try:
            out = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name} must be an int or a tuple of {n} ints; received {value!r}"
            ) from None
        if len(out) != n:
            raise ConfigError(f"{name} must have {n} values; received {value!r}")
    if any(v < minimum for v in out):
        raise ConfigError(f"{name} must be >= {minimum}; received {value!r}")
    return out


def pair(value: Any, name: str, minimum: int = 1) -> tuple[int, int]:
    return ntuple(value, 2, name, minimum)  # type: ignore[return-value]


def conv_padding(padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...],
                 stride: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Resolve a conv padding argument into ((before, after), ...) per spatial dim.

    'valid' is no padding; 'same' pads d*(k-1) in total, half before and the
    rest (one more when odd) after, as PyTorch does, and needs stride 1.
    """
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in range(n))
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ConfigError(
                    f"padding='same' needs stride 1 (as in PyTorch); received stride {stride}"
                )
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise ConfigError(f"padding must be an int, a tuple, 'same' or 'valid'; received '{padding}'")
    p = ntuple(padding, n, "padding", minimum=0)
    return tuple((v, v) for v in p)
