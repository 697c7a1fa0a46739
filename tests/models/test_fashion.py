"""fashion_cnn: a flat Sequential whose state dict is torch.nn.Sequential's."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import models
from striate.errors import ConfigError, ShapeError
from tests.models._util import compare_model, forward_backward
from tests.util import assert_close, torch_or_skip

TORCH_KEYS = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
              "1.num_batches_tracked", "4.weight", "4.bias", "5.weight", "5.bias",
              "5.running_mean", "5.running_var", "5.num_batches_tracked", "9.weight", "9.bias"]


def test_layers_and_parameter_count():
    net = models.fashion_cnn()
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d",
                     "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert list(net.state_dict()) == TORCH_KEYS
    assert net[9].weight.data.shape == (10, 7 * 7 * 32)
    assert net.num_parameters() == 29_034
    assert models.fashion_cnn(5, 3, input_size=32)[9].weight.data.shape == (5, 8 * 8 * 32)


def test_torch_state_dict_loads_unchanged_and_gives_the_same_outputs():
    torch = torch_or_skip()
    from tests.models import _torch_ref

    torch.manual_seed(0)
    ref = _torch_ref.fashion_cnn().double()
    with torch.no_grad():                                  # non-trivial running statistics
        for bn in (ref[1], ref[5]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    sd = ref.state_dict()
    assert list(sd) == TORCH_KEYS
    net = models.fashion_cnn(dtype=np.float64)
    net.load_state_dict(sd)
    x = np.random.default_rng(0).random((3, 1, 28, 28))
    net.eval()
    ref.eval()
    with striate.no_grad():
        y = net(x)
    assert_close(y, ref(torch.from_numpy(x)).detach().numpy(), np.float64, "eval output")
    back = net.state_dict()
    for k, v in sd.items():
        assert np.array_equal(back[k], v.numpy()), k


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cin,classes,size", [(1, 10, 28), (3, 4, 12)])
def test_matches_torch_in_training(dtype, cin, classes, size):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.fashion_cnn(classes, cin, input_size=size, dtype=dtype, rng=1)
    ref = _torch_ref.fashion_cnn(cin, classes, size // 4)
    x = np.random.default_rng(2).standard_normal((2, cin, size, size))
    compare_model(net, ref, x, dtype, zero_grads=("0.bias", "4.bias"))
    net.eval()                                             # running statistics: the biases matter
    compare_model(net, ref, x, dtype)


def test_forward_backward_and_gradcheck():
    net = models.fashion_cnn(3, 2, input_size=8, rng=0)
    x = np.random.default_rng(3).standard_normal((2, 2, 8, 8))
    forward_backward(net, x.astype(np.float32), 3)
    errs = striate.gradcheck(net, x, max_per_tensor=6, details=True)
    # the conv biases before BatchNorm have an exactly zero gradient in training mode:
    # their relative error compares rounding noise with rounding noise.
    assert set(errs) == {"input0"} | {k for k, _ in net.named_parameters()}
    assert max(v for k, v in errs.items() if k not in ("0.bias", "4.bias")) < 1e-6
    net.eval()
    assert striate.gradcheck(net, x, max_per_tensor=6) < 1e-6


def test_errors():
    with pytest.raises(ConfigError, match=r"fashion_cnn: input_size 3 is too small"):
        models.fashion_cnn(input_size=3)
    with pytest.raises(ConfigError, match=r"fashion_cnn: input_size must be an int >= 1; received 0"):
        models.fashion_cnn(input_size=0)
    net = models.fashion_cnn()
    with pytest.raises(ShapeError, match=r"9 \(Linear\) expects input \(N, 1568\)"):
        net(np.zeros((1, 1, 32, 32), np.float32))
