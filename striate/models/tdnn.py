"""tdnn: a time-delay neural network (x-vector style) for sequence classification."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .._random import get_rng
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv1d
from ..nn.linear import Flatten, Linear
from ..nn.normalization import BatchNorm1d
from ..nn.pooling import AdaptiveAvgPool1d
from ._common import check_int
from .registry import register

__all__ = ["tdnn"]

# (kernel size, dilation) of the five frame-level layers: contexts [t-2, t+2],
# {t-2, t, t+2}, {t-3, t, t+3}, {t}, {t} -- 15 frames in all (Snyder et al. 2018).
_CONTEXT = ((5, 1), (3, 2), (3, 3), (1, 1), (1, 1))


@register("tdnn")
def tdnn(num_classes: int = 10, in_channels: int = 40, *, channels: int = 512,
         pool_channels: int = 1500, embedding_dim: int = 512, dtype: Any = None,
         rng: Any = None) -> Sequential:
    """Frame-level dilated Conv1d layers, pooling over time, segment-level Linear layers.

    The x-vector architecture (Snyder et al. 2018; TDNN layers after Waibel 1989 and
    Peddinti 2015), with mean pooling over time:
    tdnn1..tdnn5, each Sequential(conv Conv1d, relu ReLU, bn BatchNorm1d) (Kaldi's
    ReLU-then-BatchNorm order): tdnn1 Conv1d(in, channels, 5), tdnn2
    Conv1d(channels, channels, 3, dilation 2), tdnn3 Conv1d(channels, channels, 3,
    dilation 3), tdnn4 Conv1d(channels, channels, 1), tdnn5 Conv1d(channels,
    pool_channels, 1); pool AdaptiveAvgPool1d(1), flatten; segment6
    Sequential(linear Linear(pool_channels, embedding_dim), relu, bn), segment7
    Sequential(linear Linear(embedding_dim, embedding_dim), relu, bn);
    output Linear(embedding_dim, num_classes).  The paper's statistics pooling
    (mean and standard deviation) is replaced by the mean alone: striate.nn has
    no statistics-pooling layer.  segment6's output (before ReLU) is the embedding.

    Args:
        num_classes: outputs (logits), e.g. speakers or languages.
        in_channels: feature dimension per frame (e.g. 40 filterbanks or MFCCs).
        channels: width of tdnn1..tdnn4.
        pool_channels: width of tdnn5, the pooled layer.
        embedding_dim: width of segment6 and segment7.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights (torch's default init).

    Shape:
        (N, in_channels, L) -> (N, num_classes) for any L >= 15 (the frame-level
        context); the frame-level output has L - 14 frames before pooling.

    Returns:
        The Sequential model; 3,754,398 parameters at the defaults.
    """
    name = "tdnn"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    channels = check_int(name, "channels", channels)
    pool_channels = check_int(name, "pool_channels", pool_channels)
    embedding_dim = check_int(name, "embedding_dim", embedding_dim)
    dt = np.dtype(dtype or np.float32)
    g = get_rng(rng)
    widths = (in_channels, channels, channels, channels, channels, pool_channels)
    parts: list[tuple[str, Any]] = []
    for i, (kernel, dilation) in enumerate(_CONTEXT):
        parts.append((f"tdnn{i + 1}", Sequential(OrderedDict([
            ("conv", Conv1d(widths[i], widths[i + 1], kernel, dilation=dilation, dtype=dt, rng=g)),
            ("relu", ReLU()),
            ("bn", BatchNorm1d(widths[i + 1], dtype=dt)),
        ]))))
    parts += [("pool", AdaptiveAvgPool1d(1)), ("flatten", Flatten())]   # (N, pool_channels)
    for name_, fan_in in (("segment6", pool_channels), ("segment7", embedding_dim)):
        parts.append((name_, Sequential(OrderedDict([
            ("linear", Linear(fan_in, embedding_dim, dtype=dt, rng=g)),
            ("relu", ReLU()),
            ("bn", BatchNorm1d(embedding_dim, dtype=dt)),
        ]))))
    parts.append(("output", Linear(embedding_dim, num_classes, dtype=dt, rng=g)))
    return Sequential(OrderedDict(parts))
