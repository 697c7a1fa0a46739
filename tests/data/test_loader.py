"""DataLoader: batching, shuffling with an explicit Generator, drop_last, exact resume, prefetch."""

from __future__ import annotations

import numpy as np
import pytest

from striate.data import (ArrayDataset, Compose, DataLoader, RandomCrop, RandomHorizontalFlip,
                          ToFloat)
from striate.errors import ConfigError, DTypeError, StateDictError, StateError


def _dataset(n=10):
    images = np.arange(n * 12, dtype=np.uint8).reshape(n, 3, 2, 2)
    return ArrayDataset(images, np.arange(n) % 3)


def _augment(seed):
    return Compose([RandomCrop(2, padding=1, rng=np.random.default_rng(seed)),
                    RandomHorizontalFlip(rng=np.random.default_rng(seed + 1)), ToFloat()])


def test_batches_in_order():
    ds = _dataset()
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[1]
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (4, 3, 2, 2)
    np.testing.assert_array_equal(x, ds.images[4:8].astype(np.float32))
    np.testing.assert_array_equal(y, ds.labels[4:8])
    assert loader.epoch == 1


def test_drop_last_and_float64():
    loader = DataLoader(_dataset(), batch_size=4, drop_last=True, dtype=np.float64)
    batches = list(loader)
    assert len(loader) == 2 and [len(y) for _, y in batches] == [4, 4]
    assert batches[0][0].dtype == np.float64
    assert list(DataLoader(_dataset(3), batch_size=4, drop_last=True)) == []


def test_shuffle_uses_the_generator_one_permutation_per_epoch():
    ds = _dataset()
    loader = DataLoader(ds, batch_size=3, shuffle=True, rng=np.random.default_rng(42))
    reference = np.random.default_rng(42)
    for _ in range(3):
        order = reference.permutation(10)
        y = np.concatenate([y for _, y in loader])
        np.testing.assert_array_equal(y, ds.labels[order])
    again = DataLoader(ds, batch_size=3, shuffle=True, rng=42)
    first = [x for x, _ in again]
    np.testing.assert_array_equal(np.concatenate(first), ds.images[np.random.default_rng(42).permutation(10)])


def _run(loader, epochs):
    return [(x, y) for _ in range(epochs) for x, y in loader]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_state_round_trip_resumes_exactly(prefetch):
    ds = _dataset(11)

    def make(seed):
        return DataLoader(ds, batch_size=3, shuffle=True, transform=_augment(seed), rng=seed,
                          prefetch=prefetch)

    full = _run(make(0), 3)  # 3 epochs of 4 batches, uninterrupted
    run = make(0)
    seen = list(run)  # epoch 0
    it = iter(run)
    seen += [next(it), next(it)]  # 2 batches of epoch 1
    state = run.state_dict()
    assert state["epoch"] == 1 and state["position"] == 2 and sorted(state["order"]) == list(range(11))
    del it
    resumed = make(123)  # other seeds: everything must come from the state
    resumed.load_state_dict(state)
    seen += list(resumed) + list(resumed)  # rest of epoch 1, then epoch 2
    assert len(seen) == len(full) == 12 and resumed.epoch == 3
    for (xa, ya), (xb, yb) in zip(seen, full):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_state_between_epochs_and_after_last_batch():
    ds = _dataset()
    loader = DataLoader(ds, batch_size=5, shuffle=True, rng=1)
    for k, _ in enumerate(loader):
        state = loader.state_dict()
    assert k == 1 and state["epoch"] == 1 and state["position"] == 0 and state["order"] is None
    expected = list(loader)
    other = DataLoader(ds, batch_size=5, shuffle=True, rng=9)
    other.load_state_dict(state)
    for (xa, _), (xb, _) in zip(other, expected):
        np.testing.assert_array_equal(xa, xb)


def test_prefetch_gives_identical_stream_even_when_stopped_early():
    ds = _dataset(20)
    streams = []
    for prefetch in (0, 3):
        loader = DataLoader(ds, batch_size=2, shuffle=True, transform=_augment(5), rng=5,
                            prefetch=prefetch)
        out = []
        for k, batch in enumerate(loader):  # stop early while the prefetcher is ahead
            out.append(batch)
            if k == 2:
                break
        out += list(loader)
        streams.append(out)
    for (xa, ya), (xb, yb) in zip(*streams):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_errors_in_the_prefetch_thread_reach_the_caller():
    def broken(x):
        raise RuntimeError("transform failed")

    with pytest.raises(RuntimeError, match="transform failed"):
        list(DataLoader(_dataset(), batch_size=2, transform=broken, prefetch=1))
    with pytest.raises(DTypeError, match="batches must be numeric; received bool"):
        list(DataLoader(_dataset(), batch_size=2, transform=lambda x: x > 3))


def test_one_open_iteration_at_a_time():
    loader = DataLoader(_dataset(), batch_size=2)
    first = iter(loader)
    next(first)
    with pytest.raises(StateError, match="another iteration of this loader is still open"):
        next(iter(loader))
    first.close()
    assert len(list(loader)) == 5


def test_generic_dataset_without_arrays():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 2, 2), i * i), i

    batches = list(DataLoader(Squares(), batch_size=2))
    np.testing.assert_array_equal(batches[2][0], np.full((1, 1, 2, 2), 16.0))
    np.testing.assert_array_equal(batches[1][1], [2, 3])


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size must be an int >= 1; received 0"),
    ({"batch_size": 2.5}, "batch_size must be an int >= 1; received 2.5"),
    ({"batch_size": True}, "batch_size must be an int >= 1; received True"),
    ({"shuffle": "yes"}, "shuffle must be a bool; received 'yes'"),
    ({"drop_last": 1}, "drop_last must be a bool; received 1"),
    ({"transform": 3}, "transform must be callable or None; received 3"),
    ({"prefetch": -1}, "prefetch must be an int >= 0; received -1"),
    ({"dtype": np.int32}, "dtype must be float32 or float64; received int32"),
    ({"rng": "seed"}, "rng must be a numpy.random.Generator"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DataLoader(_dataset(), **kwargs)
    with pytest.raises(ConfigError, match="dataset must have __len__"):
        DataLoader(3)


def test_prefetch_refuses_the_shared_default_generator():
    with pytest.raises(ConfigError, match="prefetch > 0 needs random transforms with their own rng="):
        DataLoader(_dataset(), transform=Compose([RandomHorizontalFlip()]), prefetch=1)
    DataLoader(_dataset(), transform=Compose([RandomHorizontalFlip()]))  # fine without prefetch


def test_bad_states():
    loader = DataLoader(_dataset(), batch_size=3, shuffle=True, rng=0)
    state = loader.state_dict()
    with pytest.raises(StateDictError, match="expects keys .* received \\['epoch'\\]"):
        loader.load_state_dict({"epoch": 0})
    with pytest.raises(ConfigError, match="position 2 with an order of shape \\(9,\\) does not fit"):
        loader.load_state_dict({**state, "position": 2, "order": np.arange(9)})
    with pytest.raises(ConfigError, match="position 2 with an order of shape \\(10,\\)"):
        loader.load_state_dict({**state, "position": 2, "order": np.zeros(10, dtype=np.int64)})
    with pytest.raises(StateDictError, match="1 transform generator states but the transform has 0"):
        loader.load_state_dict({**state, "transform_rngs": [state["rng"]]})
