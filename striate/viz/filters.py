"""Convolution kernels as pictures: the first layer's filters, deeper layers channel by channel.

Each filter is scaled to [0, 1] on its own (its minimum black, its maximum
white), so weak and strong filters are equally visible.  A first layer that
reads 3 channels is shown in colour (one RGB tile per filter); any other layer
is shown grey, one row per filter and one column per input channel.
"""

from __future__ import annotations

import os
import numpy as np

from ..errors import ConfigError
from ..nn.module import Module
from ._figure import grid_columns, minmax, new_figure, save_png, show, tile
from ._layers import get_layer

__all__ = ["normalize_per_filter", "filter_tiles", "first_conv", "plot_filters"]


def normalize_per_filter(weight: np.ndarray) -> np.ndarray:
    """Scale each output filter of a conv weight to [0, 1] over all its input channels and taps.

    Shape:
        (O, I, KH, KW) -> (O, I, KH, KW); a constant filter becomes 0.5 everywhere.
    """
    w = np.asarray(weight)
    if w.ndim != 4:
        raise ConfigError(f"normalize_per_filter: expects a conv weight (O, I, KH, KW); "
                          f"received shape {w.shape}")
    return minmax(w, axes=(1, 2, 3))


def filter_tiles(weight: np.ndarray, max_filters: int = 64) -> tuple[np.ndarray, int, str]:
    """The mosaic of a conv weight, normalised per filter.

    Args:
        weight: (O, I, KH, KW).
        max_filters: draw the first this many filters.

    Shape:
        I = 3: (R*(KH+1)-1, cols*(KW+1)-1, 3), one RGB tile per filter in a near-square grid;
        I = 1: the same in grey, without the last axis;
        otherwise: (O*(KH+1)-1, I*(KW+1)-1), row o = filter o, column i = input channel i.

    Returns:
        (mosaic in [0, 1], filters drawn, 'rgb' | 'grey' | 'channels').
    """
    w = normalize_per_filter(weight)[:max_filters]
    o, i = w.shape[:2]
    if i == 3:
        return tile(w.transpose(0, 2, 3, 1), grid_columns(o)), o, "rgb"        # (O, KH, KW, 3)
    if i == 1:
        return tile(w[:, 0], grid_columns(o)), o, "grey"                       # (O, KH, KW)
    kh, kw = w.shape[2:]
    return tile(w.reshape(o * i, kh, kw), i), o, "channels"                    # (O*I, KH, KW)


def first_conv(model: Module) -> tuple[str, Module]:
    """(path, module) of the first module in model order with a 4-D 'weight' (a 2-D convolution)."""
    for name, mod in model.named_modules():
        p = mod._parameters.get("weight")
        if p is not None and p.data.ndim == 4:
            return name, mod
    raise ConfigError(f"{type(model).__name__} has no 2-D convolution (no 4-D weight) to draw")


def plot_filters(model: Module, out: str | os.PathLike, *, layer: str | None = None,
                 max_filters: int = 64, size: tuple[int, int] | None = None) -> str:
    """Draw a convolution's kernels, normalised per filter, to a PNG.

    Args:
        model: the network.
        out: the PNG to write.
        layer: the conv's path (default: the first convolution).
        max_filters: draw at most this many filters.
        size: (width, height) in pixels (default: 640 wide, height to fit the grid).

    Returns:
        The path written.
    """
    if layer is None:
        layer, mod = first_conv(model)
    else:
        mod = get_layer(model, layer)
    p = mod._parameters.get("weight")
    if p is None or p.data.ndim != 4:
        raise ConfigError(f"{mod.where()} has no 4-D convolution weight to draw")
    mosaic, n, kind = filter_tiles(p.data, max_filters)
    if size is None:
        size = (640, int(np.clip(620 * mosaic.shape[0] / mosaic.shape[1], 60, 2400)) + 60)
    width, height = size
    fig = new_figure(size)
    ax = fig.add_axes((10 / width, 10 / height, 1 - 20 / width, 1 - 70 / height))
    show(ax, mosaic)
    o, i, kh, kw = p.data.shape
    what = {"rgb": "RGB", "grey": "grey",
            "channels": "grey; rows: filters, columns: input channels"}[kind]
    fig.suptitle(f"{layer} ({type(mod).__name__}): {n} of {o} filters, {kh}x{kw}, {i} input "
                 f"channel{'s' if i != 1 else ''}\n{what}; each filter scaled to [0, 1]", fontsize=9)
    return save_png(fig, out)
