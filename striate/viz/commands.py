"""The ``striate viz ...`` commands: model files, image files and data sets in, a PNG out.

Each function loads what it needs (a model written by ``striate train``, whose
metadata holds the class names, the input shape and the normalisation), calls
the drawing function and returns the path of the PNG it wrote.  With no
``out``, the PNG goes next to the model (or into the run folder for curves).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import Compose, Normalize, ToFloat, load_dataset
from ..errors import ConfigError
from ..nn.module import Module
from ..serialize import load
from .confusion import plot_confusion
from .curves import CURVES, plot_curves
from .filters import plot_filters
from .maps import plot_feature_maps
from .misclassified import plot_misclassified, predict_probs
from .saliency import plot_grad_cam, plot_saliency
from .text import confusion_text

__all__ = ["InputImage", "load_model_file", "load_input", "resolve_target", "viz_curves",
           "viz_filters", "viz_maps", "viz_saliency", "viz_confusion", "viz_misclassified"]


@dataclass(frozen=True)
class InputImage:
    """One image ready for a model: pixels (C, H, W) uint8, x (1, C, H, W) normalised, label, name."""

    pixels: np.ndarray
    x: np.ndarray
    label: int | None
    name: str


def load_model_file(path: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """A model written by ``striate train`` and its metadata (classes, input_shape, mean, std)."""
    model = load(path)
    meta = dict(getattr(model, "metadata", {}) or {})
    return model, meta


def _require(meta: dict[str, Any], model_path: str, *keys: str) -> None:
    missing = [k for k in keys if meta.get(k) is None]
    if missing:
        raise ConfigError(f"{model_path}: the model file does not record {', '.join(missing)} (it "
                          "was not written by striate train); cannot prepare images for it")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def load_input(model_path: str, meta: dict[str, Any], image: str | None = None,
               dataset: str | None = None, index: int = 0, split: str = "test",
               data_dir: str | None = None) -> InputImage:
    """An image file (resized to the model's input) or image ``index`` of a data set split."""
    from ..data.images import load_image_for_model

    _require(meta, model_path, "input_shape", "mean", "std")
    shape = tuple(meta["input_shape"])
    if (image is None) == (dataset is None):
        raise ConfigError("give either an IMAGE file or --dataset NAME [--index N], not both or neither")
    if image is not None:
        pixels, label = load_image_for_model(image, shape), None                    # (C, H, W)
        name = _safe(os.path.splitext(os.path.basename(image))[0])
    else:
        data = load_dataset(dataset, split, data_dir=data_dir)
        if not 0 <= index < len(data.labels):
            raise ConfigError(f"--index must be in [0, {len(data.labels)}) for {dataset} {split}; "
                              f"received {index}")
        pixels, label = data.images[index], int(data.labels[index])
        if tuple(pixels.shape) != shape:
            raise ConfigError(f"{dataset} images are {tuple(pixels.shape)} but the model reads {shape}")
        name = f"{dataset}-{split}-{index}"
    x = Compose([ToFloat(), Normalize(meta["mean"], meta["std"])])(pixels[None])   # (1, C, H, W)
    return InputImage(pixels, x, label, name)


def resolve_target(target: str | int | None, classes: list[str] | None, k: int | None = None) -> int | None:
    """A class given by index ('3') or by name ('Shirt', any case) -> its index (None stays None)."""
    if target is None:
        return None
    text = str(target).strip()
    names = [str(c) for c in classes] if classes else []
    lowered = [c.lower() for c in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.lstrip("-").isdigit():
        i = int(text)
        limit = len(names) if names else k
        if limit is None or 0 <= i < limit:
            return i
    choices = ", ".join(names) if names else f"0..{(k or 1) - 1}"
    raise ConfigError(f"--target must be a class index or name ({choices}); received '{target}'")


def _out(out: str | None, model_path: str, stem: str) -> str:
    return out or os.path.join(os.path.dirname(os.path.abspath(model_path)), f"{stem}.png")


def viz_curves(run: str, out: str | None = None) -> str:
    """Training curves of a run folder (or a metrics.jsonl); default RUN/curves.png."""
    folder = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    return plot_curves(run, out or os.path.join(folder, CURVES))


def viz_filters(model_path: str, out: str | None = None, layer: str | None = None) -> str:
    """A convolution's kernels (default: the first); default filters[-LAYER].png beside the model."""
    model, _ = load_model_file(model_path)
    stem = "filters" if layer is None else f"filters-{_safe(layer)}"
    return plot_filters(model, _out(out, model_path, stem), layer=layer)


def viz_maps(model_path: str, layer: str, image: str | None = None, out: str | None = None,
             **source: Any) -> str:
    """One layer's feature maps for one image; ``source``: dataset, index, split, data_dir."""
    model, meta = load_model_file(model_path)
    inp = load_input(model_path, meta, image, **source)
    path = _out(out, model_path, f"maps-{_safe(layer)}-{inp.name}")
    return plot_feature_maps(model, inp.x, layer, path, image=inp.pixels)


def viz_saliency(model_path: str, image: str | None = None, out: str | None = None, *,
                 grad_cam: bool = False, layer: str | None = None, target: str | None = None,
                 **source: Any) -> str:
    """Vanilla saliency, or Grad-CAM at ``layer``, of one image overlaid on it."""
    model, meta = load_model_file(model_path)
    classes = meta.get("classes")
    if grad_cam and layer is None:
        raise ConfigError("--grad-cam needs --layer PATH (a convolution or its activation)")
    if layer is not None and not grad_cam:
        raise ConfigError("--layer is only used with --grad-cam")
    inp = load_input(model_path, meta, image, **source)
    t = resolve_target(target, classes)
    if grad_cam:
        path = _out(out, model_path, f"gradcam-{_safe(layer)}-{inp.name}")
        return plot_grad_cam(model, inp.x, layer, path, image=inp.pixels, target=t, classes=classes)
    path = _out(out, model_path, f"saliency-{inp.name}")
    return plot_saliency(model, inp.x, path, image=inp.pixels, target=t, classes=classes)


def viz_confusion(model_path: str, dataset: str, split: str = "test", data_dir: str | None = None,
                  out: str | None = None) -> tuple[str, str]:
    """Evaluate on a data set split; (path of the heat map, the matrix as text)."""
    from ..train.recipe import evaluate_file

    metrics, cm, classes = evaluate_file(model_path, dataset, split, data_dir)
    title = f"{dataset} {split}: {int(cm.sum())} images, accuracy {metrics['accuracy']:.4f}"
    path = plot_confusion(cm, _out(out, model_path, f"confusion-{dataset}-{split}"),
                          classes=classes, title=title)
    return path, confusion_text(cm, classes)


def viz_misclassified(model_path: str, dataset: str, split: str = "test",
                      data_dir: str | None = None, out: str | None = None, k: int = 16) -> str:
    """The ``k`` images of a data set split the model got most confidently wrong."""
    from ..train.recipe import DATASET_STATS

    if dataset not in DATASET_STATS:
        raise ConfigError(f"--dataset must be one of {sorted(DATASET_STATS)}; received '{dataset}'")
    model, meta = load_model_file(model_path)
    data = load_dataset(dataset, split, data_dir=data_dir)
    mean, std = (meta["mean"], meta["std"]) if meta.get("mean") is not None else DATASET_STATS[dataset]
    x = Compose([ToFloat(), Normalize(mean, std)])(data.images)                       # (N, C, H, W)
    probs = predict_probs(model, x)
    path = _out(out, model_path, f"misclassified-{dataset}-{split}")
    return plot_misclassified(data.images, data.labels, probs, path, classes=list(data.classes), k=k)
