"""Checksums, atomic writes and the decoded-array cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from striate.data import md5_file, verify_md5
from striate.data.files import atomic_write, load_arrays, save_arrays
from striate.errors import DataError


def test_md5(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert md5_file(path) == hashlib.md5(b"abc" * 1000).hexdigest()
    verify_md5(path, hashlib.md5(b"abc" * 1000).hexdigest().upper())
    with pytest.raises(DataError, match=r"f: MD5 checksum mismatch: expected 0{32}, received"):
        verify_md5(path, "0" * 32)
    with pytest.raises(DataError, match="cannot read .*missing"):
        md5_file(tmp_path / "missing")


def test_atomic_write_replaces_or_leaves_nothing(tmp_path):
    dest = tmp_path / "sub" / "out.bin"
    with atomic_write(dest) as f:
        f.write(b"first")
    assert dest.read_bytes() == b"first"
    with pytest.raises(RuntimeError):
        with atomic_write(dest) as f:
            f.write(b"second, half written")
            raise RuntimeError("interrupted")
    assert dest.read_bytes() == b"first"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.bin"]


def test_array_cache_round_trip_and_damage(tmp_path):
    prefix = tmp_path / "c" / "key.train"
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 2, 2)
    assert save_arrays(prefix, images=images, classes=np.array(["a", "b"]))
    out = load_arrays(prefix, ("images", "classes"))
    np.testing.assert_array_equal(out["images"], images)
    assert out["classes"].tolist() == ["a", "b"]
    assert load_arrays(prefix, ("images", "labels")) is None
    (tmp_path / "c" / "key.train.images.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(UserWarning, match="ignoring unreadable cache"):
        assert load_arrays(prefix, ("images",)) is None
