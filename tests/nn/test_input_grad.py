"""set_input_grad(False): backward skips the input gradient, parameter gradients unchanged."""

import numpy as np
import pytest

from striate import models, nn


def _grads(model, x, dy):
    model.zero_grad()
    model(x)
    dx = model.backward(dy)
    return dx, {k: p.grad.copy() for k, p in model.named_parameters()}


@pytest.mark.parametrize("name,shape", [("fashion_cnn", (1, 28, 28)), ("resnet20", (3, 32, 32)),
                                        ("tdnn", (24, 30))])
def test_parameter_grads_are_unchanged_and_dx_is_none(name, shape):
    kwargs = {"in_channels": shape[0]} if name != "tdnn" else {"in_channels": 24}
    model = models.get_model(name, rng=0, dtype=np.float64, **kwargs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3,) + shape)
    dy = rng.standard_normal(model(x).shape)
    dx_full, full = _grads(model, x, dy)
    assert dx_full.shape == x.shape
    model.set_input_grad(False)
    dx, skipped = _grads(model, x, dy)
    assert dx is None
    assert full.keys() == skipped.keys()
    for k in full:
        np.testing.assert_array_equal(full[k], skipped[k], err_msg=k)
    model.set_input_grad(True)
    dx_again, _ = _grads(model, x, dy)
    np.testing.assert_array_equal(dx_again, dx_full)


def test_a_linear_first_layer_skips_too():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1)).set_input_grad(False)
    model(np.ones((2, 4), dtype=np.float32))
    assert model.backward(np.ones((2, 2), dtype=np.float32)) is None
    assert model[0].weight.grad is not None and model[0].input_grad is False and model[2].input_grad is True


def test_the_trainer_skips_the_data_gradient_and_restores_the_setting():
    from striate.optim import SGD
    from striate.train import Trainer

    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=rng))
    returned = []
    first = model[0]
    original = first.backward
    first.backward = lambda dy: (returned.append(original(dy)), returned[-1])[1]
    x = rng.standard_normal((8, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    Trainer(model, nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), batches, epochs=2,
            progress=False, log=None).fit()
    assert len(returned) == 4 and all(r is None for r in returned)
    assert model.input_grad is True and first.input_grad is True
