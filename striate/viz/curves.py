"""Training curves: loss and accuracy per epoch, train and validation, from a run's metrics log.

``striate train`` writes ``metrics.jsonl`` (one JSON object per epoch, keys
``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``,
...) into its ``--out`` folder; :func:`plot_curves` draws it, and
:func:`epoch_curves_writer` is the Trainer callback that redraws ``curves.png``
after every epoch.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DataError, MissingDependencyError
from ._figure import new_figure, save_png

__all__ = ["read_metrics", "curve_series", "plot_curves", "epoch_curves_writer"]

METRICS = "metrics.jsonl"
CURVES = "curves.png"
_SERIES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a metrics log (a metrics.jsonl file, or a run folder holding one)."""
    name = os.fspath(path)
    if os.path.isdir(name):
        name = os.path.join(name, METRICS)
    try:
        with open(name, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"{name}: no metrics log (striate train writes {METRICS} into --out)") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read the metrics log ({e.strerror})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{name}, line {number}: not JSON ({e.msg})") from None
        if not isinstance(rec, dict) or "epoch" not in rec:
            raise DataError(f"{name}, line {number}: expected an object with an 'epoch' key")
        records.append(rec)
    if not records:
        raise DataError(f"{name}: the metrics log holds no epoch")
    return records


def curve_series(records: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """{'epoch': (E,), 'train_loss': (E,), ...}: each series present in the records, NaN where missing."""
    out = {"epoch": np.array([float(r["epoch"]) for r in records])}
    for key in _SERIES:
        if any(key in r for r in records):
            out[key] = np.array([float(r.get(key, np.nan)) for r in records])
    return out


def plot_curves(source: Any, out: str | os.PathLike, *, size: tuple[int, int] = (1000, 400),
                title: str | None = None) -> str:
    """Draw loss (left) and accuracy (right) per epoch, train and validation, to a PNG.

    Args:
        source: a run folder, a metrics.jsonl path, or the records themselves
            (``Trainer.history``).
        out: the PNG to write.
        size: (width, height) in pixels.
        title: text above the plots (default: the epochs and best validation accuracy).

    Returns:
        The path written.
    """
    records = source if isinstance(source, (list, tuple)) else read_metrics(source)
    if not records:
        raise DataError("plot_curves: no epoch to draw")
    s = curve_series(records)
    fig = new_figure(size)
    axes = fig.subplots(1, 2)
    for ax, what in zip(axes, ("loss", "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{what}"
            if key in s:
                ax.plot(s["epoch"], s[key], style, markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        if len(s["epoch"]) > 1:
            ax.set_xlim(s["epoch"].min(), s["epoch"].max())
    fig.suptitle(title or _default_title(s), fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


def _default_title(s: dict[str, np.ndarray]) -> str:
    n = len(s["epoch"])
    text = f"{n} epoch{'s' if n != 1 else ''}"
    if "val_accuracy" in s and np.isfinite(s["val_accuracy"]).any():
        best = int(np.nanargmax(s["val_accuracy"]))
        text += f"; best val accuracy {s['val_accuracy'][best]:.4f} (epoch {int(s['epoch'][best])})"
    return text


def epoch_curves_writer(out_dir: str | os.PathLike,
                        log: Callable[[str], None] | None = print) -> Callable[[Any, dict], None]:
    """A Trainer ``on_epoch_end`` callback that redraws ``out_dir/curves.png`` from the history.

    Without matplotlib it logs one line, once, and does nothing: training goes on.
    """
    path = os.path.join(os.fspath(out_dir), CURVES)
    state = {"off": False}

    def write(trainer: Any, record: dict) -> None:
        if state["off"]:
            return
        try:
            plot_curves(list(trainer.history), path)
        except MissingDependencyError:
            state["off"] = True
            if log is not None:
                log(f"matplotlib is not installed: no {CURVES} (pip install 'striate[viz]')")

    return write
