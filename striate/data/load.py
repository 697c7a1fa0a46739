"""Finding, fetching and loading the known data sets: ``load_dataset`` and ``dataset_locations``.

Search order for a data set ``<name>`` (first complete copy wins):

1. the ``data_dir`` argument: ``data_dir/<folder>/`` then ``data_dir`` itself;
2. the ``STRIATE_DATA`` environment variable (a root like ``data_dir``; several
   roots may be separated by ``os.pathsep``);
3. the user cache ``$XDG_CACHE_HOME/striate/<name>`` (default ``~/.cache/striate/<name>``);
4. the system folders distributions install to (``/usr/share/datasets/<name>``,
   e.g. Debian's ``dataset-fashion-mnist`` package).

If none has the files and ``download=True``, the published files are fetched
into the user cache (MD5-checked, written atomically).  Files found locally
are checked too (IDX: MD5 of the uncompressed content; the official CIFAR-10
tarball: its MD5), so a corrupt file or another data set's file is refused
with DataError rather than returned as a wrong array.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .cifar import cached_decode, read_cifar_jpeg_tar, read_cifar_python
from .dataset import ArrayDataset
from .download import download_file
from .idx import read_idx
from .images import ImageFolder
from .registry import DatasetSpec, get_spec

__all__ = ["load_dataset", "dataset_locations", "cache_dir", "Location", "LoadedDataset"]

SPLITS = ("train", "test")
JPEG_TARBALL = "cifar10_jpeg_images.tar.gz"
BATCH_FOLDER = "cifar-10-batches-py"


@dataclass(frozen=True)
class Location:
    """One place searched for a data set and what was found there (split -> format)."""

    source: str
    path: Path
    found: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        what = ", ".join(f"{s}: {fmt}" for s, fmt in self.found.items()) or (
            "nothing usable" if self.path.is_dir() else "does not exist")
        return f"{self.source}: {self.path} ({what})"


class LoadedDataset(ArrayDataset):
    """An ArrayDataset that remembers which data set, split and file it came from."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str], name: str,
                 split: str, source: Path) -> None:
        super().__init__(images, labels, classes)
        self.name, self.split, self.source = name, split, source

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, {self.name} {self.split} from {self.source})"


def cache_dir(name: str) -> Path:
    """The user cache folder of a data set: ``$XDG_CACHE_HOME/striate/<name>`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "striate" / get_spec(name).name


def _search_dirs(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    """(source, folder) pairs in search order."""
    places = []

    def add_root(source: str, root: Path) -> None:
        places.extend((source, root / folder) for folder in spec.folders)
        places.append((source, root))

    if data_dir is not None:
        add_root("data_dir argument", Path(data_dir).expanduser())
    for root in filter(None, os.environ.get("STRIATE_DATA", "").split(os.pathsep)):
        add_root("STRIATE_DATA", Path(root).expanduser())
    places.append(("user cache", cache_dir(spec.name)))
    places.extend(("system", d) for d in spec.system_dirs)
    return places


def _find(spec: DatasetSpec, folder: Path, split: str) -> tuple[str, tuple[Path, ...]] | None:
    """What in ``folder`` can provide ``split``: (format, paths), or None."""
    if not folder.is_dir():
        return None
    if spec.kind == "idx":
        paths = []
        for remote in spec.files[split]:
            plain = folder / remote.name.removesuffix(".gz")
            existing = [p for p in (folder / remote.name, plain) if p.is_file()]
            if not existing:
                return None
            paths.append(existing[0])
        return "idx", tuple(paths)
    candidates = (("python", folder / spec.files[split][0].name, False),
                  ("python", folder / BATCH_FOLDER, True),
                  ("jpeg-tar", folder / JPEG_TARBALL, False),
                  ("image-folder", folder / split, True))
    for fmt, path, is_folder in candidates:
        if path.is_dir() if is_folder else path.is_file():
            return fmt, (path,)
    return None


def dataset_locations(name: str, data_dir: str | os.PathLike | None = None) -> list[Location]:
    """Every place searched for a data set, in order, with the splits found there.

    Args:
        name: 'mnist', 'fashion-mnist' or 'cifar10'.
        data_dir: an explicit folder, as given to :func:`load_dataset`.

    Returns:
        A list of Location(source, path, found={split: format}).
    """
    spec = get_spec(name)
    out = []
    for source, folder in _search_dirs(spec, data_dir):
        found = {}
        for split in SPLITS:
            hit = _find(spec, folder, split)
            if hit is not None:
                found[split] = hit[0] if hit[0] != "idx" else ", ".join(p.name for p in hit[1])
        out.append(Location(source, folder, found))
    return out


def _not_found(spec: DatasetSpec, split: str, data_dir, why: str) -> DataError:
    """The error listing every place looked at and how to provide the files."""
    places = [str(loc) for loc in dataset_locations(spec.name, data_dir)]
    skipped = (["data_dir argument: not given"] if data_dir is None else []) + (
        [] if os.environ.get("STRIATE_DATA") else ["STRIATE_DATA: not set"])
    looked = "\n".join(f"  - {line}" for line in skipped + places)
    names = ", ".join(dict.fromkeys(r.name for r in spec.files[split]))
    hint = f"\n  ({spec.hint})" if spec.hint else ""
    return DataError(
        f"{spec.name} ({split} split) not found. Looked in:\n{looked}\n{why}\n"
        f"To provide it: put {names} (from {spec.mirrors[0]}) in {cache_dir(spec.name)}, or pass "
        f"data_dir=<folder>, or set STRIATE_DATA=<folder containing {spec.folders[0]}/>{hint}"
    )


def _download(spec: DatasetSpec, split: str, data_dir) -> tuple[str, tuple[Path, ...]]:
    """Fetch the split's published files into the user cache; DataError with the search list."""
    target = cache_dir(spec.name)
    try:
        for remote in spec.files[split]:
            dest = target / remote.name
            if not dest.is_file():
                download_file([m + remote.name for m in spec.mirrors], dest, remote.md5, remote.size)
    except (DataError, OSError) as e:
        raise _not_found(spec, split, data_dir, f"Download failed: {e}") from e
    hit = _find(spec, target, split)
    if hit is None:  # pragma: no cover - download_file either wrote the files or raised
        raise _not_found(spec, split, data_dir, "Download left no usable files.")
    return hit


def _read(spec: DatasetSpec, split: str, fmt: str, paths: tuple[Path, ...]):
    """Decode a found copy into (images, labels, classes)."""
    if fmt == "idx":
        remote_images, remote_labels = spec.files[split]
        images = read_idx(paths[0], md5=remote_images.content_md5)
        labels = read_idx(paths[1], md5=remote_labels.content_md5)
        if images.dtype != np.uint8 or images.ndim != 3 or labels.dtype != np.uint8 \
                or labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{paths[0]} and {paths[1]}: expected uint8 images (N, H, W) and N "
                            f"uint8 labels; received {images.dtype} {images.shape} and "
                            f"{labels.dtype} {labels.shape}")
        return images[:, None], labels.astype(np.int64), list(spec.classes)  # (N, 1, H, W)
    if fmt == "image-folder":
        folder = ImageFolder(paths[0], mode="RGB")
        return folder.images, folder.labels, folder.classes
    reader = read_cifar_python if fmt == "python" else read_cifar_jpeg_tar
    md5 = spec.files[split][0].md5 if fmt == "python" else None
    return cached_decode(paths[0], split, cache_dir(spec.name), md5, reader)


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 download: bool = True) -> LoadedDataset:
    """Load a known data set's split into memory, finding or downloading its files.

    Args:
        name: 'mnist', 'fashion-mnist' or 'cifar10'.
        split: 'train' or 'test'.
        data_dir: a folder searched first (see the module docstring for the order).
        download: fetch the published files into the user cache if no copy is found.

    Shape:
        images: (N, 1, 28, 28) uint8 for MNIST/Fashion-MNIST (N = 60000 / 10000),
        (N, 3, 32, 32) uint8 for CIFAR-10 (N = 50000 / 10000); labels: (N,) int64.

    Returns:
        A LoadedDataset with ``.images``, ``.labels``, ``.classes``, ``.source``.
    """
    spec = get_spec(name)
    if split not in SPLITS:
        raise ConfigError(f"load_dataset: split must be 'train' or 'test'; received {split!r}")
    for _, folder in _search_dirs(spec, data_dir):
        hit = _find(spec, folder, split)
        if hit is not None:
            break
    else:
        if not download:
            raise _not_found(spec, split, data_dir, "Download is disabled (download=False).")
        hit = _download(spec, split, data_dir)
    images, labels, classes = _read(spec, split, *hit)
    if images.shape[1:] != spec.image_shape or len(classes) != len(spec.classes):
        raise DataError(f"{hit[1][0]}: {spec.name} images must be {spec.image_shape} in "
                        f"{len(spec.classes)} classes; received {images.shape[1:]}, {len(classes)}")
    return LoadedDataset(images, labels, classes, spec.name, split, hit[1][0])
