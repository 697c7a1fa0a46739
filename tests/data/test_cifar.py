"""CIFAR-10: pickled batches (restricted reader), the python tarball, the JPEG tarball, the cache."""

from __future__ import annotations

import dataclasses
import io
import pickle
import tarfile

import numpy as np
import pytest

import striate.data.load as load_module
from striate.data import load_dataset, read_cifar_batch, read_cifar_jpeg_tar, read_cifar_python
from striate.data import registry
from striate.data.registry import RemoteFile
from striate.errors import DataError

from .helpers import CIFAR_CLASSES, add_bytes, cifar_batch, image_bytes, make_cifar_python, md5_bytes
from .helpers import py2_pickle
from .test_pickle_reader import CALLS, Hostile


def test_batch_decodes_to_nchw():
    raw, images, labels = cifar_batch(4, seed=1)
    x, y = read_cifar_batch(raw, "data_batch_1")
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    # row layout: 1024 red values, then green, then blue
    flat = pickle.loads(raw, encoding="bytes")[b"data"]
    np.testing.assert_array_equal(x[2, 1].ravel(), flat[2, 1024:2048])


def test_batch_with_other_object_refused_unrun():
    data = np.zeros((1, 3072), np.uint8)
    raw = pickle.dumps({"data": data, "labels": [0], "extra": Hostile()}, protocol=2)
    CALLS.clear()
    with pytest.raises(DataError, match="data_batch_3: refusing global .*record_call"):
        read_cifar_batch(raw, "data_batch_3")
    assert CALLS == []


@pytest.mark.parametrize("obj,message", [
    ([1, 2], "expected a pickled dict"),
    ({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, r"'data' must be a uint8 array \(N, 3072\)"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "must be a uint8 array"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "1 labels in"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, r"range \[0, 10\]"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": "ab"}, "'labels' must be a list of ints"),
])
def test_malformed_batches(obj, message):
    with pytest.raises(DataError, match=message):
        read_cifar_batch(py2_pickle(obj), "b")


@pytest.mark.parametrize("tarball", [True, False])
def test_python_version_tarball_and_folder(tmp_path, tarball):
    source, arrays = make_cifar_python(tmp_path, tarball=tarball)
    out = read_cifar_python(source)
    for split in ("train", "test"):
        images, labels, classes = out[split]
        np.testing.assert_array_equal(images, arrays[split][0])
        np.testing.assert_array_equal(labels, arrays[split][1])
        assert classes == CIFAR_CLASSES
    assert out["train"][0].shape == (10, 3, 32, 32) and out["test"][0].shape == (3, 3, 32, 32)


def test_python_tarball_missing_member_and_truncation(tmp_path):
    source, _ = make_cifar_python(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="cannot read CIFAR-10 batch .*data_batch_4"):
        read_cifar_python(tmp_path / "cifar-10-batches-py")
    partial = tmp_path / "partial.tar"
    with tarfile.open(partial, "w") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(DataError, match=r"partial.tar: missing CIFAR-10 batch files \['data_batch_4'\]"):
        read_cifar_python(partial)
    data = source.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.tar.gz: corrupt or truncated tarball"):
        read_cifar_python(cut)


def _cifar_spec(env, tarball_bytes: bytes):
    spec = registry.DATASETS["cifar10"]
    remote = RemoteFile("cifar-10-python.tar.gz", md5_bytes(tarball_bytes), len(tarball_bytes))
    return dataclasses.replace(spec, files={"train": (remote,), "test": (remote,)})


def test_load_python_tarball_then_from_cache(env, tmp_path, monkeypatch):
    source, arrays = make_cifar_python(tmp_path / "src")
    monkeypatch.setitem(registry.DATASETS, "cifar10", _cifar_spec(env, source.read_bytes()))
    ds = load_dataset("cifar10", "test", data_dir=tmp_path / "src", download=False)
    np.testing.assert_array_equal(ds.images, arrays["test"][0])
    np.testing.assert_array_equal(ds.labels, arrays["test"][1])
    assert ds.classes == CIFAR_CLASSES and ds.source == source
    cached = sorted(p.name for p in env.cache("cifar10").iterdir())
    assert len(cached) == 6 and all(p.endswith(".npy") for p in cached)

    def fail(*args, **kwargs):
        raise AssertionError("decoded again instead of loading the cache")

    monkeypatch.setattr(load_module, "read_cifar_python", fail)
    ds = load_dataset("cifar10", "train", data_dir=tmp_path / "src", download=False)
    np.testing.assert_array_equal(ds.images, arrays["train"][0])
    np.testing.assert_array_equal(ds.labels, arrays["train"][1])


def test_download_official_tarball_into_cache(env, tmp_path, monkeypatch):
    source, arrays = make_cifar_python(tmp_path / "src")
    (env.remote / source.name).write_bytes(source.read_bytes())
    monkeypatch.setitem(registry.DATASETS, "cifar10", _cifar_spec(env, source.read_bytes()))
    ds = load_dataset("cifar10", "train")
    assert ds.source == env.cache("cifar10") / "cifar-10-python.tar.gz"
    np.testing.assert_array_equal(ds.images, arrays["train"][0])


def test_official_tarball_checksum_enforced(env, tmp_path, monkeypatch):
    source, _ = make_cifar_python(tmp_path / "src")
    with pytest.raises(DataError, match="cifar-10-python.tar.gz: MD5 checksum mismatch: expected "
                                        "c58f30108f718f92721af3b95e74349a"):
        load_dataset("cifar10", "train", data_dir=tmp_path / "src", download=False)


def _jpeg_tarball(path, n_per_class=2):
    """train/<class>/NNNN.jpg for 10 classes (written in scrambled order), test/ with 1 each."""
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    blobs = {}
    for split, n in (("train", n_per_class), ("test", 1)):
        for cls in CIFAR_CLASSES:
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                blobs[f"{split}/{cls}/{i:04d}.jpg"] = image_bytes(pixels, "JPEG")
    names = sorted(blobs)[::-1]  # reverse order in the archive: the reader must sort
    with tarfile.open(path, "w:gz") as tar:
        add_bytes(tar, "README.md", b"not an image")
        for name in names:
            add_bytes(tar, name, blobs[name])
    return blobs


def _decoded(blob: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")).transpose(2, 0, 1)


def test_jpeg_tarball_order_labels_pixels(tmp_path):
    path = tmp_path / "c.tar.gz"
    blobs = _jpeg_tarball(path)
    out = read_cifar_jpeg_tar(path)
    images, labels, classes = out["train"]
    assert classes == CIFAR_CLASSES and images.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
    for k, name in enumerate(n for n in sorted(blobs) if n.startswith("train/")):
        np.testing.assert_array_equal(images[k], _decoded(blobs[name]))
    assert out["test"][0].shape == (10, 3, 32, 32)


def test_load_jpeg_tarball_cached_by_checksum(env, tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cifar10-jpeg"
    folder.mkdir(parents=True)
    blobs = _jpeg_tarball(folder / "cifar10_jpeg_images.tar.gz")
    monkeypatch.setenv("STRIATE_DATA", str(tmp_path / "data"))
    ds = load_dataset("cifar10", "test", download=False)
    np.testing.assert_array_equal(ds.labels, np.arange(10))
    np.testing.assert_array_equal(ds.images[3], _decoded(blobs["test/cat/0000.jpg"]))
    monkeypatch.setattr(load_module, "read_cifar_jpeg_tar", lambda *a: pytest.fail("not cached"))
    again = load_dataset("cifar10", "test", download=False)
    np.testing.assert_array_equal(again.images, ds.images)


def test_jpeg_tarball_wrong_size_and_empty_split(tmp_path):
    pytest.importorskip("PIL")
    path = tmp_path / "c.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add_bytes(tar, "train/cat/0.jpg", image_bytes(np.zeros((8, 8, 3), np.uint8), "JPEG"))
    with pytest.raises(DataError, match="no images under a 'test/<class>/' folder"):
        read_cifar_jpeg_tar(path)
    with pytest.raises(DataError, match=r"32x32 RGB images in 10 class folders; received \(3, 8, 8\)"):
        read_cifar_jpeg_tar(path, splits=("train",))
