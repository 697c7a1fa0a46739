"""Where the network looks: vanilla saliency and Grad-CAM, from striate's own backward passes.

Vanilla saliency (Simonyan et al. 2014) is the gradient of one class score with
respect to the input pixels, shown as the largest absolute value over the
channels.  Grad-CAM (Selvaraju et al. 2017) weights a convolutional layer's
activation maps A_c by the spatial mean of the score's gradient with respect to
them, ReLU(sum_c w_c A_c), and scales the map up to the input size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import ShapeError
from ..nn.module import Module
from ._figure import display_image, new_figure, save_png, show
from ._layers import as_batch, capture, get_layer, gradient_session, score_gradient

__all__ = ["Saliency", "GradCam", "saliency", "grad_cam", "upsample_bilinear", "plot_saliency",
           "plot_grad_cam"]


@dataclass(frozen=True)
class Saliency:
    """Vanilla saliency of one image.

    Attributes:
        map: (H, W) max over channels of |d score / d input|.
        grad: (C, H, W) the input gradient itself.
        target: the class whose score was differentiated.
        probs: (K,) the model's class probabilities for the image.
    """

    map: np.ndarray
    grad: np.ndarray
    target: int
    probs: np.ndarray


@dataclass(frozen=True)
class GradCam:
    """Grad-CAM of one image at one layer.

    Attributes:
        cam: (H, W) the map scaled up to the input size (bilinear), >= 0.
        small: (h, w) the map at the layer's resolution, ReLU(sum_c weights[c] * A[c]).
        weights: (C,) spatial means of d score / d A.
        activations: (C, h, w) the layer's output A.
        target: the class whose score was differentiated.
        probs: (K,) the model's class probabilities for the image.
    """

    cam: np.ndarray
    small: np.ndarray
    weights: np.ndarray
    activations: np.ndarray
    target: int
    probs: np.ndarray


def saliency(model: Module, x: Any, target: int | None = None) -> Saliency:
    """The gradient of class ``target``'s score (a logit) with respect to one input image.

    Args:
        model: a classifier returning (N, K) logits; run in eval mode, restored after.
        x: the normalised input, (C, H, W) or (1, C, H, W) floating.
        target: class index (default: the predicted class).

    Shape:
        map: (H, W); grad: (C, H, W).

    Returns:
        A :class:`Saliency`.
    """
    x = as_batch(model, x)
    with gradient_session(model):
        dx, probs, target = score_gradient(model, x, target)
    grad = dx[0]                                                           # (C, H, W)
    return Saliency(np.abs(grad).max(axis=0), grad, target, probs)


def grad_cam(model: Module, x: Any, layer: str, target: int | None = None) -> GradCam:
    """Grad-CAM of class ``target`` at the layer with path ``layer`` (e.g. 'features.3').

    Args:
        model: a classifier returning (N, K) logits; run in eval mode, restored after.
        x: the normalised input, (C, H, W) or (1, C, H, W) floating.
        layer: the path of a layer whose output is (1, C, h, w), usually a conv or its ReLU.
        target: class index (default: the predicted class).

    Shape:
        cam: (H, W) = the input's size; small: (h, w); weights: (C,).

    Returns:
        A :class:`GradCam`.
    """
    x = as_batch(model, x)
    module = get_layer(model, layer)
    with gradient_session(model), capture(module) as rec:
        _, probs, target = score_gradient(model, x, target)
    a = np.asarray(rec.only("output"))
    if a.ndim != 4:
        raise ShapeError(f"{module.where()}: Grad-CAM needs a layer with (N, C, H, W) output; it "
                         f"outputs {tuple(a.shape)}")
    a = a[0].astype(np.float64)                                            # (C, h, w)
    da = np.asarray(rec.only("grad"))[0].astype(np.float64)                # (C, h, w)
    weights = da.mean(axis=(1, 2))                                         # (C,)
    small = np.maximum(np.tensordot(weights, a, axes=1), 0.0)              # (h, w)
    cam = upsample_bilinear(small, x.shape[2], x.shape[3])
    return GradCam(cam, small, weights, a, target, probs)


def _source_index(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sample positions (align_corners=False): lower index, upper index, upper weight."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, pos - lo


def upsample_bilinear(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D map bilinearly, as torch's interpolate(mode='bilinear', align_corners=False).

    Shape:
        (h, w) -> (height, width).
    """
    a = np.asarray(a, dtype=np.float64)
    r0, r1, rw = _source_index(height, a.shape[0])
    c0, c1, cw = _source_index(width, a.shape[1])
    rows = a[r0] * (1 - rw)[:, None] + a[r1] * rw[:, None]                 # (height, w)
    return rows[:, c0] * (1 - cw) + rows[:, c1] * cw                       # (height, width)


def unit_scale(heat: np.ndarray) -> np.ndarray:
    """A non-negative map divided by its maximum (all zeros stays zeros)."""
    top = float(np.max(heat))
    return heat / top if top > 0 else np.zeros_like(heat, dtype=np.float64)


def _heat_overlay(ax: Any, image: np.ndarray, heat: np.ndarray, title: str) -> None:
    show(ax, image, title)
    ax.imshow(unit_scale(heat), cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")


def _caption(probs: np.ndarray, target: int, classes: Sequence[str] | None) -> str:
    def name(i: int) -> str:
        return str(classes[i]) if classes is not None and i < len(classes) else str(i)

    pred = int(np.argmax(probs))
    return (f"predicted {name(pred)} (p={probs[pred]:.2f}); "
            f"explained class: {name(target)} (p={probs[target]:.2f})")


def plot_saliency(model: Module, x: Any, out: str | os.PathLike, *, image: Any = None,
                  target: int | None = None, classes: Sequence[str] | None = None,
                  size: tuple[int, int] = (900, 340)) -> str:
    """Draw the image, its vanilla saliency map and the two overlaid, to a PNG.

    Args:
        model, x, target: as for :func:`saliency`.
        out: the PNG to write.
        image: (C, H, W) pixels to show (default: ``x`` rescaled).
        classes: class names for the caption.
        size: (width, height) in pixels.

    Returns:
        The path written.
    """
    s = saliency(model, x, target)
    shown = display_image(as_batch(model, x)[0] if image is None else image)
    fig = new_figure(size)
    axes = fig.subplots(1, 3)
    show(axes[0], shown, "input")
    show(axes[1], unit_scale(s.map), "saliency |d score / d pixel|", cmap="hot")
    _heat_overlay(axes[2], shown, s.map, "overlay")
    fig.suptitle(_caption(s.probs, s.target, classes), fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


def plot_grad_cam(model: Module, x: Any, layer: str, out: str | os.PathLike, *, image: Any = None,
                  target: int | None = None, classes: Sequence[str] | None = None,
                  size: tuple[int, int] = (900, 340)) -> str:
    """Draw the image, the Grad-CAM map at ``layer`` and the two overlaid, to a PNG.

    Args:
        model, x, layer, target: as for :func:`grad_cam`.
        out: the PNG to write.
        image: (C, H, W) pixels to show (default: ``x`` rescaled).
        classes: class names for the caption.
        size: (width, height) in pixels.

    Returns:
        The path written.
    """
    g = grad_cam(model, x, layer, target)
    shown = display_image(as_batch(model, x)[0] if image is None else image)
    fig = new_figure(size)
    axes = fig.subplots(1, 3)
    show(axes[0], shown, "input")
    h, w = g.small.shape
    show(axes[1], unit_scale(g.small), f"Grad-CAM at {layer} ({h}x{w})", cmap="jet")
    _heat_overlay(axes[2], shown, g.cam, "overlay")
    fig.suptitle(_caption(g.probs, g.target, classes), fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)
