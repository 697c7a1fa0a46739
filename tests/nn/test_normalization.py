"""BatchNorm1d/2d and LocalResponseNorm: PyTorch oracle, gradchecks, running stats, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from striate import gradcheck, nn
from striate.errors import ConfigError, DTypeError, ShapeError, StateError
from striate.functional import norm as FN
from tests.util import assert_close, compare_with_torch, copy_to_torch, torch_or_skip

DTYPES = [np.float64, np.float32]
C = 3
BN_SHAPES = [("BatchNorm1d", (6, C)), ("BatchNorm1d", (4, C, 5)), ("BatchNorm2d", (3, C, 4, 5))]
BN_GRID = list(itertools.product(BN_SHAPES, [None, 0.1], [True, False], [True, False], DTYPES))


def _bn(cls: str, rng, **kw) -> nn.Module:
    """A BatchNorm with non-trivial weight, bias and running statistics."""
    layer = getattr(nn, cls)(C, **kw)
    if layer.affine:
        layer.weight.data[...] = rng.uniform(0.5, 2.0, C)
        layer.bias.data[...] = rng.standard_normal(C)
    if layer.track_running_stats:
        layer.set_buffer("running_mean", rng.standard_normal(C).astype(layer.running_mean.dtype))
        layer.set_buffer("running_var", rng.uniform(0.5, 2.0, C).astype(layer.running_var.dtype))
    return layer


@pytest.mark.parametrize("spec,momentum,affine,track,dtype", BN_GRID,
                         ids=[f"{s[0]}{len(s[1])}d-m{m}-a{int(a)}-t{int(t)}-{np.dtype(d).name}"
                              for s, m, a, t, d in BN_GRID])
def test_batchnorm_matches_torch_over_steps(spec, momentum, affine, track, dtype):
    """Three training steps then one eval step: outputs, grads, running stats, counter."""
    torch = torch_or_skip()
    cls, shape = spec
    rng = np.random.default_rng(100)         # not the dy seeds below: dy must not be affine in x
    layer = _bn(cls, rng, momentum=momentum, affine=affine, track_running_stats=track, dtype=dtype)
    tlayer = getattr(torch.nn, cls)(C, momentum=momentum, affine=affine, track_running_stats=track)
    tlayer = tlayer.to(torch.float64 if dtype == np.float64 else torch.float32)
    copy_to_torch(layer, tlayer)
    for step in range(4):
        if step == 3:
            layer.eval()
        x = rng.standard_normal(shape) * 3 + 1
        compare_with_torch(layer, tlayer, [x], dtype, seed=1000 + step, copy_weights=False)
        for p in tlayer.parameters():
            p.grad = None
        if track:
            assert layer.num_batches_tracked.dtype == np.int64
            assert int(layer.num_batches_tracked) == int(tlayer.num_batches_tracked) == min(step + 1, 3)
            assert_close(layer.running_var, tlayer.running_var.numpy(), dtype, "running_var")
        else:
            assert layer.running_mean is None and layer.num_batches_tracked is None
    assert layer.state_dict().keys() == tlayer.state_dict().keys()


@pytest.mark.parametrize("cls,shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck(cls, shape, training):
    rng = np.random.default_rng(1)
    layer = _bn(cls, rng, dtype=np.float64)
    layer.train(training)
    assert gradcheck(layer, rng.standard_normal(shape) * 2 + 0.5) < 1e-6


def test_batchnorm_gradcheck_without_affine():
    rng = np.random.default_rng(2)
    layer = nn.BatchNorm2d(C, affine=False, track_running_stats=False)
    layer.eval()                                   # still batch statistics: nothing tracked
    assert gradcheck(layer, rng.standard_normal((2, C, 3, 2))) < 1e-6


def test_running_stats_update_rule():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, C, 2, 2)) * 2 + 3
    mean = x.mean(axis=(0, 2, 3))
    unbiased = x.var(axis=(0, 2, 3), ddof=1)
    layer = nn.BatchNorm2d(C, momentum=0.25, dtype=np.float64)
    layer(x)
    np.testing.assert_allclose(layer.running_mean, 0.25 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.75 + 0.25 * unbiased, rtol=1e-12)
    cma = nn.BatchNorm2d(C, momentum=None, dtype=np.float64)
    x2 = rng.standard_normal((5, C, 2, 2))
    cma(x)
    cma(x2)
    np.testing.assert_allclose(cma.running_mean, (mean + x2.mean(axis=(0, 2, 3))) / 2, rtol=1e-12)
    assert int(cma.num_batches_tracked) == 2


def test_eval_uses_running_stats_and_scale_shift():
    rng = np.random.default_rng(4)
    layer = _bn("BatchNorm2d", rng, dtype=np.float64).eval()
    x = rng.standard_normal((2, C, 3, 3))
    y = layer(x)
    a, b = layer.scale_shift()
    assert a.shape == b.shape == (C,) and a.dtype == b.dtype == np.float64
    np.testing.assert_allclose(y, a[None, :, None, None] * x + b[None, :, None, None], rtol=1e-12)
    want = (x - layer.running_mean[None, :, None, None]) / np.sqrt(layer.running_var + 1e-5)[None, :, None, None]
    want = want * layer.weight.data[None, :, None, None] + layer.bias.data[None, :, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-12)
    assert int(layer.num_batches_tracked) == 0           # eval does not update
    plain = nn.BatchNorm1d(C, affine=False, dtype=np.float64)
    plain.set_buffer("running_var", np.full(C, 4.0))
    a, b = plain.scale_shift()
    np.testing.assert_allclose(a, 1 / np.sqrt(4 + 1e-5), rtol=1e-15)
    np.testing.assert_array_equal(b, 0.0)
    f32 = _bn("BatchNorm2d", rng).eval()                 # float32 layer: float64 (a, b)
    a, b = f32.scale_shift()
    x32 = x.astype(np.float32)
    assert a.dtype == np.float64
    assert_close(f32(x32), a[None, :, None, None] * x32 + b[None, :, None, None], np.float32, "fold")


def test_scale_shift_needs_running_stats():
    with pytest.raises(ConfigError, match="BatchNorm2d.*track_running_stats=False"):
        nn.BatchNorm2d(C, track_running_stats=False).scale_shift()


def test_batchnorm_buffers_like_torch():
    layer = nn.BatchNorm2d(4)
    sd = layer.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].shape == () and sd["num_batches_tracked"].dtype == np.int64
    assert sd["weight"].dtype == np.float32
    np.testing.assert_array_equal(sd["running_var"], np.ones(4))
    assert list(nn.BatchNorm1d(4, affine=False, track_running_stats=False).state_dict()) == []
    layer.double()
    assert layer.running_mean.dtype == np.float64 and layer.num_batches_tracked.dtype == np.int64
    assert repr(nn.BatchNorm1d(4)) == \
        "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


def test_batchnorm_state_dict_roundtrip_with_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    tlayer = torch.nn.BatchNorm2d(C).double()
    for _ in range(2):
        tlayer(torch.from_numpy(rng.standard_normal((4, C, 2, 2))))
    layer = nn.BatchNorm2d(C, dtype=np.float64)
    layer.load_state_dict(tlayer.state_dict())
    assert int(layer.num_batches_tracked) == 2
    compare_with_torch(layer.eval(), tlayer, [rng.standard_normal((2, C, 3, 3))], np.float64,
                       copy_weights=False)


def test_batchnorm_input_dtype_cast_to_parameters():
    layer = nn.BatchNorm1d(C)
    y = layer(np.random.default_rng(6).standard_normal((4, C)))
    assert y.dtype == np.float32 and layer.running_mean.dtype == np.float32
    free = nn.BatchNorm1d(C, affine=False, track_running_stats=False)
    assert free(np.ones((4, C), np.float64)).dtype == np.float64


# --------------------------------------------------------------------- batch norm errors
def test_batchnorm_wrong_channels_and_rank():
    with pytest.raises(ShapeError, match=r"BatchNorm2d expects input \(N, 3, H, W\); received \(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ShapeError, match=r"BatchNorm2d expects .*received \(2, 3, 5\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ShapeError, match=r"BatchNorm1d expects input \(N, 3\) or \(N, 3, L\); received \(2, 3, 4, 4\)"):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ShapeError, match=r"received \(2, 5\)"):
        nn.BatchNorm1d(3)(np.zeros((2, 5), np.float32))


def test_batchnorm_single_value_per_channel_in_training():
    with pytest.raises(ShapeError, match=r"BatchNorm2d.*more than 1 value per channel.*\(1, 3, 1, 1\)"):
        nn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1), np.float32))
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.zeros((1, 3), np.float32))
    with pytest.raises(ShapeError, match="more than 1 value per channel"):   # batch stats in eval
        nn.BatchNorm1d(3, track_running_stats=False).eval()(np.zeros((1, 3), np.float32))
    assert nn.BatchNorm2d(3).eval()(np.ones((1, 3, 1, 1), np.float32)).shape == (1, 3, 1, 1)
    assert nn.BatchNorm2d(3)(np.ones((1, 3, 1, 2), np.float32)).shape == (1, 3, 1, 2)


@pytest.mark.parametrize("kwargs,needle", [
    ({"num_features": 0}, "num_features"), ({"num_features": 2.5}, "2.5"),
    ({"num_features": True}, "True"), ({"num_features": 3, "eps": -1.0}, "eps"),
    ({"num_features": 3, "momentum": 1.5}, "1.5"), ({"num_features": 3, "momentum": -0.1}, "-0.1"),
    ({"num_features": 3, "momentum": "fast"}, "'fast'"),
])
def test_batchnorm_bad_arguments(kwargs, needle):
    with pytest.raises(ConfigError) as info:
        nn.BatchNorm2d(**kwargs)
    assert needle in str(info.value) and "BatchNorm2d" in str(info.value)


def test_batchnorm_dtype_and_state_errors():
    with pytest.raises(DTypeError, match="BatchNorm1d"):
        nn.BatchNorm1d(3)(np.ones((4, 3), np.int64))
    with pytest.raises(StateError, match="BatchNorm1d"):
        nn.BatchNorm1d(3).backward(np.ones((4, 3)))


def test_batch_moments_kernel():
    x = np.random.default_rng(7).standard_normal((3, 2, 4))
    mean, var, count = FN.batch_moments(x)
    assert count == 12
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(var, x.var(axis=(0, 2)), rtol=1e-14)


# --------------------------------------------------------------------- local response norm
LRN_GRID = list(itertools.product([1, 2, 3, 4, 5], [(2, 6, 5), (2, 6, 3, 4), (1, 7, 2, 2, 2)], DTYPES))


@pytest.mark.parametrize("size,shape,dtype", LRN_GRID)
def test_lrn_matches_torch(size, shape, dtype):
    torch = torch_or_skip()
    x = np.random.default_rng(size).standard_normal(shape) * 2
    kw = {"alpha": 0.7, "beta": 0.8, "k": 1.5}
    compare_with_torch(nn.LocalResponseNorm(size, **kw), torch.nn.LocalResponseNorm(size, **kw), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lrn_defaults_match_torch(dtype):
    torch = torch_or_skip()
    x = np.random.default_rng(9).standard_normal((2, 8, 3, 3)) * 30
    y = compare_with_torch(nn.LocalResponseNorm(5), torch.nn.LocalResponseNorm(5), [x], dtype)
    assert y.dtype == dtype


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_lrn_gradcheck(size):
    x = np.random.default_rng(10 + size).standard_normal((2, 5, 2, 3))
    assert gradcheck(nn.LocalResponseNorm(size, alpha=0.9, beta=0.6, k=1.2), x) < 1e-6


def test_lrn_window_against_loop():
    """Reference: channel c sums squares over c - size//2 .. c + (size-1)//2."""
    x = np.random.default_rng(11).standard_normal((2, 6, 3))
    size, alpha, beta, k = 4, 0.5, 0.75, 2.0
    want = np.empty_like(x)
    for c in range(6):
        lo, hi = max(0, c - size // 2), min(6, c + (size - 1) // 2 + 1)
        s = (x[:, lo:hi] ** 2).sum(axis=1)
        want[:, c] = x[:, c] / (k + alpha / size * s) ** beta
    got = nn.LocalResponseNorm(size, alpha, beta, k)(x)
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "3"])
def test_lrn_bad_size(size):
    with pytest.raises(ConfigError, match=r"LocalResponseNorm: size .*received " + repr(size).replace(".", r"\.")):
        nn.LocalResponseNorm(size)


def test_lrn_bad_input():
    with pytest.raises(ShapeError, match=r"LocalResponseNorm expects input \(N, C, \*\).*received \(4, 5\)"):
        nn.LocalResponseNorm(2)(np.zeros((4, 5)))
    with pytest.raises(ConfigError, match="beta"):
        nn.LocalResponseNorm(2, beta="x")
    with pytest.raises(DTypeError, match="LocalResponseNorm"):
        nn.LocalResponseNorm(2)(np.zeros((1, 4, 5), np.int32))
