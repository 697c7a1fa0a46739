"""Transposed convolution layers: ConvTranspose1d and ConvTranspose2d (torch.nn's API).

A transposed convolution ("deconvolution", fractionally strided convolution)
maps each input pixel to a KH x KW patch of the output, scaled by the weight,
and sums overlapping patches: it is the input-gradient of Conv2d with the same
weight, and it upsamples by ``stride``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import init
from .._random import get_rng
from ..errors import ConfigError, ShapeError
from ..functional import conv_transpose as F
from ..functional._utils import ntuple
from .conv import check_conv_channels, conv_extra_repr
from .module import Module
from .parameter import Parameter

__all__ = ['ConvTranspose1d', 'ConvTranspose2d']


class _ConvTransposeNd(Module):
    """Shared construction of ConvTranspose1d/2d: checks, parameters, default init."""

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", dtype: Any = None,
                 rng: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        check_conv_channels(name, in_channels, out_channels, groups, padding_mode)
        nd = self._nd
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = ntuple(kernel_size, nd, f"{name} kernel_size")
        self.stride = ntuple(stride, nd, f"{name} stride")
        self.padding = ntuple(padding, nd, f"{name} padding", 0)
        self.output_padding = ntuple(output_padding, nd, f"{name} output_padding", 0)
        self.dilation = ntuple(dilation, nd, f"{name} dilation")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= s and op >= d:
                raise ConfigError(
                    f"{name}: output_padding must be smaller than either stride or dilation; "
                    f"received output_padding={output_padding!r} with stride={self.stride}, "
                    f"dilation={self.dilation}"
                )
        dt = np.dtype(dtype or np.float32)
        shape = (self.in_channels, self.out_channels // groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dt))
        self.register_parameter("bias", Parameter(np.empty(self.out_channels, dtype=dt)) if bias else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)); bias U(+-1/sqrt(fan_in)).

        As in torch, fan_in comes from the weight's second axis:
        fan_in = (out_channels/groups) * prod(kernel_size).
        """
        fan_in = self.weight.data[0].size
        init.default_layer_init_(self.weight, self.bias, fan_in, get_rng(rng))

    def _output_padding(self, x: np.ndarray, output_size: Sequence[int] | None) -> tuple[int, ...]:
        """output_padding from a requested output size (torch's rule), else the layer's own."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        size = [int(v) for v in output_size]
        if len(size) == nd + 2:
            size = size[2:]
        if len(size) != nd:
            raise ConfigError(
                f"{self.where()}: output_size must have {nd} or {nd + 2} values; "
                f"received {tuple(output_size)}"
            )
        ops = []
        for i, want in enumerate(size):
            lo = ((x.shape[2 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                  + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            hi = lo + self.stride[i] - 1
            if not lo <= want <= hi:
                raise ShapeError(
                    f"{self.where()}: requested output_size {tuple(output_size)} for input "
                    f"{tuple(x.shape)}, but valid sizes of dimension {i} range from {lo} to {hi}"
                )
            ops.append(want - lo)
        return tuple(ops)

    def _check_output(self, x: np.ndarray, output_padding: tuple[int, ...]) -> None:
        """Refuse an input whose output would be empty (padding crops everything)."""
        out = [(size - 1) * s - 2 * p + d * (k - 1) + op + 1
               for size, s, p, d, k, op in zip(x.shape[2:], self.stride, self.padding,
                                                self.dilation, self.kernel_size, output_padding)]
        if min(out) < 1:
            raise ShapeError(
                f"{self.where()}: input {tuple(x.shape)} with padding {self.padding} gives an "
                f"empty output of spatial size {tuple(out)}"
            )

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw, db = self._backward_kernel(dy, self._take())
        self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self) -> str:
        op = self.output_padding
        return conv_extra_repr(self, f", output_padding={op}" if op != (0,) * self._nd else "")


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over (N, C, H, W) (learned upsampling).

    Args:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size, stride, dilation: int or (h, w).
        padding: int or (h, w): rows/columns cropped from each side of the output
            (undoes the same ``padding`` of the matching Conv2d).
        output_padding: int or (h, w) added to one side (bottom/right) of the
            output; must be smaller than stride or dilation.
        groups: channels are split into this many independent groups.
        bias: whether to add a learned bias.
        padding_mode: only 'zeros' (as in PyTorch).
        dtype: parameter dtype (float32 by default).
        rng: generator for the initial weights.

    Attributes:
        weight: (in_channels, out_channels/groups, KH, KW) — PyTorch's layout.
        bias: (out_channels,) or None.

    Shape:
        (N, C_in, H, W) -> (N, C_out, H_out, W_out),
        H_out = (H-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1.
        ``forward(x, output_size=(H_out, W_out))`` picks output_padding to give
        that size, as in PyTorch.
    """

    _nd = 2
    _backward_kernel = staticmethod(F.conv_transpose2d_backward)

    def forward(self, x: Any, output_size: Sequence[int] | None = None) -> np.ndarray:
        x = self._float_input(x, self.weight.data.dtype)
        self._check_ndim(x, ("N", self.in_channels, "H", "W"))
        op = self._output_padding(x, output_size)
        self._check_output(x, op)
        b = None if self.bias is None else self.bias.data
        pads = tuple((p, p) for p in self.padding)
        y, cache = F.conv_transpose2d_forward(
            x, self.weight.data, b, stride=self.stride, padding=pads, output_padding=op,
            dilation=self.dilation, groups=self.groups)
        self._keep(cache)
        return y


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C, L).

    Args:
        as :class:`ConvTranspose2d`, with int (or 1-tuple) kernel_size, stride,
        padding, output_padding, dilation.

    Shape:
        (N, C_in, L) -> (N, C_out, L_out),
        L_out = (L-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1.
    """

    _nd = 1
    _backward_kernel = staticmethod(F.conv_transpose1d_backward)

    def forward(self, x: Any, output_size: Sequence[int] | None = None) -> np.ndarray:
        x = self._float_input(x, self.weight.data.dtype)
        self._check_ndim(x, ("N", self.in_channels, "L"))
        op = self._output_padding(x, output_size)
        self._check_output(x, op)
        b = None if self.bias is None else self.bias.data
        y, cache = F.conv_transpose1d_forward(
            x, self.weight.data, b, stride=self.stride[0],
            padding=(self.padding[0], self.padding[0]), output_padding=op[0],
            dilation=self.dilation[0], groups=self.groups)
        self._keep(cache)
        return y
