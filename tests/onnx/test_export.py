"""striate.onnx.export: each layer rule vs onnxruntime and striate.onnx.load; opsets, options, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, MissingDependencyError, OnnxError, ShapeError
from tests.onnx.export_util import compare_ort, op_types, randomize_batchnorm, run_ort

onnx = pytest.importorskip("onnx")

from striate.onnx.exporter import export  # noqa: E402  (after the skip: needs onnx)


def seq(*layers):
    striate.manual_seed(0)
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------- conv / linear


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, stride=2, dilation=2, bias=False),
    dict(kernel_size=(3, 1), groups=2, padding=(1, 0)),
    dict(kernel_size=3, groups=4, stride=2),                      # depthwise
    dict(kernel_size=4, padding="same"),                          # uneven pads 1 / 2
])
def test_conv2d(kwargs):
    compare_ort(seq(nn.Conv2d(4, 8 if kwargs.get("groups") != 4 else 4, **kwargs)), (4, 9, 8))


def test_conv1d():
    compare_ort(seq(nn.Conv1d(3, 5, 3, dilation=2, padding=2), nn.Conv1d(5, 4, 2, stride=2)), (3, 11))


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(kernel_size=2, stride=2, groups=2, bias=False),
    dict(kernel_size=3, dilation=2, stride=3, output_padding=2),
])
def test_conv_transpose2d(kwargs):
    compare_ort(seq(nn.ConvTranspose2d(4, 6, **kwargs)), (4, 5, 6))


def test_conv_transpose1d():
    compare_ort(seq(nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1)), (3, 7))


@pytest.mark.parametrize("opset", [9, 13])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_as_gemm(opset, bias):
    proto = compare_ort(seq(nn.Linear(6, 4, bias=bias), nn.ReLU()), (6,), opset=opset)
    assert op_types(proto) == ["Gemm", "Relu"]
    init = {t.name for t in proto.graph.initializer}
    assert "0.weight" in init and ("0.bias" in init) == bias      # named by state-dict key


def test_a_bare_layer_and_a_submodule_are_named_by_their_own_state_dict_keys():
    striate.manual_seed(0)
    proto = compare_ort(nn.Conv2d(2, 3, 3), (2, 5, 5))
    assert [t.name for t in proto.graph.initializer] == ["weight", "bias"]
    model = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Linear(3, 2)))
    proto = compare_ort(model[1], (3,))
    assert [t.name for t in proto.graph.initializer] == list(model[1].state_dict())


def test_public_function_is_the_exporter():
    import striate.onnx

    for _ in range(2):                     # still the function after the submodule was imported
        proto = striate.onnx.export(nn.Sequential(nn.ReLU()), None, (3,))
        assert isinstance(proto, onnx.ModelProto) and op_types(proto) == ["Relu"]


def test_linear_over_the_last_axis_of_3d_input():
    proto = compare_ort(seq(nn.Linear(5, 3)), (4, 5))
    assert "MatMul" in op_types(proto)


@pytest.mark.parametrize("flatten, ops", [(nn.Flatten(), ["Flatten"]),
                                          (nn.Flatten(2), ["Reshape"]),
                                          (nn.Flatten(1, 2), ["Reshape"])])
def test_flatten(flatten, ops):
    proto = compare_ort(seq(nn.Conv2d(2, 3, 1), flatten), (2, 3, 4))
    assert op_types(proto)[1:] == ops


# ---------------------------------------------------------------------------- norms


@pytest.mark.parametrize("layer, shape", [
    (lambda: nn.BatchNorm2d(3), (3, 4, 5)),
    (lambda: nn.BatchNorm2d(3, affine=False, eps=1e-3), (3, 4, 5)),
    (lambda: nn.BatchNorm1d(3), (3,)),
    (lambda: nn.BatchNorm1d(3), (3, 6)),
])
def test_batchnorm_eval_uses_running_statistics(layer, shape):
    model = seq(layer())
    randomize_batchnorm(model, np.random.default_rng(1))
    assert not np.allclose(model[0].running_mean, 0)
    model.train()                          # exported as evaluation mode whatever the flag
    proto = compare_ort(model, shape)
    assert op_types(proto) == ["BatchNormalization"]


@pytest.mark.parametrize("size, shape", [(5, (7, 3, 3)), (1, (6, 2, 3)), (3, (5, 4)), (3, (4, 2, 2, 2))])
def test_local_response_norm(size, shape):
    """onnxruntime's LRN takes 4-D input only: other ranks are reshaped."""
    compare_ort(seq(nn.LocalResponseNorm(size, alpha=0.5, beta=0.75, k=2.0)), shape)


# ---------------------------------------------------------------------------- activations


@pytest.mark.parametrize("layer", [
    nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.5), nn.Sigmoid(), nn.Tanh(), nn.ReLU6(),
    nn.GELU(), nn.GELU("tanh"), nn.Softplus(), nn.Softplus(beta=2.0, threshold=30.0),
    nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), nn.Softmax(), nn.PReLU(), nn.PReLU(3, init=0.1),
])
@pytest.mark.parametrize("opset", [11, 13])
def test_activations(layer, opset):
    x_scale = nn.Conv2d(3, 3, 1)
    x_scale.weight.data[...] = 4 * np.eye(3, dtype=np.float32)[:, :, None, None]   # values beyond 6
    compare_ort(nn.Sequential(x_scale, layer), (3, 4, 5), opset=opset)


@pytest.mark.parametrize("opset, ops", [(13, ["Add", "Clip", "Mul", "Div"]), (14, ["HardSwish"])])
def test_hardswish(opset, ops):
    proto = compare_ort(seq(nn.Linear(4, 6), nn.Hardswish()), (4,), opset=opset, seed=3)
    assert op_types(proto)[1:] == ops


def test_softmax_before_opset_13_normalises_one_axis_only():
    proto = compare_ort(seq(nn.Softmax(dim=1)), (3, 4, 5), opset=11)
    assert op_types(proto) == ["Transpose", "Softmax", "Transpose"]


# ---------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("opset", [9, 13])
@pytest.mark.parametrize("layer", [
    lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda: nn.MaxPool2d(3, 3, 1, ceil_mode=True),     # on 8 rows torch drops a window in the pad
    lambda: nn.AvgPool2d(3, 3, 1, ceil_mode=True),
    lambda: nn.MaxPool2d((2, 3), (2, 1)),
    lambda: nn.AvgPool2d(3, 2, 1),
    lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
    lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True),
    lambda: nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
    lambda: nn.AvgPool2d(3, 2, 1, divisor_override=4),
    lambda: nn.LPPool2d(2, 3, 2, ceil_mode=True),
    lambda: nn.LPPool2d(4, 2),
])
def test_pools_2d(layer, opset):
    compare_ort(seq(layer()), (2, 8, 9), opset=opset)


@pytest.mark.parametrize("layer", [
    lambda: nn.MaxPool1d(3, 2, 1, ceil_mode=True), lambda: nn.MaxPool1d(2, dilation=2),
    lambda: nn.AvgPool1d(3, 2, 1, ceil_mode=True), lambda: nn.LPPool1d(2, 3, 2, ceil_mode=True),
])
def test_pools_1d(layer):
    compare_ort(seq(layer()), (3, 10))


@pytest.mark.parametrize("layer, shape, op", [
    (lambda: nn.AdaptiveAvgPool2d(1), (3, 5, 7), "GlobalAveragePool"),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), (3, 6, 9), "AveragePool"),
    (lambda: nn.AdaptiveAvgPool2d((3, 4)), (3, 7, 5), "MatMul"),      # uneven, overlapping windows
    (lambda: nn.AdaptiveAvgPool2d((6, 6)), (3, 1, 1), "MatMul"),      # AlexNet's pool at 63x63
    (lambda: nn.AdaptiveAvgPool2d((None, 2)), (3, 5, 7), "MatMul"),
    (lambda: nn.AdaptiveAvgPool1d(3), (3, 7), "MatMul"),
    (lambda: nn.AdaptiveMaxPool2d(1), (3, 5, 7), "GlobalMaxPool"),
    (lambda: nn.AdaptiveMaxPool2d((2, 3)), (3, 4, 9), "MaxPool"),
    (lambda: nn.AdaptiveMaxPool1d(2), (3, 8), "MaxPool"),
    (lambda: nn.GlobalAvgPool2d(), (3, 4, 5), "GlobalAveragePool"),
    (lambda: nn.GlobalMaxPool2d(), (3, 4, 5), "GlobalMaxPool"),
])
def test_adaptive_and_global_pools(layer, shape, op):
    proto = compare_ort(seq(layer()), shape)
    assert op in op_types(proto)


@pytest.mark.parametrize("pad_type", ["reflect", "replicate", "zero"])
@pytest.mark.parametrize("opset", [9, 13])
def test_blur_pool(pad_type, opset):
    proto = compare_ort(seq(nn.BlurPool2d(3, filt_size=4, pad_type=pad_type)), (3, 7, 8), opset=opset)
    assert op_types(proto)[-1] == "Conv"


def test_locally_connected():
    compare_ort(seq(nn.LocallyConnected2d(2, 3, (6, 5), 3, stride=(2, 1), padding=1)), (2, 6, 5))
    compare_ort(seq(nn.LocallyConnected2d(2, 2, 4, 2, bias=False)), (2, 4, 4))


def test_roi_pool_graph_with_two_inputs():
    striate.manual_seed(0)
    g = nn.Graph(["x", "boxes"], [("conv", nn.Conv2d(2, 3, 3, padding=1), "x"),
                                   ("pool", nn.RoIPool((2, 3), 0.5), "conv", "boxes")], "pool")
    proto = export(g, None, [(2, 10, 12), (5,)], input_name=["x", "boxes"])
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input]
    assert dims == [["N", 2, 10, 12], ["N_boxes", 5]]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 10, 12)).astype(np.float32)
    boxes = np.array([[0, 1, 2, 15, 17], [1, 0, 0, 23, 19], [1, 5.4, 3.6, 9.2, 8.8]], np.float32)
    (got,) = run_ort(proto, x, boxes)
    np.testing.assert_allclose(got, g.eval()(x, boxes), atol=1e-6)


# ---------------------------------------------------------------------------- graphs and blocks


def test_graph_merges_and_two_outputs():
    striate.manual_seed(0)
    g = nn.Graph("x")
    g.add("a", nn.Conv2d(3, 4, 1), "x").add("b", nn.Conv2d(3, 4, 3, padding=1), "x")
    g.add("c", nn.Conv2d(3, 4, 1), "x")
    g.add("sum2", nn.Add(), "a", "b").add("sum3", nn.Add(), "a", "b", "c")
    g.add("prod", nn.Mul(), "a", "b", "c").add("cat", nn.Concat(dim=-3), "sum2", "sum3", "prod")
    g.add("one", nn.Add(), "cat")
    g.output("one", "sum3")
    proto = export(g, None, (3, 5, 6))
    assert [o.name for o in proto.graph.output] == ["output_0", "output_1"]
    assert {"Sum", "Concat", "Mul"} <= set(op_types(proto))
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6)).astype(np.float32)
    for got, ref in zip(run_ort(proto, x), g(x)):
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_graph_output_may_be_its_input_and_names_are_given():
    g = nn.Graph(["x"], [("r", nn.ReLU(), "x")], ["x", "r"])
    proto = export(g, None, (3,), input_name="image", output_name=["same", "relu"])
    assert [o.name for o in proto.graph.output] == ["same", "relu"]
    x = np.array([[-1.0, 2.0, -3.0]], np.float32)
    same, relu = run_ort(proto, x)
    np.testing.assert_array_equal(same, x)
    np.testing.assert_array_equal(relu, np.maximum(x, 0))
    assert op_types(export(nn.Sequential(), None, (2,))) == ["Identity"]


def _blocks():
    striate.manual_seed(0)
    down = nn.Sequential(nn.conv1x1(4, 8, 2), nn.BatchNorm2d(8))
    return nn.Sequential(nn.BasicBlock(4, 8, 2, down), nn.BasicBlock(8, 8),
                         nn.Bottleneck(8, 2), nn.InceptionModule(8, 2, 2, 3, 1, 2, 2),
                         nn.BasicConv2d(9, 4, kernel_size=3, padding=1))


def test_blocks():
    model = _blocks()
    randomize_batchnorm(model, np.random.default_rng(1))
    proto = compare_ort(model, (4, 9, 8), atol=2e-5)
    ops = op_types(proto)
    assert ops.count("Add") == 3 and ops.count("Concat") == 1
    assert ops.count("BatchNormalization") == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_fold_batchnorm_option():
    model = _blocks()
    randomize_batchnorm(model, np.random.default_rng(1))
    proto = compare_ort(model, (4, 9, 8), atol=2e-5, fold_batchnorm=True)
    assert "BatchNormalization" not in op_types(proto)
    assert striate.count_batchnorm(model) == 15                      # the model is not folded


# ---------------------------------------------------------------------------- options


@pytest.mark.parametrize("opset", range(9, 18))
def test_every_opset_runs_and_passes_the_checker(opset):
    striate.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6(),
                          nn.MaxPool2d(2, ceil_mode=True), nn.Hardswish(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(4, 3), nn.Softmax(dim=1))
    proto = compare_ort(model, (2, 5, 4), opset=opset)
    onnx.checker.check_model(proto, full_check=True)                   # with shape inference
    assert proto.opset_import[0].version == opset


def test_file_dtype_and_fixed_batch(tmp_path):
    striate.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh()).double()
    path = tmp_path / "m.onnx"
    proto = export(model, path, (3,), dynamic_batch=False, batch_size=4)
    loaded = onnx.load(str(path))
    assert loaded == proto
    inp = loaded.graph.input[0].type.tensor_type
    assert inp.elem_type == onnx.TensorProto.DOUBLE
    assert [d.dim_value for d in inp.shape.dim] == [4, 3]
    x = np.random.default_rng(0).standard_normal((4, 3))
    (got,) = run_ort(str(path), x)
    np.testing.assert_allclose(got, model(x), rtol=1e-12)


def test_model_is_left_as_it_was():
    striate.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    x = np.ones((2, 1, 4, 4), np.float32)
    model(x)                                                          # training mode, caches kept
    caches = [m._cache for m in model.modules()]
    before = {k: v.copy() for k, v in model.state_dict().items()}
    proto = export(model, None, (1, 4, 4))
    assert model.training and all(m.training for m in model.modules())
    assert [m._cache for m in model.modules()] == caches
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert "Dropout" not in op_types(proto)                           # inference form: no node
    model.backward(np.ones((2, 2, 2, 2), np.float32))                 # the caches still work


# ---------------------------------------------------------------------------- errors


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.ReLU()

    def forward(self, x):
        return self.inner(x) * 2


def test_every_unsupported_layer_is_listed_in_one_error():
    striate.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LPPool2d(3, 2), _Custom(),
                          nn.Sequential(nn.BatchNorm2d(2, track_running_stats=False),
                                        nn.AdaptiveMaxPool2d(3)))
    with pytest.raises(OnnxError) as e:
        export(model, None, (1, 9, 10))
    msg = str(e.value)
    assert "4 layer(s)" in msg
    for where in ("1 (LPPool2d): norm_type=3", "2 (_Custom): is a custom block",
                  "3.0 (BatchNorm2d): track_running_stats=False",
                  "3.1 (AdaptiveMaxPool2d): input size (3, 4) is not a multiple"):
        assert where in msg


def test_a_module_without_forward():
    model = nn.Sequential(nn.ReLU(), nn.ModuleList([nn.ReLU()]))
    with pytest.raises(OnnxError, match=r"1 layer\(s\) .*1 \(ModuleList\): has no forward\(\)"):
        export(model, None, (3,))


@pytest.mark.parametrize("layer, opset, match", [
    (lambda: nn.MaxPool2d(2, dilation=2), 9, r"0 \(MaxPool2d\): dilation \(2, 2\) needs opset 10"),
    (lambda: nn.MaxPool2d(2, return_indices=True), 13, "return_indices"),
    (lambda: nn.Softplus(threshold=5.0), 13, r"threshold=5.0 .* up to 0.0067"),
    (lambda: nn.LPPool2d(float("inf"), 2), 13, "norm_type=inf"),
    (lambda: nn.LocalResponseNorm(4), 13, r"0 \(LocalResponseNorm\): even size 4"),
])
def test_unsupported_configurations(layer, opset, match):
    with pytest.raises(OnnxError, match=match):
        export(nn.Sequential(layer()), None, (1, 6, 6), opset)


@pytest.mark.parametrize("args, kwargs, match", [
    (((1, 0, 4),), {}, r"input_shape must be .*received \(1, 0, 4\)"),
    (("1,4,4",), {}, "received '1,4,4'"),
    (((1, 4, 4), 8), {}, "opset must be an int from 9 to 17; received 8"),
    (((1, 4, 4), 18), {}, "received 18"),
    (((1, 4, 4),), {"batch_size": 0}, "batch_size must be a positive int; received 0"),
    (((1, 4, 4),), {"input_name": ""}, "input_name must be"),
    (((1, 4, 4),), {"input_name": "a", "output_name": "a"}, "clash"),
])
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        export(nn.Sequential(nn.ReLU()), None, *args, **kwargs)


def test_bad_model_path_and_shape(tmp_path):
    with pytest.raises(ConfigError, match="model must be a striate Module; received str"):
        export("resnet18", None, (3, 8, 8))
    with pytest.raises(ConfigError, match="folder of"):
        export(nn.Sequential(nn.ReLU()), tmp_path / "no" / "m.onnx", (3,))
    with pytest.raises(ShapeError, match=r"0 \(Conv2d\) expects input \(N, 3, H, W\)"):
        export(nn.Sequential(nn.Conv2d(3, 2, 1)), None, (2, 4, 4))


def test_missing_onnx(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match=r"pip install striate\[onnx\]"):
        export(nn.Sequential(nn.ReLU()), None, (3,))
