"""ONNX for striate: import models as trainable graphs, export them, and a test-harness backend.

``striate.onnx.load(path)`` builds a :class:`striate.nn.Graph` from an ONNX
file (bytes or ``onnx.ModelProto``); ``striate.onnx.export(model, path, ...)``
writes one; ``striate.onnx.backend`` runs ONNX's own conformance tests
against striate.  Needs the optional ``onnx`` package (``pip install
striate[onnx]``), imported only when one of these is used.
"""

from __future__ import annotations

from typing import Any

from ..errors import OnnxError, UnsupportedOperatorError
from .importer import load, supported_operators

__all__ = ["load", "export", "backend", "supported_operators", "OnnxError",
           "UnsupportedOperatorError"]


def export(*args: Any, **kwargs: Any) -> Any:
    """Export a striate model to ONNX (see :func:`striate.onnx.exporter.export`)."""
    from .exporter import export as _export

    return _export(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "backend":                      # imports onnx.backend: only when asked for
        import importlib

        return importlib.import_module(".backend", __name__)
    raise AttributeError(f"module 'striate.onnx' has no attribute '{name}'")
