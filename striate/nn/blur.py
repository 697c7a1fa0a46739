"""BlurPool2d: anti-aliased downsampling (Zhang 2019, "Making Convolutional Networks
Shift-Invariant Again").

Replace a strided layer by its stride-1 version followed by BlurPool2d
(MaxPool2d(2, 2) -> Sequential(MaxPool2d(2, stride=1), BlurPool2d(C)), the
paper's MaxBlurPool) to make a network's output change far less when its input
shifts by one pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional import blur as F
from .module import Module

__all__ = ['BlurPool2d']

_PAD_ALIASES = {"reflect": "reflect", "refl": "reflect", "replicate": "replicate",
                "repl": "replicate", "zero": "zero", "zeros": "zero"}


class BlurPool2d(Module):
    """Low-pass filter each channel with a binomial filter, then subsample by ``stride``.

    The filter is the outer product of the binomial coefficients ([1, 2, 1] for
    filt_size 3, [1, 4, 6, 4, 1] for 5), normalised to sum 1, stored as the fixed
    (untrained) buffer ``filt`` (channels, 1, k, k), the name and shape of the
    reference implementation's ``Downsample``, so its state dicts load.  The
    input is padded by (k-1)//2 before and ceil((k-1)/2) after on each axis.

    Args:
        channels: number of input channels C.
        filt_size: filter size k, 1 to 7 (1: plain subsampling).
        stride: subsampling factor (2 halves the resolution).
        pad_type: 'reflect' (default, as the reference; needs H, W > the
            padding), 'replicate' or 'zero' ('refl', 'repl', 'zeros' accepted).
        dtype: buffer dtype (float32 by default); inputs are cast to it.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out), H_out = floor((H - 1) / stride) + 1.
    """

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2,
                 pad_type: str = "reflect", dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, val, top in (("channels", channels, None), ("filt_size", filt_size, 7),
                              ("stride", stride, None)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1 \
                    or (top is not None and val > top):
                want = f"an int in [1, {top}]" if top else "a positive int"
                raise ConfigError(f"{name}: {arg} must be {want}; received {val!r}")
        if pad_type not in _PAD_ALIASES:
            raise ConfigError(f"{name}: pad_type must be one of {sorted(_PAD_ALIASES)}; "
                              f"received {pad_type!r}")
        self.channels, self.filt_size, self.stride = int(channels), int(filt_size), int(stride)
        self.pad_type = _PAD_ALIASES[pad_type]
        self.register_buffer("filt", F.blur_filter2d(self.filt_size, self.channels,
                                                     np.dtype(dtype or np.float32)))

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x, self.filt.dtype)
        self._check_ndim(x, ("N", self.channels, "H", "W"))
        pad = self.filt_size // 2
        need = pad + 1 if self.pad_type == "reflect" else 1
        if min(x.shape[2:]) < need:
            raise ShapeError(
                f"{self.where()} expects input (N, {self.channels}, H, W) with H, W >= {need} "
                f"(padding '{self.pad_type}' of {pad}); received {tuple(x.shape)}"
            )
        y, cache = F.blur_pool2d_forward(x, self.filt, stride=self.stride, pad_mode=self.pad_type)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.blur_pool2d_backward(dy, self._take())

    def extra_repr(self) -> str:
        return (f"{self.channels}, filt_size={self.filt_size}, stride={self.stride}, "
                f"pad_type='{self.pad_type}'")
