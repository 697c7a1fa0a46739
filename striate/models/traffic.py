"""traffic_sign_cnn: the classic tiny traffic-sign classifier (GTSRB, 43 classes)."""

from __future__ import annotations

from typing import Any

from .._random import get_rng
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Flatten, Linear
from ..nn.pooling import MaxPool2d
from ._common import check_int, check_spatial, conv_out
from .registry import register

__all__ = ["traffic_sign_cnn"]


@register("traffic_sign_cnn")
def traffic_sign_cnn(num_classes: int = 43, in_channels: int = 3, *, input_size: int = 32,
                     hidden: int | None = None, dtype: Any = None, rng: Any = None) -> Sequential:
    """Four 5x5 kernels, pool, ten 5x5 kernels, pool, a fully connected classifier.

    Layers of the flat Sequential (unpadded convolutions, ReLU activations):
    0 Conv2d(in_channels, 4, 5), 1 ReLU, 2 MaxPool2d(2),
    3 Conv2d(4, 10, 5), 4 ReLU, 5 MaxPool2d(2), 6 Flatten,
    7 Linear(10*S*S, num_classes) with S = ((input_size - 4) // 2 - 4) // 2 (5 for 32);
    with ``hidden=h`` the classifier is 7 Linear(10*S*S, h), 8 ReLU, 9 Linear(h, num_classes).

    Args:
        num_classes: outputs (43 GTSRB classes by default).
        in_channels: input channels (3 for RGB).
        input_size: the input's height = width (32 by default).
        hidden: size of an optional hidden fully connected layer (None: no hidden layer).
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights (torch's default init).

    Shape:
        (N, in_channels, input_size, input_size) -> (N, num_classes);
        32 -> 28 (conv) -> 14 (pool) -> 10 (conv) -> 5 (pool).

    Returns:
        The Sequential model; 12,107 parameters at the defaults.
    """
    name = "traffic_sign_cnn"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    input_size = check_int(name, "input_size", input_size)
    side = conv_out(conv_out(conv_out(input_size, 5), 2, 2), 5) // 2
    check_spatial(name, input_size, side, "the fully connected layer")
    g = get_rng(rng)
    layers = [
        Conv2d(in_channels, 4, 5, dtype=dtype, rng=g), ReLU(), MaxPool2d(2),
        Conv2d(4, 10, 5, dtype=dtype, rng=g), ReLU(), MaxPool2d(2),
        Flatten(),                                                    # (N, 10*S*S)
    ]
    features = 10 * side * side
    if hidden is not None:
        hidden = check_int(name, "hidden", hidden)
        layers += [Linear(features, hidden, dtype=dtype, rng=g), ReLU()]
        features = hidden
    layers.append(Linear(features, num_classes, dtype=dtype, rng=g))
    return Sequential(*layers)
