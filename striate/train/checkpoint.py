"""Checkpoints: model, optimizer, scheduler, data position and every RNG state, in one NPZ.

Written atomically (temporary file, flush + fsync, rename), so a crash while
writing leaves the previous checkpoint intact.  Read without pickle.
"""

from __future__ import annotations

import copy
import os
import shutil
from typing import Any

import numpy as np

from .._random import default_generator
from ..errors import DataError, StateDictError, StorageError
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
    if not isinstance(state["model"], dict) or not all(
            isinstance(v, np.ndarray) for v in state["model"].values()):
        raise DataError(f"{where}: checkpoint 'model' entry is not a mapping of arrays")
    return state


def checkpoint_bytes(model: Module) -> int:
    """An upper estimate of a checkpoint's size: weights, buffers and optimizer slots.

    Optimizers create their per-parameter state (momentum, Adam's two moments) at the
    first step, so up to two slots per parameter are counted before they exist.
    """
    params = sum(p.data.nbytes for p in model.parameters())
    buffers = sum(b.nbytes for b in model.buffers())
    return params * 3 + buffers + (1 << 20)


def check_free_space(folder: str, needed: int) -> None:
    """StorageError before training if ``folder`` cannot hold a checkpoint and its replacement."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell; a failing write is still reported without losing anything
    if free < 2 * needed:
        raise StorageError(
            f"{folder}: only {free / 2**20:.1f} MiB free; a checkpoint of this model needs about "
            f"{needed / 2**20:.1f} MiB, twice that while it is replaced. Free some space or "
            f"choose another output folder")


def load_model_state(model: Module, state: dict[str, np.ndarray], where: str) -> None:
    """Load weights from a checkpoint, naming the file if they do not fit the model."""
    try:
        model.load_state_dict(state)
    except StateDictError as e:
        raise DataError(f"{where}: {e}") from None
