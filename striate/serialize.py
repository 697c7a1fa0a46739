"""Saving and loading whole models: one ``.npz`` file, weights plus architecture JSON.

``striate.save(model, path)`` writes every ``state_dict`` array and, under the key
``__architecture__``, a JSON description of how to rebuild the model (each module's
class name and constructor arguments, and its children).  ``striate.load(path)``
rebuilds the model from that JSON alone — no pickle, no code from the file is
executed; only striate's own layer classes can be named.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

from .errors import ConfigError, DataError, StateDictError
from .nn.module import Module

ARCH_KEY = "__architecture__"
FORMAT = "striate-model-1"


def _registry() -> dict[str, type]:
    """Every Module subclass defined inside the striate package, by class name."""
    out: dict[str, type] = {}
    stack = [Module]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("striate.") and not cls.__name__.startswith("_"):
            out.setdefault(cls.__name__, cls)
    return out


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, Module):
        return {"__module__": module_config(value, where)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, OrderedDict):
        return {"__odict__": [[k, _encode(v, f"{where}.{k}")] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[k, _encode(v, where)] for k, v in value.items()]}
    if isinstance(value, (np.dtype, type)) and value in (np.float32, np.float64, np.dtype("float32"), np.dtype("float64")):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, np.random.Generator):
        return None
    raise ConfigError(f"cannot describe {where}: constructor argument of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__module__" in value:
            return build_from_config(value["__module__"])
        if "__odict__" in value:
            return OrderedDict((k, _decode(v)) for k, v in value["__odict__"])
        if "__dict__" in value:
            return {k: _decode(v) for k, v in value["__dict__"]}
        if "__dtype__" in value:
            return np.dtype(value["__dtype__"])
        raise DataError(f"model architecture: unknown entry {sorted(value)}")
    return value


def module_config(model: Module, where: str = "model") -> dict:
    """The JSON-able description of ``model``: class, constructor arguments, children."""
    if hasattr(model, "get_config"):
        return {"class": type(model).__name__, "custom": model.get_config()}
    cls = type(model)
    if _registry().get(cls.__name__) is not cls:
        raise ConfigError(
            f"cannot save {where}: {cls.__name__} is not a striate layer, so it cannot be "
            "rebuilt from a file; save its state_dict() instead"
        )
    args, kwargs = model._init_args
    cfg = {
        "class": cls.__name__,
        "args": [_encode(a, where) for a in args if not isinstance(a, Module) or cls.__name__ != "Sequential"],
        "kwargs": {k: _encode(v, where) for k, v in kwargs.items() if k != "rng"},
        "children": [[n, module_config(m, f"{where}.{n}")] for n, m in model.named_children()],
    }
    if cls.__name__ in ("Sequential", "ModuleList"):
        cfg["args"], cfg["kwargs"] = [], {}
    cfg["training"] = bool(model.training)
    return cfg


def build_from_config(cfg: dict) -> Module:
    """Rebuild a module from :func:`module_config` output (weights not included)."""
    if not isinstance(cfg, dict) or "class" not in cfg:
        raise DataError("model architecture: each module entry needs a 'class'")
    registry = _registry()
    cls = registry.get(cfg["class"])
    if cls is None:
        raise DataError(f"model architecture names an unknown layer class '{cfg['class']}'")
    if "custom" in cfg:
        return cls.from_config(cfg["custom"])
    try:
        kwargs = {k: _decode(v) for k, v in cfg.get("kwargs", {}).items()}
        model = cls(*_decode(cfg.get("args", [])), **kwargs)
    except TypeError as e:
        raise DataError(f"model architecture: cannot build {cfg['class']}: {e}") from None
    # Children are rebuilt from their own entries, so a child replaced after
    # construction (e.g. a BatchNorm folded into Identity) comes back as saved.
    for name, child_cfg in cfg.get("children", []):
        model.add_module(name, build_from_config(child_cfg))
    model.train(cfg.get("training", True))
    return model


def save(model: Module, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``model`` (weights and architecture) to one ``.npz`` file, atomically.

    Args:
        model: a model built from striate layers (zoo models included).
        path: the file to write; a temporary file beside it is renamed over it.
        metadata: JSON-able facts to keep with it (class names, input normalisation);
            defaults to ``model.metadata`` if the model has one. ``load`` restores it
            as ``model.metadata``.
    """
    arch = {"format": FORMAT, "model": module_config(model)}
    metadata = metadata if metadata is not None else getattr(model, "metadata", None)
    if metadata is not None:
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"save: metadata must be JSON-serialisable ({e})") from None
        arch["metadata"] = metadata
    spec = getattr(model, "zoo_spec", None)
    if spec is not None:
        arch["zoo"] = spec
    arrays = dict(model.state_dict())
    if ARCH_KEY in arrays:
        raise ConfigError(f"a parameter may not be named {ARCH_KEY}")
    arrays[ARCH_KEY] = json_to_array(arch)
    atomic_savez(path, arrays)


def _default_mode() -> int:
    """0o666 less the umask: the mode an ordinary open() would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_savez(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_to_array(obj: Any) -> np.ndarray:
    """JSON text as a 1-D uint8 array, so an ``.npz`` can carry it without pickle."""
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def json_from_array(raw: np.ndarray | None, where: str, what: str, missing: str) -> Any:
    """Inverse of :func:`json_to_array`; DataError naming ``where`` if absent or corrupt."""
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise DataError(f"{where}: {missing}")
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{where}: {what} JSON is corrupt ({e})") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync, then rename over it."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without pickle; DataError if it is not a valid one."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DataError(f"{path}: not a valid striate .npz file ({e})") from None


def load(path: str | os.PathLike) -> Module:
    """Rebuild a model saved by :func:`save` (architecture from JSON, then weights).

    Raises:
        DataError: the file is missing, corrupt, or not a striate model file.
    """
    arrays = read_npz(path)
    arch = json_from_array(arrays.pop(ARCH_KEY, None), os.fspath(path), "architecture",
                           f"no {ARCH_KEY} entry: not a model saved by striate.save")
    if not isinstance(arch, dict) or arch.get("format") != FORMAT:
        raise DataError(f"{os.fspath(path)}: unknown model format {arch.get('format') if isinstance(arch, dict) else arch!r}")
    model = build_from_config(arch["model"])
    try:
        model.load_state_dict(arrays)
    except StateDictError as e:
        raise DataError(f"{os.fspath(path)}: {e}") from None
    if "zoo" in arch:
        model.zoo_spec = arch["zoo"]
    model.metadata = arch.get("metadata") or {}
    return model
