"""summary_for: the summary of a model named on the command line (``striate summary``).

The model is a zoo name (built with a fixed seed: weights do not matter here)
or a ``.npz`` file written by :func:`striate.save` or an ``.onnx`` file
(imported with :func:`striate.onnx.load`); the input shape is given as text
("1,28,28", "1x28x28") or taken from the model: the ``input_shape`` a trained
model file records, an ONNX file's static graph input shape, or the zoo
builder's ``in_channels`` and ``input_size`` (32 for the CIFAR ResNets, 200
frames for tdnn, 224 for the ImageNet families otherwise).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError
from ..nn.module import Module

__all__ = ['summary_for', 'default_input_shape', 'parse_shape']

_CIFAR = ("resnet20", "resnet32", "resnet56")
_TDNN_FRAMES = 200           # 2 s of 10 ms frames, a typical x-vector training segment


def parse_shape(text: Any) -> tuple[int, ...]:
    """'1,28,28', '1x28x28' or '1 28 28' (or a sequence of ints) as a tuple of positive ints."""
    if isinstance(text, str):
        parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
        ok = bool(parts) and all(p.isdigit() and int(p) > 0 for p in parts)
        if ok:
            return tuple(int(p) for p in parts)
    elif isinstance(text, (tuple, list)):
        return tuple(text)                  # checked by summary()
    raise ConfigError(f"summary: --input-shape must be positive ints such as 1,28,28 "
                      f"(without the batch axis); received {text!r}")


def default_input_shape(model: Module) -> tuple[int, ...]:
    """The input shape (no batch axis) a model was built or trained for.

    Raises:
        ConfigError: the model records neither a trained input shape nor a zoo spec.
    """
    meta = getattr(model, "metadata", None) or {}
    if meta.get("input_shape"):
        return tuple(int(v) for v in meta["input_shape"])
    spec = getattr(model, "zoo_spec", None)
    if not spec:
        raise ConfigError("summary: the model records no input shape; give one "
                          "(--input-shape C,H,W or C,L)")
    name, kwargs = spec["name"], spec.get("kwargs", {})
    channels = int(kwargs.get("in_channels", 3))
    if name == "tdnn":
        return (channels, _TDNN_FRAMES)
    side = kwargs.get("input_size") or (32 if name in _CIFAR else 224)
    return (channels, int(side), int(side))


def _load_onnx(source: str) -> Module:
    """Import an ONNX file (striate.onnx.load), recording its static input shape if any."""
    from ..onnx.files import onnx_input_shape
    from ..onnx.importer import load

    model = load(source)
    shape = onnx_input_shape(model)
    if shape is not None:
        model.metadata = {**(getattr(model, "metadata", None) or {}), "input_shape": list(shape)}
    return model


def _load(source: str, num_classes: int | None, shape: tuple[int, ...] | None = None) -> Module:
    """Load a model file, or build a zoo model (for ``shape``'s channels and size if given)."""
    from ..models import get_model, model_signature
    from ..serialize import load

    if source.lower().endswith((".npz", ".onnx")):
        if num_classes is not None:
            raise ConfigError("summary: --num-classes applies to zoo models only; "
                              f"received it with the file '{source}'")
        return _load_onnx(source) if source.lower().endswith(".onnx") else load(source)
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    if shape is not None:
        params = model_signature(source).parameters
        if "in_channels" in params:
            kwargs["in_channels"] = shape[0]
        if "input_size" in params and len(shape) == 3:
            kwargs["input_size"] = shape[1]
    return get_model(source, rng=0, **kwargs)


def summary_for(source: str, input_shape: Any = None, num_classes: int | None = None) -> Any:
    """The :func:`striate.summary.summary` of a zoo model or a saved model file.

    Args:
        source: a zoo name (``striate.models.list_models()``), a ``.npz`` path or an
            ``.onnx`` path (imported with :func:`striate.onnx.load`).
        input_shape: text such as '3,32,32' or a tuple, without the batch axis;
            None takes the model's own (see :func:`default_input_shape`).
        num_classes: for a zoo model, its number of outputs (the builder's default if None).

    Returns:
        The Summary (batch size 1, float32).

    Raises:
        ConfigError: an unknown model name, a bad input shape.
        DataError: an unreadable model file; OnnxError: an unreadable or unsupported
            ONNX file; MissingDependencyError: an .onnx file without the onnx package.
    """
    from . import summary

    shape = None if input_shape is None else parse_shape(input_shape)
    model = _load(source, num_classes, shape)
    return summary(model, shape if shape is not None else default_input_shape(model))
