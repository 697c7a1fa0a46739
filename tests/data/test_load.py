"""Finding data sets (data_dir, STRIATE_DATA, user cache, system), downloading them, real data."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import striate.data.download as download_module
from striate.data import cache_dir, dataset_locations, download_file, load_dataset, registry
from striate.errors import ConfigError, DataError

from .helpers import idx_spec, make_idx_set, md5_bytes

NAME = "fashion-mnist"


@pytest.fixture
def fake(env, monkeypatch):
    """Fake Fashion-MNIST files published at env.remote, with their checksums in the registry."""
    arrays = make_idx_set(env.remote)
    spec = idx_spec(registry.DATASETS[NAME], env.remote, (env.remote.as_uri() + "/",),
                    (env.system / NAME,))
    monkeypatch.setitem(registry.DATASETS, NAME, spec)
    return arrays


def _copy(env, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in env.remote.iterdir():
        shutil.copy(f, folder / f.name)
    return folder


def test_search_order(env, fake, tmp_path, monkeypatch):
    given = _copy(env, tmp_path / "given" / NAME)
    envdir = _copy(env, tmp_path / "envroot" / NAME)
    cache = _copy(env, env.cache(NAME))
    system = _copy(env, env.system / NAME)
    monkeypatch.setenv("STRIATE_DATA", str(tmp_path / "envroot"))
    for expected in (given, envdir, cache, system):
        ds = load_dataset(NAME, "train", data_dir=tmp_path / "given", download=False)
        assert ds.source.parent == expected
        np.testing.assert_array_equal(ds.images[:, 0], fake["train"][0])
        np.testing.assert_array_equal(ds.labels, fake["train"][1])
        shutil.rmtree(expected)


def test_data_dir_may_hold_the_files_directly_uncompressed(env, fake, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    for f in env.remote.iterdir():
        (folder / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
    ds = load_dataset(NAME, "test", data_dir=folder, download=False)
    assert ds.source == folder / "t10k-images-idx3-ubyte"
    assert ds.images.shape == (4, 1, 28, 28) and ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, fake["test"][1])
    assert ds.classes[0] == "T-shirt/top"


def test_dataset_locations_reports_each_place(env, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("STRIATE_DATA", str(tmp_path / "envroot"))
    _copy(env, env.cache(NAME))
    (env.system / NAME).mkdir()
    (env.system / NAME / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    locations = dataset_locations(NAME, data_dir=tmp_path / "given")
    sources = [loc.source for loc in locations]
    assert sources == ["data_dir argument"] * 4 + ["STRIATE_DATA"] * 4 + ["user cache", "system"]
    cache = locations[sources.index("user cache")]
    assert cache.path == env.cache(NAME) == cache_dir(NAME)
    assert set(cache.found) == {"train", "test"}
    assert locations[-1].found == {} and "nothing usable" in str(locations[-1])
    assert "does not exist" in str(locations[0])


def test_not_found_offline_names_every_place(env, fake, tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(NAME, "train", data_dir=tmp_path / "given", download=False)
    message = str(info.value)
    for text in ("fashion-mnist (train split) not found", str(tmp_path / "given" / NAME),
                 "STRIATE_DATA: not set", str(env.cache(NAME)), str(env.system / NAME),
                 "download=False", "train-images-idx3-ubyte.gz", "apt-get install dataset-fashion-mnist"):
        assert text in message, text


def test_download_into_cache(env, fake):
    ds = load_dataset(NAME, "test")
    assert ds.source == env.cache(NAME) / "t10k-images-idx3-ubyte.gz"
    np.testing.assert_array_equal(ds.labels, fake["test"][1])
    assert sorted(p.name for p in env.cache(NAME).iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    (env.remote / "t10k-images-idx3-ubyte.gz").unlink()  # now offline: the cache serves
    np.testing.assert_array_equal(load_dataset(NAME, "test").images, ds.images)


def test_download_checksum_mismatch_leaves_nothing(env, fake, monkeypatch):
    spec = registry.DATASETS[NAME]
    images, labels = spec.files["train"]
    bad = type(images)(images.name, "0" * 32, images.size, images.content_md5)
    monkeypatch.setitem(registry.DATASETS, NAME, dataclasses.replace(
        spec, files={**spec.files, "train": (bad, labels)}))
    with pytest.raises(DataError, match=r"(?s)not found.*Download failed.*MD5 checksum mismatch: "
                                        r"expected 0{32}"):
        load_dataset(NAME, "train")
    assert not env.cache(NAME).exists() or list(env.cache(NAME).iterdir()) == []


def test_download_tries_mirrors_and_checks_size(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    payload = b"published bytes" * 100
    (good / "f.bin").write_bytes(payload)
    dest = tmp_path / "cache" / "f.bin"
    urls = [(tmp_path / "missing" / "f.bin").as_uri(), (good / "f.bin").as_uri()]
    download_file(urls, dest, md5_bytes(payload), len(payload))
    assert dest.read_bytes() == payload
    dest.unlink()
    with pytest.raises(DataError, match=r"received 1500 bytes, the published file has 1501"):
        download_file(urls[1:], dest, md5_bytes(payload), len(payload) + 1)
    with pytest.raises(DataError, match="received more than the published 10 bytes"):
        download_file(urls[1:], dest, md5_bytes(payload), 10)
    assert list(dest.parent.iterdir()) == []


def test_download_network_error_is_reported(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(download_module, "urlopen", offline)
    with pytest.raises(DataError, match=r"could not download f.bin:\n  https://example.invalid/f.bin: "
                                        r"URLError: .*name resolution"):
        download_file(["https://example.invalid/f.bin"], tmp_path / "f.bin", "0" * 32)


def test_corrupt_local_copy_is_refused(env, fake):
    cache = _copy(env, env.cache(NAME))
    data = (cache / "train-labels-idx1-ubyte.gz").read_bytes()
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(data[:-9])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: corrupt or truncated gzip"):
        load_dataset(NAME, "train")


def test_bad_arguments(env):
    with pytest.raises(ConfigError, match="unknown data set 'imagenet'; known: mnist"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="split must be 'train' or 'test'; received 'val'"):
        load_dataset("mnist", "val")
    assert cache_dir("Fashion_MNIST") == cache_dir("fashion-mnist")


def _shared_data() -> Path | None:
    for root in (Path(__file__).resolve().parents[3] / "shared" / "data", Path("/work/shared/data")):
        if (root / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file():
            return root
    return None


@pytest.mark.skipif(_shared_data() is None, reason="real Fashion-MNIST files not available")
def test_real_fashion_mnist():
    ds = load_dataset(NAME, "train", data_dir=_shared_data(), download=False)
    assert ds.images.shape == (60000, 1, 28, 28) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(ds.labels), [6000] * 10)
    assert len(ds.classes) == 10
