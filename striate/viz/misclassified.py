"""The images a model got most confidently wrong, with their true and predicted labels."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..errors import ConfigError, ShapeError
from ..nn.module import Module, no_grad
from ._figure import display_image, new_figure, save_png, show
from ._layers import softmax

__all__ = ["predict_probs", "most_confident_mistakes", "plot_misclassified"]


def predict_probs(model: Module, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Class probabilities of normalised inputs, in eval mode, a batch at a time.

    Shape:
        (N, C, H, W) -> (N, K).
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    out = []
    try:
        with no_grad():
            for start in range(0, len(x), batch_size):
                out.append(softmax(np.asarray(model(x[start:start + batch_size]), dtype=np.float64)))
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    return np.concatenate(out) if out else np.empty((0, 0))


def most_confident_mistakes(probs: np.ndarray, labels: np.ndarray, k: int = 16) -> np.ndarray:
    """Indices of the wrongly predicted samples, most confident (highest predicted probability) first.

    Args:
        probs: (N, K) class probabilities.
        labels: (N,) true classes.
        k: how many to return at most.

    Shape:
        Output: (min(k, number of mistakes),) int64; ties keep the data set's order.

    Returns:
        The indices.
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ShapeError(f"most_confident_mistakes expects probs (N, K) and labels (N,); received "
                         f"{probs.shape} and {labels.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"most_confident_mistakes: k must be a positive integer; received {k!r}")
    pred = probs.argmax(axis=1)
    confidence = probs[np.arange(len(pred)), pred]                         # (N,)
    wrong = np.flatnonzero(pred != labels)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")]
    return order[:k].astype(np.int64)


def plot_misclassified(images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                       out: str | os.PathLike, *, classes: Sequence[str] | None = None,
                       k: int = 16, cols: int = 4, size: tuple[int, int] | None = None) -> str:
    """Draw the ``k`` most confidently wrong images in a grid, each titled true / predicted (p).

    Args:
        images: (N, C, H, W) pixels (uint8, or float rescaled per image).
        labels: (N,) true classes.
        probs: (N, K) the model's probabilities.
        out: the PNG to write.
        classes: class names (default: indices).
        k: how many images.
        cols: images per row.
        size: (width, height) in pixels (default: 170 per image column, 200 per row).

    Returns:
        The path written.
    """
    idx = most_confident_mistakes(probs, labels, k)
    if len(idx) == 0:
        raise ConfigError("plot_misclassified: the model made no mistake on these images")

    def name(i: int) -> str:
        return str(classes[i]) if classes is not None else str(i)

    cols = max(1, min(cols, len(idx)))
    rows = -(-len(idx) // cols)
    fig = new_figure(size or (170 * cols, 200 * rows + 40))
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).ravel()
    pred = np.asarray(probs).argmax(axis=1)
    for ax, i in zip(axes, idx):
        show(ax, display_image(images[i]),
             f"true {name(labels[i])}\npred {name(pred[i])} ({probs[i, pred[i]]:.2f})")
    for ax in axes[len(idx):]:
        ax.set_axis_off()
    wrong = int(np.sum(pred != np.asarray(labels)))
    fig.suptitle(f"the {len(idx)} most confident of {wrong} mistakes in {len(labels)} images",
                 fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)
