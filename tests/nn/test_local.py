"""LocallyConnected2d: loop reference, Conv2d equivalence, PyTorch autograd oracle, gradients, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DTypeError, ShapeError, StateError
from striate.functional.local import locally_connected2d_backward, locally_connected2d_forward
from tests.util import compare_with_torch, torch_or_skip

# (in, out, input_size, kernel, stride, padding)
GRID = [
    (2, 3, 5, 1, 1, 0),
    (3, 4, (6, 5), 3, 1, 0),
    (2, 3, (7, 6), 3, 2, 1),
    (3, 2, (6, 7), (2, 3), (1, 2), (1, 0)),
    (1, 4, 8, 5, 3, 2),
    (2, 2, (4, 5), 3, 1, "same"),
]


def naive_local2d(x, w, b, stride, pad):
    """Direct loop definition: position (i, j) uses its own filter bank w[i, j]."""
    n, c, h, wd = x.shape
    oh, ow, o, _, kh, kw = w.shape
    (pt, pb), (pl, pr) = pad
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((n, o, oh, ow))
    for ni, oc, i, j in itertools.product(range(n), range(o), range(oh), range(ow)):
        acc = 0.0 if b is None else b[oc, i, j]
        for ci, a, bb in itertools.product(range(c), range(kh), range(kw)):
            acc += w[i, j, oc, ci, a, bb] * xp[ni, ci, i * stride[0] + a, j * stride[1] + bb]
        y[ni, oc, i, j] = acc
    return y


@pytest.mark.parametrize("cfg", GRID)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_naive_loop(cfg, bias):
    cin, cout, size, k, s, p = cfg
    rng = np.random.default_rng(1)
    layer = nn.LocallyConnected2d(cin, cout, size, k, s, p, bias=bias, rng=rng).double()
    x = rng.standard_normal((2, cin, *layer.input_size))
    y = layer(x)
    b = None if layer.bias is None else layer.bias.data
    ref = naive_local2d(x, layer.weight.data, b, layer.stride, layer._pads)
    assert y.shape == (2, cout, *layer.output_size)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def _torch_local(torch, weight_shape, bias, stride, padding):
    """The same layer in PyTorch (unfold + einsum), for an autograd oracle."""

    class TorchLocal(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(weight_shape))
            self.bias = torch.nn.Parameter(torch.zeros(weight_shape[2], *weight_shape[:2])) if bias else None

        def forward(self, x):
            oh, ow, o, c, kh, kw = self.weight.shape
            cols = torch.nn.functional.unfold(x, (kh, kw), padding=padding, stride=stride)  # (N, CKK, L)
            y = torch.einsum("nkl,lok->nol", cols, self.weight.reshape(oh * ow, o, c * kh * kw))
            y = y.reshape(x.shape[0], o, oh, ow)
            return y if self.bias is None else y + self.bias

    return TorchLocal()


@pytest.mark.parametrize("cfg", GRID[:5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 3])
def test_matches_torch_autograd(cfg, dtype, batch):
    torch = torch_or_skip()
    cin, cout, size, k, s, p = cfg
    rng = np.random.default_rng(2)
    layer = nn.LocallyConnected2d(cin, cout, size, k, s, p, rng=rng).to(dtype)
    ref = _torch_local(torch, layer.weight.shape, True, layer.stride, layer.padding)
    x = rng.standard_normal((batch, cin, *layer.input_size))
    compare_with_torch(layer, ref, [x], dtype)


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 0), (3, 2, 1), ((2, 3), (2, 1), (0, 1))])
def test_shared_weights_equal_conv2d(k, stride, pad):
    """With the same filters at every position it is a Conv2d: y, dx, and summed dw/db agree."""
    rng = np.random.default_rng(3)
    conv = nn.Conv2d(3, 4, k, stride=stride, padding=pad, rng=rng).double()
    local = nn.LocallyConnected2d(3, 4, (7, 6), k, stride=stride, padding=pad, rng=rng).double()
    oh, ow = local.output_size
    local.weight.data[...] = conv.weight.data
    local.bias.data[...] = conv.bias.data[:, None, None]
    x = rng.standard_normal((2, 3, 7, 6))
    y = local(x)
    np.testing.assert_allclose(y, conv(x), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(local.backward(dy), conv.backward(dy), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(local.weight.grad.sum(axis=(0, 1)), conv.weight.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(local.bias.grad.sum(axis=(1, 2)), conv.bias.grad, rtol=1e-12, atol=1e-12)
    assert local.weight.grad.shape == (oh, ow, 4, 3, *local.kernel_size)


@pytest.mark.parametrize("cfg", GRID)
def test_gradcheck(cfg):
    cin, cout, size, k, s, p = cfg
    layer = nn.LocallyConnected2d(cin, cout, size, k, s, p, rng=0)
    x = np.random.default_rng(4).standard_normal((2, cin, *layer.input_size))
    assert striate.gradcheck(layer, x, max_per_tensor=60) < 1e-6


def test_kernel_gradcheck():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 6))
    w = rng.standard_normal((3, 3, 3, 2, 2, 3))    # OH = (5+1-2)//2+1 = 3, OW = (6+1-3)//2+1 = 3
    b = rng.standard_normal((3, 3, 3))

    def fwd(x, w, b):
        return locally_connected2d_forward(x, w, b, stride=(2, 2), padding=((1, 0), (0, 1)))

    assert striate.gradcheck(fwd, x, w, b, backward=locally_connected2d_backward, max_per_tensor=80) < 1e-6


def test_backward_accumulates_parameter_gradients():
    layer = nn.LocallyConnected2d(2, 3, 5, 3, rng=0).double()
    x = np.random.default_rng(6).standard_normal((4, 2, 5, 5))
    dy = np.ones((4, 3, 3, 3))
    layer(x)
    layer.backward(dy)
    first = layer.weight.grad.copy()
    np.testing.assert_allclose(layer.bias.grad, np.full((3, 3, 3), 4.0))
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * first)


# --------------------------------------------------------------------------- layout, init, dtype

def test_parameter_layout_and_init():
    layer = nn.LocallyConnected2d(8, 5, (10, 9), 3, stride=2, padding=1, rng=0)
    assert layer.output_size == (5, 5)
    assert layer.weight.shape == (5, 5, 5, 8, 3, 3)
    assert layer.bias.shape == (5, 5, 5)
    assert list(layer.state_dict()) == ["weight", "bias"]
    bound = 1 / np.sqrt(8 * 9)                      # a Conv2d with fan_in = in_channels*KH*KW
    w = layer.weight.data
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert np.abs(layer.bias.data).max() <= bound and np.abs(layer.bias.data).max() > 0.5 * bound
    no_bias = nn.LocallyConnected2d(1, 1, 4, 2, bias=False, dtype=np.float64)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]
    assert no_bias.weight.dtype == np.float64 and "bias=False" in repr(no_bias)


def test_float32_default_and_cast():
    layer = nn.LocallyConnected2d(2, 3, 4, 3)
    y = layer(np.ones((1, 2, 4, 4), np.float64))
    assert y.dtype == np.float32 and y.shape == (1, 3, 2, 2)


# --------------------------------------------------------------------------- errors

def test_wrong_input_size_names_expected_shape():
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.LocallyConnected2d(3, 4, (8, 8), 3))
    with pytest.raises(ShapeError) as e:
        model(np.zeros((2, 1, 10, 8), np.float32))
    assert str(e.value).startswith("1 (LocallyConnected2d) expects input (N, 3, 8, 8); received (2, 3, 10, 8)")


@pytest.mark.parametrize("shape", [(2, 4, 6, 6), (2, 3, 6), (3, 6, 6)])
def test_wrong_channels_or_rank(shape):
    with pytest.raises(ShapeError, match=r"^LocallyConnected2d expects input \(N, 3, 6, 6\); received"):
        nn.LocallyConnected2d(3, 2, 6, 3)(np.zeros(shape, np.float32))


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(kernel_size=7), r"kernel_size \(7, 7\) is larger than the padded input; received input_size \(6, 6\)"),
    (dict(input_size=(6, 0)), r"input_size must be >= 1; received \(6, 0\)"),
    (dict(input_size="big"), r"input_size must be an int or a tuple of 2 ints; received 'big'"),
    (dict(in_channels=0), r"in_channels must be a positive int; received 0"),
    (dict(out_channels=2.5), r"out_channels must be a positive int; received 2.5"),
    (dict(stride=0), r"stride must be >= 1"),
    (dict(padding=-1), r"padding must be >= 0"),
    (dict(padding="same", stride=2), r"needs stride 1"),
])
def test_bad_constructor_arguments(kwargs, pattern):
    args = dict(in_channels=3, out_channels=2, input_size=6, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=pattern):
        nn.LocallyConnected2d(**args)


def test_integer_input_refused():
    with pytest.raises(DTypeError, match="LocallyConnected2d expects a floating-point input.*uint8"):
        nn.LocallyConnected2d(1, 1, 5, 3)(np.zeros((1, 1, 5, 5), np.uint8))


def test_backward_before_forward():
    layer = nn.LocallyConnected2d(1, 1, 5, 3)
    with pytest.raises(StateError, match="LocallyConnected2d"):
        layer.backward(np.zeros((1, 1, 3, 3), np.float32))
