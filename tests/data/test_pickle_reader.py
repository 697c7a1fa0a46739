"""The restricted pickle reader: plain data and numeric arrays load; anything else is refused unrun."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from striate.data import load_restricted_pickle
from striate.errors import DataError

from .helpers import py2_pickle

CALLS = []


def record_call(*args):
    """Stands for any callable a hostile pickle could name; it must never run."""
    CALLS.append(args)
    return "executed"


class Hostile:
    def __reduce__(self):
        return (record_call, ("pwned",))


def test_py2_style_batch_equals_pickle_loads():
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    obj = {"batch_label": "training batch 1 of 5", "labels": [3, 9], "data": data,
           "filenames": ["a.png", "b.png"]}
    raw = py2_pickle(obj)
    ours = load_restricted_pickle(raw, "batch")
    reference = pickle.loads(raw, encoding="bytes")  # trusted here: we wrote the bytes
    assert set(ours) == set(reference) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert ours[b"labels"] == reference[b"labels"] == [3, 9]
    assert ours[b"filenames"] == [b"a.png", b"b.png"]
    np.testing.assert_array_equal(ours[b"data"], reference[b"data"])
    assert ours[b"data"].dtype == np.uint8 and ours[b"data"].flags.writeable


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_python3_pickles_of_plain_data(protocol):
    obj = {"x": np.arange(12, dtype="<f4").reshape(3, 4), "y": np.asfortranarray(
        np.arange(6, dtype=">i2").reshape(2, 3)), "t": (1, -2, 2 ** 70, 1.5, None, True),
        "b": b"\x00\xff", "s": "h\u00e9", "nested": [[1], {"k": [2.5]}]}
    out = load_restricted_pickle(pickle.dumps(obj, protocol=protocol))
    assert out["t"] == obj["t"] and out["b"] == obj["b"] and out["s"] == obj["s"]
    assert out["nested"] == obj["nested"]
    for key in ("x", "y"):
        assert out[key].dtype == obj[key].dtype
        np.testing.assert_array_equal(out[key], obj[key])


@pytest.mark.parametrize("protocol", [0, 1, 2, 4, 5])
def test_hostile_global_refused_without_running(protocol):
    raw = pickle.dumps({"data": Hostile()}, protocol=protocol)
    CALLS.clear()
    with pytest.raises(DataError, match=r"hostile\.pkl: .*(record_call|opcode)"):
        load_restricted_pickle(raw, "hostile.pkl")
    assert CALLS == []


def test_refusals_name_the_global_and_offset():
    raw = b"\x80\x02cos\nsystem\nq\x00U\x06echo hq\x01\x85R."
    with pytest.raises(DataError, match=r"refusing global os\.system: .*opcode at byte 2\)"):
        load_restricted_pickle(raw, "f")
    raw = pickle.dumps(np.array([object(), 1], dtype=object), protocol=2)
    with pytest.raises(DataError, match="refusing global|not accepted|object"):
        load_restricted_pickle(raw)
    raw = pickle.dumps(np.ma.masked_array([1, 2]), protocol=2)
    with pytest.raises(DataError, match="refusing global numpy.ma"):
        load_restricted_pickle(raw)
    raw = pickle.dumps(np.zeros(2, dtype=[("a", "u1"), ("b", "f4")]), protocol=2)
    with pytest.raises(DataError, match="dtype"):
        load_restricted_pickle(raw)


def test_truncated_and_malformed_streams():
    raw = py2_pickle({"data": np.zeros((2, 5), np.uint8), "labels": [1, 2]})
    for cut in (1, 10, len(raw) // 2, len(raw) - 1):
        with pytest.raises(DataError, match=r"f\.pkl: .*(truncated|opcode|stack|MARK)"):
            load_restricted_pickle(raw[:cut], "f.pkl")
    with pytest.raises(DataError, match=r"truncated: needs 1000 bytes at byte 9 .*opcode at byte 4\)"):
        load_restricted_pickle(b"\x80\x02}(T\xe8\x03\x00\x00abc", "f")
    with pytest.raises(DataError, match="memo GET of unknown key 7"):
        load_restricted_pickle(b"\x80\x02h\x07.")
    with pytest.raises(DataError, match="protocol 9"):
        load_restricted_pickle(b"\x80\x09N.")
    with pytest.raises(DataError, match="STOP with a malformed stack"):
        load_restricted_pickle(b"\x80\x02NN.")


def test_array_byte_count_checked_against_shape():
    raw = py2_pickle({"data": np.zeros((2, 5), np.uint8)}).replace(b"K\x02K\x05t", b"K\x09K\x09t")
    with pytest.raises(DataError, match=r"shape \(9, 9\) .* needs 81 bytes; the pickle holds 10"):
        load_restricted_pickle(raw)


def test_shared_and_cyclic_structures():
    level = [1]
    for _ in range(60):  # 2**60 leaves if shared lists were expanded: must stay linear
        level = [level, level]
    out = load_restricted_pickle(pickle.dumps(level, protocol=2))
    assert out[0] is out[1]
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(DataError, match="nested more than 64 levels deep"):
        load_restricted_pickle(pickle.dumps(cyclic, protocol=2))
