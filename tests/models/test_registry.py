"""The zoo registry: names, get_model, zoo_spec, argument errors, dtype and rng handling."""

from __future__ import annotations

import json

import numpy as np
import pytest

import striate
from striate import models
from striate.errors import ConfigError, DTypeError, ShapeError
from striate.nn import Sequential

ALL = ["alexnet", "alexnet_2012", "fashion_cnn", "googlenet", "lenet5", "mobilenet_v1",
       "resnet18", "resnet20", "resnet32", "resnet34", "resnet50", "resnet56", "tdnn",
       "traffic_sign_cnn", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
       "vgg19", "vgg19_bn"]
SMALL = ["fashion_cnn", "traffic_sign_cnn", "lenet5", "resnet20", "mobilenet_v1", "tdnn"]


def test_list_models_names_every_family():
    assert models.list_models() == ALL
    for name in ALL:
        assert callable(getattr(models, name))
        assert name in models.__all__


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ConfigError) as e:
        models.get_model("resnet19")
    msg = str(e.value)
    assert "'resnet19'" in msg
    for name in ALL:
        assert name in msg
    with pytest.raises(ConfigError, match="unknown model 3"):
        models.get_model(3)


def test_unknown_argument_is_a_config_error_naming_model_and_arguments():
    with pytest.raises(ConfigError, match=r"model 'lenet5'.*depth.*accepts num_classes, in_channels"):
        models.get_model("lenet5", depth=3)
    with pytest.raises(ConfigError, match="model 'tdnn'"):
        models.tdnn(10, 40, 512)            # family options are keyword-only


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("arg,value", [("num_classes", 0), ("num_classes", 2.5),
                                       ("in_channels", -1), ("in_channels", True)])
def test_bad_class_and_channel_counts(name, arg, value, fast_init):
    with pytest.raises(ConfigError) as e:
        models.get_model(name, **{arg: value})
    assert f"{name}: {arg}" in str(e.value) and repr(value) in str(e.value)


def test_zoo_spec_records_every_argument_and_rebuilds_the_model():
    net = models.get_model("lenet5", num_classes=7, activation="relu", dtype=np.float64, rng=3)
    spec = net.zoo_spec
    assert spec == {"name": "lenet5", "kwargs": {"num_classes": 7, "in_channels": 1,
                                                 "activation": "relu", "padding": None,
                                                 "input_size": 32, "dtype": "float64"}}
    spec = json.loads(json.dumps(spec))     # JSON-friendly
    again = models.get_model(spec["name"], **spec["kwargs"])
    a, b = net.state_dict(), again.state_dict()
    assert [(k, v.shape, v.dtype) for k, v in a.items()] == [(k, v.shape, v.dtype) for k, v in b.items()]
    assert again.zoo_spec == net.zoo_spec


def test_direct_call_sets_zoo_spec_too():
    net = models.resnet20(num_classes=5)
    assert net.zoo_spec["name"] == "resnet20"
    assert net.zoo_spec["kwargs"] == {"num_classes": 5, "in_channels": 3, "dtype": "float32"}
    assert models.resnet20.__name__ == "resnet20" and "CIFAR" in models.resnet20.__doc__


def test_register_refuses_duplicates_and_bad_names():
    with pytest.raises(ConfigError, match="'vgg16' is already registered"):
        models.register("vgg16")
    with pytest.raises(ConfigError, match="non-empty string"):
        models.register("")


def test_register_adds_a_new_model():
    from striate.models import registry

    @models.register("tiny_test_net")
    def tiny(num_classes: int = 2, in_channels: int = 1, *, dtype=None, rng=None):
        return Sequential(striate.nn.Linear(in_channels, num_classes, dtype=dtype, rng=rng))

    try:
        assert "tiny_test_net" in models.list_models()
        net = models.get_model("tiny_test_net", num_classes=3)
        assert net.zoo_spec == {"name": "tiny_test_net",
                                "kwargs": {"num_classes": 3, "in_channels": 1, "dtype": "float32"}}
        assert net(np.ones((2, 1), np.float32)).shape == (2, 3)
    finally:
        registry._REGISTRY.pop("tiny_test_net")


@pytest.mark.parametrize("name", SMALL)
def test_dtype_and_seeded_rng(name):
    a = models.get_model(name, dtype=np.float64, rng=5)
    b = models.get_model(name, dtype=np.float64, rng=np.random.default_rng(5))
    c = models.get_model(name, rng=6)
    for p in a.parameters():
        assert p.data.dtype == np.float64
    for p in c.parameters():
        assert p.data.dtype == np.float32
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert any(not np.allclose(sa[k], sc[k]) for k in sa if k.endswith("weight") and sa[k].ndim > 1)


def test_wrong_input_channels_and_dtype_name_the_layer():
    net = models.fashion_cnn()
    with pytest.raises(ShapeError, match=r"^0 \(Conv2d\) expects input \(N, 1, H, W\); received \(2, 3, 28, 28\)"):
        net(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(DTypeError, match=r"0 \(Conv2d\).*uint8"):
        net(np.zeros((2, 1, 28, 28), np.uint8))
    res = models.resnet18(num_classes=10)
    with pytest.raises(ShapeError, match=r"conv1 \(Conv2d\) expects input \(N, 3, H, W\)"):
        res(np.zeros((1, 1, 64, 64), np.float32))


@pytest.mark.parametrize("name", ["googlenet", "resnet20", "mobilenet_v1"])
def test_save_and_load_round_trip(name, tmp_path):
    from striate.serialize import load, save

    net = models.get_model(name, num_classes=10, rng=0).eval()
    path = tmp_path / f"{name}.npz"
    save(net, path)
    back = load(path)
    assert back.zoo_spec == net.zoo_spec
    a, b = net.state_dict(), back.state_dict()
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)
    x = np.random.default_rng(1).random((1, 3, 32, 32)).astype(np.float32)
    with striate.no_grad():
        assert np.array_equal(net(x), back.eval()(x))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_every_model_takes_num_classes_and_in_channels(name, in_channels, fast_init):
    net = models.get_model(name, num_classes=10, in_channels=in_channels)
    params = list(net.named_parameters())
    first_name, first = params[0]
    assert first.data.ndim in (3, 4) and first.data.shape[1] == in_channels, first_name
    last_name, last = params[-1]
    assert last_name.endswith("bias") and last.data.shape == (10,)
    assert net.zoo_spec["kwargs"]["num_classes"] == 10
    assert net.zoo_spec["kwargs"]["in_channels"] == in_channels
