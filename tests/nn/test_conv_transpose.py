"""ConvTranspose1d / ConvTranspose2d: PyTorch oracle over a grid, definitions, gradients, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DTypeError, ShapeError, StateError
from striate.functional.conv import conv2d_forward
from striate.functional.conv_transpose import (conv_transpose1d_backward, conv_transpose1d_forward,
                                               conv_transpose2d_backward, conv_transpose2d_forward)
from tests.util import assert_close, compare_with_torch, torch_or_skip

# (in, out, kernel, stride, padding, output_padding, groups, dilation, H, W)
GRID2D = [
    (3, 4, 1, 1, 0, 0, 1, 1, 5, 5),
    (3, 4, 2, 2, 0, 0, 1, 1, 4, 5),
    (3, 4, 3, 2, 1, 1, 1, 1, 5, 7),
    (4, 6, 4, 3, 1, 2, 2, 1, 3, 4),
    (4, 2, 5, 3, 2, 0, 2, 1, 5, 3),
    (4, 4, 3, 1, 1, 1, 1, 2, 6, 5),              # output_padding < dilation with stride 1
    (6, 6, 3, 2, 1, 1, 6, 1, 5, 5),              # depthwise
    (4, 8, 3, 2, 2, 1, 4, 2, 5, 6),              # depthwise, multiplier 2, dilation 2
    (2, 3, (3, 5), (2, 1), (1, 2), (1, 0), 1, (1, 2), 4, 5),
    (3, 5, 5, 1, 2, 0, 1, 1, 7, 3),
    (2, 2, 3, 3, 2, 2, 1, 1, 3, 3),              # output_padding rows beyond the full output
    (2, 3, 3, 2, 2, 1, 1, 1, 2, 2),              # padding crops most of the output
]


@pytest.mark.parametrize("cfg", GRID2D)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 2])
def test_conv_transpose2d_matches_torch(cfg, dtype, batch):
    torch = torch_or_skip()
    cin, cout, k, s, p, op, g, d, h, w = cfg
    rng = np.random.default_rng(1)
    layer = nn.ConvTranspose2d(cin, cout, k, s, p, op, g, True, d, rng=rng).to(dtype)
    ref = torch.nn.ConvTranspose2d(cin, cout, k, s, p, op, g, True, d)
    x = rng.standard_normal((batch, cin, h, w))
    y = compare_with_torch(layer, ref, [x], dtype)
    assert y.dtype == dtype


@pytest.mark.parametrize("bias,groups", [(True, 1), (False, 1), (True, 2), (False, 3)])
def test_state_dict_matches_torch(bias, groups):
    torch = torch_or_skip()
    layer = nn.ConvTranspose2d(6, 12, (3, 2), stride=2, groups=groups, bias=bias, rng=0)
    ref = torch.nn.ConvTranspose2d(6, 12, (3, 2), stride=2, groups=groups, bias=bias)
    ours = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    layer.load_state_dict(ref.state_dict())


def test_output_size_argument_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    layer = nn.ConvTranspose2d(3, 4, 3, stride=3, padding=1, rng=rng).double()
    ref = torch.nn.ConvTranspose2d(3, 4, 3, stride=3, padding=1).double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = rng.standard_normal((2, 3, 4, 5))
    for size in [(10, 13), (12, 14), (1, 1, 11, 15)]:
        layer.zero_grad()
        ref.zero_grad()
        tx = torch.from_numpy(x).requires_grad_(True)
        y = layer(x, output_size=size)
        ty = ref(tx, output_size=list(size))
        assert y.shape == tuple(ty.shape) and y.shape[-2:] == tuple(size[-2:])
        assert_close(y, ty.detach().numpy(), what="output")
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(layer.backward(dy), tx.grad.numpy(), what="input grad")
        assert_close(layer.weight.grad, ref.weight.grad.numpy(), what="weight grad")
        assert_close(layer.bias.grad, ref.bias.grad.numpy(), what="bias grad")


def test_output_size_argument_used_in_backward():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, rng=0).double()
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 4))
    y = layer(x, output_size=(8, 8))
    assert y.shape == (1, 3, 8, 8)
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape


# (in, out, kernel, stride, padding, output_padding, groups, dilation, L)
GRID1D = [
    (2, 3, 1, 1, 0, 0, 1, 1, 7),
    (2, 4, 3, 2, 1, 1, 1, 1, 6),
    (4, 4, 5, 3, 2, 2, 2, 1, 5),
    (3, 3, 3, 1, 1, 1, 3, 2, 8),
]


@pytest.mark.parametrize("cfg", GRID1D)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_transpose1d_matches_torch(cfg, dtype):
    torch = torch_or_skip()
    cin, cout, k, s, p, op, g, d, length = cfg
    rng = np.random.default_rng(4)
    layer = nn.ConvTranspose1d(cin, cout, k, s, p, op, g, True, d, rng=rng).to(dtype)
    ref = torch.nn.ConvTranspose1d(cin, cout, k, s, p, op, g, True, d)
    assert {k: v.shape for k, v in layer.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    compare_with_torch(layer, ref, [rng.standard_normal((2, cin, length))], dtype)


# --------------------------------------------------------------------------- definitions without torch

def naive_conv_transpose2d(x, w, b, stride, pad, out_pad, dil, groups):
    """Direct loop definition: each input pixel scatters a weighted kernel patch."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    full_h = (h - 1) * stride + dil * (kh - 1) + 1 + out_pad
    full_w = (wd - 1) * stride + dil * (kw - 1) + 1 + out_pad
    full = np.zeros((n, og * groups, full_h, full_w))
    cg = c // groups
    for ni, ci, i, j in itertools.product(range(n), range(c), range(h), range(wd)):
        gi = ci // cg
        for oc, a, bb in itertools.product(range(og), range(kh), range(kw)):
            full[ni, gi * og + oc, i * stride + a * dil, j * stride + bb * dil] += x[ni, ci, i, j] * w[ci, oc, a, bb]
    y = full[:, :, pad:full_h - pad, pad:full_w - pad]
    return y + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("k,stride,pad,out_pad,dil,groups", [
    (3, 1, 0, 0, 1, 1), (3, 2, 1, 1, 1, 2), (2, 3, 1, 2, 2, 1), (4, 2, 2, 1, 1, 4), (3, 1, 1, 1, 2, 1),
])
def test_forward_matches_naive_loop(k, stride, pad, out_pad, dil, groups):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 4, 3))
    layer = nn.ConvTranspose2d(4, 8, k, stride, pad, out_pad, groups, True, dil, rng=rng).double()
    y = layer(x)
    ref = naive_conv_transpose2d(x, layer.weight.data, layer.bias.data, stride, pad, out_pad, dil, groups)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("h,k,stride,pad,dil,groups", [
    (7, 3, 2, 1, 1, 1), (8, 3, 2, 1, 1, 2), (9, 4, 3, 2, 1, 1), (7, 2, 1, 0, 2, 4), (10, 5, 3, 2, 2, 2),
])
def test_is_adjoint_of_conv2d(h, k, stride, pad, dil, groups):
    """<conv2d(a), b> == <a, conv_transpose2d(b)>, and dx of the transpose is conv2d(dy)."""
    rng = np.random.default_rng(6)
    w = rng.standard_normal((8, 4 // groups, k, k))              # conv (O, C/G) == transpose (C_in, C_out/G)
    a = rng.standard_normal((2, 4, h, h + 1))
    pads = ((pad, pad), (pad, pad))
    ya, _ = conv2d_forward(a, w, None, stride=(stride, stride), padding=pads,
                           dilation=(dil, dil), groups=groups)
    oh, ow = ya.shape[2:]
    ops = tuple(size - ((o - 1) * stride - 2 * pad + dil * (k - 1) + 1) for size, o in zip((h, h + 1), (oh, ow)))
    bb = rng.standard_normal(ya.shape)
    z, cache = conv_transpose2d_forward(bb, w, None, stride=(stride, stride), padding=pads,
                                        output_padding=ops, dilation=(dil, dil), groups=groups)
    assert z.shape == a.shape
    np.testing.assert_allclose(np.sum(ya * bb), np.sum(a * z), rtol=1e-11)
    dx, _, db = conv_transpose2d_backward(a, cache)
    assert db is None
    np.testing.assert_allclose(dx, ya, rtol=1e-11, atol=1e-11)


# --------------------------------------------------------------------------- finite differences

@pytest.mark.parametrize("cfg", [
    dict(kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), groups=2, dilation=(2, 1), output_padding=(1, 0)),
    dict(kernel_size=4, stride=3, padding=2, groups=4, bias=False),
])
def test_conv_transpose2d_gradcheck(cfg):
    layer = nn.ConvTranspose2d(4, 4, rng=0, **cfg)
    x = np.random.default_rng(7).standard_normal((2, 4, 3, 4))
    assert striate.gradcheck(layer, x, max_per_tensor=60) < 1e-6


def test_conv_transpose1d_gradcheck():
    layer = nn.ConvTranspose1d(3, 6, 3, stride=2, padding=1, output_padding=1, dilation=2, groups=3, rng=0)
    x = np.random.default_rng(8).standard_normal((2, 3, 5))
    assert striate.gradcheck(layer, x, max_per_tensor=60) < 1e-6


def test_kernel_gradcheck():
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(6)

    def fwd(x, w, b):
        return conv_transpose2d_forward(x, w, b, stride=(2, 1), padding=((1, 0), (0, 1)),
                                        output_padding=(1, 0), dilation=(1, 2), groups=2)

    assert striate.gradcheck(fwd, x, w, b, backward=conv_transpose2d_backward, max_per_tensor=60) < 1e-6

    def fwd1(x, w, b):
        return conv_transpose1d_forward(x, w, b, stride=2, padding=(1, 1), output_padding=1, groups=2)

    x1, w1 = rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3))
    assert striate.gradcheck(fwd1, x1, w1, b, backward=conv_transpose1d_backward) < 1e-6


def test_backward_accumulates_parameter_gradients():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, rng=0).double()
    x = np.random.default_rng(10).standard_normal((2, 2, 3, 3))
    layer(x)
    dy = np.ones((2, 3, 7, 7))
    layer.backward(dy)
    first_w, first_b = layer.weight.grad.copy(), layer.bias.grad.copy()
    np.testing.assert_allclose(first_b, np.full(3, 2 * 49.0))
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * first_w)
    np.testing.assert_allclose(layer.bias.grad, 2 * first_b)


# --------------------------------------------------------------------------- init and dtype

def test_default_init_uses_torch_fan_in():
    """torch's fan_in for a transposed conv is weight.shape[1]*KH*KW = (out/groups)*KH*KW."""
    layer = nn.ConvTranspose2d(32, 4, 3, groups=2, rng=0)
    assert layer.weight.shape == (32, 2, 3, 3)
    bound = 1 / np.sqrt(2 * 9)
    w = layer.weight.data
    assert w.dtype == np.float32 and layer.bias.data.dtype == np.float32
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.1 * bound
    assert np.abs(layer.bias.data).max() <= bound
    wide = nn.ConvTranspose2d(64, 200, 1, rng=1)                 # bias bound 1/sqrt(200), not 1/sqrt(64)
    b_max = np.abs(wide.bias.data).max()
    assert 0.95 / np.sqrt(200) < b_max <= 1 / np.sqrt(200)
    assert nn.ConvTranspose2d(2, 2, 3, dtype=np.float64).weight.dtype == np.float64


def test_same_rng_same_weights():
    a = nn.ConvTranspose2d(3, 4, 3, rng=np.random.default_rng(11))
    b = nn.ConvTranspose2d(3, 4, 3, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)


def test_float32_input_cast_and_shape():
    layer = nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1)
    y = layer(np.zeros((2, 3, 8, 8), np.float64))
    assert y.dtype == np.float32 and y.shape == (2, 5, 16, 16)      # the classic 2x upsampler
    assert "output_padding" not in repr(layer) and "stride=(2, 2)" in repr(layer)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs,pattern", [
    (dict(stride=2, output_padding=2), r"output_padding must be smaller than either stride or dilation; received output_padding=2"),
    (dict(stride=1, output_padding=1), r"received output_padding=1 with stride=\(1, 1\), dilation=\(1, 1\)"),
    (dict(stride=(2, 1), dilation=(1, 1), output_padding=(1, 1)), r"output_padding=\(1, 1\)"),
    (dict(output_padding=-1), r"output_padding must be >= 0; received -1"),
    (dict(groups=4), r"in_channels \(6\) and out_channels \(4\) must both be divisible by groups \(4\)"),
    (dict(groups=0), r"groups must be a positive int; received 0"),
    (dict(kernel_size=0), r"kernel_size must be >= 1"),
    (dict(padding=-1), r"padding must be >= 0; received -1"),
    (dict(padding="same"), r"padding must be an int or a tuple of 2 ints; received 'same'"),
    (dict(padding_mode="reflect"), r"only padding_mode='zeros'.*received 'reflect'"),
    (dict(in_channels=0), r"in_channels must be a positive int; received 0"),
])
def test_bad_constructor_arguments(kwargs, pattern):
    args = dict(in_channels=6, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=pattern) as e:
        nn.ConvTranspose2d(**args)
    assert "ConvTranspose2d" in str(e.value)


def test_output_padding_allowed_below_dilation():
    layer = nn.ConvTranspose2d(1, 1, 3, stride=1, output_padding=1, dilation=2, rng=0)
    assert layer(np.zeros((1, 1, 4, 4), np.float32)).shape == (1, 1, 9, 9)
    with pytest.raises(ConfigError, match="ConvTranspose1d: output_padding"):
        nn.ConvTranspose1d(1, 1, 3, stride=2, output_padding=2)


def test_wrong_channels_names_layer():
    model = nn.Sequential(nn.ConvTranspose2d(4, 8, 2, stride=2), nn.ConvTranspose2d(4, 2, 2, stride=2))
    with pytest.raises(ShapeError) as e:
        model(np.zeros((2, 4, 3, 3), np.float32))
    assert str(e.value) == "1 (ConvTranspose2d) expects input (N, 4, H, W); received (2, 8, 6, 6)"


def test_wrong_rank():
    with pytest.raises(ShapeError, match=r"^ConvTranspose2d expects input \(N, 3, H, W\); received \(3, 8, 8\)"):
        nn.ConvTranspose2d(3, 4, 3)(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ShapeError, match=r"^ConvTranspose1d expects input \(N, 3, L\); received \(2, 3, 8, 8\)"):
        nn.ConvTranspose1d(3, 4, 3)(np.zeros((2, 3, 8, 8), np.float32))


def test_empty_output_refused():
    with pytest.raises(ShapeError, match=r"ConvTranspose2d.*\(1, 1, 1, 1\) with padding \(2, 2\).*empty output"):
        nn.ConvTranspose2d(1, 1, 3, padding=2)(np.zeros((1, 1, 1, 1), np.float32))
    nn.ConvTranspose2d(1, 1, 3, padding=1)(np.zeros((1, 1, 1, 1), np.float32))  # 1x1 out: fine


def test_bad_output_size():
    layer = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ShapeError, match=r"requested output_size \(9, 7\).*dimension 0 range from 7 to 8"):
        layer(x, output_size=(9, 7))
    with pytest.raises(ConfigError, match=r"output_size must have 2 or 4 values; received \(7,\)"):
        layer(x, output_size=(7,))


def test_integer_input_refused():
    with pytest.raises(DTypeError, match="ConvTranspose2d expects a floating-point input.*int64"):
        nn.ConvTranspose2d(1, 1, 3)(np.zeros((1, 1, 5, 5), np.int64))


def test_backward_before_forward():
    layer = nn.ConvTranspose2d(1, 1, 3)
    with pytest.raises(StateError, match="ConvTranspose2d"):
        layer.backward(np.zeros((1, 1, 7, 7), np.float32))
    with striate.no_grad():
        layer(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(StateError):
        layer.backward(np.zeros((1, 1, 7, 7), np.float32))
