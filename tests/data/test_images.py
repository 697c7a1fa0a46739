"""ImageFolder on tiny PNGs made with Pillow; decoding errors; Pillow missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from striate.data import ImageFolder, decode_images
from striate.errors import ConfigError, DataError

from .helpers import image_bytes


def _folder(root, sizes=None):
    """root/cat/{b,a}.png and root/dog/c.png with known pixels; returns them in dataset order."""
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    pixels = {name: rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
              for name in ("cat/a.png", "cat/b.png", "dog/c.png")}
    for name, p in pixels.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(image_bytes(p, "PNG"))
    (root / "dog" / "notes.txt").write_text("ignored")
    (root / ".hidden").mkdir()
    return [pixels["cat/a.png"], pixels["cat/b.png"], pixels["dog/c.png"]]


def test_image_folder_rgb(tmp_path):
    expected = _folder(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert ds.images.shape == (3, 3, 4, 5) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, np.stack(expected).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(ds.labels, [0, 0, 1])
    assert [p.rsplit("/", 2)[-2:] for p, _ in ds.samples] == [["cat", "a.png"], ["cat", "b.png"],
                                                              ["dog", "c.png"]]
    image, label = ds[2]
    assert label == 1 and image.shape == (3, 4, 5)


def test_image_folder_grey(tmp_path):
    from PIL import Image

    expected = _folder(tmp_path)
    ds = ImageFolder(tmp_path, mode="L")
    assert ds.images.shape == (3, 1, 4, 5)
    reference = np.asarray(Image.fromarray(expected[1]).convert("L"))
    np.testing.assert_array_equal(ds.images[1, 0], reference)


def test_image_folder_errors(tmp_path):
    _folder(tmp_path)
    (tmp_path / "dog" / "big.png").write_bytes(image_bytes(np.zeros((6, 6, 3), np.uint8), "PNG"))
    with pytest.raises(DataError, match=r"big.png is 6x6 but the first image .*a.png is 5x4"):
        ImageFolder(tmp_path)
    (tmp_path / "dog" / "big.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="cannot decode image .*big.png"):
        ImageFolder(tmp_path)
    (tmp_path / "dog" / "big.png").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="class folder .*empty has no image files"):
        ImageFolder(tmp_path)
    with pytest.raises(DataError, match="is not a directory"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(DataError, match="no class folders"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(ConfigError, match="mode must be one of .* received 'CMYK'"):
        ImageFolder(tmp_path, mode="CMYK")


def test_pillow_missing_gives_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="needs Pillow .*pip install pillow"):
        decode_images([("a.png", b"")])
