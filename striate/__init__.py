"""striate: convolutional neural networks in NumPy, with exact forward and backward passes."""

from . import memory as _memory

_memory._tune_blas_threads()        # idle BLAS threads sleep (also if NumPy is loaded already)
_memory._apply_default()

from . import data, errors, functional, init, models, nn, optim, train
from ._random import default_generator, manual_seed
from .fold import count_batchnorm, fold_batchnorm
from .gradcheck import gradcheck
from .serialize import load, save
from .summary import Summary, summary
from .nn.module import is_grad_enabled, no_grad

__version__ = "0.1.0"

__all__ = ["data", "errors", "models", "train", "functional", "init", "nn", "optim", "manual_seed", "default_generator",
           "gradcheck", "fold_batchnorm", "count_batchnorm", "save", "load", "summary", "Summary", "no_grad", "is_grad_enabled", "__version__"]
