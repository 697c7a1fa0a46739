"""Finding a layer by path, recording what passes through it, and running a model for its gradients.

``capture(layer)`` temporarily wraps one module's ``forward`` and ``backward``
(instance attributes shadowing the class methods, removed afterwards even on
error) so the activations it outputs and the gradient that reaches them are
recorded: that is all Grad-CAM and feature maps need, with no change to the
layers themselves.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError, ShapeError, StateError
from ..nn.module import Module, is_grad_enabled

__all__ = ["get_layer", "layer_paths", "capture", "Record", "gradient_session", "score_gradient",
           "softmax"]


def layer_paths(model: Module) -> list[str]:
    """Every sub-module's path ('features.3'), in model order, the root excluded."""
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: Module, path: str) -> Module:
    """The sub-module at ``path``; ConfigError listing the valid paths if there is none."""
    named = [(name, mod) for name, mod in model.named_modules() if name]
    for name, mod in named:
        if name == path:
            return mod
    listing = ", ".join(f"{name} ({type(mod).__name__})" for name, mod in named)
    raise ConfigError(f"{type(model).__name__} has no layer '{path}'; the layers are: "
                      f"{listing or '(none)'}")


@dataclass
class Record:
    """What went through a captured layer: its outputs and the gradients that reached them."""

    where: str
    outputs: list[np.ndarray] = field(default_factory=list)
    grads: list[np.ndarray] = field(default_factory=list)

    def only(self, kind: str) -> np.ndarray:
        items = self.outputs if kind == "output" else self.grads
        if len(items) != 1:
            raise StateError(f"{self.where} ran {len(items)} times in one pass; pick a layer "
                             "that runs exactly once (not a shared one)")
        return items[0]


@contextmanager
def capture(layer: Module) -> Iterator[Record]:
    """Record ``layer``'s outputs and incoming output gradients while the block runs."""
    rec = Record(layer.where())
    own = layer.__dict__
    before = {k: own[k] for k in ("forward", "backward") if k in own}
    inner_forward, inner_backward = layer.forward, layer.backward

    def forward(*args: Any, **kwargs: Any) -> Any:
        y = inner_forward(*args, **kwargs)
        rec.outputs.append(y)
        return y

    def backward(dy: Any) -> Any:
        rec.grads.append(dy)
        return inner_backward(dy)

    object.__setattr__(layer, "forward", forward)
    object.__setattr__(layer, "backward", backward)
    try:
        yield rec
    finally:
        for k in ("forward", "backward"):
            own.pop(k, None)
            if k in before:
                object.__setattr__(layer, k, before[k])


@contextmanager
def gradient_session(model: Module) -> Iterator[None]:
    """Run ``model`` in eval mode for input gradients; restore modes and parameter grads after.

    Parameter gradients accumulated by the extra backward pass are discarded, and
    ``set_input_grad(False)`` is lifted for the pass, so a model in the middle of
    training is left exactly as it was.
    """
    if not is_grad_enabled():
        raise StateError("saliency and Grad-CAM need a backward pass: call them outside no_grad()")
    modes = [(m, m.training, m.__dict__.get("input_grad")) for m in model.modules()]
    grads = [(p, p.grad) for p in model.parameters()]
    model.eval()
    for m, _, _ in modes:
        object.__setattr__(m, "input_grad", True)          # undo set_input_grad(False) for now
    for p, _ in grads:
        p.grad = None
    try:
        yield
    finally:
        for m, mode, input_grad in modes:
            object.__setattr__(m, "training", mode)
            object.__setattr__(m, "_cache", None)
            if input_grad is None:
                m.__dict__.pop("input_grad", None)
            else:
                object.__setattr__(m, "input_grad", input_grad)
        for p, g in grads:
            p.grad = g


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def as_batch(model: Module, x: Any) -> np.ndarray:
    """One input as a batch of one: (C, H, W) or (1, C, H, W) floating -> (1, C, H, W)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]                                                       # (1, C, H, W)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ShapeError(f"{type(model).__name__}: expects one image (C, H, W) or (1, C, H, W); "
                         f"received {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise ConfigError(f"the input image must be a normalised floating array; received dtype "
                          f"{x.dtype} (apply ToFloat and Normalize first)")
    return x


def score_gradient(model: Module, x: np.ndarray, target: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Forward ``x`` (1, C, H, W), backward the one-hot of class ``target`` (default: the predicted one).

    Must run inside :func:`gradient_session`.

    Returns:
        (input gradient (1, C, H, W), class probabilities (K,), target index).
    """
    logits = model(x)
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or logits.shape[0] != 1:
        shape = getattr(logits, "shape", type(logits).__name__)
        raise ShapeError(f"{type(model).__name__}: saliency needs (1, classes) logits; the model "
                         f"output is {shape}")
    k = logits.shape[1]
    target = int(np.argmax(logits[0])) if target is None else int(target)
    if not 0 <= target < k:
        raise ConfigError(f"target class must be in [0, {k}); received {target}")
    dy = np.zeros_like(logits)
    dy[0, target] = 1.0                                                   # d score / d logits
    dx = model.backward(dy)
    if isinstance(dx, tuple):
        dx = dx[0]
    return np.asarray(dx), softmax(logits[0].astype(np.float64)), target
