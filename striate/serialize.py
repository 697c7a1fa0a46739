"""Saving and loading whole models: one ``.npz`` file, weights plus architecture JSON.

``striate.save(model, path)`` writes every ``state_dict`` array and, under the key
``__architecture__``, a JSON description of how to rebuild the model (each module's
class name and constructor arguments, and its children).  ``striate.load(path)``
rebuilds the model from that JSON alone — no pickle, no code from the file is
executed; only striate's own layer classes can be named.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.lib import format as fmt

from .errors import ConfigError, DataError, StateDictError, StorageError, StriateError
from .nn.module import Module

ARCH_KEY = "__architecture__"
FORMAT = "striate-model-1"
TMP_PREFIX = ".tmp-"
_TMP_NAME = re.compile(r"\.tmp-[a-z0-9_]{8}(\.npz)?")


def _registry() -> dict[str, type]:
    """Every Module subclass defined inside the striate package, by class name."""
    from . import onnx  # noqa: F401  (defines the layers of imported ONNX graphs; needs no onnx package)

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
    _spend(model)
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
    """np.savez to a temporary file in the same folder, fsync, then rename over ``path``.

    Raises:
        StorageError: the folder is not writable or the disk is full; the temporary
            file is removed and any previous ``path`` is left unchanged.
    """
    _atomic_write(path, "wb", lambda f: np.savez(f, **arrays), suffix=".npz")


def _atomic_write(path: str | os.PathLike, mode: str, write: Any, suffix: str = "") -> None:
    """Run ``write(f)`` on a temporary file beside ``path``, flush, fsync, rename over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=folder)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600
        os.replace(tmp, path)
    except OSError as e:
        _discard(tmp)
        kept = "the previous file is unchanged" if os.path.exists(path) else "nothing was written"
        raise StorageError(f"cannot write {path}: {e.strerror or e} ({kept})") from e
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def remove_stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """Delete temporary files an atomic write left behind when its process was killed.

    Only names this module creates (``.tmp-XXXXXXXX`` and ``.tmp-XXXXXXXX.npz``) are
    touched; returns the paths removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if _TMP_NAME.fullmatch(name):
            path = os.path.join(folder, name)
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def json_to_array(obj: Any) -> np.ndarray:
    """JSON text as a 1-D uint8 array, so an ``.npz`` can carry it without pickle."""
    return np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)


def json_from_array(raw: np.ndarray | None, where: str, what: str, missing: str) -> Any:
    """Inverse of :func:`json_to_array`; DataError naming ``where`` if absent or corrupt."""
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise DataError(f"{where}: {missing}")
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{where}: {what} JSON is corrupt ({e})") from None
    except RecursionError:
        raise DataError(f"{where}: {what} JSON is nested too deeply") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync, then rename over it.

    Raises:
        StorageError: as :func:`atomic_savez`.
    """
    _atomic_write(path, "w", lambda f: f.write(text))


# Deflate cannot expand data by more than about 1032:1; a member claiming more is lying.
_DEFLATE_MAX_RATIO = 1032
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
                NotImplementedError, RuntimeError, struct.error, OverflowError)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without pickle; DataError if it is not a valid one.

    Each member's ``.npy`` header is checked against the member's real size before
    anything of the claimed size is allocated, so a corrupt or hostile header
    (say, shape (10**12,)) is refused instead of allocated.  Object arrays (which
    would need pickle) and members that are not ``.npy`` arrays are refused.

    Raises:
        DataError: the file is missing, not a zip of ``.npy`` arrays, or damaged.
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as zf:
            return {info.filename[:-4]: _read_member(zf, info, path, size) for info in zf.infolist()}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except StriateError:
        raise
    except _READ_ERRORS as e:
        raise DataError(f"{path}: not a valid striate .npz file ({type(e).__name__}: {e})") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, size: int) -> np.ndarray:
    """One ``.npy`` member, its header checked against its size before reading the data."""
    name = info.filename
    if not name.endswith(".npy"):
        raise DataError(f"{path}: member {name!r} is not a .npy array")
    limit = min(info.compress_size, size) * (
        _DEFLATE_MAX_RATIO if info.compress_type != zipfile.ZIP_STORED else 1)
    if info.file_size > limit + 64:
        raise DataError(f"{path}: member {name} claims {info.file_size} bytes from "
                        f"{info.compress_size} stored bytes; refusing it")
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise DataError(f"{path}: member {name} has unknown .npy version {version}")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise DataError(f"{path}: member {name} is an object array ({dtype}), which would "
                            f"need pickle; refused")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        available = info.file_size - f.tell()
        if nbytes != available:
            raise DataError(f"{path}: member {name} header claims shape {shape} of {dtype} "
                            f"({nbytes} bytes) but the member holds {available} bytes of data")
        buf = bytearray(nbytes)
        if nbytes and f.readinto(buf) != nbytes:
            raise DataError(f"{path}: member {name} is truncated")
    array = np.frombuffer(buf, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")  # the header's shape


def load(path: str | os.PathLike) -> Module:
    """Rebuild a model saved by :func:`save` (architecture from JSON, then weights).

    The layers are built under :class:`striate.init.skip_init` (no random fills, the
    default generator is not touched), and no size in the architecture may exceed
    what the file's weights justify, so a corrupt or hostile file cannot make it
    allocate more than the file holds.

    Raises:
        DataError: the file is missing, corrupt, or not a striate model file.
    """
    where = os.fspath(path)
    arrays = read_npz(path)
    arch = json_from_array(arrays.pop(ARCH_KEY, None), where, "architecture",
                           f"no {ARCH_KEY} entry: not a model saved by striate.save")
    if not isinstance(arch, dict) or arch.get("format") != FORMAT or not isinstance(arch.get("model"), dict):
        found = arch.get("format") if isinstance(arch, dict) else type(arch).__name__
        raise DataError(f"{where}: unknown model format {found!r}; expected {FORMAT!r} with a 'model' entry")
    elements = sum(a.size for a in arrays.values())
    _check_sizes(arch["model"], max(elements, _MIN_SIZE_LIMIT), where)
    model = _build(arch["model"], where, elements)
    try:
        model.load_state_dict(arrays)
    except StateDictError as e:
        raise DataError(f"{where}: {e}") from None
    except (ValueError, TypeError) as e:          # e.g. an array of text where weights belong
        raise DataError(f"{where}: weights cannot be loaded ({e})") from None
    if "zoo" in arch:
        model.zoo_spec = arch["zoo"]
    metadata = arch.get("metadata")
    model.metadata = metadata if isinstance(metadata, dict) else {}
    return model


# Sizes in an architecture up to this are accepted even when the file holds fewer weights.
_MIN_SIZE_LIMIT = 4096


def _check_sizes(cfg: Any, limit: int, where: str, depth: int = 0) -> None:
    """Refuse integers (layer sizes) larger than the number of weights in the file."""
    if depth > 200:
        raise DataError(f"{where}: model architecture is nested more than 200 levels deep")
    if isinstance(cfg, dict):
        for v in cfg.values():
            _check_sizes(v, limit, where, depth + 1)
    elif isinstance(cfg, list):
        for v in cfg:
            _check_sizes(v, limit, where, depth + 1)
    elif isinstance(cfg, int) and not isinstance(cfg, bool) and abs(cfg) > limit:
        raise DataError(f"{where}: model architecture holds the size {cfg}, larger than the "
                        f"{limit} weights the file justifies; the file is corrupt")


# While load() builds a model: how many more weight elements its layers may allocate.
_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("_budget", default=None)


def _spend(model: Module) -> None:
    """Count a just-built module's arrays against the load budget; DataError once exceeded."""
    left = _budget.get()
    if left is None:
        return
    left[0] -= sum(p.data.size for m in model.modules() for p in m._parameters.values())
    left[0] -= sum(b.size for m in model.modules() for b in m._buffers.values())
    if left[0] < 0:
        raise DataError("model architecture describes layers with far more weights than the "
                        "file holds; the file is corrupt")


def _build(cfg: dict, where: str, file_elements: int) -> Module:
    """build_from_config without random fills, its layers' sizes bounded by the file's weights.

    Layers are counted as built (a block's constructor builds children that are then
    rebuilt from their own entries), so the budget allows 8x the file plus 1M elements.
    """
    from .init import skip_init

    token = _budget.set([8 * file_elements + (1 << 20)])
    try:
        with skip_init():
            return build_from_config(cfg)
    except DataError as e:
        raise DataError(f"{where}: {e}") from None
    except StriateError as e:                       # a layer refused its arguments
        raise DataError(f"{where}: model architecture: {e}") from None
    except Exception as e:                          # noqa: BLE001 - any malformed entry
        raise DataError(f"{where}: model architecture cannot be built "
                        f"({type(e).__name__}: {e})") from None
    finally:
        _budget.reset(token)
