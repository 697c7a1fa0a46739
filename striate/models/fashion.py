"""fashion_cnn: a small two-conv network for 28x28 grey images (Fashion-MNIST, MNIST)."""

from __future__ import annotations

from typing import Any

from .._random import get_rng
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Flatten, Linear
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import MaxPool2d
from ._common import check_int, check_spatial
from .registry import register

__all__ = ["fashion_cnn"]


@register("fashion_cnn")
def fashion_cnn(num_classes: int = 10, in_channels: int = 1, *, input_size: int = 28,
                dtype: Any = None, rng: Any = None) -> Sequential:
    """Conv-BN-ReLU-pool twice, then one fully connected layer, as ONE flat Sequential.

    Layers (indices are the state_dict prefixes, as in the same torch.nn.Sequential):
    0 Conv2d(in_channels, 16, 5, padding=2), 1 BatchNorm2d(16), 2 ReLU, 3 MaxPool2d(2),
    4 Conv2d(16, 32, 5, padding=2), 5 BatchNorm2d(32), 6 ReLU, 7 MaxPool2d(2),
    8 Flatten, 9 Linear(32*S*S, num_classes) with S = input_size // 4 (7 for 28).

    Args:
        num_classes: outputs of the last layer (logits).
        in_channels: input channels (1 for grey images).
        input_size: the input's height = width; it sets the Linear's input size.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights (torch's default init).

    Shape:
        (N, in_channels, input_size, input_size) -> (N, num_classes); the 5x5
        convs keep the size, each pool halves it (floor).

    Returns:
        The Sequential model; 29,034 parameters at the defaults.
    """
    name = "fashion_cnn"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    input_size = check_int(name, "input_size", input_size)
    side = input_size // 2 // 2
    check_spatial(name, input_size, side, "the fully connected layer")
    g = get_rng(rng)
    return Sequential(
        Conv2d(in_channels, 16, 5, padding=2, dtype=dtype, rng=g),
        BatchNorm2d(16, dtype=dtype),
        ReLU(),
        MaxPool2d(2),
        Conv2d(16, 32, 5, padding=2, dtype=dtype, rng=g),
        BatchNorm2d(32, dtype=dtype),
        ReLU(),
        MaxPool2d(2),
        Flatten(),
        Linear(32 * side * side, num_classes, dtype=dtype, rng=g),   # (N, 32*S*S) -> (N, classes)
    )
