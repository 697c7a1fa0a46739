"""Drawing helpers: matplotlib imported lazily (Agg, no pyplot), PNG writing, image mosaics.

Every picture is a ``matplotlib.figure.Figure`` with its own Agg canvas, so no
global pyplot state is touched and no display is needed.  Sizes are given in
pixels; the PNG written has exactly that size.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError

DPI = 100


def require_matplotlib() -> tuple[Any, Any]:
    """Import matplotlib's Figure and Agg canvas, or raise MissingDependencyError."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingDependencyError(
            "striate.viz draws with matplotlib, and it is not installed: "
            "pip install matplotlib  (or pip install 'striate[viz]')"
        ) from e
    return Figure, FigureCanvasAgg


def new_figure(size: tuple[int, int]) -> Any:
    """A Figure of ``size`` = (width, height) pixels with an Agg canvas attached."""
    width, height = check_size(size)
    Figure, FigureCanvasAgg = require_matplotlib()
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def check_size(size: Any) -> tuple[int, int]:
    """Validate a (width, height) pixel size."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (width, height) in pixels; received {size!r}") from None
    if not (16 <= width <= 10000 and 16 <= height <= 10000):
        raise ConfigError(f"size must be between 16 and 10000 pixels a side; received {size!r}")
    return width, height


def check_png_path(path: str | os.PathLike) -> str:
    """The output path as text; it must end in .png."""
    name = os.fspath(path)
    if not name.lower().endswith(".png"):
        raise ConfigError(f"the output file must end in .png; received '{name}'")
    return name


def save_png(fig: Any, path: str | os.PathLike) -> str:
    """Write ``fig`` as a PNG, atomically (a viewer never sees half a file); returns the path."""
    name = check_png_path(path)
    folder = os.path.dirname(os.path.abspath(name))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".viz-", suffix=".png", dir=folder)
    except OSError as e:
        raise ConfigError(f"cannot write {name}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI)
        os.chmod(tmp, 0o644)
        os.replace(tmp, name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return name


def tile(images: np.ndarray, cols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Arrange equally sized images in a grid, row by row, separated by ``pad`` pixels.

    Args:
        images: (N, h, w) or (N, h, w, 3).
        cols: images per row.
        pad: pixels between neighbours.
        fill: the value of the gaps and of the empty cells after the last image.

    Shape:
        Output: (R*(h+pad)-pad, cols*(w+pad)-pad[, 3]) with R = ceil(N / cols).

    Returns:
        The mosaic, a float array.
    """
    n, h, w = images.shape[:3]
    extra = images.shape[3:]
    cols = max(1, min(int(cols), n))
    rows = -(-n // cols)
    canvas = np.full((rows * cols, h + pad, w + pad) + extra, fill, dtype=np.float64)
    canvas[:n, :h, :w] = images
    canvas = canvas.reshape((rows, cols, h + pad, w + pad) + extra)      # (R, cols, h+p, w+p, ...)
    order = (0, 2, 1, 3) + tuple(range(4, 4 + len(extra)))
    canvas = canvas.transpose(order).reshape((rows * (h + pad), cols * (w + pad)) + extra)
    return canvas[: canvas.shape[0] - pad, : canvas.shape[1] - pad]


def grid_columns(n: int) -> int:
    """Columns of a near-square grid of ``n`` cells."""
    return max(1, int(np.ceil(np.sqrt(n))))


def minmax(a: np.ndarray, axes: tuple[int, ...] | None = None) -> np.ndarray:
    """Scale ``a`` to [0, 1] over ``axes`` (all by default); a constant block becomes 0.5."""
    a = np.asarray(a, dtype=np.float64)
    lo = a.min(axis=axes, keepdims=True)
    hi = a.max(axis=axes, keepdims=True)
    span = hi - lo
    flat = span <= 0
    out = (a - lo) / np.where(flat, 1.0, span)
    return np.where(flat, 0.5, out)


def display_image(pixels: np.ndarray) -> np.ndarray:
    """A (C, H, W) image (uint8, or float of any range) as (H, W) grey or (H, W, 3) RGB in [0, 1]."""
    p = np.asarray(pixels)
    if p.ndim != 3 or p.shape[0] not in (1, 3):
        raise ConfigError(f"an image to show must be (C, H, W) with C = 1 or 3; received {p.shape}")
    p = p / 255.0 if p.dtype == np.uint8 else minmax(p)
    return p[0] if p.shape[0] == 1 else p.transpose(1, 2, 0)             # (H, W) or (H, W, 3)


def show(ax: Any, image: np.ndarray, title: str | None = None, **kw: Any) -> Any:
    """imshow without ticks; a 2-D image is grey unless ``cmap`` is given."""
    if image.ndim == 2:
        kw.setdefault("cmap", "gray")
        kw.setdefault("vmin", 0.0)
        kw.setdefault("vmax", 1.0)
    handle = ax.imshow(image, interpolation=kw.pop("interpolation", "nearest"), **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return handle
