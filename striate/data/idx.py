"""IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.

Layout: two zero bytes, a type byte, the number of dimensions ``ndim``, then
``ndim`` big-endian uint32 sizes, then the values in C order, big-endian.
The header is checked against the file's real length before any array of the
claimed size is allocated, so a corrupt or hostile header cannot trigger a
huge allocation; truncated, over-long or corrupt files raise DataError with the
file name and the byte offset.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import DataError

__all__ = ["read_idx", "write_idx"]

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_NDIM = 8
# Deflate cannot expand data by more than about 1032:1; a header promising more is a lie.
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike, md5: str | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` detected from its magic bytes) into a native-endian array.

    Args:
        path: the file.
        md5: if given, the expected MD5 of the uncompressed content (header included).

    Shape:
        Output: the sizes stored in the header, e.g. (60000, 28, 28) for MNIST images.

    Returns:
        A writable array of the stored type (uint8 for the MNIST files).

    Raises:
        DataError: the file is missing, truncated, over-long, corrupt or has another checksum.
    """
    path = Path(path)
    try:
        file_size = path.stat().st_size
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
    except OSError as e:
        raise DataError(f"cannot read IDX file {path}: {e}") from e
    opener = gzip.open if compressed else open
    digest = hashlib.md5(usedforsecurity=False) if md5 else None
    try:
        with opener(path, "rb") as f:
            dtype, shape, header = _read_header(f, path, digest)
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            _check_size(path, shape, dtype, nbytes, len(header), file_size, compressed)
            payload = _read_payload(f, path, nbytes, len(header), digest)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated gzip stream: {e}") from e
    if digest is not None and digest.hexdigest() != md5.lower():
        raise DataError(f"{path}: content MD5 {digest.hexdigest()} differs from the published "
                        f"{md5.lower()}: the file is corrupt or belongs to another data set")
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)  # (d0, d1, ...) from the header
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _read_header(f: IO[bytes], path: Path, digest) -> tuple[np.dtype, tuple[int, ...], bytes]:
    """Parse and validate the magic number and sizes; return (dtype, shape, header bytes)."""
    magic = f.read(4)
    if len(magic) < 4:
        raise DataError(f"{path}: file ends at byte {len(magic)}, inside the 4-byte IDX magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{path}: not an IDX file: magic number {magic.hex()} at byte 0 should "
                        f"start with 0000")
    if magic[2] not in IDX_TYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{magic[2]:02x} at byte 2 "
                        f"(known: {', '.join(f'0x{c:02x}' for c in IDX_TYPES)})")
    ndim = magic[3]
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(f"{path}: IDX header at byte 3 claims {ndim} dimensions; expected 1 to {MAX_NDIM}")
    sizes = f.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: file ends at byte {4 + len(sizes)}, inside the IDX header "
                        f"({4 + 4 * ndim} bytes for {ndim} dimensions)")
    if digest is not None:
        digest.update(magic + sizes)
    shape = struct.unpack(f">{ndim}I", sizes)
    return IDX_TYPES[magic[2]], shape, magic + sizes


def _check_size(path: Path, shape: tuple[int, ...], dtype: np.dtype, nbytes: int, header_len: int,
                file_size: int, compressed: bool) -> None:
    """Refuse a header whose data cannot fit in the file, before allocating anything."""
    if compressed:
        if nbytes > file_size * _DEFLATE_MAX_RATIO:
            raise DataError(f"{path}: IDX header claims shape {shape} ({nbytes} bytes of {dtype}) "
                            f"but the compressed file has only {file_size} bytes; refusing it")
    elif nbytes != file_size - header_len:
        raise DataError(f"{path}: IDX header claims shape {shape} ({nbytes} data bytes) but the "
                        f"file has {file_size - header_len} bytes after its {header_len}-byte header")


def _read_payload(f: IO[bytes], path: Path, nbytes: int, offset: int, digest) -> bytearray:
    """Read exactly ``nbytes`` in chunks (memory grows with the real data only) and check the end."""
    buf = bytearray()
    while len(buf) < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - len(buf)))
        if not chunk:
            raise DataError(f"{path}: truncated: data ends at byte {offset + len(buf)} of the "
                            f"{'uncompressed ' if isinstance(f, gzip.GzipFile) else ''}content; "
                            f"the header promises {offset + nbytes} bytes")
        buf += chunk
    if f.read(1):
        raise DataError(f"{path}: unexpected extra data after byte {offset + nbytes}, where the "
                        f"header says the data ends")
    if digest is not None:
        digest.update(buf)
    return buf


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip-compressed when the name ends in ``.gz``).

    Args:
        path: destination file.
        array: uint8, int8, int16, int32, float32 or float64 values, 1 to 8 dimensions.
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= MAX_NDIM:
        raise DataError(f"write_idx cannot store dtype {array.dtype} with {array.ndim} dimensions")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
