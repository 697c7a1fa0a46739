"""Shared pieces of the model builders: argument checks and reference weight inits."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .. import init
from ..errors import ConfigError
from ..nn.conv import Conv1d, Conv2d
from ..nn.linear import Linear
from ..nn.module import Module


def check_int(model: str, arg: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise ConfigError naming the model and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{model}: {arg} must be an int >= {minimum}; received {value!r}")
    return int(value)


def check_choice(model: str, arg: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ConfigError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{model}: {arg} must be one of {choices}; received {value!r}")
    return value


def check_prob(model: str, arg: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1), or raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{model}: {arg} must be a probability in [0, 1); received {value!r}")
    return float(value)


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, ceil: bool = False) -> int:
    """Output length of a convolution or pooling window: floor((size+2p-k)/s)+1."""
    span = size + 2 * padding - kernel
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + padding:  # torch: last window must start inside
        out -= 1
    return out


def check_spatial(model: str, input_size: int, final: int, what: str) -> None:
    """Refuse an ``input_size`` whose feature map vanishes before ``what``."""
    if final < 1:
        raise ConfigError(
            f"{model}: input_size {input_size} is too small; the feature map is empty "
            f"before {what}"
        )


def _convs(model: Module) -> list[Any]:
    return [m for m in model.modules() if isinstance(m, (Conv1d, Conv2d))]


def _linears(model: Module) -> list[Linear]:
    return [m for m in model.modules() if isinstance(m, Linear)]


def kaiming_conv_init_(model: Module, rng: np.random.Generator) -> None:
    """torchvision's ResNet/VGG conv init: kaiming_normal_(fan_out, relu), bias 0."""
    for m in _convs(model):
        init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", rng=rng)
        if m.bias is not None:
            init.zeros_(m.bias)


def normal_linear_init_(model: Module, std: float, rng: np.random.Generator) -> None:
    """torchvision's VGG Linear init: N(0, std^2) weights, zero bias."""
    for m in _linears(model):
        init.normal_(m.weight, 0.0, std, rng=rng)
        if m.bias is not None:
            init.zeros_(m.bias)


def trunc_normal_init_(model: Module, std: float, rng: np.random.Generator) -> None:
    """torchvision's GoogLeNet init of Conv and Linear: trunc_normal_(0, std, a=-2, b=2), bias 0.

    The truncation at +-2 lies 2/std standard deviations out (200 for std 0.01),
    so a clip of N(0, std^2) draws is the same distribution to double precision.
    """
    for m in _convs(model) + _linears(model):
        init.normal_(m.weight, 0.0, std, rng=rng)
        np.clip(m.weight.data, -2.0, 2.0, out=m.weight.data)
        if m.bias is not None:
            init.zeros_(m.bias)


def glorot_conv_init_(model: Module, rng: np.random.Generator) -> None:
    """Keras's Conv2D/DepthwiseConv2D defaults: glorot_uniform kernels, zero bias.

    Glorot's bound depends on fan_in + fan_out only, so Keras's kernel layout
    (KH, KW, C_in, C_out) and torch's (C_out, C_in/groups, KH, KW) agree.
    """
    for m in _convs(model):
        init.xavier_uniform_(m.weight, rng=rng)
        if m.bias is not None:
            init.zeros_(m.bias)
