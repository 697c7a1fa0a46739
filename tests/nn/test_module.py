"""Module and Sequential: naming, state dicts both ways with PyTorch, modes, errors."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import StateDictError, StateError
from tests.util import torch_or_skip


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.Conv2d(4, 2, 3, rng=1))
        self.head = nn.Linear(2 * 2 * 2, 3, rng=2)
        self.flat = nn.Flatten()

    def forward(self, x):
        return self.head(self.flat(self.features(x)))

    def backward(self, dy):
        return self.features.backward(self.flat.backward(self.head.backward(dy)))


def test_named_parameters_and_modules():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                     "head.weight", "head.bias"]
    mods = [n for n, _ in net.named_modules()]
    assert mods == ["", "features", "features.0", "features.1", "head", "flat"]
    assert next(net.modules()) is net
    assert net.num_parameters() == 4 * 9 + 4 + 2 * 4 * 9 + 2 + 8 * 3 + 3


def test_shared_parameter_listed_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, a)
    assert len(list(seq.parameters())) == 2


def test_train_eval_propagate():
    net = Net().eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip_and_copies():
    a, b = Net(), Net()
    b.features[0].weight.data += 1.0
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))
    sd = a.state_dict()
    sd["head.bias"][...] = 99.0
    assert not np.any(a.head.bias.data == 99.0)


def test_load_state_dict_reports_every_problem():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["extra.weight"] = np.zeros(3)
    sd["features.0.weight"] = np.zeros((4, 1, 5, 5))
    with pytest.raises(StateDictError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys: head.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "features.0.weight: model has (4, 1, 3, 3), file has (4, 1, 5, 5)" in msg


def test_state_dict_moves_both_ways_with_torch():
    torch = torch_or_skip()
    ours = nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.Flatten(), nn.Linear(4 * 4 * 4, 2, rng=1))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    # torch -> striate
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    # striate -> torch
    fresh = nn.Sequential(nn.Conv2d(1, 4, 3, rng=5), nn.Flatten(), nn.Linear(64, 2, rng=6))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in fresh.state_dict().items()})
    np.testing.assert_allclose(fresh(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_custom_module_gradcheck():
    x = np.random.default_rng(1).standard_normal((2, 1, 6, 6))
    assert striate.gradcheck(Net(), x) < 1e-6


def test_backward_before_forward():
    with pytest.raises(StateError, match=r"Linear: backward\(\) called before forward\(\)"):
        nn.Linear(2, 2).backward(np.zeros((1, 2)))


def test_no_grad_keeps_no_cache():
    layer = nn.Linear(2, 2)
    with striate.no_grad():
        layer(np.zeros((1, 2), np.float32))
        assert not striate.is_grad_enabled()
    assert striate.is_grad_enabled()
    with pytest.raises(StateError):
        layer.backward(np.zeros((1, 2)))


def test_double_and_float_cast_everything():
    net = Net().double()
    assert all(p.data.dtype == np.float64 for p in net.parameters())
    net.float()
    assert all(p.data.dtype == np.float32 for p in net.parameters())


def test_sequential_indexing_and_repr():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Flatten())
    assert isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.Flatten)
    assert len(seq) == 2 and len(seq[1:]) == 1
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in repr(seq)


def test_sequential_refuses_non_module():
    from striate.errors import ConfigError
    with pytest.raises(ConfigError, match="item '1' must be a striate Module; received function"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)


def test_manual_seed_reproducible_init():
    striate.manual_seed(123)
    a = nn.Conv2d(3, 4, 3).weight.data.copy()
    striate.manual_seed(123)
    b = nn.Conv2d(3, 4, 3).weight.data
    np.testing.assert_array_equal(a, b)


def test_library_never_seeds_numpy_global_state():
    import pathlib
    src = pathlib.Path(striate.__file__).parent
    offenders = [str(p) for p in src.rglob("*.py") if "np.random.seed" in p.read_text()
                 or "numpy.random.seed" in p.read_text()]
    assert offenders == []
