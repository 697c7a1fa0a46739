"""GoogLeNet: torchvision's layout and 6,624,904 parameters; the paper's 5x5 option."""

from __future__ import annotations

import math

import numpy as np
import pytest

from striate import models
from striate.errors import ConfigError
from tests.models._util import compare_model, forward_backward, state_shapes
from tests.util import torch_or_skip


def test_count_structure_and_init():
    net = models.googlenet(rng=0)
    assert net.num_parameters() == 6_624_904
    names = list(dict(net.named_children()))
    assert names[:5] == ["conv1", "maxpool1", "conv2", "conv3", "maxpool2"]
    assert names[-4:] == ["avgpool", "flatten", "dropout", "fc"]
    assert [n for n in names if n.startswith("inception")] == [
        "inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d",
        "inception4e", "inception5a", "inception5b"]
    assert net.inception4c.branch3[1].conv.kernel_size == (3, 3)
    assert net.inception4c.branch3[1].conv.padding == (1, 1)
    assert net.dropout.p == 0.2
    w = net.inception4e.branch2[1].conv.weight.data       # trunc_normal_(0, 0.01)
    assert abs(w.std() / 0.01 - 1) < 0.02 and not net.fc.bias.data.any()
    assert abs(math.sqrt(np.mean(net.fc.weight.data ** 2)) / 0.01 - 1) < 0.02


def test_paper_5x5_branch():
    net = models.googlenet(branch3_kernel=5)
    assert net.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert net.inception3a.branch3[1].conv.padding == (2, 2)
    assert net.num_parameters() == 7_005_832
    small = models.googlenet(num_classes=10, branch3_kernel=5)
    assert small.num_parameters() == 7_005_832 - (1024 * 1000 + 1000) + (1024 * 10 + 10)


def test_keys_and_shapes_equal_torchvision():
    torch_or_skip()
    import torch

    from tests.models import _torch_ref

    with torch.device("meta"):
        ref = _torch_ref.googlenet(1000)
    assert state_shapes(models.googlenet().state_dict()) == state_shapes(ref.state_dict())


def test_forward_backward_small_variants():
    net = models.googlenet(num_classes=10, in_channels=1, rng=0)
    forward_backward(net, np.random.default_rng(0).random((2, 1, 40, 40)).astype(np.float32), 10)


@pytest.mark.parametrize("dtype,k5", [(np.float64, 3), (np.float32, 5)])
def test_matches_torch(dtype, k5):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.googlenet(num_classes=10, branch3_kernel=k5, dropout=0.0, dtype=dtype, rng=1)
    ref = _torch_ref.googlenet(10, k5=k5)
    ref.dropout.p = 0.0
    assert list(net.state_dict()) == list(ref.state_dict())
    if dtype == np.float32:
        net.eval()
    compare_model(net, ref, np.random.default_rng(2).standard_normal((2, 3, 64, 64)), dtype)


def test_errors():
    with pytest.raises(ConfigError, match=r"googlenet: branch3_kernel must be one of \(3, 5\); received 7"):
        models.googlenet(branch3_kernel=7)
    with pytest.raises(ConfigError, match=r"googlenet: dropout must be a probability in \[0, 1\); received 2"):
        models.googlenet(dropout=2)
