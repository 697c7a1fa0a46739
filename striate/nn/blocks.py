"""Network blocks: ResNet's BasicBlock and Bottleneck, GoogLeNet's Inception module.

The blocks mirror torchvision.models.resnet and torchvision.models.googlenet:
same constructor arguments and defaults, same attribute names (conv1, bn1,
relu, ..., downsample; branch1..branch4 of BasicConv2d), hence the same
``state_dict`` keys, so torchvision weights load straight across.  Forward and
backward are written out by hand and exact.  The ReLUs are applied with the
relu kernel (one ReLU module called twice would overwrite its own backward
cache); the ``relu`` child of the ResNet blocks is kept for torchvision's
structure and repr.

One deliberate difference: torchvision's Inception builds its "5x5" branch with
a 3x3 convolution (a known bug kept for its pretrained weights); this one uses
the paper's 5x5 kernel with padding 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._random import get_rng
from ..errors import ConfigError, ShapeError
from ..functional import activation as FA
from .activation import ReLU
from .container import Sequential
from .conv import Conv2d
from .module import Module
from .normalization import BatchNorm2d, fusable_batch_norm
from .pooling import MaxPool2d

__all__ = ['conv3x3', 'conv1x1', 'BasicBlock', 'Bottleneck', 'BasicConv2d', 'InceptionModule']


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1,
            *, dtype: Any = None, rng: Any = None) -> Conv2d:
    """3x3 convolution without bias, padding = dilation (torchvision's conv3x3)."""
    return Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                  groups=groups, bias=False, dilation=dilation, dtype=dtype, rng=rng)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, *, dtype: Any = None,
            rng: Any = None) -> Conv2d:
    """1x1 convolution without bias (torchvision's conv1x1)."""
    return Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False,
                  dtype=dtype, rng=rng)


def _check_positive(block: str, **values: Any) -> None:
    for arg, val in values.items():
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ConfigError(f"{block}: {arg} must be a positive int; received {val!r}")


def _make_norm(norm_layer: Callable[[int], Module] | None, channels: int, dt: np.dtype) -> Module:
    """norm_layer(channels), BatchNorm2d by default, in the block's dtype."""
    if norm_layer is None:
        return BatchNorm2d(channels, dtype=dt)
    if not callable(norm_layer):
        raise ConfigError(f"norm_layer must be a callable or None; received {norm_layer!r}")
    return norm_layer(channels).to(dt)


@dataclass(frozen=True)
class _ReluCaches:
    """The caches of the ReLUs a block applied in forward, in order."""

    relus: tuple[FA.MaskCache, ...]


class _ResidualBlock(Module):
    """Shared forward/backward of BasicBlock and Bottleneck.

    ``_stages`` names the (conv, norm) pairs; a ReLU follows every pair but the
    last, whose output is added to the identity (or ``downsample(x)``) and then
    passed through the final ReLU.
    """

    expansion = 1
    _stages: tuple[tuple[str, str], ...] = ()

    def _setup(self, inplanes: int, planes: int, stride: int, downsample: Module | None) -> None:
        _check_positive(type(self).__name__, inplanes=inplanes, planes=planes)
        if downsample is not None and not isinstance(downsample, Module):
            raise ConfigError(
                f"{type(self).__name__}: downsample must be a Module or None; "
                f"received {type(downsample).__name__}"
            )
        self.inplanes, self.planes, self.stride = int(inplanes), int(planes), stride

    def _set_downsample(self, downsample: Module | None) -> None:
        """Register the downsample child last (torchvision's order), or None."""
        if downsample is None:
            object.__setattr__(self, "downsample", None)
        else:
            self.add_module("downsample", downsample)

    @property
    def _conv_bn_pairs(self) -> tuple[tuple[str, str], ...]:
        """(conv, norm) attribute pairs where the norm directly follows the conv (for folding)."""
        return self._stages

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x, self.conv1.weight.data.dtype)
        self._check_ndim(x, ("N", self.inplanes, "H", "W"))
        relus: list[FA.MaskCache | None] = []
        out = x
        last = len(self._stages) - 1
        for i, (conv, norm) in enumerate(self._stages):
            out, moments = self._conv(conv, norm, out)
            if i < last:
                out = self._norm_relu(norm, out, None, relus, moments)
        out = self._norm_relu(self._stages[last][1], out, lambda: self._identity(x, out), relus,
                              moments)
        self._keep(_ReluCaches(tuple(relus)))
        return out

    def _conv(self, conv_name: str, norm_name: str, x: np.ndarray
              ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The stage's convolution, with its output's moments when the batch norm after it
        (fused, using the batch's statistics) can take them from the convolution."""
        conv, norm = getattr(self, conv_name), getattr(self, norm_name)
        if (isinstance(conv, Conv2d) and "forward" not in conv.__dict__
                and fusable_batch_norm(norm) and (norm.training or norm.running_mean is None)):
            return conv.forward_moments(x)
        return conv(x), None

    def _identity(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The shortcut branch: x or downsample(x), of the residual branch's shape."""
        identity = x if self.downsample is None else self.downsample(x)
        if identity.shape != out.shape:
            raise ShapeError(
                f"{self.where()}: the identity branch {tuple(identity.shape)} does not match "
                f"the residual branch {tuple(out.shape)} for input {tuple(x.shape)}; a stride "
                "other than 1 or a change of channels needs a downsample module"
            )
        return identity

    def _norm_relu(self, name: str, x: np.ndarray, residual: Callable[[], np.ndarray] | None,
                   relus: list[FA.MaskCache | None],
                   moments: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """relu(norm(x) [+ residual()]): one fused operation for a batch norm (its cache holds
        the ReLU's; ``moments``: x's, from the convolution), else norm, add and the relu kernel
        (its cache appended to ``relus``).  Unfused, the shortcut runs after the norm, as in
        torchvision (watchers see that order)."""
        norm = getattr(self, name)
        if fusable_batch_norm(norm):
            relus.append(None)
            return norm.forward_relu(x, None if residual is None else residual(), moments)
        out = norm(x)                                               # a fresh array
        if residual is not None:
            out += residual()
        out, cache = FA.relu_forward(out, inplace=True)
        relus.append(cache)
        return out

    def _norm_relu_backward(self, i: int, dy: np.ndarray, relu: FA.MaskCache | None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """(gradient at stage i's convolution output, gradient at its ReLU's input)."""
        norm = getattr(self, self._stages[i][1])
        if relu is None:
            dx, at_relu = norm.backward_relu(dy)
            return dx, at_relu
        inner = i < len(self._stages) - 1                           # dy: a conv's fresh dx
        at_relu = FA.relu_backward(dy, relu, inplace=inner)
        return norm.backward(at_relu), at_relu

    def backward(self, dy: np.ndarray) -> np.ndarray:
        relus = self._take().relus
        last = len(self._stages) - 1
        d, dsum = self._norm_relu_backward(last, dy, relus[last])   # dsum: gradient of out + identity
        d = getattr(self, self._stages[last][0]).backward(d)
        for i in range(last - 1, -1, -1):
            d = getattr(self, self._stages[i][0]).backward(self._norm_relu_backward(i, d, relus[i])[0])
        d_identity = dsum if self.downsample is None else self.downsample.backward(dsum)
        d += d_identity                                             # d: the conv's fresh dx
        return d

    def extra_repr(self) -> str:
        return f"inplanes={self.inplanes}, planes={self.planes}, stride={self.stride}"


class BasicBlock(_ResidualBlock):
    """ResNet-18/34 block: two 3x3 conv + BN, a ReLU between, identity added, ReLU.

    Args:
        inplanes: input channels.
        planes: output channels (``expansion`` is 1).
        stride: stride of the first 3x3 convolution.
        downsample: module mapping x to the output shape (e.g. Sequential(conv1x1,
            BatchNorm2d)) when stride != 1 or inplanes != planes; None: identity.
        groups, base_width: must be 1 and 64 (as torchvision).
        dilation: must be 1 (as torchvision).
        norm_layer: callable channels -> norm module; BatchNorm2d by default.
        dtype: parameter dtype (float32 by default).
        rng: generator for the initial weights.

    Shape:
        (N, inplanes, H, W) -> (N, planes, H_out, W_out), H_out = floor((H - 1) / stride) + 1.
    """

    expansion = 1
    _stages = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Module | None = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Callable[[int], Module] | None = None, *,
                 dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ConfigError(
                f"BasicBlock only supports groups=1 and base_width=64; received groups={groups!r}, "
                f"base_width={base_width!r}"
            )
        if dilation != 1:
            raise ConfigError(f"BasicBlock does not support dilation > 1; received dilation={dilation!r}")
        self._setup(inplanes, planes, stride, downsample)
        dt = np.dtype(dtype or np.float32)
        rng = get_rng(rng)          # one generator for all convs (an int seed is drawn once)
        self.conv1 = conv3x3(inplanes, planes, stride, dtype=dt, rng=rng)
        self.bn1 = _make_norm(norm_layer, planes, dt)
        self.relu = ReLU()  # structural, as torchvision; forward uses the relu kernel
        self.conv2 = conv3x3(planes, planes, dtype=dt, rng=rng)
        self.bn2 = _make_norm(norm_layer, planes, dt)
        self._set_downsample(downsample)


class Bottleneck(_ResidualBlock):
    """ResNet-50/101/152 block: 1x1 reduce, 3x3 (stride here, as torchvision v1.5), 1x1 expand.

    Args:
        inplanes: input channels.
        planes: bottleneck channels; the output has planes * 4 (``expansion``).
        stride: stride of the 3x3 convolution.
        downsample: as :class:`BasicBlock`.
        groups: groups of the 3x3 convolution (ResNeXt).
        base_width: width per group; the 3x3 width is int(planes * base_width / 64) * groups.
        dilation: dilation (and padding) of the 3x3 convolution.
        norm_layer, dtype, rng: as :class:`BasicBlock`.

    Shape:
        (N, inplanes, H, W) -> (N, 4*planes, H_out, W_out), H_out = floor((H - 1) / stride) + 1.
    """

    expansion = 4
    _stages = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Module | None = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Callable[[int], Module] | None = None, *,
                 dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        _check_positive("Bottleneck", groups=groups, base_width=base_width, dilation=dilation)
        self._setup(inplanes, planes, stride, downsample)
        width = int(planes * (base_width / 64.0)) * groups
        if width < 1:
            raise ConfigError(
                f"Bottleneck: width int(planes * base_width / 64) * groups must be >= 1; received "
                f"planes={planes}, base_width={base_width}, groups={groups}"
            )
        dt = np.dtype(dtype or np.float32)
        rng = get_rng(rng)
        self.conv1 = conv1x1(inplanes, width, dtype=dt, rng=rng)
        self.bn1 = _make_norm(norm_layer, width, dt)
        self.conv2 = conv3x3(width, width, stride, groups, dilation, dtype=dt, rng=rng)
        self.bn2 = _make_norm(norm_layer, width, dt)
        self.conv3 = conv1x1(width, planes * self.expansion, dtype=dt, rng=rng)
        self.bn3 = _make_norm(norm_layer, planes * self.expansion, dt)
        self.relu = ReLU()  # structural, as torchvision; forward uses the relu kernel
        self._set_downsample(downsample)


class BasicConv2d(Module):
    """GoogLeNet's conv unit: Conv2d(bias=False) -> BatchNorm2d(eps=0.001) -> ReLU.

    Args:
        in_channels, out_channels: channel counts.
        **kwargs: further Conv2d arguments (kernel_size, stride, padding, ...,
            dtype, rng); bias is always False.

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H_out, W_out), as the Conv2d.
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        if "bias" in kwargs:
            raise ConfigError(f"BasicConv2d: the convolution has no bias; received bias={kwargs['bias']!r}")
        self.conv = Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = BatchNorm2d(out_channels, eps=0.001, dtype=self.conv.weight.data.dtype)

    _conv_bn_pairs = (("conv", "bn"),)

    def forward(self, x: Any) -> np.ndarray:
        out = self.conv(x)
        if fusable_batch_norm(self.bn):                      # BN + ReLU fused
            self._keep(_ReluCaches((None,)))
            return self.bn.forward_relu(out)
        y, relu = FA.relu_forward(self.bn(out), inplace=True)
        self._keep(_ReluCaches((relu,)))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (relu,) = self._take().relus
        if relu is None:
            return self.conv.backward(self.bn.backward_relu(dy)[0])
        return self.conv.backward(self.bn.backward(FA.relu_backward(dy, relu)))


class InceptionModule(Module):
    """GoogLeNet's Inception module: four parallel branches concatenated on channels.

    branch1: 1x1; branch2: 1x1 reduce -> 3x3; branch3: 1x1 reduce -> 5x5 (the
    paper's kernel; torchvision uses 3x3 here); branch4: 3x3 max pool (stride 1)
    -> 1x1 projection.  Every conv is a :class:`BasicConv2d` (conv, BN, ReLU).

    Args:
        in_channels: input channels.
        ch1x1: output channels of branch1.
        ch3x3red, ch3x3: reduce and output channels of branch2.
        ch5x5red, ch5x5: reduce and output channels of branch3.
        pool_proj: output channels of branch4.
        branch3_kernel: kernel of branch3's second conv: 5 (the paper) or 3 (torchvision).
        conv_block: callable (in, out, **conv kwargs) -> module; BasicConv2d by default.
        dtype: parameter dtype (float32 by default).
        rng: generator for the initial weights.

    Shape:
        (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, conv_block: Callable[..., Module] | None = None, *,
                 branch3_kernel: int = 5, dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        _check_positive("InceptionModule", in_channels=in_channels, ch1x1=ch1x1, ch3x3red=ch3x3red,
                        ch3x3=ch3x3, ch5x5red=ch5x5red, ch5x5=ch5x5, pool_proj=pool_proj)
        if branch3_kernel not in (1, 3, 5, 7):
            raise ConfigError(f"InceptionModule: branch3_kernel must be 1, 3, 5 or 7; received {branch3_kernel!r}")
        dt = np.dtype(dtype or np.float32)
        rng = get_rng(rng)
        if conv_block is None:
            def block(cin: int, cout: int, **kw: Any) -> Module:
                return BasicConv2d(cin, cout, dtype=dt, rng=rng, **kw)
        elif callable(conv_block):
            def block(cin: int, cout: int, **kw: Any) -> Module:
                return conv_block(cin, cout, **kw).to(dt)
        else:
            raise ConfigError(f"InceptionModule: conv_block must be callable or None; received {conv_block!r}")
        self.in_channels = int(in_channels)
        self.branch1 = block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = Sequential(block(in_channels, ch3x3red, kernel_size=1),
                                  block(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = Sequential(block(in_channels, ch5x5red, kernel_size=1),
                                  block(ch5x5red, ch5x5, kernel_size=branch3_kernel,
                                        padding=branch3_kernel // 2))
        self.branch4 = Sequential(MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                  block(in_channels, pool_proj, kernel_size=1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    _branches = ("branch1", "branch2", "branch3", "branch4")

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        self._check_ndim(x, ("N", self.in_channels, "H", "W"))
        outs = [getattr(self, b)(x) for b in self._branches]
        self._keep(tuple(o.shape[1] for o in outs))
        return np.concatenate(outs, axis=1)                 # (N, sum of branch channels, H, W)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        widths = self._take()
        bounds = np.cumsum((0,) + widths)
        dx = None
        for b, lo, hi in zip(self._branches, bounds[:-1], bounds[1:]):
            g = getattr(self, b).backward(np.ascontiguousarray(dy[:, lo:hi]))
            dx = g if dx is None else dx + g
        return dx

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"
