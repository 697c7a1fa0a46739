"""Conv1d / Conv2d: PyTorch oracle over a configuration grid, finite differences, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DTypeError, ShapeError
from tests.util import compare_with_torch, torch_or_skip

# (in, out, kernel, stride, padding, dilation, groups, H, W)
GRID2D = [
    (3, 4, 1, 1, 0, 1, 1, 5, 5),
    (3, 4, 3, 1, 1, 1, 1, 7, 6),
    (3, 6, 3, 2, 1, 1, 1, 9, 9),
    (4, 6, 5, 3, 2, 1, 2, 11, 8),
    (4, 4, 3, 1, "same", 2, 1, 7, 7),
    (4, 4, 4, 1, "same", 1, 1, 6, 5),
    (6, 6, 3, 2, 1, 1, 6, 9, 7),        # depthwise
    (6, 12, 3, 1, 0, 2, 6, 9, 9),       # depthwise, channel multiplier 2, dilation
    (2, 3, (3, 5), (2, 1), (1, 2), (1, 2), 1, 8, 9),
    (3, 2, 5, 2, "valid", 1, 1, 9, 9),
    (2, 4, 3, 3, 0, 1, 2, 10, 10),
    # stride 1 with out <= in: dx is computed as a convolution of dy (not col2im)
    (6, 6, 3, 1, 1, 1, 6, 7, 7),        # depthwise
    (4, 2, 3, 1, 1, 1, 2, 6, 6),        # grouped, fewer outputs
    (4, 4, (3, 5), 1, (0, 2), (2, 1), 1, 9, 8),
    (4, 4, 3, 1, 3, 1, 1, 5, 5),        # padding beyond the kernel: back to col2im
]


@pytest.mark.parametrize("cfg", GRID2D)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3])
def test_conv2d_matches_torch(cfg, dtype, batch):
    torch = torch_or_skip()
    cin, cout, k, s, p, d, g, h, w = cfg
    rng = np.random.default_rng(1)
    layer = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, rng=rng).to(dtype)
    ref = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g)
    x = rng.standard_normal((batch, cin, h, w))
    compare_with_torch(layer, ref, [x], dtype)


@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_no_bias_matches_torch(bias):
    torch = torch_or_skip()
    layer = nn.Conv2d(3, 5, 3, padding=1, bias=bias, rng=0).double()
    ref = torch.nn.Conv2d(3, 5, 3, padding=1, bias=bias)
    assert list(layer.state_dict()) == list(ref.state_dict())
    compare_with_torch(layer, ref, [np.random.default_rng(2).standard_normal((2, 3, 6, 6))])


# (in, out, kernel, stride, padding, dilation, groups, L)
GRID1D = [
    (2, 3, 1, 1, 0, 1, 1, 9),
    (2, 4, 3, 1, 1, 1, 1, 10),
    (4, 4, 5, 2, 2, 1, 2, 17),
    (3, 3, 3, 1, "same", 2, 3, 12),
    (3, 6, 3, 3, 0, 2, 1, 20),
]


@pytest.mark.parametrize("cfg", GRID1D)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv1d_matches_torch(cfg, dtype):
    torch = torch_or_skip()
    cin, cout, k, s, p, d, g, length = cfg
    rng = np.random.default_rng(3)
    layer = nn.Conv1d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, rng=rng).to(dtype)
    ref = torch.nn.Conv1d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g)
    compare_with_torch(layer, ref, [rng.standard_normal((2, cin, length))], dtype)


def naive_conv2d(x, w, b, stride, pad, dil, groups):
    """Direct loop definition of a grouped, strided, dilated 2-D cross-correlation."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    y = np.zeros((n, o, oh, ow))
    og = o // groups
    for ni, oc, i, j in itertools.product(range(n), range(o), range(oh), range(ow)):
        gi = oc // og
        acc = b[oc]
        for ci, a, bb in itertools.product(range(cg), range(kh), range(kw)):
            acc += w[oc, ci, a, bb] * xp[ni, gi * cg + ci, i * stride + a * dil, j * stride + bb * dil]
        y[ni, oc, i, j] = acc
    return y


@pytest.mark.parametrize("stride,pad,dil,groups", [(1, 0, 1, 1), (2, 1, 1, 2), (1, 2, 2, 1), (3, 1, 1, 4)])
def test_conv2d_matches_naive_loop(stride, pad, dil, groups):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 7, 8))
    layer = nn.Conv2d(4, 4, 3, stride=stride, padding=pad, dilation=dil, groups=groups, rng=rng).double()
    y = layer(x)
    ref = naive_conv2d(x, layer.weight.data, layer.bias.data, stride, pad, dil, groups)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, padding=1, groups=2),
    dict(kernel_size=2, dilation=2, padding="same"),
    dict(kernel_size=(1, 3), stride=(2, 1)),
])
def test_conv2d_gradcheck(cfg):
    layer = nn.Conv2d(4, 4, rng=0, **cfg)
    x = np.random.default_rng(5).standard_normal((2, 4, 6, 5))
    assert striate.gradcheck(layer, x) < 1e-6


def test_conv1d_gradcheck():
    layer = nn.Conv1d(3, 6, 3, stride=2, padding=1, dilation=2, groups=3, rng=0)
    x = np.random.default_rng(6).standard_normal((2, 3, 11))
    assert striate.gradcheck(layer, x) < 1e-6


def test_conv2d_kernel_gradcheck():
    from striate.functional.conv import conv2d_backward, conv2d_forward
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)

    def fwd(x, w, b):
        return conv2d_forward(x, w, b, stride=(2, 1), padding=((1, 0), (1, 1)), dilation=(1, 2), groups=2)

    assert striate.gradcheck(fwd, x, w, b, backward=conv2d_backward) < 1e-6


def test_backward_accumulates_parameter_gradients():
    layer = nn.Conv2d(2, 3, 3, rng=0).double()
    x = np.random.default_rng(8).standard_normal((2, 2, 5, 5))
    dy = np.ones((2, 3, 3, 3))
    layer(x)
    layer.backward(dy)
    first = layer.weight.grad.copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * first)
    layer.zero_grad()
    assert layer.weight.grad is None


def test_default_init_distribution():
    layer = nn.Conv2d(16, 64, 3, rng=0)
    bound = 1 / np.sqrt(16 * 9)
    w = layer.weight.data
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_wrong_channels_names_layer():
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.Conv2d(16, 16, 3), nn.Conv2d(32, 8, 3))
    with pytest.raises(ShapeError) as e:
        model(np.zeros((100, 1, 14, 14), np.float32))
    assert str(e.value) == "2 (Conv2d) expects input (N, 32, H, W); received (100, 16, 10, 10)"


def test_nested_path_in_error():
    model = nn.Sequential()
    features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(8, 4, 3))
    model.add_module("features", features)
    with pytest.raises(ShapeError, match=r"^features\.1 \(Conv2d\) expects input \(N, 8, H, W\); received \(2, 4, 6, 6\)"):
        model(np.zeros((2, 1, 8, 8), np.float32))


def test_wrong_rank():
    with pytest.raises(ShapeError, match=r"expects input \(N, 3, H, W\); received \(3, 8, 8\)"):
        nn.Conv2d(3, 4, 3)(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ShapeError, match=r"expects input \(N, 3, L\)"):
        nn.Conv1d(3, 4, 3)(np.zeros((2, 3, 8, 8), np.float32))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ShapeError, match=r"kernel \(5, 5\).*larger than the padded input.*\(1, 1, 3, 3\)"):
        nn.Conv2d(1, 1, 5, padding=0)(np.zeros((1, 1, 3, 3), np.float32))
    nn.Conv2d(1, 1, 5, padding=1)(np.zeros((1, 1, 3, 3), np.float32))  # 5x5 padded: fits


def test_integer_input_refused():
    with pytest.raises(DTypeError, match="floating-point input.*uint8"):
        nn.Conv2d(1, 1, 3)(np.zeros((1, 1, 5, 5), np.uint8))


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), "divisible by groups"),
    (dict(in_channels=0, out_channels=4, kernel_size=3), "in_channels must be a positive int; received 0"),
    (dict(in_channels=2, out_channels=4, kernel_size=0), "kernel_size must be >= 1"),
    (dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding="same"), "needs stride 1"),
    (dict(in_channels=2, out_channels=4, kernel_size=3, padding=-1), "padding must be >= 0"),
    (dict(in_channels=2, out_channels=4, kernel_size=3, padding="full"), "received 'full'"),
])
def test_bad_constructor_arguments(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        nn.Conv2d(**kwargs)


def test_float64_input_is_cast_to_parameter_dtype():
    layer = nn.Conv2d(1, 2, 3, rng=0)
    y = layer(np.random.default_rng(0).standard_normal((1, 1, 5, 5)))
    assert y.dtype == np.float32
