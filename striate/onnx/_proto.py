"""Reading ONNX files: the lazy ``onnx`` import, parsing, checking, attributes and tensors.

Every failure becomes a striate error: a missing ``onnx`` package is a
MissingDependencyError naming the pip extra, a file that does not parse or
fails ``onnx.checker`` an OnnxError naming the file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError, OnnxError

MIN_OPSET = 6


def require_onnx() -> Any:
    """Import and return the ``onnx`` package, or raise MissingDependencyError."""
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401  (submodules used below)
        import onnx.shape_inference  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "striate.onnx needs the onnx package; install it with: pip install striate[onnx]"
        ) from None
    return onnx


def read_model(source: Any) -> tuple[Any, str]:
    """Parse ``source`` (a path, bytes or an onnx.ModelProto) into (ModelProto, label).

    The label names the source in error messages (the path, '<bytes>' or '<ModelProto>').

    Raises:
        OnnxError: the file is missing or does not parse as an ONNX model.
        ConfigError: ``source`` is none of the accepted types.
    """
    onnx = require_onnx()
    if isinstance(source, onnx.ModelProto):
        return source, "<ModelProto>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = "<bytes>"
        try:
            return onnx.load_model_from_string(bytes(source)), label
        except Exception as e:  # protobuf's DecodeError and friends
            raise OnnxError(f"{label}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    if isinstance(source, (str, os.PathLike)):
        label = os.fspath(source)
        if not os.path.isfile(label):
            raise OnnxError(f"{label}: no such ONNX file")
        try:
            return onnx.load(label), label
        except Exception as e:
            raise OnnxError(f"{label}: not a valid ONNX model ({type(e).__name__}: {e})") from None
    raise ConfigError(
        "striate.onnx expects a file path, bytes or an onnx.ModelProto; "
        f"received {type(source).__name__}"
    )


def check_model(model: Any, label: str) -> None:
    """Run ``onnx.checker`` (OnnxError naming ``label`` if it fails)."""
    onnx = require_onnx()
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OnnxError(f"{label}: invalid ONNX model: {first}") from None


def opset_version(model: Any, label: str) -> int:
    """The model's version of the default ('ai.onnx') operator set (>= MIN_OPSET)."""
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            version = int(imp.version)
            if version < MIN_OPSET:
                raise OnnxError(
                    f"{label}: opset {version} is older than {MIN_OPSET}, the oldest striate "
                    "reads; upgrade it with onnx.version_converter.convert_version(model, 13)"
                )
            return version
    raise OnnxError(f"{label}: the model imports no version of the default ONNX operator set")


def to_array(tensor: Any) -> np.ndarray:
    """A TensorProto as a writable NumPy array."""
    onnx = require_onnx()
    return np.array(onnx.numpy_helper.to_array(tensor), copy=True)


def attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded, tensors as arrays)."""
    onnx = require_onnx()
    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        elif isinstance(value, onnx.TensorProto):
            value = to_array(value)
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8", errors="replace") for v in value]
        out[a.name] = value
    return out


def value_types(model: Any) -> dict[str, tuple[np.dtype | None, tuple | None]]:
    """name -> (dtype or None, shape with None for unknown sizes, or None) of every typed value.

    Uses ONNX shape inference where it succeeds, else the types the file declares.
    """
    onnx = require_onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    g = inferred.graph
    out: dict[str, tuple[np.dtype | None, tuple | None]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)) if tt.elem_type else None
        except Exception:
            dtype = None
        shape = None
        if tt.HasField("shape"):
            shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        out[vi.name] = (dtype, shape)
    return out
