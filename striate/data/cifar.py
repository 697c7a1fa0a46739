"""CIFAR-10 readers: the official "python version" batches and a tarball of JPEG class folders.

The official ``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/`` with
``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and ``batches.meta``:
Python 2 pickles read here with :func:`load_restricted_pickle` (nothing in
them is executed).  Each batch is a dict with ``data`` (uint8 (10000, 3072),
row = 1024 red, 1024 green, 1024 blue values) and ``labels`` (10000 ints).
Decoding a tarball is cached as ``.npz`` next to the downloads, keyed by the
tarball's MD5, so later loads are a single ``np.load`` (``allow_pickle=False``).
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np

from ..errors import DataError
from .files import load_arrays, md5_file, save_arrays
from .images import read_image_tar
from .pickle_reader import load_restricted_pickle

__all__ = ["read_cifar_batch", "read_cifar_python", "read_cifar_jpeg_tar"]

BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_CACHE_VERSION = 1


def _text(value: object) -> object:
    """Python 2 ``str`` arrives as bytes: decode it (latin-1 maps every byte)."""
    return value.decode("latin1") if isinstance(value, bytes) else value


def read_cifar_batch(data: bytes, name: str = "<batch>") -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickled CIFAR-10 batch (restricted reader: plain data only).

    Args:
        data: the batch file's bytes.
        name: the file name, for error messages.

    Shape:
        images: (N, 3, 32, 32) uint8; labels: (N,) int64 in [0, 10).

    Returns:
        (images, labels).
    """
    obj = load_restricted_pickle(data, name)
    if not isinstance(obj, dict):
        raise DataError(f"{name}: expected a pickled dict, received {type(obj).__name__}")
    batch = {_text(k): v for k, v in obj.items()}
    pixels, labels = batch.get("data"), batch.get("labels", batch.get("fine_labels"))
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 \
            or pixels.shape[1] != 3 * 32 * 32:
        shape = getattr(pixels, "shape", None)
        raise DataError(f"{name}: 'data' must be a uint8 array (N, 3072); received "
                        f"{type(pixels).__name__} {shape}")
    if not isinstance(labels, list) or not all(isinstance(v, int) for v in labels):
        raise DataError(f"{name}: 'labels' must be a list of ints")
    y = np.array(labels, dtype=np.int64)
    if len(y) != len(pixels) or (y.size and (y.min() < 0 or y.max() > 9)):
        raise DataError(f"{name}: {len(y)} labels in [0, 10) expected for {len(pixels)} images; "
                        f"received {len(y)} with range [{y.min(initial=0)}, {y.max(initial=0)}]")
    return pixels.reshape(-1, 3, 32, 32), y  # (N, 3072) -> (N, 3, 32, 32)


def _read_meta(data: bytes, name: str) -> list[str]:
    """Class names from ``batches.meta`` (``label_names``)."""
    meta = load_restricted_pickle(data, name)
    names = meta.get("label_names", meta.get(b"label_names")) if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        raise DataError(f"{name}: expected 'label_names' with 10 class names")
    return [str(_text(n)) for n in names]


def _batch_bytes(source: Path, wanted: set[str]) -> dict[str, bytes]:
    """The wanted batch files from an extracted folder or from the tarball (not extracted)."""
    if source.is_dir():
        found = {}
        for member in wanted:
            try:
                found[member] = (source / member).read_bytes()
            except OSError as e:
                raise DataError(f"cannot read CIFAR-10 batch {source / member}: {e}") from e
        return found
    found, offset = {}, 0
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                offset = member.offset
                base = PurePosixPath(member.name).name
                if member.isfile() and base in wanted:
                    found[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{source}: corrupt or truncated tarball (after the member at byte "
                        f"{offset}): {e}") from e
    missing = wanted - set(found)
    if missing:
        raise DataError(f"{source}: missing CIFAR-10 batch files {sorted(missing)}")
    return found


def read_cifar_python(source: str | os.PathLike, splits: Sequence[str] = ("train", "test")
                      ) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """Read splits from ``cifar-10-python.tar.gz`` or an extracted ``cifar-10-batches-py/``.

    Args:
        source: the tarball (read in one pass, not extracted) or the folder of batch files.
        splits: among 'train' (data_batch_1..5) and 'test' (test_batch).

    Shape:
        images: (50000 or 10000, 3, 32, 32) uint8; labels: (N,) int64.

    Returns:
        {split: (images, labels, classes)}.
    """
    source = Path(source)
    wanted = {b for split in splits for b in BATCHES[split]} | {"batches.meta"}
    files = _batch_bytes(source, wanted)
    classes = _read_meta(files["batches.meta"], f"{source}:batches.meta")
    out = {}
    for split in splits:
        parts = [read_cifar_batch(files[b], f"{source}:{b}") for b in BATCHES[split]]
        images = np.concatenate([p[0] for p in parts])  # (N, 3, 32, 32)
        out[split] = (images, np.concatenate([p[1] for p in parts]), classes)
    return out


def read_cifar_jpeg_tar(source: str | os.PathLike, splits: Sequence[str] = ("train", "test")
                        ) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """Read splits from a tarball of ``<split>/<class>/<image>.jpg`` (Pillow needed).

    Args:
        source: the tarball, e.g. ``cifar10_jpeg_images.tar.gz`` (read in one pass).
        splits: among 'train' and 'test'.

    Shape:
        images: (N, 3, 32, 32) uint8; labels: (N,) int64 (sorted class folder index).

    Returns:
        {split: (images, labels, classes)}.
    """
    out = read_image_tar(source, splits, mode="RGB")
    for images, _, classes in out.values():
        if images.shape[1:] != (3, 32, 32) or len(classes) != 10:
            raise DataError(f"{source}: CIFAR-10 needs 32x32 RGB images in 10 class folders; "
                            f"received {images.shape[1:]} in {len(classes)}")
    return out


def cached_decode(source: Path, split: str, cache_dir: Path, md5: str | None,
                  reader: Callable[[Path, Sequence[str]], dict]
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode a tarball once (both splits); later calls load ``.npy`` files keyed by its MD5.

    Args:
        source: a tarball (hashed), or a folder (decoded every time, not cached).
        split: the split to return, 'train' or 'test'.
        cache_dir: where the decoded arrays go (created if needed; skipped if unwritable).
        md5: the expected MD5 of ``source`` (official tarball), or None to accept any.
        reader: ``reader(source, splits) -> {split: (images, labels, classes)}``.

    Returns:
        (images, labels, classes) of ``split``.
    """
    if source.is_dir():
        return reader(source, (split,))[split]
    digest = md5_file(source)
    if md5 is not None and digest != md5:
        raise DataError(f"{source}: MD5 checksum mismatch: expected {md5}, received {digest} "
                        f"(the file is corrupt or not the published one; delete it and fetch it again)")
    prefix = cache_dir / f"{source.name}.{digest}.v{_CACHE_VERSION}"
    names = ("images", "labels", "classes")
    arrays = load_arrays(f"{prefix}.{split}", names)
    if arrays is not None and _cache_fits(arrays):
        return arrays["images"], arrays["labels"], [str(c) for c in arrays["classes"]]
    decoded = reader(source, tuple(BATCHES))
    for name, (images, labels, classes) in decoded.items():
        save_arrays(f"{prefix}.{name}", images=images, labels=labels,
                    classes=np.array(classes, dtype=str))
    return decoded[split]


def _cache_fits(arrays: dict[str, np.ndarray]) -> bool:
    """A cached triple is consistent: uint8 NCHW images, int64 labels, 1-D class names."""
    images, labels, classes = arrays["images"], arrays["labels"], arrays["classes"]
    return (images.dtype == np.uint8 and images.ndim == 4 and labels.dtype == np.int64
            and labels.shape == images.shape[:1] and classes.ndim == 1 and classes.dtype.kind == "U"
            and (labels.size == 0 or 0 <= labels.min() <= labels.max() < len(classes)))
