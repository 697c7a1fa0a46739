"""Weight initialisation, with torch.nn.init's names and formulas.

Every function fills an array (or a Parameter's ``.data``) in place and takes
an explicit ``rng`` (a ``numpy.random.Generator``; None means the package
default generator seeded by ``striate.manual_seed``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._random import get_rng
from .errors import ConfigError


def _array(t: Any) -> np.ndarray:
    return t.data if hasattr(t, "data") and isinstance(t.data, np.ndarray) else t


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (as torch.nn.init.calculate_gain)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ConfigError(f"calculate_gain: negative_slope must be a number; received {param!r}")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ConfigError(f"calculate_gain: unsupported nonlinearity '{nonlinearity}'")


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` (out, in, *kernel), as torch."""
    if len(shape) < 2:
        raise ConfigError(
            f"fan in and fan out need a weight with at least 2 dimensions; received shape {shape}"
        )
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: tuple[int, ...], mode: str) -> int:
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"mode must be 'fan_in' or 'fan_out'; received {mode!r}")
    fi, fo = fan_in_and_fan_out(shape)
    return fi if mode == "fan_in" else fo


_skipping = False


class skip_init:
    """Context manager: layers built inside it keep uninitialised weights (no random fills).

    For counting or inspecting a large model's shapes quickly (``striate models`` builds
    VGG's 138M weights this way); load or initialise the weights before using the model.
    """

    def __enter__(self) -> "skip_init":
        global _skipping
        self._prev, _skipping = _skipping, True
        return self

    def __exit__(self, *exc: object) -> None:
        global _skipping
        _skipping = self._prev


def uniform_(t: Any, a: float = 0.0, b: float = 1.0, rng=None) -> Any:
    if not a <= b:
        raise ConfigError(f"uniform_ expects a <= b; received a={a!r}, b={b!r}")
    if _skipping:
        return t
    arr = _array(t)
    arr[...] = get_rng(rng).uniform(a, b, size=arr.shape)
    return t


def normal_(t: Any, mean: float = 0.0, std: float = 1.0, rng=None) -> Any:
    if not std >= 0:
        raise ConfigError(f"normal_ expects std >= 0; received std={std!r}")
    if _skipping:
        return t
    arr = _array(t)
    arr[...] = get_rng(rng).normal(mean, std, size=arr.shape)
    return t


def constant_(t: Any, val: float) -> Any:
    if not _skipping:
        _array(t)[...] = val
    return t


def zeros_(t: Any) -> Any:
    return constant_(t, 0.0)


def ones_(t: Any) -> Any:
    return constant_(t, 1.0)


def xavier_uniform_(t: Any, gain: float = 1.0, rng=None) -> Any:
    """Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    if _array(t).size == 0:  # as torch: initialising an empty tensor is a no-op
        return t
    fi, fo = fan_in_and_fan_out(_array(t).shape)
    a = gain * math.sqrt(6.0 / (fi + fo))
    return uniform_(t, -a, a, rng)


def xavier_normal_(t: Any, gain: float = 1.0, rng=None) -> Any:
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    if _array(t).size == 0:
        return t
    fi, fo = fan_in_and_fan_out(_array(t).shape)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fi + fo)), rng)


def kaiming_uniform_(t: Any, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", rng=None) -> Any:
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan)."""
    if _array(t).size == 0:
        return t
    fan = _fan(_array(t).shape, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(t, -bound, bound, rng)


def kaiming_normal_(t: Any, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", rng=None) -> Any:
    """He normal: N(0, std^2), std = gain / sqrt(fan)."""
    if _array(t).size == 0:
        return t
    fan = _fan(_array(t).shape, mode)
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), rng)


# Keras-style aliases
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_


def default_layer_init_(weight: Any, bias: Any | None, fan_in: int, rng=None) -> None:
    """torch's default for Linear/Conv: kaiming_uniform_(a=sqrt(5)) and U(+-1/sqrt(fan_in)) bias."""
    rng = get_rng(rng)  # resolve a seed once, so weight and bias draw from one stream
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound, rng)
