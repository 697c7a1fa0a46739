"""Data sets and data loading: MNIST, Fashion-MNIST, CIFAR-10, image folders, in-memory arrays.

``load_dataset(name, split)`` finds (or downloads, checksum-verified) a known
data set and returns it in memory; ``DataLoader`` batches it with vectorised
transforms and can be saved and restored mid-epoch.  Pillow (for PNG/JPEG) is
optional and imported only when images are decoded.
"""

from .cifar import read_cifar_batch, read_cifar_jpeg_tar, read_cifar_python
from .dataset import ArrayDataset
from .download import download_file
from .files import md5_file, verify_md5
from .idx import read_idx, write_idx
from .images import ImageFolder, decode_images, read_image_tar
from .load import Location, LoadedDataset, cache_dir, dataset_locations, load_dataset
from .loader import DataLoader
from .pickle_reader import load_restricted_pickle
from .registry import DATASETS
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat

__all__ = [
    "ArrayDataset", "ImageFolder", "LoadedDataset", "load_dataset", "dataset_locations",
    "Location", "cache_dir", "DATASETS", "DataLoader", "Compose", "ToFloat", "Normalize",
    "RandomCrop", "RandomHorizontalFlip", "read_idx", "write_idx", "read_cifar_batch",
    "read_cifar_python", "read_cifar_jpeg_tar", "read_image_tar", "decode_images",
    "load_restricted_pickle", "download_file", "md5_file", "verify_md5",
]
