"""ResNets: torchvision's ImageNet ResNet-18/34/50 and the CIFAR ResNet-20/32/56."""

from __future__ import annotations

import math

import numpy as np
import pytest

import striate
from striate import models
from striate.errors import ShapeError
from tests.models._util import compare_model, forward_backward, state_shapes
from tests.util import torch_or_skip

IMAGENET = {"resnet18": ("BasicBlock", (2, 2, 2, 2), 11_689_512),
            "resnet34": ("BasicBlock", (3, 4, 6, 3), 21_797_672),
            "resnet50": ("Bottleneck", (3, 4, 6, 3), 25_557_032)}
# Option A (zero-padded identity shortcuts) gives 269,722 / 464,154 / 853,018 at 10
# classes; option B's two projections add 16*32 + 2*32 + 32*64 + 2*64 = 2,752.
CIFAR = {"resnet20": (3, 272_474), "resnet32": (5, 466_906), "resnet56": (9, 855_770)}


def _torch_ref_for(name: str, num_classes: int):
    import torch

    from tests.models import _torch_ref

    if name in CIFAR:
        return _torch_ref.cifar_resnet(CIFAR[name][0], num_classes)
    block = getattr(_torch_ref, IMAGENET[name][0])
    with torch.device("meta") if num_classes == 1000 else torch.device("cpu"):
        return _torch_ref.resnet(block, IMAGENET[name][1], num_classes)


@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_imagenet_counts_structure_and_torchvision_keys(name, fast_init):
    block, depths, count = IMAGENET[name]
    net = models.get_model(name)
    assert net.num_parameters() == count
    assert list(dict(net.named_children())) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                                "layer3", "layer4", "avgpool", "flatten", "fc"]
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == list(depths)
    assert {type(b).__name__ for i in range(1, 5) for b in getattr(net, f"layer{i}")} == {block}
    assert net.layer2[0].downsample[0].stride == (2, 2) and net.layer2[1].downsample is None
    torch_or_skip()
    assert state_shapes(net.state_dict()) == state_shapes(_torch_ref_for(name, 1000).state_dict())


@pytest.mark.parametrize("name", sorted(CIFAR))
def test_cifar_counts_and_structure(name):
    n, count = CIFAR[name]
    net = models.get_model(name)
    assert net.num_parameters() == count
    assert [len(getattr(net, f"layer{i}")) for i in (1, 2, 3)] == [n, n, n]
    assert net.conv1.kernel_size == (3, 3) and net.fc.weight.data.shape == (10, 64)
    projections = [k for k in net.state_dict() if "downsample.0.weight" in k]
    assert projections == ["layer2.0.downsample.0.weight", "layer3.0.downsample.0.weight"]


def test_resnet18_init_and_forward_backward_64x64():
    net = models.resnet18(rng=0)
    w = net.layer3[0].conv2.weight.data                   # kaiming_normal_(fan_out, relu)
    assert abs(w.std() / math.sqrt(2 / (256 * 9)) - 1) < 0.02
    assert np.all(net.bn1.weight.data == 1) and not net.bn1.bias.data.any()
    forward_backward(net, np.random.default_rng(0).random((1, 3, 64, 64)).astype(np.float32), 1000)


# Training-mode BatchNorm makes the input gradient of a deep net ill-conditioned (its
# backward removes the batch mean of the gradient, cancelling most of it): float32
# rounding alone moves it by ~1e-2 there, in torch as here, so float32 runs compare in
# eval mode.  Batch 4: layer4's 1x1 maps give BatchNorm 4 values per channel.
@pytest.mark.parametrize("name,dtype,size", [("resnet18", np.float64, 32), ("resnet50", np.float32, 32),
                                             ("resnet20", np.float64, 16), ("resnet20", np.float32, 16),
                                             ("resnet32", np.float32, 8)])
def test_matches_torch(name, dtype, size):
    torch_or_skip()
    net = models.get_model(name, num_classes=10, dtype=dtype, rng=1)
    ref = _torch_ref_for(name, 10)
    assert list(net.state_dict()) == list(ref.state_dict())
    if dtype == np.float32:
        net.eval()
    compare_model(net, ref, np.random.default_rng(2).standard_normal((4, 3, size, size)), dtype)


def test_small_variants_and_gradcheck():
    net = models.resnet20(num_classes=4, in_channels=1, rng=0)
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8))
    forward_backward(net, x.astype(np.float32), 4)
    assert striate.gradcheck(net, x, max_per_tensor=2) < 1e-6
    mono = models.resnet34(num_classes=10, in_channels=1, rng=0)
    assert mono.conv1.weight.data.shape == (64, 1, 7, 7) and mono.fc.weight.data.shape == (10, 512)
    forward_backward(mono, np.random.default_rng(4).random((2, 1, 32, 32)).astype(np.float32), 10)


def test_errors():
    net = models.resnet56()
    with pytest.raises(ShapeError, match=r"conv1 \(Conv2d\) expects input \(N, 3, H, W\); received \(2, 32, 32\)"):
        net(np.zeros((2, 32, 32), np.float32))
