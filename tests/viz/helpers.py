"""Shared checks of the viz tests: a PNG that decodes, has a size and is not blank; small models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from striate import nn


def assert_png(path, size=None) -> np.ndarray:
    """The PNG at ``path`` exists, decodes, is ``size`` = (width, height) and is not blank; its pixels."""
    Image = pytest.importorskip("PIL.Image")
    p = Path(path)
    assert p.is_file(), f"{p} was not written"
    with Image.open(p) as im:
        assert im.format == "PNG"
        if size is not None:
            assert im.size == tuple(size)
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert pixels.var() > 0, f"{p} is blank"
    return pixels


def tiny_cnn(channels: int = 1, classes: int = 3, side: int = 8, dtype=None, seed: int = 0) -> nn.Sequential:
    """Conv-BN-ReLU-MaxPool-Conv-ReLU-Flatten-Linear on (N, channels, side, side)."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1, dtype=dtype, rng=rng),
        nn.BatchNorm2d(4, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, padding=1, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * (side // 2) ** 2, classes, dtype=dtype, rng=rng),
    )


def with_running_stats(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics (so eval mode differs from train mode)."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            dt = m.running_mean.dtype
            m.set_buffer("running_mean", rng.normal(0, 0.3, m.running_mean.shape).astype(dt))
            m.set_buffer("running_var", rng.uniform(0.5, 2.0, m.running_var.shape).astype(dt))
    return model
