"""Feature maps of a layer, and the layer lookup and capture they rest on."""

from __future__ import annotations

import numpy as np
import pytest

from striate import nn
from striate.errors import ConfigError, ShapeError, StateError
from striate.viz import capture, feature_maps, get_layer, layer_paths, plot_feature_maps
from tests.viz.helpers import assert_png, tiny_cnn, with_running_stats


def manual_prefix(model, x, upto):
    """The output of layers 0..upto run one by one (eval mode)."""
    a = x
    for m in list(model)[:upto + 1]:
        a = m(a)
    return a


@pytest.mark.parametrize("layer", ["0", "2", "4"])
def test_feature_maps_equal_the_layer_output_in_eval_mode(layer):
    model = with_running_stats(tiny_cnn(dtype=np.float64))
    x = np.random.default_rng(0).normal(size=(1, 1, 8, 8))
    model.train()
    maps = feature_maps(model, x[0], layer)                                # (C, H, W) input accepted
    assert all(m.training for m in model.modules())                        # modes restored
    model.eval()
    with nn.no_grad():
        ref = manual_prefix(model, x, int(layer))[0]
    np.testing.assert_allclose(maps, ref, rtol=1e-12, atol=0)
    assert maps.shape == {"0": (4, 8, 8), "2": (4, 8, 8), "4": (5, 4, 4)}[layer]


def test_feature_maps_in_a_nested_model_by_dotted_path():
    inner = tiny_cnn()
    model = nn.Sequential(nn.Identity(), inner)
    assert layer_paths(model)[:3] == ["0", "1", "1.0"]
    x = np.random.default_rng(1).normal(size=(1, 1, 8, 8)).astype(np.float32)
    maps = feature_maps(model, x, "1.3")
    with nn.no_grad():
        ref = manual_prefix(inner.eval(), x, 3)[0]
    np.testing.assert_allclose(maps, ref, rtol=1e-5, atol=1e-6)    # Sequential fuses the others


def test_plot_feature_maps_png(tmp_path):
    pytest.importorskip("matplotlib")
    model = tiny_cnn()
    x = np.random.default_rng(2).normal(size=(1, 1, 8, 8)).astype(np.float32)
    pixels = np.random.default_rng(3).integers(0, 256, (1, 8, 8), dtype=np.uint8)
    assert_png(plot_feature_maps(model, x, "2", tmp_path / "m.png", image=pixels, size=(500, 300)),
               (500, 300))


def test_feature_map_errors():
    model = tiny_cnn()
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ConfigError, match=r"has no layer 'features.3'; the layers are: 0 \(Conv2d\), .*7 \(Linear\)"):
        feature_maps(model, x, "features.3")
    with pytest.raises(ShapeError, match=r"6 \(Flatten\): feature maps need .* outputs \(1, 80\)"):
        feature_maps(model, x, "6")
    with pytest.raises(ShapeError, match=r"one image .*received \(2, 1, 8, 8\)"):
        feature_maps(model, np.zeros((2, 1, 8, 8), np.float32), "0")
    with pytest.raises(ConfigError, match="dtype uint8"):
        feature_maps(model, np.zeros((1, 8, 8), np.uint8), "0")


def test_capture_records_output_and_incoming_gradient_and_restores_the_layer():
    model = tiny_cnn(dtype=np.float64)
    layer = get_layer(model, "4")
    x = np.random.default_rng(4).normal(size=(2, 1, 8, 8))
    with capture(layer) as rec:
        y = model(x)
        dy = np.random.default_rng(5).normal(size=y.shape)
        model.backward(dy)
    assert "forward" not in vars(layer) and "backward" not in vars(layer)
    # the output is what layers 0..4 give; the gradient is what layers 7, 6, 5 send back
    np.testing.assert_allclose(rec.only("output"), manual_prefix(model, x, 4))
    ref = model[5].backward(model[6].backward(model[7].backward(dy)))      # caches still held
    np.testing.assert_allclose(rec.only("grad"), ref)
    assert np.abs(ref).max() > 0


def test_capture_restores_the_layer_even_on_error():
    model = tiny_cnn()
    layer = get_layer(model, "0")
    with pytest.raises(ShapeError):
        with capture(layer):
            model(np.zeros((1, 2, 8, 8), np.float32))                      # wrong channels
    assert "forward" not in vars(layer) and "backward" not in vars(layer)
    assert model(np.zeros((1, 1, 8, 8), np.float32)).shape == (1, 3)


def test_a_layer_run_twice_is_refused():
    relu = nn.ReLU()
    with capture(relu) as rec:
        relu(np.ones((1, 1, 2, 2), np.float32))
        relu(np.ones((1, 1, 2, 2), np.float32))
    with pytest.raises(StateError, match="ran 2 times"):
        rec.only("output")
