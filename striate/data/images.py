"""Image files (PNG, JPEG, ...) through Pillow: ImageFolder and class folders inside a tarball.

Pillow is an optional dependency (``pip install 'striate[images]'``), imported
only when an image is actually decoded.  Images are decoded into one uint8
array (N, C, H, W); all images of a data set must have the same size.  Classes
are the sorted sub-folder names and samples are ordered by class, then by file
name (torchvision's ``ImageFolder`` order).
"""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import ArrayDataset

__all__ = ["ImageFolder", "IMG_EXTENSIONS", "decode_images", "read_image_tar"]

IMG_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP",
                  ".ppm": "PPM", ".pgm": "PPM"}
_MODES = {"RGB": 3, "L": 1}
_MAX_MEMBER_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 50_000_000


def _check_pixels(name: str, im: Any) -> None:
    """DataError before decoding an image whose header claims more than MAX_IMAGE_PIXELS.

    Pillow reads only the header on open, so a small file claiming a huge size
    (a decompression bomb) is refused without allocating its pixels.
    """
    if im.width * im.height > MAX_IMAGE_PIXELS:
        raise DataError(f"{name}: image of {im.width}x{im.height} pixels is larger than "
                        f"the limit of {MAX_IMAGE_PIXELS:,} pixels")


def require_pillow() -> Any:
    """Import and return ``PIL.Image``, or raise MissingDependencyError saying how to install it."""
    from ..errors import MissingDependencyError

    try:
        from PIL import Image
    except ImportError as e:
        raise MissingDependencyError(
            "striate needs Pillow to decode PNG/JPEG images, and it is not installed: "
            "pip install pillow  (or pip install 'striate[images]')"
        ) from e
    return Image


def decode_images(sources: Sequence[tuple[str, Any]], mode: str = "RGB") -> np.ndarray:
    """Decode image files or in-memory file contents into one uint8 array.

    Args:
        sources: (name, path or bytes) pairs; ``name`` picks the format from its extension
            and appears in error messages.
        mode: Pillow mode of the result, 'RGB' (3 channels) or 'L' (1 channel, grey).

    Shape:
        Output: (N, C, H, W), C = 3 for 'RGB' and 1 for 'L'; every image must be H x W.

    Returns:
        A uint8 array.
    """
    if mode not in _MODES:
        raise ConfigError(f"decode_images: mode must be one of {sorted(_MODES)}; received {mode!r}")
    Image = require_pillow()
    out = None
    for k, (name, src) in enumerate(sources):
        fmt = IMG_EXTENSIONS.get(os.path.splitext(name)[1].lower())
        try:
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src,
                            formats=(fmt,) if fmt else None) as im:
                _check_pixels(name, im)
                pixels = np.asarray(im if im.mode == mode else im.convert(mode))
        except DataError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise DataError(f"cannot decode image {name}: {e}") from e
        pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)  # (H, W, C)
        if out is None:
            out = np.empty((len(sources), *pixels.shape), dtype=np.uint8)  # (N, H, W, C)
        elif pixels.shape != out.shape[1:]:
            raise DataError(f"image {name} is {pixels.shape[1]}x{pixels.shape[0]} but the first image "
                            f"{sources[0][0]} is {out.shape[2]}x{out.shape[1]}; all images of a "
                            f"data set must have the same size")
        out[k] = pixels
    if out is None:
        return np.empty((0, _MODES[mode], 0, 0), dtype=np.uint8)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))  # (N, C, H, W)


def _class_samples(root: Path) -> tuple[list[str], list[tuple[str, Path, int]]]:
    """Sorted class folders of ``root`` and their (name, path, label) image files."""
    if not root.is_dir():
        raise DataError(f"ImageFolder: {root} is not a directory (expected root/<class>/<image>)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"ImageFolder: no class folders in {root} (expected root/<class>/<image>)")
    samples = []
    for label, cls in enumerate(classes):
        files = sorted(f for f in (root / cls).iterdir()
                       if f.is_file() and f.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise DataError(f"ImageFolder: class folder {root / cls} has no image files "
                            f"({', '.join(sorted(IMG_EXTENSIONS))})")
        samples += [(str(f), f, label) for f in files]
    return classes, samples


class ImageFolder(ArrayDataset):
    """All images of ``root/<class>/<image>`` decoded into memory, labelled by folder.

    Args:
        root: the folder holding one sub-folder per class.
        mode: 'RGB' (3 channels) or 'L' (grey, 1 channel).

    Shape:
        images: (N, C, H, W) uint8; labels: (N,) int64, the index of the sorted class name.

    Returns:
        The data set, with ``.classes``, ``.class_to_idx`` and ``.samples``
        (list of (path, label)) as in torchvision.
    """

    def __init__(self, root: str | os.PathLike, mode: str = "RGB") -> None:
        if mode not in _MODES:
            raise ConfigError(f"ImageFolder: mode must be one of {sorted(_MODES)}; received {mode!r}")
        self.root = Path(root)
        classes, samples = _class_samples(self.root)
        images = decode_images([(name, path) for name, path, _ in samples], mode)
        labels = np.array([label for _, _, label in samples], dtype=np.int64)
        super().__init__(images, labels, classes)
        self.class_to_idx = {c: i for i, c in enumerate(classes)}
        self.samples = [(str(path), label) for _, path, label in samples]


def _tar_members(path: str | os.PathLike, splits: Sequence[str]) -> list[tuple[str, ...]]:
    """(split, class, file name, member name, bytes) of ``.../<split>/<class>/<image>`` members."""
    members, offset = [], 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                offset = member.offset
                parts = member.name.rsplit("/", 3)
                if not member.isfile() or len(parts) < 3 or parts[-3] not in splits:
                    continue
                if os.path.splitext(parts[-1])[1].lower() not in IMG_EXTENSIONS:
                    continue
                if member.size > _MAX_MEMBER_BYTES:
                    raise DataError(f"{path}: member {member.name} is {member.size} bytes, too "
                                    f"large for an image of a data set")
                data = tar.extractfile(member).read()
                members.append((parts[-3], parts[-2], parts[-1], member.name, data))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated tarball (after the member at byte "
                        f"{offset}): {e}") from e
    return members


def read_image_tar(path: str | os.PathLike, splits: Sequence[str] = ("train", "test"),
                   mode: str = "RGB") -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """Decode ``.../<split>/<class>/<image>`` members of a tarball in one pass, without extracting.

    Args:
        path: a tar file (any compression tarfile reads).
        splits: the folder names to read, e.g. ('train', 'test'); each must hold images.
        mode: 'RGB' or 'L'.

    Shape:
        images: (N, C, H, W) uint8; labels: (N,) int64.

    Returns:
        {split: (images, labels, classes)}, each ordered by class then file name.
    """
    members = _tar_members(path, tuple(splits))
    out = {}
    for split in splits:
        chosen = sorted(m for m in members if m[0] == split)
        if not chosen:
            raise DataError(f"{path}: no images under a '{split}/<class>/' folder")
        classes = sorted({m[1] for m in chosen})
        index = {c: i for i, c in enumerate(classes)}
        images = decode_images([(f"{path}:{m[3]}", m[4]) for m in chosen], mode)
        labels = np.array([index[m[1]] for m in chosen], dtype=np.int64)
        out[split] = (images, labels, classes)
    return out


def load_image_for_model(path: str | os.PathLike, shape: tuple[int, int, int]) -> np.ndarray:
    """Read one image file and fit it to a model's input: channels, then size.

    Args:
        path: a PNG/JPEG/... file.
        shape: the model's input (C, H, W); C = 1 converts to grey, 3 to RGB.

    Shape:
        Output: (C, H, W) uint8, resized (bilinear) if the file's size differs.

    Raises:
        DataError: not an image, or larger than MAX_IMAGE_PIXELS pixels.
    """
    Image = require_pillow()
    c, h, w = shape
    mode = "L" if c == 1 else "RGB"
    name = os.fspath(path)
    try:
        with Image.open(name) as im:
            _check_pixels(name, im)
            im = im.convert(mode)
            if im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
            pixels = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{name}: no such image file") from None
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{name}: not a readable image ({e})") from None
    return pixels.reshape(h, w, -1).transpose(2, 0, 1).copy()          # (C, H, W)
