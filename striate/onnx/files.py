"""File-to-file conversions behind ``striate export`` and ``striate convert``.

    export_file("model.npz", "model.onnx")          # a striate.save file -> ONNX
    convert_file("model.onnx", "model.npz")         # ONNX -> a striate.save file
    onnx_input_shape(striate.onnx.load("m.onnx"))   # (3, 224, 224): the input without its batch

The model file's recorded input shape (``metadata["input_shape"]``, which
``striate train`` writes) or its zoo builder's defaults give the export's
input shape when none is passed; a converted file records the ONNX graph's
input shape, so ``striate summary`` and ``striate export`` need no
``--input-shape`` for it either.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from ..nn.module import Module

__all__ = ["export_file", "convert_file", "onnx_input_shape"]


def onnx_input_shape(model: Module) -> tuple[int, ...] | None:
    """The first graph input's shape without the batch axis, from an imported model's
    metadata; None if it is unknown (a dynamic size other than the batch)."""
    meta = getattr(model, "metadata", None) or {}
    inputs = meta.get("inputs") or []
    if not inputs:
        return None
    dims = list(inputs[0][1] or [])[1:]
    if not dims or not all(isinstance(d, int) and d >= 1 for d in dims):
        return None
    return tuple(dims)


def export_file(source: Any, target: Any, input_shape: Any = None, opset: int = 13,
                fold_batchnorm: bool = False) -> dict[str, Any]:
    """Export a model file written by :func:`striate.save` to an ONNX file.

    Args:
        source: the ``.npz`` model file.
        target: the ``.onnx`` file to write.
        input_shape: text ('3,32,32') or a tuple, without the batch axis; None
            takes the shape the file records (see
            :func:`striate.summary.default_input_shape`).
        opset: the ONNX opset (9 to 17).
        fold_batchnorm: fold BatchNorm into the preceding layers first.

    Returns:
        {'path', 'input_shape' (with 'N' for the batch), 'opset', 'nodes', 'parameters'}.

    Raises:
        DataError: an unreadable model file; ConfigError: no input shape known
            or a bad one; OnnxError: layers without an ONNX form (all listed).
    """
    from ..serialize import load
    from ..summary._sources import default_input_shape, parse_shape
    from .exporter import export

    model = load(source)
    if input_shape is not None:
        shape = parse_shape(input_shape)
    else:
        try:
            shape = default_input_shape(model)
        except ConfigError:
            raise ConfigError(f"export: '{os.fspath(source)}' records no input shape; give one "
                              "with --input-shape C,H,W (or C,L), without the batch axis") from None
    proto = export(model, target, shape, opset, fold_batchnorm=fold_batchnorm)
    return {"path": os.fspath(target), "input_shape": ["N", *shape], "opset": int(opset),
            "nodes": len(proto.graph.node), "parameters": model.num_parameters()}


def convert_file(source: Any, target: Any) -> dict[str, Any]:
    """Import an ONNX file with :func:`striate.onnx.load` and save it with :func:`striate.save`.

    The saved metadata holds the ONNX graph's input shape (``input_shape``,
    without the batch axis, when it is static) and what the importer recorded
    (``onnx``: opset, producer, inputs, outputs, operator counts).

    Returns:
        {'path', 'input_shape' (or None), 'layers', 'parameters', 'operators'}.

    Raises:
        OnnxError: an unreadable file or unsupported operators (all listed);
            MissingDependencyError: onnx is not installed.
    """
    from ..serialize import save
    from .importer import load

    model = load(source)
    shape = onnx_input_shape(model)
    meta = {"onnx": dict(getattr(model, "metadata", None) or {})}
    if shape is not None:
        meta["input_shape"] = list(shape)
    save(model, target, metadata=meta)
    return {"path": os.fspath(target), "input_shape": None if shape is None else ["N", *shape],
            "layers": len(model), "parameters": model.num_parameters(),
            "operators": meta["onnx"].get("operators", {})}
