"""File helpers for data sets: MD5 checksums, atomic writes, the decoded-array cache.

Everything written by striate (downloads, decoded arrays) goes through
:func:`atomic_write`: a temporary file in the destination's own directory,
flushed and fsync'ed, then renamed over the destination with ``os.replace``.
A crash or a failed check leaves either the old file or nothing, never half a
file.  Cached arrays are ``.npy`` files, read back with ``allow_pickle=False`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from ..errors import DataError

__all__ = ["md5_file", "verify_md5", "atomic_write", "save_arrays", "load_arrays"]

_CHUNK = 1 << 20


def md5_file(path: str | os.PathLike) -> str:
    """Return the hex MD5 digest of a file's bytes.

    Args:
        path: the file to hash.

    Returns:
        32 lowercase hex digits.
    """
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as e:
        raise DataError(f"cannot read {path} to check its checksum: {e}") from e
    return digest.hexdigest()


def verify_md5(path: str | os.PathLike, expected: str) -> None:
    """Raise DataError unless ``path`` has MD5 ``expected``.

    Args:
        path: the file to check.
        expected: the published hex digest.
    """
    actual = md5_file(path)
    if actual != expected.lower():
        raise DataError(
            f"{path}: MD5 checksum mismatch: expected {expected.lower()}, received {actual} "
            f"(the file is corrupt, truncated or not the published one; delete it and fetch it again)"
        )


@contextlib.contextmanager
def atomic_write(dest: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``dest``; on success fsync it and rename it to ``dest``.

    If the body raises, the temporary file is removed and ``dest`` is untouched.

    Args:
        dest: the final path; its directory is created if needed.

    Returns:
        A context manager yielding a binary file object to write into.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache file is ordinary data
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: not every platform can fsync a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _array_path(prefix: Path, name: str) -> Path:
    return prefix.with_name(f"{prefix.name}.{name}.npy")


def save_arrays(prefix: str | os.PathLike, **arrays: np.ndarray) -> bool:
    """Write each array to ``<prefix>.<name>.npy`` atomically; warn and return False on failure.

    Args:
        prefix: path prefix of the files (its directory is created).
        **arrays: plain numeric or unicode arrays (nothing that needs pickle).

    Returns:
        True when every file was written.
    """
    prefix = Path(prefix)
    try:
        for name, array in arrays.items():
            with atomic_write(_array_path(prefix, name)) as f:
                np.save(f, array, allow_pickle=False)
    except OSError as e:
        warnings.warn(f"striate: could not cache decoded arrays as {prefix}.*.npy: {e}", stacklevel=3)
        return False
    return True


def load_arrays(prefix: str | os.PathLike, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Read back arrays written by :func:`save_arrays`; None if any is absent or unreadable.

    Args:
        prefix: the path prefix given to :func:`save_arrays`.
        names: the arrays to read.

    Returns:
        A dict name -> array, or None (the caller then rebuilds the cache).
    """
    prefix = Path(prefix)
    paths = {name: _array_path(prefix, name) for name in names}
    if not all(p.is_file() for p in paths.values()):
        return None
    try:
        for p in paths.values():
            _check_npy_size(p)
        return {name: np.load(p, allow_pickle=False) for name, p in paths.items()}
    except (OSError, ValueError, EOFError, MemoryError) as e:
        warnings.warn(f"striate: ignoring unreadable cache {prefix}.*.npy ({e}); rebuilding it",
                      stacklevel=3)
        return None


def _check_npy_size(path: Path) -> None:
    """ValueError unless the ``.npy`` header's shape and dtype match the file's size exactly.

    Checked before np.load, which would allocate whatever a damaged header claims.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
        actual = os.fstat(f.fileno()).st_size - f.tell()
    if expected != actual:
        raise ValueError(f"{path}: header claims {shape} of {dtype} ({expected} bytes) but the "
                         f"file holds {actual}")
