"""Losses: CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss, MSELoss against PyTorch and by gradcheck."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DataError, DTypeError, ShapeError, StateError
from tests.util import assert_close, compare_with_torch, torch_or_skip

REDUCTIONS = ("mean", "sum", "none")
DTYPES = (np.float64, np.float32)
# (input shape, target shape): plain, spatial (N, C, d1, d2), unbatched (C,)
CLASS_SHAPES = (((4, 5), (4,)), ((2, 4, 3, 2), (2, 3, 2)), ((5,), ()))


def _labels(rng: np.random.Generator, shape: tuple, c: int, ignore: int | None) -> np.ndarray:
    """Random labels in [0, c), about a quarter set to ``ignore`` (at least one when batched)."""
    t = rng.integers(0, c, size=shape).astype(np.int64)
    if ignore is not None and t.ndim:
        mask = rng.random(shape) < 0.25
        mask.flat[0] = True
        t[mask] = ignore
    return t


def _class_weight(rng: np.random.Generator, c: int, use: bool) -> np.ndarray | None:
    return rng.uniform(0.2, 2.0, size=c) if use else None


def _torch_opt(torch, arr):
    return None if arr is None else torch.from_numpy(np.array(arr))


# ---------------------------------------------------------------------------- oracle: CE / NLL
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", CLASS_SHAPES)
def test_cross_entropy_index_targets_match_torch(dtype, shapes):
    torch = torch_or_skip()
    xshape, tshape = shapes
    c = xshape[1] if len(xshape) > 1 else xshape[0]
    rng = np.random.default_rng(0)
    grid = itertools.product(REDUCTIONS, (False, True), (0.0, 0.3), (None, -100, 2))
    for reduction, use_w, eps, ignore in grid:
        x = rng.standard_normal(xshape) * 2
        t = _labels(rng, tshape, c, ignore)
        w = _class_weight(rng, c, use_w)
        kw = dict(reduction=reduction, label_smoothing=eps)
        if ignore is not None:
            kw["ignore_index"] = ignore
        m = nn.CrossEntropyLoss(weight=w, **kw).to(dtype)
        tm = torch.nn.CrossEntropyLoss(weight=_torch_opt(torch, w), **kw)
        compare_with_torch(m, tm, [x, t], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xshape", ((4, 5), (2, 3, 2, 2), (6,)))
def test_cross_entropy_probability_targets_match_torch(dtype, xshape):
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    c = xshape[1] if len(xshape) > 1 else xshape[0]
    cax = 1 if len(xshape) > 1 else 0
    for reduction, use_w, eps in itertools.product(REDUCTIONS, (False, True), (0.0, 0.2)):
        x = rng.standard_normal(xshape)
        p = rng.random(xshape)
        p /= p.sum(axis=cax, keepdims=True)
        w = _class_weight(rng, c, use_w)
        m = nn.CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=eps).to(dtype)
        tm = torch.nn.CrossEntropyLoss(weight=_torch_opt(torch, w), reduction=reduction,
                                       label_smoothing=eps)
        compare_with_torch(m, tm, [x, p], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", CLASS_SHAPES)
def test_nll_matches_torch(dtype, shapes):
    torch = torch_or_skip()
    xshape, tshape = shapes
    c = xshape[1] if len(xshape) > 1 else xshape[0]
    rng = np.random.default_rng(2)
    for reduction, use_w, ignore in itertools.product(REDUCTIONS, (False, True), (None, -100, 1)):
        x = rng.standard_normal(xshape) - 2.0
        t = _labels(rng, tshape, c, ignore)
        w = _class_weight(rng, c, use_w)
        kw = dict(reduction=reduction) if ignore is None else dict(reduction=reduction, ignore_index=ignore)
        m = nn.NLLLoss(weight=w, **kw).to(dtype)
        tm = torch.nn.NLLLoss(weight=_torch_opt(torch, w), **kw)
        compare_with_torch(m, tm, [x, t], dtype)


@pytest.mark.parametrize("eps", (0.0, 0.4))
def test_cross_entropy_all_ignored_is_nan_with_zero_grad_like_torch(eps):
    torch = torch_or_skip()
    x = np.random.default_rng(3).standard_normal((3, 4))
    t = np.full(3, -100)
    w = np.array([1.0, 2.0, 0.5, 1.5])
    m = nn.CrossEntropyLoss(weight=w, label_smoothing=eps).double()
    loss = m(x, t)
    tx = torch.from_numpy(x).requires_grad_(True)
    tl = torch.nn.functional.cross_entropy(tx, torch.from_numpy(t), weight=torch.from_numpy(w),
                                           label_smoothing=eps)
    tl.backward()
    assert math.isnan(float(loss)) and math.isnan(float(tl.detach()))
    dx = m.backward()
    assert np.array_equal(dx, tx.grad.numpy())
    assert np.all(dx == 0)


def test_cross_entropy_extreme_logits_stay_finite():
    torch = torch_or_skip()
    x = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 799.0]])
    t = np.array([1, 2])
    m = nn.CrossEntropyLoss(label_smoothing=0.1).double()
    compare_with_torch(m, torch.nn.CrossEntropyLoss(label_smoothing=0.1), [x, t])
    assert np.isfinite(m(x, t)) and np.all(np.isfinite(m.backward()))


# ---------------------------------------------------------------------------- oracle: BCE / MSE
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_matches_torch(dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    shape = (4, 3)
    weights = (None, rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, shape))
    pos_weights = (None, rng.uniform(0.5, 3, 3))
    for reduction, w, pw in itertools.product(REDUCTIONS, weights, pos_weights):
        x = rng.standard_normal(shape) * 4
        t = rng.random(shape)
        t[0] = np.round(t[0])                                   # hard 0/1 targets too
        m = nn.BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw).to(dtype)
        tm = torch.nn.BCEWithLogitsLoss(weight=_torch_opt(torch, w), reduction=reduction,
                                        pos_weight=_torch_opt(torch, pw))
        compare_with_torch(m, tm, [x, t], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_spatial_pos_weight_and_huge_logits_match_torch(dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 2, 2)) * 60                   # exp(60) would overflow float32 naively
    t = (rng.random((2, 3, 2, 2)) > 0.5).astype(np.float64)
    pw = rng.uniform(0.5, 3, (3, 1, 1))
    m = nn.BCEWithLogitsLoss(pos_weight=pw, reduction="sum").to(dtype)
    compare_with_torch(m, torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(pw), reduction="sum"),
                       [x, t], dtype)
    assert np.isfinite(m(x.astype(dtype), t.astype(dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ((5,), (3, 4), (2, 3, 2, 2)))
def test_mse_matches_torch(dtype, shape):
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    for reduction in REDUCTIONS:
        m = nn.MSELoss(reduction=reduction).to(dtype)
        compare_with_torch(m, torch.nn.MSELoss(reduction=reduction),
                           [rng.standard_normal(shape), rng.standard_normal(shape)], dtype)


def test_weight_buffers_use_torch_state_dict_keys():
    torch = torch_or_skip()
    w = np.array([1.0, 2.0, 3.0])
    assert list(nn.CrossEntropyLoss(weight=w).state_dict()) == \
        list(torch.nn.CrossEntropyLoss(weight=torch.from_numpy(w)).state_dict())
    assert list(nn.BCEWithLogitsLoss(weight=w, pos_weight=w).state_dict()) == \
        list(torch.nn.BCEWithLogitsLoss(weight=torch.from_numpy(w), pos_weight=torch.from_numpy(w)).state_dict())
    assert list(nn.NLLLoss().state_dict()) == list(torch.nn.NLLLoss().state_dict()) == []


# ---------------------------------------------------------------------------- without torch
def _class_losses(rng: np.random.Generator):
    w = rng.uniform(0.5, 2, 4)
    x = rng.standard_normal((3, 4, 2))
    t = np.array([[0, 3], [-100, 1], [2, 2]])
    p = rng.random((3, 4, 2))
    p /= p.sum(axis=1, keepdims=True)
    for red in REDUCTIONS:
        yield nn.CrossEntropyLoss(weight=w, reduction=red, label_smoothing=0.2), x, t
        yield nn.CrossEntropyLoss(reduction=red), x, t
        yield nn.CrossEntropyLoss(weight=w, reduction=red, label_smoothing=0.1), x, p
        yield nn.NLLLoss(weight=w, reduction=red), x, t


def _elementwise_losses(rng: np.random.Generator):
    x = rng.standard_normal((3, 4)) * 3
    t = rng.random((3, 4))
    for red in REDUCTIONS:
        yield nn.BCEWithLogitsLoss(weight=rng.uniform(0.5, 2, 4), pos_weight=rng.uniform(0.5, 2, 4),
                                   reduction=red), x, t
        yield nn.BCEWithLogitsLoss(reduction=red), x, t
        yield nn.MSELoss(reduction=red), x, t


@pytest.mark.parametrize("make", (_class_losses, _elementwise_losses))
def test_losses_pass_gradcheck(make):
    for m, x, t in make(np.random.default_rng(7)):
        err = striate.gradcheck(m, x, t)
        assert err < 1e-6, f"{m!r}: gradcheck error {err:.3g}"


def test_kernels_pass_gradcheck():
    from functools import partial

    from striate.functional import loss as F
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 2))
    t = np.array([[0, 3], [-100, 1], [2, 2]])
    w = rng.uniform(0.5, 2, 4)
    y = rng.random((3, 4, 2))
    for red in REDUCTIONS:
        kernels = (
            (partial(F.cross_entropy_forward, weight=w, reduction=red, label_smoothing=0.2), t,
             F.cross_entropy_backward),
            (partial(F.nll_forward, weight=w, reduction=red), t, F.nll_backward),
            (partial(F.bce_with_logits_forward, pos_weight=w[:, None], reduction=red), y,
             F.bce_with_logits_backward),
            (partial(F.mse_forward, reduction=red), y, F.mse_backward),
        )
        for fwd, target, bwd in kernels:
            assert striate.gradcheck(fwd, x, target, backward=bwd) < 1e-6


def test_known_values():
    c = 5
    ce = nn.CrossEntropyLoss()
    assert ce(np.zeros((3, c)), np.array([0, 4, 2])) == pytest.approx(math.log(c), rel=1e-6)
    # a confident correct prediction costs almost nothing; a confident wrong one costs the margin
    x = np.array([[50.0, 0.0], [0.0, 50.0]])
    assert nn.CrossEntropyLoss(reduction="none").double()(x, np.array([0, 0])) == \
        pytest.approx([0.0, 50.0], abs=1e-12)
    assert nn.MSELoss()(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == pytest.approx(2.5)
    assert nn.MSELoss(reduction="sum")(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == pytest.approx(5.0)
    bce = nn.BCEWithLogitsLoss()
    assert bce(np.zeros(4), np.array([0.0, 1.0, 1.0, 0.0])) == pytest.approx(math.log(2))
    assert nn.NLLLoss()(np.log(np.array([[0.25, 0.75]])), np.array([1])) == pytest.approx(-math.log(0.75))


def test_mean_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 3))
    t = np.array([0, 2, 1, 1])
    m = nn.CrossEntropyLoss().double()
    m(x, t)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert_close(m.backward(), (p - np.eye(3)[t]) / 4)
    assert_close(m.backward(2.0), 2 * (p - np.eye(3)[t]) / 4)


def test_output_dtype_follows_input_and_mean_is_a_scalar():
    rng = np.random.default_rng(9)
    x32 = rng.standard_normal((4, 3)).astype(np.float32)
    w64 = np.array([1.0, 2.0, 3.0])
    m = nn.CrossEntropyLoss(weight=w64)
    loss = m(x32, np.array([0, 1, 2, 0]))
    assert isinstance(loss, np.floating) and loss.dtype == np.float32
    assert m.backward().dtype == np.float32
    m = nn.MSELoss(reduction="none")
    assert m(x32, x32 * 0).shape == (4, 3) and m(x32, x32 * 0).dtype == np.float32


def test_none_reduction_backward_takes_per_item_gradient():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 3))
    t = np.array([0, 2, 1, 1])
    m = nn.CrossEntropyLoss(reduction="none").double()
    m(x, t)
    g = np.array([1.0, 0.0, 2.0, 0.0])
    dx = m.backward(g)
    assert np.all(dx[[1, 3]] == 0) and np.any(dx[0] != 0)
    assert_close(m.backward(1.0), m.backward(np.ones(4)))


def test_ignored_items_get_zero_gradient_and_custom_ignore_index_is_a_class():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 3))
    m = nn.CrossEntropyLoss(ignore_index=1, label_smoothing=0.3).double()
    t = np.array([0, 1, 2, 1])
    loss = m(x, t)
    dx = m.backward()
    assert np.all(dx[[1, 3]] == 0)
    ref = nn.CrossEntropyLoss(label_smoothing=0.3).double()(x[[0, 2]], t[[0, 2]])
    assert loss == pytest.approx(ref, rel=1e-12)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss, nn.MSELoss))
def test_bad_reduction(cls):
    with pytest.raises(ConfigError, match=f"{cls.__name__}.*'avg'"):
        cls(reduction="avg")


def test_bad_constructor_arguments():
    with pytest.raises(ConfigError, match="label_smoothing.*1.5"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ConfigError, match="weight.*1-D.*\\(2, 2\\)"):
        nn.CrossEntropyLoss(weight=np.ones((2, 2)))
    with pytest.raises(ConfigError, match="ignore_index.*'x'"):
        nn.NLLLoss(ignore_index="x")
    with pytest.raises(ConfigError, match="pos_weight.*numeric"):
        nn.BCEWithLogitsLoss(pos_weight=np.array(["a"]))


def test_out_of_range_label_names_value_and_position():
    x = np.zeros((3, 4), dtype=np.float32)
    for cls in (nn.CrossEntropyLoss, nn.NLLLoss):
        with pytest.raises(DataError, match=f"{cls.__name__}.*label 7 at target index \\(2,\\).*\\[0, 4\\)"):
            cls()(x, np.array([0, 1, 7]))
        with pytest.raises(DataError, match="label -1 at target index \\(0, 1\\)"):
            cls()(np.zeros((2, 4, 2), np.float32), np.array([[0, -1], [1, 2]]))
    assert isinstance(DataError("x"), ValueError)


def test_bad_target_dtype_and_shape():
    x = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(DTypeError, match="CrossEntropyLoss expects integer class labels.*float32"):
        nn.CrossEntropyLoss()(x, np.array([0.0, 1.0, 2.0], dtype=np.float32))
    with pytest.raises(DTypeError, match="NLLLoss expects integer"):
        nn.NLLLoss()(x, np.zeros((3, 4)))
    with pytest.raises(ShapeError, match="CrossEntropyLoss expects target \\(3,\\).*received \\(4,\\)"):
        nn.CrossEntropyLoss()(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ShapeError, match="expects target \\(2, 5\\).*\\(2, 4, 5\\); received \\(2, 4\\)"):
        nn.CrossEntropyLoss()(np.zeros((2, 4, 5)), np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ShapeError, match="BCEWithLogitsLoss expects target \\(3, 4\\).*received \\(3,\\)"):
        nn.BCEWithLogitsLoss()(x, np.zeros(3, np.float32))
    with pytest.raises(DTypeError, match="MSELoss expects a floating-point target.*int64"):
        nn.MSELoss()(x, np.zeros((3, 4), dtype=np.int64))


def test_bad_input_dtype_and_rank():
    with pytest.raises(DTypeError, match="CrossEntropyLoss.*int64"):
        nn.CrossEntropyLoss()(np.zeros((3, 4), dtype=np.int64), np.array([0, 1, 2]))
    with pytest.raises(DTypeError, match="MSELoss"):
        nn.MSELoss()(np.zeros(3, dtype=np.int32), np.zeros(3))
    with pytest.raises(ShapeError, match="CrossEntropyLoss expects input \\(N, C, \\*\\); received \\(\\)"):
        nn.CrossEntropyLoss()(np.float64(1.0), np.array(0))


def test_weight_that_does_not_fit_the_input():
    with pytest.raises(ShapeError, match="CrossEntropyLoss: weight.*\\(4,\\).*C=4.*\\(3,\\)"):
        nn.CrossEntropyLoss(weight=np.ones(3))(np.zeros((2, 4)), np.array([0, 1]))
    with pytest.raises(ShapeError, match="pos_weight of shape \\(3,\\) does not broadcast.*\\(2, 4\\)"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones(3))(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="weight of shape \\(2, 1, 4\\)"):
        nn.BCEWithLogitsLoss(weight=np.ones((2, 1, 4)))(np.zeros((2, 4)), np.zeros((2, 4)))


def test_backward_errors():
    m = nn.MSELoss(reduction="none")
    with pytest.raises(StateError, match="MSELoss: backward\\(\\) called before forward"):
        m.backward()
    m(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ShapeError, match="MSELoss.backward expects a gradient of the loss's shape \\(2, 3\\)"):
        m.backward(np.ones(3))
    m = nn.CrossEntropyLoss()
    m(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ShapeError, match="shape \\(\\).*received \\(2,\\)"):
        m.backward(np.ones(2))
    assert m.backward(np.ones(1)).shape == (2, 3)
