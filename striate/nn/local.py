"""LocallyConnected2d: a 2-D convolution whose weights are not shared across positions.

Used in face recognition (DeepFace, Taigman et al. 2014) where aligned inputs
make each image region's statistics different; Keras calls it
``LocallyConnected2D``.  PyTorch has no such layer, so the parameter layout is
striate's own (documented on the class).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import init
from .._random import get_rng
from ..errors import ConfigError
from ..functional import local as F
from ..functional._utils import conv_padding, pair
from .module import Module
from .parameter import Parameter

__all__ = ['LocallyConnected2d']


class LocallyConnected2d(Module):
    """Locally connected 2-D layer: one filter bank per output position.

    Args:
        in_channels, out_channels: channel counts.
        input_size: (H, W) of the input (or an int for a square input); the
            layer only accepts inputs of this size, since it has weights per
            output position.
        kernel_size, stride: int or (h, w).
        padding: int, (h, w), 'valid' or 'same' (stride 1 only) zero padding.
        bias: whether to add a learned, untied bias (one per channel and position).
        dtype: parameter dtype (float32 by default).
        rng: generator for the initial weights.

    Attributes:
        weight: (OH, OW, out_channels, in_channels, KH, KW); ``weight[i, j]`` is
            the Conv2d-style filter bank of output position (i, j).
        bias: (out_channels, OH, OW) or None.

    Init:
        As a Conv2d with fan_in = in_channels*KH*KW (torch's default
        kaiming_uniform_(a=sqrt(5))): weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Shape:
        (N, C_in, H, W) -> (N, C_out, OH, OW),
        OH = floor((H + 2*padding - KH) / stride) + 1 (and likewise OW).
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: Any, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, bias: bool = True, dtype: Any = None,
                 rng: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, val in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ConfigError(f"{name}: {arg} must be a positive int; received {val!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.input_size = pair(input_size, f"{name} input_size")
        self.kernel_size = pair(kernel_size, f"{name} kernel_size")
        self.stride = pair(stride, f"{name} stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, f"{name} padding", 0)
        self._pads = conv_padding(padding, self.kernel_size, (1, 1), self.stride)
        self.output_size = F.locally_connected2d_output_hw(
            self.input_size, self.kernel_size, self.stride, self._pads)
        if min(self.output_size) < 1:
            raise ConfigError(
                f"{name}: kernel_size {self.kernel_size} is larger than the padded input; "
                f"received input_size {self.input_size} with padding {self.padding!r}"
            )
        dt = np.dtype(dtype or np.float32)
        oh, ow = self.output_size
        shape = (oh, ow, self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dt))
        self.register_parameter(
            "bias", Parameter(np.empty((self.out_channels, oh, ow), dtype=dt)) if bias else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """U(+-1/sqrt(fan_in)) for weight and bias, fan_in = in_channels*KH*KW.

        This is what torch's kaiming_uniform_(a=sqrt(5)) gives a Conv2d with the
        same fan_in: bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + 5)).
        """
        rng = get_rng(rng)
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3.0 / fan_in)
        init.uniform_(self.weight, -bound, bound, rng)
        if self.bias is not None:
            b = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -b, b, rng)

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x, self.weight.data.dtype)
        self._check_ndim(x, ("N", self.in_channels, *self.input_size),
                         extra=" (a locally connected layer only takes its input_size)")
        b = None if self.bias is None else self.bias.data
        y, cache = F.locally_connected2d_forward(x, self.weight.data, b, stride=self.stride,
                                                 padding=self._pads)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw, db = F.locally_connected2d_backward(dy, self._take())
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding not in (0, (0, 0), "valid"):
            s += f", padding={self.padding!r}"
        if self.bias is None:
            s += ", bias=False"
        return s
