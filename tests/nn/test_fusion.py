"""Fused inference (Sequential in eval mode under no_grad) equals running each layer."""

import numpy as np
import pytest

import striate
from striate import nn
from striate.functional import conv as FC
from striate.functional.pool import max_pool2d_forward


def _randomise_bn(model, rng):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.set_buffer("running_mean", rng.standard_normal(c).astype(m.running_mean.dtype))
            m.set_buffer("running_var", rng.uniform(0.5, 2.0, c).astype(m.running_var.dtype))
            m.weight.data[...] = rng.standard_normal(c)
            m.bias.data[...] = rng.standard_normal(c)


def _both(model, x):
    model.eval()
    unfused = model(x)                       # grad enabled: every layer on its own
    with striate.no_grad():
        fused = model(x)
    return unfused, fused


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_conv_bn_relu_pool_linear_matches_layer_by_layer(dtype, tol, monkeypatch):
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, dtype=dtype, rng=rng), nn.BatchNorm2d(8, dtype=dtype), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, bias=False, dtype=dtype, rng=rng), nn.BatchNorm2d(8, dtype=dtype),
        nn.Conv2d(8, 4, 1, dtype=dtype, rng=rng), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 6, dtype=dtype, rng=rng), nn.ReLU(), nn.Linear(6, 3, dtype=dtype, rng=rng))
    _randomise_bn(model, rng)
    x = rng.standard_normal((5, 3, 8, 8)).astype(dtype)
    calls = []
    for cls in (nn.BatchNorm2d, nn.ReLU):
        original = cls.forward
        monkeypatch.setattr(cls, "forward", lambda self, x, f=original: (calls.append(type(self)), f(self, x))[1])
    model.eval()
    unfused = model(x)              # recording gradients: every layer on its own, but the first
    assert calls.count(nn.BatchNorm2d) == 1 and calls.count(nn.ReLU) == 2   # BN + ReLU as one
    calls.clear()
    with striate.no_grad():
        fused = model(x)
    assert calls == []                          # both BNs folded, every ReLU in place
    assert fused.dtype == dtype
    assert (unfused[:, :] != 0).any()
    np.testing.assert_allclose(fused, unfused, rtol=tol, atol=tol)


@pytest.mark.parametrize("pool", [nn.MaxPool2d(3, stride=2, padding=1), nn.MaxPool2d(2, ceil_mode=True)])
def test_max_pool_after_relu_runs_first_with_the_same_result(pool, monkeypatch):
    rng = np.random.default_rng(7)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng),
                          nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU(), pool)
    _randomise_bn(model, rng)
    x = rng.standard_normal((2, 2, 7, 7))
    unfused, fused = _both(model, x)
    seen = []
    original = nn.MaxPool2d.forward
    monkeypatch.setattr(nn.MaxPool2d, "forward", lambda self, a: (seen.append(a.min()), original(self, a))[1])
    with striate.no_grad():
        model(x)
    assert min(seen) < 0                 # the pool saw the conv's output before the ReLU
    assert (unfused == 0).any() and (unfused > 0).any()
    np.testing.assert_allclose(fused, unfused, rtol=1e-12, atol=1e-12)   # folded BN: rounding only


def test_conv1d_bn1d_fuses_too():
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Conv1d(4, 6, 5, padding=2, dtype=np.float64, rng=rng),
                          nn.BatchNorm1d(6, dtype=np.float64), nn.ReLU())
    _randomise_bn(model, rng)
    x = rng.standard_normal((3, 4, 20))
    unfused, fused = _both(model, x)
    np.testing.assert_allclose(fused, unfused, rtol=1e-12, atol=1e-12)


def test_input_is_never_modified_and_outputs_are_fresh():
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Conv2d(2, 2, 1, rng=rng), nn.ReLU()).eval()
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    saved = x.copy()
    with striate.no_grad():
        y = model(x)
    np.testing.assert_array_equal(x, saved)
    assert y.min() >= 0 and not np.shares_memory(x, y)


def test_a_watched_layer_is_not_fused():
    """A replaced forward (as summary and viz install) must see every layer's call."""
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.BatchNorm2d(2), nn.ReLU()).eval()
    seen = []
    bn = model[1]
    original = bn.forward
    bn.forward = lambda x: (seen.append(x.shape), original(x))[1]
    with striate.no_grad():
        model(np.ones((1, 1, 5, 5), dtype=np.float32))
    assert seen == [(1, 2, 3, 3)]


def test_training_mode_batchnorm_is_not_folded():
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.BatchNorm2d(2))
    model.eval()
    model[1].train()                          # batch statistics: no fixed affine map
    x = rng.standard_normal((4, 1, 6, 6)).astype(np.float64)
    with striate.no_grad():
        y = model(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-6)


def test_chunked_inference_conv_equals_the_training_kernel(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    monkeypatch.setattr(FC, "INFER_COLS_BYTES", 3 * 9 * 49 * 8 * 2)   # two images per slice
    y = FC.conv2d_infer(x, w, b, stride=(1, 1), padding=((1, 0), (0, 1)), algorithm="im2col")
    ref, _ = FC.conv2d_forward(x, w, b, stride=(1, 1), padding=((1, 0), (0, 1)), algorithm="im2col")
    np.testing.assert_array_equal(y, ref)


def test_max_pool_without_argmax_gives_the_same_values():
    x = np.random.default_rng(6).standard_normal((2, 3, 7, 7))
    y, cache = max_pool2d_forward(x, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), with_argmax=False)
    ref, ref_cache = max_pool2d_forward(x, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
    assert cache is None and ref_cache is not None
    np.testing.assert_array_equal(y, ref)


def test_training_runs_max_pool_before_relu_with_the_same_values_and_gradients(monkeypatch):
    from striate.nn import fusion

    rng = np.random.default_rng(8)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 2, dtype=np.float64, rng=rng))
    x = rng.standard_normal((4, 2, 6, 6))
    dy = rng.standard_normal((4, 2))
    runs = {}
    for name, order in [("swapped", fusion.training_order), ("as_listed", list)]:
        monkeypatch.setattr(fusion, "training_order", order)
        model.zero_grad()
        y = model(x)
        dx = model.backward(dy)
        runs[name] = [y, dx] + [p.grad.copy() for p in model.parameters()]
        runs[name + " order"] = [type(m).__name__ for m in model._order]
    assert runs["swapped order"] == ["Conv2d", "MaxPool2d", "ReLU", "Flatten", "Linear"]
    assert runs["as_listed order"] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert (runs["swapped"][0] != 0).any() and (runs["swapped"][2] != 0).any()
    for a, b in zip(runs["swapped"], runs["as_listed"]):
        np.testing.assert_array_equal(a, b)


def test_training_order_swaps_only_plain_relu_then_max_pool():
    from striate.nn.fusion import training_order

    relu, pool, avg = nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2)
    assert training_order([relu, pool]) == [pool, relu]
    assert training_order([relu, avg]) == [relu, avg]                  # not an order statistic
    assert training_order([relu, nn.MaxPool2d(2, return_indices=True)])[0] is relu
    watched = nn.ReLU()
    watched.forward = lambda x: x
    assert training_order([watched, pool]) == [watched, pool]


@pytest.mark.parametrize("algorithm", ["im2col", "dft"])
def test_conv2d_infer_applies_post_slice_by_slice(algorithm, monkeypatch):
    from striate.functional import conv_dft

    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, 3, 10, 9))
    w = rng.standard_normal((5, 3, 3, 3))
    b = rng.standard_normal(5)
    pads = ((1, 1), (1, 1))
    calls = []

    def post(a):
        calls.append(a.shape)
        return max_pool2d_forward(a, kernel_size=(2, 2), stride=(2, 2), with_argmax=False)[0]

    ref = post(FC.conv2d_forward(x, w, b, padding=pads, algorithm="im2col")[0])
    calls.clear()
    monkeypatch.setattr(FC, "INFER_COLS_BYTES", 3 * 9 * 90 * 8 * 2)           # two images a slice
    monkeypatch.setattr(conv_dft, "CHUNK_BYTES", 1)
    monkeypatch.setattr(conv_dft, "MIN_CHUNK", 2)
    y = FC.conv2d_infer(x, w, b, padding=pads, algorithm=algorithm, post=post)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    assert calls[0] == (1, 1, 10, 9)                                         # the output size probe
    assert len(calls) > 2 and all(7 not in c[:2] for c in calls[1:])         # slices, never all 7


@pytest.mark.parametrize("with_bn", [False, True])
def test_conv_relu_max_pool_fuses_with_the_pool_on_slices(with_bn, monkeypatch):
    rng = np.random.default_rng(10)
    # 12 * 3 * 3 = 108 column rows: above conv_pool.MAX_TAPS, so not the strided-GEMM route
    layers = [nn.Conv2d(12, 4, 3, padding=1, dtype=np.float64, rng=rng)]
    if with_bn:
        layers.append(nn.BatchNorm2d(4, dtype=np.float64))
    model = nn.Sequential(*layers, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    _randomise_bn(model, rng)
    x = rng.standard_normal((10, 12, 8, 8))
    unfused, _ = _both(model, x)
    shapes = []
    original = nn.MaxPool2d.forward
    monkeypatch.setattr(nn.MaxPool2d, "forward", lambda self, a: (shapes.append(a.shape), original(self, a))[1])
    monkeypatch.setattr(FC, "INFER_COLS_BYTES", 12 * 9 * 64 * 8 * 3)          # three images a slice
    with striate.no_grad():
        fused = model(x)
    assert max(s[1] for s in shapes) < 10                                    # never the whole batch
    np.testing.assert_allclose(fused, unfused, rtol=1e-12, atol=1e-12)


def test_a_pool_too_large_for_the_fused_conv_output_names_the_pool():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, rng=0), nn.ReLU(), nn.MaxPool2d(3)).eval()
    x = np.zeros((2, 1, 4, 4), dtype=np.float32)
    with pytest.raises(striate.errors.ShapeError, match=r"2 \(MaxPool2d\).*larger than the padded input"):
        model(x)                                                             # unfused
    with pytest.raises(striate.errors.ShapeError, match=r"2 \(MaxPool2d\).*larger than the padded input"):
        with striate.no_grad():
            model(x)                                                         # fused


def test_training_fuses_batch_norm_then_relu_with_the_same_values_and_gradients(monkeypatch):
    """Sequential runs BatchNorm + ReLU as one step (BatchNorm.forward_relu) when training:
    the same outputs, input gradient, parameter gradients and running statistics."""
    from striate.nn import fusion

    def make():
        rng = np.random.default_rng(9)
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=np.float64, rng=rng),
                             nn.BatchNorm2d(4, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(4 * 3 * 3, 2, dtype=np.float64, rng=rng))
    x = np.random.default_rng(10).standard_normal((5, 2, 6, 6))
    dy = np.random.default_rng(11).standard_normal((5, 2))
    runs = {}
    for name, order in [("fused", fusion.training_order), ("as_listed", list)]:
        monkeypatch.setattr(fusion, "training_order", order)
        model = make()
        y = model(x)
        dx = model.backward(dy)
        bn = model[1]
        runs[name] = [y, dx, bn.running_mean, bn.running_var] + [p.grad for p in model.parameters()]
        runs[name + " order"] = [type(m).__name__ for m in model._order]
    assert runs["fused order"] == ["Conv2d", "_BatchNormRelu", "MaxPool2d", "Flatten", "Linear"]
    assert (runs["fused"][0] != 0).any() and (runs["fused"][1] != 0).any()
    for a, b in zip(runs["fused"], runs["as_listed"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_training_order_fuses_only_a_plain_batch_norm_and_relu():
    from striate.nn.fusion import training_order

    bn, relu = nn.BatchNorm2d(3), nn.ReLU()
    steps = training_order([bn, relu])
    assert len(steps) == 1 and steps[0].bn is bn
    assert training_order([relu, bn]) == [relu, bn]
    assert training_order([bn, nn.LeakyReLU()])[0] is bn
    watched = nn.BatchNorm2d(3)
    watched.forward = lambda x: x
    assert training_order([watched, relu]) == [watched, relu]
