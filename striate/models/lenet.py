"""lenet5: LeCun et al. (1998) LeNet-5, in its usual modern reading."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .._random import get_rng
from ..nn.activation import ReLU, Tanh
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Flatten, Linear
from ..nn.pooling import AvgPool2d
from ._common import check_choice, check_int, check_spatial, conv_out
from .registry import register

__all__ = ["lenet5"]


@register("lenet5")
def lenet5(num_classes: int = 10, in_channels: int = 1, *, activation: str = "tanh",
           padding: int | None = None, input_size: int = 32, dtype: Any = None, rng: Any = None) -> Sequential:
    """LeNet-5: C1 6@5x5, S2, C3 16@5x5, S4, C5 120@5x5, F6 84, output.

    The modern reading of the paper, as a Sequential with named layers:
    c1 Conv2d(in_channels, 6, 5, padding), act1, s2 AvgPool2d(2),
    c3 Conv2d(6, 16, 5), act3, s4 AvgPool2d(2), c5 Conv2d(16, 120, 5), act5,
    flatten, f6 Linear(120*S*S, 84), act6, output Linear(84, num_classes).
    Departures from the 1998 paper: the subsampling layers S2/S4 are plain 2x2
    average pools (the paper's had a trainable scale and bias and a squashing
    function), C3 connects every S2 map to every C3 map (the paper's partial
    connection table is not used), the activation is plain tanh (the paper used
    1.7159 tanh(2a/3)) or ReLU, and the output layer is a Linear producing logits
    (the paper's Euclidean RBF units are not used).

    Args:
        num_classes: outputs (10 digits).
        in_channels: input channels (1 for grey images).
        activation: 'tanh' (as the paper, default) or 'relu'.
        padding: C1's zero padding; None (default) pads an input smaller than the
            paper's 32x32 up to it: 0 for 32x32, 2 for 28x28 MNIST (which gives the
            same 28x28 C1 maps).
        input_size: the input's height = width; C5 sees an S x S map,
            S = ((input_size + 2*padding - 4) // 2 - 4) // 2 - 4 (1 for 32 with padding 0,
            or 28 with padding 2), and F6 takes 120*S*S inputs.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights (torch's default init).

    Shape:
        (N, in_channels, input_size, input_size) -> (N, num_classes);
        32 -> 28 (C1) -> 14 (S2) -> 10 (C3) -> 5 (S4) -> 1 (C5).

    Returns:
        The Sequential model; 61,706 parameters at the defaults.
    """
    name = "lenet5"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    input_size = check_int(name, "input_size", input_size)
    if padding is None:
        padding = max(32 - input_size, 0) // 2
    padding = check_int(name, "padding", padding, minimum=0)
    act = {"tanh": Tanh, "relu": ReLU}[check_choice(name, "activation", activation, ("tanh", "relu"))]
    side = conv_out(input_size, 5, 1, padding)
    side = conv_out(conv_out(side, 2, 2), 5)
    side = conv_out(conv_out(side, 2, 2), 5)
    check_spatial(name, input_size, side, "F6")
    g = get_rng(rng)
    return Sequential(OrderedDict([
        ("c1", Conv2d(in_channels, 6, 5, padding=padding, dtype=dtype, rng=g)),
        ("act1", act()),
        ("s2", AvgPool2d(2)),
        ("c3", Conv2d(6, 16, 5, dtype=dtype, rng=g)),
        ("act3", act()),
        ("s4", AvgPool2d(2)),
        ("c5", Conv2d(16, 120, 5, dtype=dtype, rng=g)),
        ("act5", act()),
        ("flatten", Flatten()),                                       # (N, 120*S*S)
        ("f6", Linear(120 * side * side, 84, dtype=dtype, rng=g)),
        ("act6", act()),
        ("output", Linear(84, num_classes, dtype=dtype, rng=g)),
    ]))
