"""Dropout layers: Dropout (single values) and Dropout2d (whole channels), as torch.nn.

Randomness comes only from an explicit ``numpy.random.Generator``: the layer's
``rng`` argument, or, when that is None, the package default generator at the
time of each forward pass (so ``striate.manual_seed`` re-seeds the masks of
layers built before it, as ``torch.manual_seed`` does).  ``layer.rng`` is that
generator; :func:`striate.gradcheck` replays its state to redraw the same mask.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from .._random import default_generator, get_rng
from ..errors import ConfigError, ShapeError
from ..functional import dropout as F
from .module import Module

__all__ = ['Dropout', 'Dropout2d']


class _DropoutNd(Module):
    """Shared arguments (p, inplace, rng) and train/eval logic of the dropout layers."""

    def __init__(self, p: float = 0.5, inplace: bool = False, rng: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(p, bool) or not isinstance(p, Real) or not 0 <= p < 1:
            raise ConfigError(
                f"{name}: p must be a probability in [0, 1) (p = 1 would drop everything); "
                f"received {p!r}"
            )
        self.p = float(p)
        self.inplace = bool(inplace)
        self.rng = rng

    @property
    def rng(self) -> np.random.Generator:
        """The generator masks are drawn from (the package default if none was given)."""
        own = self.__dict__.get("_rng")
        return default_generator() if own is None else own

    @rng.setter
    def rng(self, value: Any) -> None:
        object.__setattr__(self, "_rng", None if value is None else get_rng(value))

    def _kernel(self, x: np.ndarray) -> tuple[np.ndarray, F.DropoutCache]:
        raise NotImplementedError

    def _check_input(self, x: np.ndarray) -> None:
        """Subclasses refuse shapes they cannot handle."""

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        self._check_input(x)
        if self.training:
            y, cache = self._kernel(x)
        else:
            y, cache = x, F.DropoutCache(None, 1.0)                   # evaluation: identity
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.dropout_backward(dy, self._take())

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Inverted dropout: in training each value is zeroed with probability p and the
    others are scaled by 1 / (1 - p); in evaluation the layer is the identity.

    Args:
        p: drop probability in [0, 1) (p = 1, which torch allows, is refused).
        inplace: accepted for torch compatibility; ignored (a new array is returned).
        rng: a numpy.random.Generator or int seed for the masks; None uses the
            package default generator.

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return F.dropout_forward(x, p=self.p, rng=self.rng)


class Dropout2d(_DropoutNd):
    """Channel dropout: in training each (sample, channel) map is zeroed with
    probability p and the others scaled by 1 / (1 - p); identity in evaluation.

    A 3-D input is read as (N, C, L) and its (n, c) rows are dropped, which is
    what torch does today (with a warning that this may change); other ranks
    are refused, where torch warns and carries on.

    Args:
        p: drop probability in [0, 1) (p = 1 is refused).
        inplace: accepted for torch compatibility; ignored.
        rng: a numpy.random.Generator or int seed; None uses the package default.

    Shape:
        (N, C, H, W) -> (N, C, H, W) and (N, C, L) -> (N, C, L).
    """

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim not in (3, 4):
            raise ShapeError(
                f"{self.where()} expects input (N, C, H, W) or (N, C, L); received {tuple(x.shape)}"
            )

    def _kernel(self, x):
        return F.channel_dropout_forward(x, p=self.p, rng=self.rng)
