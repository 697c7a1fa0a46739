"""Batch transforms for the DataLoader: vectorised over the whole batch (N, C, H, W).

Each transform is a callable ``t(x) -> x`` that returns a new array (the input is
never modified).  Random transforms draw from an explicit ``numpy.random.Generator``
kept as ``self.rng`` (the DataLoader saves and restores its state), with a fixed
number of draws per batch so a run is reproducible.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._random import get_rng
from ..errors import ConfigError, DTypeError, ShapeError
from ..functional._utils import pair

__all__ = ["Compose", "ToFloat", "Normalize", "RandomCrop", "RandomHorizontalFlip"]


def _check_batch(name: str, x: np.ndarray, channels: Any = "C") -> np.ndarray:
    """Require a numeric (N, C, H, W) batch; ShapeError / DTypeError naming the transform."""
    x = np.asarray(x)
    if x.ndim != 4 or (channels != "C" and x.shape[1] != channels):
        raise ShapeError(f"{name} expects input (N, {channels}, H, W); received {tuple(x.shape)}")
    if x.dtype.kind not in "uif":
        raise DTypeError(f"{name} expects numeric images; received {x.dtype}")
    return x


class Compose:
    """Apply transforms one after the other.

    Args:
        transforms: a sequence of callables ``t(x) -> x``.

    Shape:
        Whatever the transforms do, in order.

    Returns:
        The composed callable.
    """

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        transforms = list(transforms)
        for k, t in enumerate(transforms):
            if not callable(t):
                raise ConfigError(f"Compose: transform {k} is not callable; received {t!r}")
        self.transforms = transforms

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class ToFloat:
    """Convert to floating point and multiply by ``scale`` (uint8 0..255 -> 0..1 by default).

    Args:
        scale: the factor, default 1/255.
        dtype: float32 (default) or float64.

    Shape:
        Input (N, C, H, W) (any rank is accepted); output the same shape.

    Returns:
        ``x.astype(dtype) * dtype(scale)``.
    """

    def __init__(self, scale: float = 1 / 255, dtype: Any = None) -> None:
        if not isinstance(scale, (int, float, np.floating, np.integer)) or not np.isfinite(scale):
            raise ConfigError(f"ToFloat: scale must be a finite number; received {scale!r}")
        self.dtype = np.dtype(dtype or np.float32)
        if self.dtype not in (np.float32, np.float64):
            raise ConfigError(f"ToFloat: dtype must be float32 or float64; received {self.dtype}")
        self.scale = float(scale)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "uif":
            raise DTypeError(f"ToFloat expects numeric images; received {x.dtype}")
        out = x.astype(self.dtype)
        out *= self.dtype.type(self.scale)
        return out

    def __repr__(self) -> str:
        return f"ToFloat(scale={self.scale!r}, dtype={self.dtype.name})"


class Normalize:
    """Per-channel ``(x - mean[c]) / std[c]`` on a floating batch.

    Args:
        mean: one value per channel (or one value for all).
        std: one positive value per channel (or one value for all).

    Shape:
        Input (N, C, H, W) floating, C = len(mean); output the same shape and dtype.

    Returns:
        The normalised batch.
    """

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ConfigError(f"Normalize: mean and std must be numbers or sequences; received "
                              f"{mean!r}, {std!r}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise ConfigError(f"Normalize: mean ({len(self.mean)} values) and std "
                              f"({len(self.std)} values) must have the same length")
        if not np.all(self.std > 0) or not np.all(np.isfinite(self.mean)):
            raise ConfigError(f"Normalize: std must be positive and mean finite; received "
                              f"mean={mean!r}, std={std!r}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        channels = max(len(self.mean), len(self.std))
        x = _check_batch("Normalize", x, channels if channels > 1 else "C")
        if x.dtype.kind != "f":
            raise DTypeError(f"Normalize expects floating input (apply ToFloat first); received {x.dtype}")
        mean = self.mean.astype(x.dtype).reshape(1, -1, 1, 1)  # (1, C, 1, 1)
        std = self.std.astype(x.dtype).reshape(1, -1, 1, 1)  # (1, C, 1, 1)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _crop_padding(padding: Any) -> tuple[int, int, int, int]:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        pads = (int(padding),) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        pads = (padding[0], padding[1], padding[0], padding[1])
    elif isinstance(padding, (tuple, list)) and len(padding) == 4:
        pads = tuple(padding)
    else:
        raise ConfigError(f"RandomCrop: padding must be an int or a sequence of 2 or 4 ints; "
                          f"received {padding!r}")
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in pads):
        raise ConfigError(f"RandomCrop: padding must be non-negative ints; received {padding!r}")
    return tuple(int(p) for p in pads)


class RandomCrop:
    """Zero-pad, then crop a ``size`` window at an independent random offset per image.

    Args:
        size: (h, w) of the crop, or one int for a square.
        padding: int (all sides), (left/right, top/bottom) or (left, top, right, bottom).
        rng: numpy Generator, seed or None (package default); per batch it draws the N row
            offsets, then the N column offsets, with ``rng.integers``.

    Shape:
        Input (N, C, H, W); output (N, C, h, w), requires h <= H + top + bottom and
        w <= W + left + right.

    Returns:
        The cropped batch (same dtype).
    """

    def __init__(self, size: Any, padding: Any = 0, rng: Any = None) -> None:
        self.size = pair(size, "RandomCrop size")
        self.padding = _crop_padding(padding)
        self.rng = get_rng(rng)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _check_batch("RandomCrop", x)
        left, top, right, bottom = self.padding
        h, w = self.size
        n, _, height, width = x.shape
        if h > height + top + bottom or w > width + left + right:
            raise ShapeError(f"RandomCrop: crop {self.size} is larger than the padded input; "
                             f"received {tuple(x.shape)} with padding {self.padding}")
        padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # (N, C, Hp, Wp)
        rows = self.rng.integers(0, padded.shape[2] - h + 1, size=n)
        cols = self.rng.integers(0, padded.shape[3] - w + 1, size=n)
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (N, C, Hp-h+1, Wp-w+1, h, w)
        return windows[np.arange(n), :, rows, cols]  # (N, C, h, w)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``, independently.

    Args:
        p: flip probability in [0, 1].
        rng: numpy Generator, seed or None; per batch it draws ``rng.random(N)`` and flips
            the images where the draw is < p.

    Shape:
        Input (N, C, H, W); output the same.

    Returns:
        The batch with the chosen images flipped (a new array).
    """

    def __init__(self, p: float = 0.5, rng: Any = None) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
            raise ConfigError(f"RandomHorizontalFlip: p must be in [0, 1]; received {p!r}")
        self.p = float(p)
        self.rng = get_rng(rng)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _check_batch("RandomHorizontalFlip", x)
        flip = self.rng.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"
