"""The known data sets: their files, published checksums, official URLs and classes.

``md5`` is the checksum of the file as published (what a download must match);
``content_md5`` is that of the uncompressed IDX content, which also holds for
re-compressed copies such as Debian's ``dataset-fashion-mnist`` package (its
gzip headers differ from the published files, the content does not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

__all__ = ["RemoteFile", "DatasetSpec", "DATASETS", "get_spec"]


@dataclass(frozen=True)
class RemoteFile:
    """One published file: name, MD5 and size as published, MD5 of the uncompressed content."""

    name: str
    md5: str
    size: int
    content_md5: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find, fetch and check one data set.

    ``files`` maps a split to its published files (IDX: images then labels;
    CIFAR-10: the one tarball holding both splits).  ``folders`` are the names
    of the data set's folder under a data root (``$STRIATE_DATA/<folder>``).
    """

    name: str
    kind: str
    folders: tuple[str, ...]
    files: dict[str, tuple[RemoteFile, ...]]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    system_dirs: tuple[Path, ...] = ()
    hint: str = ""
    image_shape: tuple[int, ...] = field(default=(1, 28, 28))


_SYSTEM_ROOTS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist", kind="idx", folders=("fashion-mnist", "fashion_mnist", "FashionMNIST"),
    files={
        "train": (RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                             26421880, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
                  RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
                             29515, "9018921c3c673c538a1fc5bad174d6f9")),
        "test": (RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
                            4422102, "8181f5470baa50b63fa0f6fddb340f0a"),
                 RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
                            5148, "15d484375f8d13e6eb1aabb0c3f46965")),
    },
    mirrors=("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"),
    system_dirs=tuple(root / "fashion-mnist" for root in _SYSTEM_ROOTS),
    hint="on Debian/Ubuntu: apt-get install dataset-fashion-mnist",
)

MNIST = DatasetSpec(
    name="mnist", kind="idx", folders=("mnist", "MNIST"),
    files={
        "train": (RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                             9912422, "6bbc9ace898e44ae57da46a324031adb"),
                  RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                             28881, "a25bea736e30d166cdddb491f175f624")),
        "test": (RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                            1648877, "2646ac647ad5339dbf082846283269ea"),
                 RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                            4542, "27ae3e4e09519cfbb04c329615203637")),
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    classes=tuple(str(d) for d in range(10)),
    system_dirs=tuple(root / "mnist" for root in _SYSTEM_ROOTS),
)

_CIFAR_TARBALL = RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", 170498071)

CIFAR10 = DatasetSpec(
    name="cifar10", kind="cifar", folders=("cifar10", "cifar-10", "cifar10-jpeg"),
    files={"train": (_CIFAR_TARBALL,), "test": (_CIFAR_TARBALL,)},
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"),
    system_dirs=tuple(root / "cifar10" for root in _SYSTEM_ROOTS),
    hint=("also accepted: the extracted cifar-10-batches-py/ folder, a tarball "
          "cifar10_jpeg_images.tar.gz of train/<class>/*.jpg and test/<class>/*.jpg, or those "
          "train/ and test/ folders themselves"),
    image_shape=(3, 32, 32),
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST, CIFAR10)}
_ALIASES = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}


def get_spec(name: str) -> DatasetSpec:
    """Look a data set up by name ('mnist', 'fashion-mnist', 'cifar10'; '_' and case ignored).

    Args:
        name: the data set's name.

    Returns:
        Its DatasetSpec.
    """
    if not isinstance(name, str):
        raise ConfigError(f"data set name must be a string; received {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]
