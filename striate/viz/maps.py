"""Feature maps: what one layer outputs for one input image, channel by channel."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..nn.module import Module, no_grad
from ._figure import display_image, grid_columns, minmax, new_figure, save_png, show, tile
from ._layers import as_batch, capture, get_layer

__all__ = ["feature_maps", "plot_feature_maps"]


def feature_maps(model: Module, x: Any, layer: str) -> np.ndarray:
    """The output of the layer at path ``layer`` when ``model`` (in eval mode) reads one image.

    Args:
        model: the network; its modes are restored afterwards.
        x: the normalised input, (C, H, W) or (1, C, H, W) floating.
        layer: a path such as 'features.3' (see ``model.named_modules()``).

    Shape:
        Output: (C', h, w), the layer's output for the image.

    Returns:
        The activations, as a float array.
    """
    x = as_batch(model, x)
    module = get_layer(model, layer)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad(), capture(module) as rec:
            model(x)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    a = np.asarray(rec.only("output"))
    if a.ndim != 4:
        raise ShapeError(f"{module.where()}: feature maps need a layer with (N, C, H, W) output; "
                         f"it outputs {tuple(a.shape)}")
    return a[0]


def plot_feature_maps(model: Module, x: Any, layer: str, out: str | os.PathLike, *,
                      image: Any = None, max_maps: int = 64,
                      size: tuple[int, int] = (1000, 560)) -> str:
    """Draw the input beside a grid of one layer's activation maps, each scaled to [0, 1].

    Args:
        model, x, layer: as for :func:`feature_maps`.
        out: the PNG to write.
        image: (C, H, W) pixels to show as the input (default: ``x`` rescaled).
        max_maps: draw the first this many channels.
        size: (width, height) in pixels.

    Returns:
        The path written.
    """
    maps = feature_maps(model, x, layer)
    c, h, w = maps.shape
    n = min(c, max_maps)
    mosaic = tile(minmax(maps[:n], axes=(1, 2)), grid_columns(n), fill=np.nan)  # per-map [0, 1]
    shown = display_image(as_batch(model, x)[0] if image is None else image)
    fig = new_figure(size)
    grid = fig.add_gridspec(1, 2, width_ratios=(1, 2.2), left=0.02, right=0.98,
                            bottom=0.03, top=0.88, wspace=0.05)
    show(fig.add_subplot(grid[0]), shown, "input")
    show(fig.add_subplot(grid[1]), mosaic, f"{n} of {c} maps, {h}x{w} (each scaled to [0, 1])",
         cmap="viridis")
    module = get_layer(model, layer)
    fig.suptitle(f"feature maps of {module.where()}", fontsize=10)
    return save_png(fig, out)
