"""The package-wide default random generator.

striate never touches NumPy's global random state.  Every random operation
takes an explicit ``numpy.random.Generator``; where none is given, the package
default generator below is used, which :func:`manual_seed` re-seeds.
"""

from __future__ import annotations

import numpy as np

_default = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seed the package default generator and return it.

    Args:
        seed: a non-negative integer.

    Returns:
        The new default ``numpy.random.Generator``.
    """
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_generator() -> np.random.Generator:
    """Return the package default generator (seeded by :func:`manual_seed`)."""
    return _default


def get_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Resolve an ``rng=`` argument: a Generator, a seed, or None (package default)."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    from .errors import ConfigError

    raise ConfigError(
        f"rng must be a numpy.random.Generator, an int seed or None; received {type(rng).__name__}"
    )
