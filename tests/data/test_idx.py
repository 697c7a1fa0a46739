"""IDX reading: exact arrays from hand-made files; every kind of damage raises DataError."""

from __future__ import annotations

import gzip
import hashlib
import struct
import time

import numpy as np
import pytest

from striate.data import read_idx, write_idx
from striate.errors import DataError

from .helpers import idx_bytes


@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                        (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
@pytest.mark.parametrize("gz", [False, True])
def test_read_hand_made_files(tmp_path, dtype, code, gz):
    rng = np.random.default_rng(code)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    data = idx_bytes(array, code)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    assert out.flags.writeable


def test_write_idx_matches_independent_encoding(tmp_path):
    labels = np.array([7, 2, 1, 0, 4], dtype=np.uint8)
    write_idx(tmp_path / "l.idx", labels)
    assert (tmp_path / "l.idx").read_bytes() == b"\x00\x00\x08\x01\x00\x00\x00\x05" + labels.tobytes()
    write_idx(tmp_path / "l.idx.gz", labels)
    assert gzip.decompress((tmp_path / "l.idx.gz").read_bytes()) == (tmp_path / "l.idx").read_bytes()
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "bad.idx", np.zeros(3, dtype=np.int64))


def test_content_md5_checked(tmp_path):
    data = idx_bytes(np.arange(10, dtype=np.uint8), 0x08)
    path = tmp_path / "l.idx.gz"
    path.write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_idx(path, md5=hashlib.md5(data).hexdigest()), np.arange(10))
    with pytest.raises(DataError, match="l.idx.gz.*content MD5"):
        read_idx(path, md5="0" * 32)


def _raw(tmp_path, data: bytes, gz: bool = False):
    path = tmp_path / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("data,message", [
    (b"\x00\x00", "ends at byte 2, inside the 4-byte IDX magic"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x07 at byte 2"),
    (b"\x00\x00\x08\x00", "claims 0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00", "ends at byte 9, inside the IDX header"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_bad_headers(tmp_path, data, message, gz):
    path = _raw(tmp_path, data, gz)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_and_overlong_plain_file(tmp_path):
    header = b"\x00\x00\x08\x02" + struct.pack(">II", 3, 4)
    with pytest.raises(DataError, match=r"claims shape \(3, 4\) \(12 data bytes\) but the file has "
                                        r"11 bytes after its 12-byte header"):
        read_idx(_raw(tmp_path, header + bytes(11)))
    with pytest.raises(DataError, match="13 bytes after"):
        read_idx(_raw(tmp_path, header + bytes(13)))


def test_truncated_and_overlong_gzip_content(tmp_path):
    header = b"\x00\x00\x08\x02" + struct.pack(">II", 3, 4)
    with pytest.raises(DataError, match="truncated: data ends at byte 23 of the uncompressed "
                                        "content; the header promises 24 bytes"):
        read_idx(_raw(tmp_path, header + bytes(11), gz=True))
    with pytest.raises(DataError, match="extra data after byte 24"):
        read_idx(_raw(tmp_path, header + bytes(13), gz=True))


def test_absurd_header_refused_before_allocating(tmp_path):
    header = b"\x00\x00\x0e\x03" + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    start = time.perf_counter()
    for gz in (False, True):
        with pytest.raises(DataError, match="claims shape .4294967295"):
            read_idx(_raw(tmp_path, header + bytes(16), gz=gz))
    assert time.perf_counter() - start < 1.0


def test_damaged_gzip_stream(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    packed = gzip.compress(idx_bytes(array, 0x08))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="cut.gz: .*(truncated|corrupt)"):
        read_idx(cut)
    flipped = bytearray(packed)
    flipped[-6] ^= 0xFF  # inside the CRC32 trailer
    bad = tmp_path / "crc.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="crc.gz: corrupt or truncated gzip stream"):
        read_idx(bad)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read IDX file .*nope"):
        read_idx(tmp_path / "nope")
