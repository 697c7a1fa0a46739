"""Nested training state (dicts, lists, arrays, numbers) to NPZ arrays plus JSON, and back.

Checkpoints hold optimizer and scheduler state dicts, generator states and the
data loader's position.  They are written without pickle: every NumPy array goes
into the ``.npz`` under a numbered key, and the structure around them is JSON
with ``{"__array__": key}`` references.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..serialize import json_from_array, json_to_array

STATE_KEY = "__state__"


def flatten(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Replace arrays in ``obj`` with references, storing them in ``arrays``."""
    if isinstance(obj, np.ndarray):
        key = f"state_array_{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[flatten(k, arrays), flatten(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [flatten(v, arrays) for v in obj], "tuple": isinstance(obj, tuple)}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def unflatten(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(obj, dict):
        if "__array__" in obj:
            try:
                return arrays[obj["__array__"]]
            except KeyError:
                raise DataError(f"checkpoint refers to a missing array {obj['__array__']}") from None
        if "__dict__" in obj:
            return {_hashable(unflatten(k, arrays)): unflatten(v, arrays) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [unflatten(v, arrays) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
        if "__float__" in obj:
            return float(obj["__float__"])
        raise DataError(f"checkpoint state has an unknown entry {sorted(obj)}")
    return obj


def _hashable(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def pack(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of an NPZ file holding ``state`` (structure as JSON under __state__)."""
    arrays: dict[str, np.ndarray] = {}
    skeleton = flatten(state, arrays)
    arrays[STATE_KEY] = json_to_array(skeleton)
    return arrays


def unpack(arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    """Inverse of :func:`pack`; DataError naming ``where`` if the structure is broken."""
    skeleton = json_from_array(arrays.get(STATE_KEY), where, "checkpoint state",
                               f"not a striate checkpoint (no {STATE_KEY} entry)")
    try:
        state = unflatten(skeleton, arrays)
    except DataError as e:
        raise DataError(f"{where}: {e}") from None
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:
        raise DataError(f"{where}: checkpoint state is malformed ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise DataError(f"{where}: checkpoint state is not a mapping")
    return state
