"""Vanilla saliency and Grad-CAM checked on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from striate import nn
from striate.errors import ConfigError, ShapeError, StateError
from striate.viz import grad_cam, plot_grad_cam, plot_saliency, saliency, upsample_bilinear
from tests.util import torch_or_skip
from tests.viz.helpers import assert_png, tiny_cnn, with_running_stats

QUADRANTS = {"top-left": (0, 0), "top-right": (0, 1), "bottom-left": (1, 0), "bottom-right": (1, 1)}


def quadrant_mask(side: int, q: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((side, side), bool)
    h = side // 2
    mask[q[0] * h:(q[0] + 1) * h, q[1] * h:(q[1] + 1) * h] = True
    return mask


def quadrant_share(heat: np.ndarray, q: tuple[int, int]) -> float:
    return float(heat[quadrant_mask(heat.shape[0], q)].sum() / heat.sum())


# -------------------------------------------------------------- models with a known answer
def quadrant_scorer(q: tuple[int, int]) -> nn.Sequential:
    """Conv 3x3 -> ReLU -> Linear whose weights are zero except over conv outputs whose
    3x3 window lies inside quadrant ``q`` of the 8x8 input: the score sees only that quadrant."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64, rng=rng), nn.ReLU(),
                          nn.Flatten(), nn.Linear(2 * 64, 3, dtype=np.float64, rng=rng))
    inner = np.zeros((8, 8), bool)
    rows = slice(0, 3) if q[0] == 0 else slice(5, 8)                       # windows inside the quadrant
    cols = slice(0, 3) if q[1] == 0 else slice(5, 8)
    inner[rows, cols] = True
    w = model[3].weight.data.reshape(3, 2, 8, 8)                           # (classes, C, H, W)
    w[:, :, ~inner] = 0.0
    model[3].weight.data = w.reshape(3, 128)
    return model


def blob_model() -> nn.Sequential:
    """Bias-free convs with positive weights, ReLU, max-pool, global average pool, Linear:
    activations are non-zero only near non-zero input pixels."""
    conv1 = nn.Conv2d(1, 3, 3, padding=1, bias=False, dtype=np.float64)
    conv2 = nn.Conv2d(3, 4, 3, padding=1, bias=False, dtype=np.float64)
    rng = np.random.default_rng(1)
    conv1.weight.data = rng.uniform(0.1, 1.0, conv1.weight.data.shape)
    conv2.weight.data = rng.uniform(0.1, 1.0, conv2.weight.data.shape)
    head = nn.Linear(4, 2, dtype=np.float64)
    head.weight.data = np.array([[1.0, 0.5, 2.0, 1.5], [-1.0, -1.0, -1.0, -1.0]])
    head.bias.data = np.zeros(2)
    return nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def blob_image(q: tuple[int, int]) -> np.ndarray:
    """A 2x2 bright square one pixel in from the outer corner of quadrant ``q`` of a 16x16 image."""
    x = np.zeros((1, 1, 16, 16))
    r = 1 if q[0] == 0 else 13
    c = 1 if q[1] == 0 else 13
    x[0, 0, r:r + 2, c:c + 2] = 1.0
    return x


@pytest.mark.parametrize("name", QUADRANTS)
def test_saliency_of_a_model_that_reads_one_quadrant_lies_in_that_quadrant(name):
    q = QUADRANTS[name]
    model = quadrant_scorer(q)
    x = np.random.default_rng(2).normal(size=(1, 8, 8))
    s = saliency(model, x, target=1)
    assert s.map.shape == (8, 8) and s.target == 1
    assert quadrant_share(s.map, q) > 0.99
    assert s.map[~quadrant_mask(8, q)].max() == 0.0 and s.map.sum() > 0


@pytest.mark.parametrize("name", QUADRANTS)
def test_saliency_and_grad_cam_find_the_object(name):
    q = QUADRANTS[name]
    model, x = blob_model(), blob_image(q)
    s = saliency(model, x, target=0)
    assert quadrant_share(s.map, q) > 0.99
    g = grad_cam(model, x, "3", target=0)
    assert g.small.shape == (8, 8) and g.cam.shape == (16, 16)
    assert np.all(g.weights > 0)
    assert quadrant_share(g.cam, q) > 0.99
    assert g.cam[~quadrant_mask(16, q)].max() == 0.0
    peak = np.unravel_index(np.argmax(g.cam), g.cam.shape)
    assert quadrant_mask(16, q)[peak]


# -------------------------------------------------------------- numbers
def test_saliency_equals_finite_differences_in_float64():
    model = with_running_stats(tiny_cnn(channels=2, dtype=np.float64))
    x = np.random.default_rng(3).normal(size=(1, 2, 8, 8))
    s = saliency(model, x)
    model.eval()

    def score(z):
        with nn.no_grad():
            return float(model(z)[0, s.target])

    eps = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):                                        # reference: pixel by pixel
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (score(up) - score(down)) / (2 * eps)
    err = np.abs(s.grad - numeric[0]).max() / np.abs(numeric).max()
    assert err < 1e-6
    np.testing.assert_array_equal(s.map, np.abs(s.grad).max(axis=0))
    with nn.no_grad():
        logits = model(x)[0]
    assert s.target == int(np.argmax(logits))
    np.testing.assert_allclose(s.probs, np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)


def test_grad_cam_weights_by_hand_with_a_global_average_pool_head():
    # score = sum_c W[t, c] * mean(A_c) + b, so d score / d A_c = W[t, c] / (h * w) everywhere
    rng = np.random.default_rng(4)
    conv = nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    head = nn.Linear(3, 4, dtype=np.float64, rng=rng)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    x = rng.normal(size=(1, 2, 5, 6))
    g = grad_cam(model, x, "1", target=2)
    with nn.no_grad():
        a = np.maximum(conv(x)[0], 0)                                      # (3, 5, 6)
    np.testing.assert_allclose(g.activations, a, rtol=1e-12)
    np.testing.assert_allclose(g.weights, head.weight.data[2] / 30, rtol=1e-12)
    expected = np.maximum(np.einsum("c,chw->hw", head.weight.data[2] / 30, a), 0)
    np.testing.assert_allclose(g.small, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g.cam, expected, rtol=1e-12, atol=1e-15)  # same size: no resize


def test_grad_cam_by_hand_through_the_layers_of_a_cnn():
    model = with_running_stats(tiny_cnn(dtype=np.float64))
    x = np.random.default_rng(5).normal(size=(1, 1, 8, 8))
    g = grad_cam(model, x, "4", target=1)
    model.eval()
    a = x
    for m in list(model)[:5]:
        a = m(a)                                                           # (1, 5, 4, 4)
    y = model[7](model[6](model[5](a)))
    dy = np.zeros_like(y)
    dy[0, 1] = 1.0
    da = model[5].backward(model[6].backward(model[7].backward(dy)))[0]   # (5, 4, 4)
    w = da.mean(axis=(1, 2))
    small = np.maximum(np.einsum("c,chw->hw", w, a[0]), 0)
    np.testing.assert_allclose(g.weights, w, rtol=1e-12)
    np.testing.assert_allclose(g.small, small, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g.cam, upsample_bilinear(small, 8, 8), rtol=1e-12, atol=1e-15)


def test_upsample_bilinear_known_values():
    np.testing.assert_allclose(upsample_bilinear(np.array([[0.0, 1.0]]), 1, 4), [[0, 0.25, 0.75, 1]])
    np.testing.assert_allclose(upsample_bilinear(np.full((3, 2), 7.0), 9, 5), 7.0)
    a = np.random.default_rng(6).normal(size=(3, 4))
    np.testing.assert_array_equal(upsample_bilinear(a, 3, 4), a)


@pytest.mark.parametrize("src, dst", [((3, 5), (8, 13)), ((4, 4), (16, 16)), ((1, 1), (5, 5)),
                                      ((7, 7), (28, 28))])
def test_upsample_bilinear_matches_torch(src, dst):
    torch = torch_or_skip()
    a = np.random.default_rng(7).normal(size=src)
    ref = torch.nn.functional.interpolate(torch.from_numpy(a)[None, None], size=dst,
                                          mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(upsample_bilinear(a, *dst), ref, rtol=1e-12, atol=1e-12)


# -------------------------------------------------------------- the model is left as it was
def test_the_model_is_left_as_it_was():
    model = tiny_cnn()
    model.train()
    model[1].eval()                                                        # mixed modes
    for p in model.parameters():
        p.grad = np.full_like(p.data, 0.5)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    x = np.random.default_rng(8).normal(size=(1, 1, 8, 8)).astype(np.float32)
    saliency(model, x)
    grad_cam(model, x, "0")
    assert [m.training for m in model.modules()] == [True, True, False] + [True] * 6
    assert all(np.all(p.grad == 0.5) for p in model.parameters())
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m._cache is None for m in model.modules())
    assert all("forward" not in vars(m) for m in model.modules())


def test_saliency_works_on_a_model_that_skips_its_input_gradient():
    model = tiny_cnn(dtype=np.float64)
    x = np.random.default_rng(11).normal(size=(1, 1, 8, 8))
    ref = saliency(model, x, target=0).grad
    model.set_input_grad(False)                                            # as in training
    np.testing.assert_array_equal(saliency(model, x, target=0).grad, ref)
    assert model.input_grad is False and model[0].input_grad is False      # left as it was
    assert "input_grad" not in vars(model[4])


def test_errors():
    model = tiny_cnn()
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ConfigError, match=r"target class must be in \[0, 3\); received 3"):
        saliency(model, x, target=3)
    with pytest.raises(StateError, match="outside no_grad"):
        with nn.no_grad():
            saliency(model, x)
    with pytest.raises(ConfigError, match="no layer 'conv1'"):
        grad_cam(model, x, "conv1")
    with pytest.raises(ShapeError, match=r"7 \(Linear\): Grad-CAM needs .* outputs \(1, 3\)"):
        grad_cam(model, x, "7")
    with pytest.raises(ShapeError, match=r"saliency needs \(1, classes\) logits; the model output is \(1, 4, 8, 8\)"):
        saliency(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1)), x)


def test_plot_saliency_and_grad_cam_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    model = tiny_cnn(channels=3)
    x = np.random.default_rng(9).normal(size=(3, 8, 8)).astype(np.float32)
    classes = ["cat", "dog", "bird"]
    assert_png(plot_saliency(model, x, tmp_path / "s.png", classes=classes, size=(450, 170)), (450, 170))
    pixels = np.random.default_rng(10).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    assert_png(plot_grad_cam(model, x, "4", tmp_path / "g.png", image=pixels, target=2,
                             classes=classes), (900, 340))
