"""The confusion matrix of an evaluation as a heat map with class names (the text form is in text.py)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ._figure import new_figure, save_png

__all__ = ["row_normalize", "plot_confusion"]


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum: the share of each true class given each prediction (0 for empty rows).

    Shape:
        (C, C) -> (C, C) float.
    """
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def plot_confusion(cm: Any, out: str | os.PathLike, *, classes: Sequence[str] | None = None,
                   title: str | None = None, size: tuple[int, int] = (760, 680)) -> str:
    """Draw a confusion matrix as a heat map: rows true classes, columns predictions.

    Colours are each row's shares (recall on the diagonal); cells show the counts.

    Args:
        cm: (C, C) counts, rows = true class.
        out: the PNG to write.
        classes: the class names (default 0..C-1).
        title: text above the matrix (default: the overall accuracy).
        size: (width, height) in pixels.

    Returns:
        The path written.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ConfigError(f"plot_confusion: expects a square (C, C) matrix; received shape {cm.shape}")
    c = cm.shape[0]
    names = [str(n) for n in classes] if classes is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ConfigError(f"plot_confusion: {len(names)} class names for a {c}x{c} matrix")
    share = row_normalize(cm)
    fig = new_figure(size)
    ax = fig.add_axes((0.2, 0.17, 0.64, 0.75))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fontsize = 8 if c <= 12 else 6
    if c <= 30:
        rows, cols = np.indices(cm.shape)
        for r, k, v, s in zip(rows.ravel(), cols.ravel(), cm.ravel(), share.ravel()):
            ax.text(k, r, f"{int(v)}", ha="center", va="center", fontsize=fontsize,
                    color="white" if s > 0.5 else "black")
    ax.set_xticks(range(c), names, rotation=45, ha="right", fontsize=fontsize)
    ax.set_yticks(range(c), names, fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, cax=fig.add_axes((0.87, 0.17, 0.025, 0.75)), label="share of the true class")
    total = cm.sum()
    acc = np.trace(cm) / total if total else float("nan")
    ax.set_title(title or f"{int(total)} images, accuracy {acc:.4f}", fontsize=10)
    return save_png(fig, out)
