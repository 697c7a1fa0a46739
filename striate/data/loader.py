"""DataLoader: batches of (x float NCHW, y int64) from a data set, resumable mid-epoch.

Shuffling draws one permutation per epoch from an explicit Generator.
``state_dict()`` captures the epoch count, the current permutation and position,
and the states of the shuffle and transform generators, so that after
``load_state_dict`` the next iteration yields exactly the batches, and random
augmentations, that the interrupted run would have yielded next.

With ``prefetch=k`` a background thread prepares up to k batches ahead (indexing
and transforms).  The batches, their order and the random draws are identical
to ``prefetch=0``; only the timing changes.
"""

from __future__ import annotations

import copy
import queue
import threading
from typing import Any, Callable, Iterator

import numpy as np

from .._random import default_generator, get_rng
from ..errors import ConfigError, DTypeError, StateDictError, StateError

__all__ = ["DataLoader"]

_END = object()


class _Failure:
    """An exception raised in the prefetch thread, re-raised in the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _generators(transform: Any) -> list[np.random.Generator]:
    """The distinct Generators a transform (or Compose of transforms) draws from, in order."""
    found: list[np.random.Generator] = []
    stack = [transform]
    while stack:
        t = stack.pop(0)
        if isinstance(getattr(t, "rng", None), np.random.Generator) and \
                not any(g is t.rng for g in found):
            found.append(t.rng)
        stack[:0] = list(getattr(t, "transforms", []) or [])
    return found


def _positive_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"DataLoader: {name} must be an int >= {minimum}; received {value!r}")
    return int(value)


class DataLoader:
    """Iterate over a data set in batches, optionally shuffled and transformed.

    Args:
        dataset: an object with ``.images`` and ``.labels`` arrays (e.g. ArrayDataset), or
            any object with ``__len__`` and ``__getitem__(i) -> (x, label)``.
        batch_size: samples per batch (>= 1).
        shuffle: draw a new permutation of the data set at the start of each epoch.
        drop_last: drop the last batch if it has fewer than ``batch_size`` samples.
        transform: callable applied to each batch of images (as stored, e.g. uint8 NCHW),
            e.g. ``Compose([RandomCrop(32, 4), ToFloat(), Normalize(...)])``.
        rng: numpy Generator, seed or None (package default), for the shuffle.
        prefetch: number of batches a background thread prepares ahead (0: none).
        dtype: float32 (default) or float64, the dtype of the yielded x.

    Shape:
        yields x (B, C, H, W) of ``dtype`` and y (B,) int64, B = batch_size except for a
        smaller last batch when ``drop_last`` is False; len(loader) = ceil(N / B), or
        floor(N / B) with ``drop_last``.

    Returns:
        An iterable; each ``iter()`` runs one epoch (or resumes a loaded one).
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, transform: Callable | None = None, rng: Any = None,
                 prefetch: int = 0, dtype: Any = None) -> None:
        if not hasattr(dataset, "__len__") or not (
                hasattr(dataset, "__getitem__") or hasattr(dataset, "images")):
            raise ConfigError(f"DataLoader: dataset must have __len__ and __getitem__; "
                              f"received {type(dataset).__name__}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"DataLoader: {name} must be a bool; received {flag!r}")
        if transform is not None and not callable(transform):
            raise ConfigError(f"DataLoader: transform must be callable or None; received {transform!r}")
        self.dtype = np.dtype(dtype or np.float32)
        if self.dtype not in (np.float32, np.float64):
            raise ConfigError(f"DataLoader: dtype must be float32 or float64; received {self.dtype}")
        self.dataset, self.transform = dataset, transform
        self.batch_size = _positive_int("batch_size", batch_size, 1)
        self.prefetch = _positive_int("prefetch", prefetch, 0)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.rng = get_rng(rng)
        if self.prefetch and any(g is default_generator() for g in _generators(transform)):
            raise ConfigError("DataLoader: prefetch > 0 needs random transforms with their own "
                              "rng= (the package default generator is shared with the model, and a "
                              "background thread drawing from it would make runs irreproducible)")
        self.epoch = 0
        self._order: np.ndarray | None = None   # this epoch's sample order
        self._position = 0                      # batches handed out in this epoch
        self._resume = False                    # next iter() continues the loaded epoch
        self._rng_snapshot: list[dict] | None = None  # transform rng states at _position
        self._active = False                    # an iteration is under way

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    # -- iteration --------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._active:
            raise StateError("DataLoader: another iteration of this loader is still open; finish "
                             "it, or close / delete that iterator, before starting a new one")
        n, n_batches = len(self.dataset), len(self)
        if self._resume:
            start, self._resume = self._position, False
        else:
            self._order = self.rng.permutation(n) if self.shuffle else np.arange(n)
            start = self._position = 0
            self._rng_snapshot = self._transform_states()
        order = self._order
        batches = self._produce(order, start, n_batches)
        if self.prefetch:
            batches = self._prefetched(batches)
        finished, self._active = False, True
        try:
            for k, (x, y, states) in enumerate(batches, start):
                self._position, self._rng_snapshot = k + 1, states
                if k + 1 == n_batches:
                    self._end_epoch()
                    finished = True
                yield x, y
            if not finished:  # an empty epoch (no batch at all)
                self._end_epoch()
                finished = True
        finally:
            batches.close()
            self._active = False
            if not finished:  # stopped early: rewind generators the prefetcher ran ahead with
                self._restore_transform_states(self._rng_snapshot)

    def _end_epoch(self) -> None:
        self.epoch += 1
        self._order, self._position = None, 0

    def _produce(self, order: np.ndarray, start: int,
                 n_batches: int) -> Iterator[tuple[np.ndarray, np.ndarray, list[dict]]]:
        """Batches ``start..n_batches-1`` with the transform rng states after each."""
        for k in range(start, n_batches):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            x, y = self._fetch(idx)
            yield x, y, self._transform_states()

    def _fetch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gather, transform and convert one batch."""
        data = self.dataset
        if hasattr(data, "images") and hasattr(data, "labels"):
            x, y = np.asarray(data.images)[idx], np.asarray(data.labels)[idx]
        else:
            items = [data[int(i)] for i in idx]
            x = np.stack([np.asarray(item[0]) for item in items])  # (B, C, H, W)
            y = np.array([item[1] for item in items])
        if self.transform is not None:
            x = np.asarray(self.transform(x))
        if x.dtype.kind not in "uif":
            raise DTypeError(f"DataLoader: batches must be numeric; received {x.dtype}")
        return np.ascontiguousarray(x, dtype=self.dtype), np.asarray(y, dtype=np.int64)

    def _prefetched(self, batches: Iterator) -> Iterator:
        """Run ``batches`` in a thread, at most ``prefetch`` ahead; same items, same order."""
        slots: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    slots.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            try:
                for item in batches:
                    if not put(item):
                        return
                put(_END)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                put(_Failure(e))

        worker = threading.Thread(target=work, name="striate-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = slots.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()
            worker.join()

    # -- state --------------------------------------------------------------------------
    def _transform_states(self) -> list[dict]:
        return [copy.deepcopy(g.bit_generator.state) for g in _generators(self.transform)]

    def _restore_transform_states(self, states: list[dict] | None) -> None:
        if states is None:
            return
        generators = _generators(self.transform)
        if len(states) != len(generators):
            raise StateDictError(f"DataLoader: the state holds {len(states)} transform generator "
                                 f"states but the transform has {len(generators)}")
        for g, state in zip(generators, states):
            g.bit_generator.state = copy.deepcopy(state)

    def state_dict(self) -> dict[str, Any]:
        """The position in the data stream, for an exact resume.

        Returns:
            {'epoch': completed epochs, 'position': batches already yielded in the current
            epoch, 'order': int64 sample order of the current epoch (None between epochs),
            'rng': shuffle generator state, 'transform_rngs': list of transform generator
            states}; plain Python / NumPy values.
        """
        mid_epoch = self._order is not None and self._position > 0
        # While a prefetcher runs ahead, the live transform generators are ahead of the
        # consumer: report their states as of the last batch handed out.
        states = self._rng_snapshot if self._active else self._transform_states()
        return {
            "epoch": self.epoch,
            "position": self._position if mid_epoch else 0,
            "order": self._order.copy() if mid_epoch else None,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "transform_rngs": copy.deepcopy(states),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the next ``iter()`` continues from that point.

        Args:
            state: a dict produced by :meth:`state_dict` (of a loader over the same data set,
                with the same batch size and transform structure).
        """
        keys = {"epoch", "position", "order", "rng", "transform_rngs"}
        if not isinstance(state, dict) or set(state) != keys:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise StateDictError(f"DataLoader.load_state_dict expects keys {sorted(keys)}; received {got}")
        epoch, position = state["epoch"], state["position"]
        _positive_int("state epoch", epoch, 0)
        _positive_int("state position", position, 0)
        order = None if state["order"] is None else np.asarray(state["order"], dtype=np.int64)
        n = len(self.dataset)
        if position and (order is None or order.shape != (n,)
                         or not np.array_equal(np.sort(order), np.arange(n)) or position >= len(self)):
            raise ConfigError(f"DataLoader.load_state_dict: position {position} with an order of "
                              f"shape {None if order is None else order.shape} does not fit this "
                              f"data set of {n} samples in {len(self)} batches")
        try:
            self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        except (TypeError, ValueError, KeyError) as e:
            raise StateDictError(f"DataLoader.load_state_dict: bad shuffle rng state: {e}") from e
        self._restore_transform_states(state["transform_rngs"])
        self.epoch, self._position = int(epoch), int(position)
        self._order = order if position else None
        self._resume = bool(position)
        self._rng_snapshot = copy.deepcopy(state["transform_rngs"])
