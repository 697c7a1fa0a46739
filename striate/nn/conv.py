"""Convolution layers: Conv1d and Conv2d (torch.nn's arguments and defaults)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init
from .._random import get_rng
from ..errors import ConfigError, ShapeError
from ..functional import conv as F
from ..functional import conv1d as F1
from ..functional.conv_jit import conv2d_jit_forward
from ..functional._utils import conv_padding, ntuple
from .module import Module, is_grad_enabled
from .parameter import Parameter

__all__ = ['Conv1d', 'Conv2d']


def check_conv_channels(name: str, in_channels: Any, out_channels: Any, groups: Any,
                        padding_mode: str) -> None:
    """Refuse channel counts and groups a convolution cannot have (ConfigError with the value)."""
    for arg, val in (("in_channels", in_channels), ("out_channels", out_channels),
                     ("groups", groups)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ConfigError(f"{name}: {arg} must be a positive int; received {val!r}")
    if in_channels % groups or out_channels % groups:
        raise ConfigError(
            f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
            f"must both be divisible by groups ({groups})"
        )
    if padding_mode != "zeros":
        raise ConfigError(
            f"{name}: only padding_mode='zeros' is supported (as in PyTorch); received '{padding_mode}'"
        )


def conv_extra_repr(layer: Module, extra: str = "") -> str:
    """torch's repr arguments of a conv-like layer; ``extra`` goes after the padding."""
    nd = len(layer.kernel_size)
    s = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, stride={layer.stride}"
    if layer.padding not in (0, (0,) * nd, "valid"):
        s += f", padding={layer.padding!r}"
    s += extra
    if layer.dilation != (1,) * nd:
        s += f", dilation={layer.dilation}"
    if layer.groups != 1:
        s += f", groups={layer.groups}"
    if layer.bias is None:
        s += ", bias=False"
    return s


class _ConvNd(Module):
    """Shared construction of Conv1d/Conv2d: checks, parameters, default init."""

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        check_conv_channels(name, in_channels, out_channels, groups, padding_mode)
        nd = self._nd
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = ntuple(kernel_size, nd, f"{name} kernel_size")
        self.stride = ntuple(stride, nd, f"{name} stride")
        self.dilation = ntuple(dilation, nd, f"{name} dilation")
        self.padding = padding if isinstance(padding, str) else ntuple(padding, nd, f"{name} padding", 0)
        self._pads = conv_padding(padding, self.kernel_size, self.dilation, self.stride)
        dt = np.dtype(dtype or np.float32)
        shape = (self.out_channels, self.in_channels // groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dt))
        self.register_parameter("bias", Parameter(np.empty(self.out_channels, dtype=dt)) if bias else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)); bias U(+-1/sqrt(fan_in))."""
        rng = get_rng(rng)
        fan_in = self.weight.data[0].size
        init.default_layer_init_(self.weight, self.bias, fan_in, rng)

    def _input(self, x: Any) -> np.ndarray:
        """x as an array of the weight's dtype, checked: rank, channels, large enough."""
        x = self._float_input(x, self.weight.data.dtype)
        spatial = ("H", "W") if self._nd == 2 else ("L",)
        self._check_ndim(x, ("N", self.in_channels) + spatial)
        self._check_fits(x)
        return x

    def _check_fits(self, x: np.ndarray) -> None:
        """Refuse an input smaller than the (dilated) kernel after padding."""
        for size, k, d, (pb, pa) in zip(x.shape[2:], self.kernel_size, self.dilation, self._pads):
            if size + pb + pa < d * (k - 1) + 1:
                raise ShapeError(
                    f"{self.where()}: kernel {self.kernel_size} (dilation {self.dilation}) is "
                    f"larger than the padded input; received input {tuple(x.shape)} with "
                    f"padding {self.padding!r}"
                )

    def extra_repr(self) -> str:
        return conv_extra_repr(self)


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over (N, C, H, W).

    Args:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size, stride, dilation: int or (h, w).
        padding: int, (h, w), 'same' (stride 1 only) or 'valid'.
        groups: 1 is a full convolution; in_channels is depthwise.
        bias: whether to add a learned bias.
        dtype: parameter dtype (float32 by default).
        rng: generator for the initial weights.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H_out, W_out),
        H_out = floor((H + 2*padding - dilation*(kernel-1) - 1) / stride) + 1.
    """

    _nd = 2

    def forward(self, x: Any) -> np.ndarray:
        x = self._input(x)
        b = None if self.bias is None else self.bias.data
        if not is_grad_enabled():
            self._keep(None)
            return F.conv2d_infer(x, self.weight.data, b, stride=self.stride, padding=self._pads,
                                  dilation=self.dilation, groups=self.groups)
        y, cache = F.conv2d_forward(x, self.weight.data, b, stride=self.stride,
                                    padding=self._pads, dilation=self.dilation, groups=self.groups)
        self._keep(cache)
        return y

    def forward_moments(self, x: Any) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """(self(x), y's per-channel mean and biased variance, float64) for a batch norm on y.

        The compiled route sums y and y^2 while it writes y, so the batch norm makes no
        pass of its own for its moments; other routes (and inference) give None.
        """
        if not is_grad_enabled():
            return self(x), None
        x = self._input(x)
        w = self.weight.data
        if F.conv2d_route(x, w, self.stride, self._pads, self.dilation, self.groups, "auto",
                          training=True) != "jit":
            return self(x), None
        b = None if self.bias is None else self.bias.data
        y, cache, moments = conv2d_jit_forward(x, w, b, stride=self.stride[0], padding=self._pads,
                                               dilation=self.dilation, moments=True)
        self._keep(cache)
        return y, moments

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw, db = F.conv2d_backward(dy, self._take(), need_dx=self.input_grad)
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)
        return dx


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L): the time-delay neural network (TDNN) layer.

    Args:
        as :class:`Conv2d`, with int (or 1-tuple) kernel_size, stride, padding, dilation.

    Shape:
        (N, C_in, L) -> (N, C_out, L_out),
        L_out = floor((L + 2*padding - dilation*(kernel-1) - 1) / stride) + 1.
    """

    _nd = 1

    def forward(self, x: Any) -> np.ndarray:
        x = self._input(x)
        b = None if self.bias is None else self.bias.data
        y, cache = F1.conv1d_forward(x, self.weight.data, b, stride=self.stride[0],
                                    padding=self._pads[0], dilation=self.dilation[0],
                                    groups=self.groups)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw, db = F1.conv1d_backward(dy, self._take(), need_dx=self.input_grad)
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)
        return dx
