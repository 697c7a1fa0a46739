"""Checkpoints: model, optimizer, scheduler, data position and every RNG state, in one NPZ.

Written atomically (temporary file, flush + fsync, rename), so a crash while
writing leaves the previous checkpoint intact.  Read without pickle.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np

from .._random import default_generator
from ..errors import DataError, StateDictError
from ..nn.module import Module
from ..serialize import atomic_savez, read_npz
from .state import pack, unpack


def rng_states(model: Module) -> dict[str, Any]:
    """The package default generator's state and that of every module with its own."""
    own = {}
    for name, m in model.named_modules():
        g = m.__dict__.get("_rng")
        if isinstance(g, np.random.Generator):
            own[name] = copy.deepcopy(g.bit_generator.state)
    return {"default": copy.deepcopy(default_generator().bit_generator.state), "modules": own}


def restore_rng_states(model: Module, states: dict[str, Any]) -> None:
    """Put back what :func:`rng_states` captured."""
    default_generator().bit_generator.state = copy.deepcopy(states["default"])
    mods = dict(model.named_modules())
    for name, st in states.get("modules", {}).items():
        g = mods[name].__dict__.get("_rng") if name in mods else None
        if isinstance(g, np.random.Generator):
            g.bit_generator.state = copy.deepcopy(st)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a checkpoint dict (arrays, numbers, strings, nested) atomically to ``path``."""
    atomic_savez(path, pack(state))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        DataError: missing, truncated or corrupt file.
    """
    where = os.fspath(path)
    state = unpack(read_npz(path), where)
    for key in ("model", "epoch"):
        if key not in state:
            raise DataError(f"{where}: checkpoint lacks '{key}'")
    return state


def load_model_state(model: Module, state: dict[str, np.ndarray], where: str) -> None:
    """Load weights from a checkpoint, naming the file if they do not fit the model."""
    try:
        model.load_state_dict(state)
    except StateDictError as e:
        raise DataError(f"{where}: {e}") from None
