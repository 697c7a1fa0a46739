"""1-D convolution (a TDNN layer: convolution over time) as conv2d over a height of 1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv import Conv2dCache, conv2d_backward, conv2d_forward
from .conv_dft import DftConvCache
from .conv_jit import JitConvCache


@dataclass(frozen=True)
class Conv1dCache:
    """conv1d is conv2d over a height of 1; this wraps that cache."""

    inner: Conv2dCache | DftConvCache | JitConvCache


def conv1d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                   stride: int = 1, padding: tuple[int, int] = (0, 0),
                   dilation: int = 1, groups: int = 1) -> tuple[np.ndarray, Conv1dCache]:
    """1-D cross-correlation (a TDNN layer: convolution over time).

    Args:
        x: input (N, C, L).
        w: weight (O, C/groups, K).
        b: bias (O,) or None.
        padding: (before, after) zero padding.

    Shape:
        (N, C, L) -> (N, O, L_out), L_out = floor((L + before + after - d*(K-1) - 1) / s) + 1.

    Returns:
        (y, cache) for :func:`conv1d_backward`.
    """
    y, cache = conv2d_forward(
        x[:, :, None, :], w[:, :, None, :], b,                   # (N, C, 1, L), (O, Cg, 1, K)
        stride=(1, stride), padding=((0, 0), padding), dilation=(1, dilation), groups=groups,
    )
    return y[:, :, 0, :], Conv1dCache(cache)                     # (N, O, L_out)


def conv1d_backward(dy: np.ndarray, cache: Conv1dCache, *, need_dx: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of conv1d_forward: (dx (N, C, L) or None, dw (O, C/G, K), db (O,) or None)."""
    dx, dw, db = conv2d_backward(dy[:, :, None, :], cache.inner, need_dx=need_dx)  # (N, O, 1, L_out)
    return (None if dx is None else dx[:, :, 0, :]), dw[:, :, 0, :], db
