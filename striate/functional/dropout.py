"""Dropout kernels: inverted dropout of single values or of whole channels.

The random mask is drawn from an explicit ``numpy.random.Generator``; kept
values are scaled by 1 / (1 - p) in training, so evaluation is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DropoutCache:
    """The keep mask (broadcastable to the input) and the scale 1 / (1 - p)."""

    keep: np.ndarray | None        # bool; None when nothing was dropped (identity)
    scale: float


def _apply(x: np.ndarray, mask_shape: tuple[int, ...], p: float,
           rng: np.random.Generator) -> tuple[np.ndarray, DropoutCache]:
    """Zero with probability p the entries of a ``mask_shape`` mask broadcast over x."""
    if p == 0:
        return x, DropoutCache(None, 1.0)
    keep = rng.random(mask_shape) >= p                               # P(keep) = 1 - p
    scale = 1.0 / (1.0 - p)
    return x * (keep * x.dtype.type(scale)), DropoutCache(keep, scale)


def dropout_forward(x: np.ndarray, *, p: float = 0.5, rng: np.random.Generator
                    ) -> tuple[np.ndarray, DropoutCache]:
    """Training-mode dropout: each value is zeroed with probability p, the rest scaled.

    Args:
        x: input of any shape.
        p: drop probability in [0, 1).
        rng: the generator that draws the mask.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache): y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) per value.
    """
    return _apply(x, x.shape, p, rng)


def channel_dropout_forward(x: np.ndarray, *, p: float = 0.5, rng: np.random.Generator
                            ) -> tuple[np.ndarray, DropoutCache]:
    """Training-mode channel dropout (Dropout1d/2d): whole (n, c) maps are zeroed.

    Args:
        x: input (N, C, *).
        p: drop probability in [0, 1).
        rng: the generator that draws the mask.

    Shape:
        (N, C, *) -> the same shape; the mask is (N, C, 1, ...).

    Returns:
        (y, cache): y = x * keep[n, c] / (1 - p).
    """
    mask_shape = x.shape[:2] + (1,) * (x.ndim - 2)                   # (N, C, 1, ...)
    return _apply(x, mask_shape, p, rng)


def dropout_backward(dy: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """dx = dy * keep / (1 - p): the same mask and scale as forward."""
    if cache.keep is None:
        return dy
    return dy * (cache.keep * dy.dtype.type(cache.scale))


channel_dropout_backward = dropout_backward
