"""tdnn: x-vector style dilated Conv1d network over time, mean-pooled."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import models
from striate.errors import ConfigError, ShapeError
from tests.models._util import compare_model, forward_backward
from tests.util import torch_or_skip

SMALL = dict(channels=8, pool_channels=12, embedding_dim=6)


def test_count_and_layers():
    net = models.tdnn()
    assert net.num_parameters() == 3_754_398
    assert list(dict(net.named_children())) == ["tdnn1", "tdnn2", "tdnn3", "tdnn4", "tdnn5", "pool",
                                                "flatten", "segment6", "segment7", "output"]
    context = [(getattr(net, f"tdnn{i}").conv.kernel_size[0], getattr(net, f"tdnn{i}").conv.dilation[0])
               for i in range(1, 6)]
    assert context == [(5, 1), (3, 2), (3, 3), (1, 1), (1, 1)]
    assert net.tdnn1.conv.weight.data.shape == (512, 40, 5)
    assert net.tdnn5.conv.out_channels == 1500 and net.segment6.linear.in_features == 1500
    assert [type(m).__name__ for m in net.tdnn2] == ["Conv1d", "ReLU", "BatchNorm1d"]


def test_forward_backward_any_length():
    net = models.tdnn(num_classes=5, in_channels=13, rng=0)
    for frames in (15, 40):                               # 15 = the frame-level context
        forward_backward(net, np.random.default_rng(frames).standard_normal((3, 13, frames)).astype(np.float32), 5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("frames", [15, 31])
def test_matches_torch(dtype, frames):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.tdnn(num_classes=4, in_channels=5, **SMALL, dtype=dtype, rng=1)
    ref = _torch_ref.tdnn(4, 5, **SMALL)
    assert list(net.state_dict()) == list(ref.state_dict())
    compare_model(net, ref, np.random.default_rng(2).standard_normal((4, 5, frames)), dtype)
    net.eval()
    compare_model(net, ref, np.random.default_rng(3).standard_normal((2, 5, frames)), dtype)


def test_gradcheck():
    net = models.tdnn(num_classes=3, in_channels=2, channels=3, pool_channels=4, embedding_dim=3, rng=0)
    x = np.random.default_rng(4).standard_normal((3, 2, 17))
    assert striate.gradcheck(net, x, max_per_tensor=5) < 1e-6


def test_errors():
    net = models.tdnn(in_channels=4, **SMALL)
    with pytest.raises(ShapeError, match=r"tdnn3.conv \(Conv1d\): kernel"):
        net(np.zeros((2, 4, 10), np.float32))             # shorter than the 15-frame context
    with pytest.raises(ShapeError, match=r"tdnn1.conv \(Conv1d\) expects input \(N, 4, L\); received \(2, 10, 4\)"):
        net(np.zeros((2, 10, 4), np.float32))
    with pytest.raises(ConfigError, match="tdnn: pool_channels must be an int >= 1; received 0"):
        models.tdnn(pool_channels=0)
