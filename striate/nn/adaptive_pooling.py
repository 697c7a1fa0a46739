"""Adaptive and global pooling layers: a fixed output size whatever the input size.

AdaptiveAvgPool1d/2d and AdaptiveMaxPool1d/2d follow torch.nn (output_size an
int or a tuple whose None entries keep the input size); GlobalAvgPool2d and
GlobalMaxPool2d are drop-ins for the adaptive layers with output 1 (ONNX
GlobalAveragePool / GlobalMaxPool) on a faster path.  Re-exported by
:mod:`striate.nn.pooling`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional import adaptive_pool as F
from .module import Module

__all__ = ['AdaptiveAvgPool1d', 'AdaptiveAvgPool2d', 'AdaptiveMaxPool1d', 'AdaptiveMaxPool2d',
           'GlobalAvgPool2d', 'GlobalMaxPool2d']


def _output_size(value: Any, nd: int, name: str) -> tuple[int | None, ...]:
    """An int or an nd-tuple of ints >= 1 or None, as an nd-tuple."""
    items = (value,) * nd if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    ok = len(items) == nd and all(
        v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1)
        for v in items
    )
    if isinstance(value, bool) or not ok:
        raise ConfigError(
            f"{name}: output_size must be an int >= 1 or a tuple of {nd} such ints "
            f"(None keeps the input size); received {value!r}"
        )
    return tuple(None if v is None else int(v) for v in items)


def _check_input(module: Module, x: Any, nd: int) -> np.ndarray:
    """A floating (N, C, H, W) (or (N, C, L)) array with non-empty spatial axes."""
    x = module._float_input(x)
    module._check_ndim(x, ("N", "C", "H", "W") if nd == 2 else ("N", "C", "L"))
    if 0 in x.shape[2:]:
        raise ShapeError(
            f"{module.where()} expects a non-empty input plane; received {tuple(x.shape)}"
        )
    return x


class _AdaptivePoolNd(Module):
    """Shared checks: output_size, input dtype and rank, None entries."""

    _nd = 2

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = _output_size(output_size, self._nd, type(self).__name__)

    def _input(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        x = _check_input(self, x, self._nd)
        out = tuple(s if o is None else o for o, s in zip(self.output_size, x.shape[2:]))
        return x, out

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """2-D adaptive average pooling over (N, C, H, W).

    Args:
        output_size: int or (OH, OW); a None entry keeps that input size.

    Shape:
        (N, C, H, W) -> (N, C, OH, OW); cell (i, j) averages rows
        [floor(i*H/OH), ceil((i+1)*H/OH)) and likewise columns.
    """

    _nd = 2

    def forward(self, x: Any) -> np.ndarray:
        x, out = self._input(x)
        if self._nd == 2:
            y, cache = F.adaptive_avg_pool2d_forward(x, out)
        else:
            y, cache = F.adaptive_avg_pool1d_forward(x, out[0])
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self._take()
        if self._nd == 2:
            return F.adaptive_avg_pool2d_backward(dy, cache)
        return F.adaptive_avg_pool1d_backward(dy, cache)


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """1-D adaptive average pooling over (N, C, L).

    Args:
        output_size: int O.

    Shape:
        (N, C, L) -> (N, C, O); cell i averages [floor(i*L/O), ceil((i+1)*L/O)).
    """

    _nd = 1


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """2-D adaptive max pooling over (N, C, H, W); ties keep the first maximum.

    Args:
        output_size: int or (OH, OW); a None entry keeps that input size.
        return_indices: also return the flat index h*W + w of each maximum.

    Shape:
        (N, C, H, W) -> (N, C, OH, OW), windows as :class:`AdaptiveAvgPool2d`.

    Returns:
        y, or (y, indices int64) when return_indices.
    """

    _nd = 2

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, x: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        x, out = self._input(x)
        if self._nd == 2:
            y, cache = F.adaptive_max_pool2d_forward(x, out)
        else:
            y, cache = F.adaptive_max_pool1d_forward(x, out[0])
        self._keep(cache)
        if self.return_indices:
            idx = cache.indices                                  # (N, C, OH, OW)
            return y, (idx if self._nd == 2 else idx[:, :, 0, :])  # (N, C, O)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self._take()
        if self._nd == 2:
            return F.adaptive_max_pool2d_backward(dy, cache)
        return F.adaptive_max_pool1d_backward(dy, cache)


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """1-D adaptive max pooling over (N, C, L).

    Args:
        output_size: int O.
        return_indices: also return the index of each maximum.

    Shape:
        (N, C, L) -> (N, C, O), windows as :class:`AdaptiveAvgPool1d`.
    """

    _nd = 1


class GlobalAvgPool2d(Module):
    """Mean over each whole (H, W) plane: AdaptiveAvgPool2d(1) on a fast path.

    Shape:
        (N, C, H, W) -> (N, C, 1, 1).
    """

    def forward(self, x: Any) -> np.ndarray:
        x = _check_input(self, x, 2)
        y, cache = F.global_avg_pool2d_forward(x)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.global_avg_pool2d_backward(dy, self._take())


class GlobalMaxPool2d(Module):
    """Maximum over each whole (H, W) plane: AdaptiveMaxPool2d(1) on a fast path.

    Ties keep the first maximum in row-major order, as AdaptiveMaxPool2d.

    Shape:
        (N, C, H, W) -> (N, C, 1, 1).
    """

    def forward(self, x: Any) -> np.ndarray:
        x = _check_input(self, x, 2)
        y, cache = F.global_max_pool2d_forward(x)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.global_max_pool2d_backward(dy, self._take())
