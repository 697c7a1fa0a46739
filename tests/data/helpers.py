"""Builders of small data files for the data tests: IDX sets, CIFAR pickles and tarballs, images."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import struct
import tarfile
from pathlib import Path

import numpy as np

from striate.data.idx import write_idx
from striate.data.registry import RemoteFile


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """IDX encoding written independently of striate (header + big-endian values)."""
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def make_idx_set(folder: Path, n_train: int = 6, n_test: int = 4, seed: int = 0,
                 gz: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write MNIST-like IDX files (28x28 uint8) into ``folder``; return the arrays per split."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        out[split] = (images, labels)
    return out


def idx_spec(spec, folder: Path, mirrors: tuple[str, ...], system_dirs: tuple[Path, ...]):
    """A copy of an IDX DatasetSpec whose checksums are those of the fake files in ``folder``."""
    files = {}
    for split, remotes in spec.files.items():
        new = []
        for r in remotes:
            data = (folder / r.name).read_bytes()
            new.append(RemoteFile(r.name, md5_bytes(data), len(data),
                                  md5_bytes(gzip.decompress(data))))
        files[split] = tuple(new)
    return dataclasses.replace(spec, files=files, mirrors=mirrors, system_dirs=system_dirs)


# -- Python 2 style pickles (what the official CIFAR-10 batches are) ---------------------------

class _Py2Writer:
    """Writes protocol 2 the way Python 2's cPickle did: str as BINSTRING, memo puts."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo = 0

    def put(self) -> None:
        self.out += b"q" + bytes([self.memo % 256]) if self.memo < 256 else \
            b"r" + struct.pack("<I", self.memo)
        self.memo += 1

    def string(self, s: bytes) -> None:
        self.out += (b"U" + bytes([len(s)])) if len(s) < 256 else (b"T" + struct.pack("<i", len(s)))
        self.out += s
        self.put()

    def write(self, o) -> None:
        w = self.out
        if o is None:
            w += b"N"
        elif isinstance(o, bool):
            w += b"\x88" if o else b"\x89"
        elif isinstance(o, int):
            w += b"K" + bytes([o]) if 0 <= o < 256 else b"J" + struct.pack("<i", o)
        elif isinstance(o, (str, bytes)):
            self.string(o.encode("latin1") if isinstance(o, str) else o)
        elif isinstance(o, dict):
            w += b"}"
            self.put()
            w += b"("
            for k, v in o.items():
                self.write(k)
                self.write(v)
            w += b"u"
        elif isinstance(o, list):
            w += b"]"
            self.put()
            w += b"("
            for v in o:
                self.write(v)
            w += b"e"
        elif isinstance(o, np.ndarray):
            self.array(o)
        else:
            raise TypeError(type(o))

    def array(self, a: np.ndarray) -> None:
        w = self.out
        w += b"cnumpy.core.multiarray\n_reconstruct\n"
        self.put()
        w += b"cnumpy\nndarray\n"
        self.put()
        w += b"K\x00\x85U\x01b\x87R"
        self.put()
        w += b"(K\x01"
        w += b"("
        for size in a.shape:
            self.write(int(size))
        w += b"t"
        w += b"cnumpy\ndtype\n"
        self.put()
        code = a.dtype.str[1:].encode()
        order = a.dtype.str[0].encode()
        w += b"U" + bytes([len(code)]) + code + b"K\x00K\x01\x87R"
        self.put()
        w += b"(K\x03U\x01" + order + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        w += b"\x89"
        self.string(a.tobytes())
        w += b"tb"


def py2_pickle(obj) -> bytes:
    writer = _Py2Writer()
    writer.write(obj)
    writer.out += b"."
    return bytes(writer.out)


def cifar_batch(n: int, seed: int, name: str = "batch") -> tuple[bytes, np.ndarray, np.ndarray]:
    """A CIFAR-10 style batch: (pickle bytes, images (n, 3, 32, 32), labels (n,))."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    obj = {"batch_label": f"{name} of 5", "labels": labels, "data": data,
           "filenames": [f"img_{seed}_{i}.png" for i in range(n)]}
    return py2_pickle(obj), data.reshape(n, 3, 32, 32), np.array(labels)


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


def make_cifar_python(folder: Path, tarball: bool = True):
    """cifar-10-batches-py/ (5 train batches of 2, test of 3) and optionally its tar.gz.

    Returns (path, {split: (images, labels)}).
    """
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True, exist_ok=True)
    train = []
    for i in range(1, 6):
        data, x, y = cifar_batch(2, seed=i, name=f"training batch {i}")
        (batches / f"data_batch_{i}").write_bytes(data)
        train.append((x, y))
    data, tx, ty = cifar_batch(3, seed=99, name="testing batch 1")
    (batches / "test_batch").write_bytes(data)
    meta = {"num_cases_per_batch": 2, "label_names": CIFAR_CLASSES, "num_vis": 3072}
    (batches / "batches.meta").write_bytes(py2_pickle(meta))
    arrays = {"train": (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
              "test": (tx, ty)}
    if not tarball:
        return batches, arrays
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    return path, arrays


def image_bytes(pixels: np.ndarray, fmt: str) -> bytes:
    """Encode (H, W, 3) or (H, W) uint8 pixels with Pillow."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def fake_fashion_mnist(tmp_path: Path, monkeypatch, n_train: int, n_test: int, seed: int):
    """A small Fashion-MNIST look-alike under tmp_path/data, accepted by the registry for the test.

    Writes the IDX files, points the registry's spec at their checksums (no mirrors, no
    system folders), and isolates HOME and STRIATE_DATA so no real copy is found.

    Returns:
        (the data folder, the arrays make_idx_set wrote).
    """
    from striate.data import registry

    folder = tmp_path / "data" / "fashion-mnist"
    arrays = make_idx_set(folder, n_train=n_train, n_test=n_test, seed=seed)
    spec = registry.DATASETS["fashion-mnist"]
    monkeypatch.setitem(registry.DATASETS, "fashion-mnist",
                        idx_spec(spec, folder, mirrors=(), system_dirs=()))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STRIATE_DATA", raising=False)
    return tmp_path / "data", arrays
