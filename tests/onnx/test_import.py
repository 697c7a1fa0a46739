"""striate.onnx.load: errors, constant folding, padding, a PyTorch model, fine-tuning, the backend API."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import striate
import striate.onnx
from striate import nn, optim
from striate.errors import ConfigError, MissingDependencyError, OnnxError, UnsupportedOperatorError
from striate.gradcheck import gradcheck
from tests.util import assert_close, torch_or_skip


def _onnx():
    return pytest.importorskip("onnx")


def _model(nodes, inputs, outputs, inits=(), opset=13):
    """A ModelProto from helper specs: inputs/outputs are (name, dtype, shape) triples."""
    onnx = _onnx()
    h = onnx.helper

    def vi(name, dt, shape):
        return h.make_tensor_value_info(name, h.np_dtype_to_tensor_dtype(np.dtype(dt)), shape)

    graph = h.make_graph(nodes, "g", [vi(*i) for i in inputs], [vi(*o) for o in outputs],
                         [onnx.numpy_helper.from_array(np.asarray(v), n) for n, v in inits])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 8                          # what onnxruntime 1.16+ reads
    return model


def _node(op, inputs, outputs, name=None, **attrs):
    return _onnx().helper.make_node(op, inputs, outputs, name=name or outputs[0], **attrs)


def _rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------- errors


def test_missing_onnx_raises_missing_dependency(monkeypatch):
    from striate.onnx import _proto

    monkeypatch.setitem(sys.modules, "onnx", None)          # "import onnx" now fails
    with pytest.raises(MissingDependencyError, match=r"pip install striate\[onnx\]"):
        _proto.require_onnx()
    with pytest.raises(MissingDependencyError, match=r"pip install striate\[onnx\]"):
        striate.onnx.load(b"whatever")


def test_unsupported_operators_are_all_listed_before_building():
    m = _model([_node("Relu", ["x"], ["a"]), _node("Exp", ["a"], ["b"], name="e1"),
                _node("Exp", ["b"], ["c"], name="e2"), _node("Resize", ["c"], ["d"], name="up"),
                _node("Conv", ["d", "W"], ["y"], name="conv", auto_pad="NONSENSE")],
               [("x", np.float32, [1, 1, 4, 4])], [("y", np.float32, None)],
               inits=[("W", np.ones((1, 1, 1, 1), np.float32))])
    with pytest.raises(UnsupportedOperatorError) as info:
        striate.onnx.load(m, check=False)
    msg = str(info.value)
    assert "2 unsupported operator types" in msg
    assert "Exp (2 nodes: 'e1', 'e2')" in msg and "Resize (1 node: 'up')" in msg
    assert "NONSENSE" not in msg                              # refused before any node is built
    custom = _model([_node("Relu", ["x"], ["y"])], [("x", np.float32, [2])], [("y", np.float32, [2])])
    custom.graph.node[0].domain = "com.example"
    with pytest.raises(UnsupportedOperatorError, match=r"com\.example\.Relu \(1 node: 'y'\)"):
        striate.onnx.load(custom, check=False)


def test_malformed_sources_raise_onnx_error(tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(OnnxError, match="<bytes>: not a valid ONNX model"):
        striate.onnx.load(b"\x08\x07\x12\xff\xff\xff garbage")
    with pytest.raises(OnnxError, match="<bytes>: invalid ONNX model"):
        striate.onnx.load(b"")
    good = _model([_node("Relu", ["x"], ["y"])], [("x", np.float32, [2])], [("y", np.float32, [2])])
    data = good.SerializeToString()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxError, match="cut.onnx"):
        striate.onnx.load(bad)
    with pytest.raises(OnnxError, match="no such ONNX file"):
        striate.onnx.load(tmp_path / "absent.onnx")
    with pytest.raises(ConfigError, match="expects a file path, bytes or an onnx.ModelProto; received int"):
        striate.onnx.load(3)


def test_checker_and_opset_errors():
    broken = _model([_node("Relu", ["nowhere"], ["y"])], [("x", np.float32, [2])],
                    [("y", np.float32, [2])])
    with pytest.raises(OnnxError, match="<ModelProto>: invalid ONNX model"):
        striate.onnx.load(broken)
    with pytest.raises(OnnxError, match="reads 'nowhere', which no earlier node"):
        striate.onnx.load(broken, check=False)
    old = _model([_node("Relu", ["x"], ["y"])], [("x", np.float32, [2])], [("y", np.float32, [2])],
                 opset=5)
    with pytest.raises(OnnxError, match="opset 5 is older than 6"):
        striate.onnx.load(old, check=False)


@pytest.mark.parametrize("node,init,attr", [
    (dict(op="Conv", auto_pad="MIDDLE"), ("W", (2, 1, 3, 3)), "auto_pad"),
    (dict(op="Conv"), ("W", (2, 1, 3, 3, 3)), "kernel_shape"),
    (dict(op="LRN", size=4), None, "size"),
    (dict(op="MaxPool", kernel_shape=[3, 3], pads=[0, 0, 1, 1], ceil_mode=1), None, "pads"),
    (dict(op="AveragePool", kernel_shape=[2, 2], dilations=[2, 2]), None, "dilations"),
])
def test_inexpressible_attributes_name_node_and_attribute(node, init, attr):
    op = node.pop("op")
    ins = ["x"] + ([init[0]] if init else [])
    inits = [(init[0], np.ones(init[1], np.float32))] if init else []
    m = _model([_node(op, ins, ["y"], name="bad_node", **node)], [("x", np.float32, [1, 1, 6, 6])],
               [("y", np.float32, ["a", "b", "c", "d"])], inits=inits)
    with pytest.raises(OnnxError, match=rf"node 'bad_node' \({op}\), attribute '{attr}'"):
        striate.onnx.load(m, check=False)


def test_weight_from_a_graph_input_is_refused():
    m = _model([_node("Conv", ["x", "W"], ["y"], name="c")],
               [("x", np.float32, [1, 1, 4, 4]), ("W", np.float32, [1, 1, 3, 3])],
               [("y", np.float32, [1, 1, 2, 2])])
    with pytest.raises(OnnxError, match=r"node 'c' \(Conv\): input 1 \(W, the weight\) must be a constant"):
        striate.onnx.load(m)


# ---------------------------------------------------------------------------- folding and padding


def test_constant_subgraphs_are_folded_into_the_weights():
    # W = ConstantOfShape([2, 3, 3, 3]) * 0.5; the reshape target is Concat(Shape(B)[0:1], [-1])
    nodes = [
        _node("Constant", [], ["wshape"], value=_onnx().numpy_helper.from_array(
            np.array([2, 3, 3, 3], np.int64))),
        _node("ConstantOfShape", ["wshape"], ["ones"], value=_onnx().numpy_helper.from_array(
            np.array([1.0], np.float32))),
        _node("Mul", ["ones", "half"], ["W"]),
        _node("Shape", ["B"], ["bshape"]),
        _node("Gather", ["bshape", "zero"], ["b0"], axis=0),
        _node("Unsqueeze", ["b0", "axes"], ["b0v"]),
        _node("Concat", ["minus1", "b0v"], ["target"], axis=0),
        _node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        _node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
        _node("Reshape", ["t", "target"], ["y"], name="reshape"),
    ]
    inits = [("half", np.array(0.5, np.float32)), ("B", np.array([1.0, -1.0], np.float32)),
             ("zero", np.array(0, np.int64)), ("axes", np.array([0], np.int64)),
             ("minus1", np.array([-1], np.int64))]
    m = _model(nodes, [("x", np.float32, ["N", 3, 4, 4])], [("y", np.float32, ["M", 2])], inits)
    g = striate.onnx.load(m)
    assert [type(n.module).__name__ for n in g.nodes] == ["Conv2d", "Transpose", "Reshape"]
    assert g["reshape"].shape == [-1, 2]
    np.testing.assert_array_equal(g["conv"].weight.data, np.full((2, 3, 3, 3), 0.5, np.float32))
    x = _rand(2, 3, 4, 4)
    ort = pytest.importorskip("onnxruntime")
    ref = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    assert_close(g(x), ref, np.float32)


def test_runtime_shape_arithmetic_keeps_the_batch_free():
    nodes = [_node("Shape", ["x"], ["s"]), _node("Gather", ["s", "zero"], ["n"], axis=0),
             _node("Unsqueeze", ["n", "axes"], ["nv"]),
             _node("Concat", ["nv", "minus1"], ["target"], axis=0),
             _node("Reshape", ["x", "target"], ["y"], name="flat")]
    inits = [("zero", np.array(0, np.int64)), ("axes", np.array([0], np.int64)),
             ("minus1", np.array([-1], np.int64))]
    g = striate.onnx.load(_model(nodes, [("x", np.float32, ["N", 2, 3])],
                                 [("y", np.float32, ["N", 6])], inits))
    for n in (1, 4):
        x = _rand(n, 2, 3)
        y = g(x)
        assert y.shape == (n, 6)
        np.testing.assert_array_equal(g.backward(np.ones_like(y)), np.ones_like(x))


def test_asymmetric_and_same_padding_become_pad_layers():
    onnx = _onnx()
    w = _rand(2, 1, 3, 3, seed=1)
    nodes = [_node("Conv", ["x", "W"], ["c"], name="conv", pads=[0, 1, 2, 1], strides=[2, 2]),
             _node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2],
                   auto_pad="SAME_UPPER"),
             _node("AveragePool", ["p"], ["y"], name="avg", kernel_shape=[2, 2],
                   auto_pad="SAME_LOWER")]
    m = _model(nodes, [("x", np.float32, [1, 1, 9, 8])], [("y", np.float32, [1, 2, 3, 2])],
               [("W", w)])
    g = striate.onnx.load(m)
    kinds = [type(n.module).__name__ for n in g.nodes]
    assert kinds == ["Pad", "Conv2d", "SamePad", "MaxPool2d", "AvgPoolExcludePad"]
    assert g["conv"].padding == (0, 1)
    ort = pytest.importorskip("onnxruntime")
    x = _rand(1, 1, 9, 8, seed=2)
    ref = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    assert_close(g(x), ref, np.float32)
    assert onnx is not None


def test_imported_generic_ops_have_exact_gradients():
    nodes = [_node("Sub", ["x", "mean"], ["a"]), _node("Div", ["a", "std"], ["b"]),
             _node("MatMul", ["b", "z"], ["c"]), _node("Transpose", ["c"], ["d"], perm=[0, 2, 1]),
             _node("Pad", ["d", "pads"], ["e"], mode="reflect"), _node("Erf", ["e"], ["y"])]
    inits = [("mean", _rand(3, 1, dtype=np.float64)), ("std", np.full(4, 2.0)),
             ("pads", np.array([0, 0, 1, 0, 0, 1], np.int64))]
    m = _model(nodes, [("x", np.float64, [2, 3, 4]), ("z", np.float64, [4, 5])],
               [("y", np.float64, [2, 7, 3])], inits)
    g = striate.onnx.load(m)
    assert gradcheck(g, _rand(2, 3, 4, dtype=np.float64), _rand(4, 5, seed=3, dtype=np.float64)) < 1e-6


def test_matmul_add_and_gemm_become_trainable_linear_layers():
    w, b, w2 = _rand(6, 4), _rand(4, seed=1), _rand(3, 4, seed=2)
    nodes = [_node("MatMul", ["x", "W"], ["m"], name="fc1"), _node("Add", ["m", "b"], ["h"]),
             _node("Relu", ["h"], ["r"]),
             _node("Gemm", ["r", "W2", "b2"], ["y"], name="fc2", transB=1, alpha=2.0, beta=0.5)]
    inits = [("W", w), ("b", b), ("W2", w2), ("b2", np.ones(3, np.float32))]
    g = striate.onnx.load(_model(nodes, [("x", np.float32, ["N", 6])],
                                 [("y", np.float32, ["N", 3])], inits))
    assert [type(n.module).__name__ for n in g.nodes] == ["Linear", "ReLU", "Linear"]
    assert sorted(k for k, _ in g.named_parameters()) == ["fc1.bias", "fc1.weight", "fc2.bias",
                                                          "fc2.weight"]
    x = _rand(5, 6, seed=3)
    ref = 2.0 * np.maximum(x @ w + b, 0) @ w2.T + 0.5
    assert_close(g(x), ref, np.float32)


def test_constant_output_and_metadata():
    one = _onnx().numpy_helper.from_array(np.array([1.0, 2.0], np.float32))
    m = _model([_node("Constant", [], ["c"], value=one), _node("Relu", ["x"], ["y"])],
               [("x", np.float32, ["N", 2])], [("y", np.float32, ["N", 2]), ("c", np.float32, [2])])
    g = striate.onnx.load(m)
    y, c = g(_rand(3, 2))
    np.testing.assert_array_equal(c, [1.0, 2.0])
    assert g.metadata["inputs"] == [["x", [None, 2]]] and g.metadata["opset"] == 13


# ---------------------------------------------------------------------------- a model from PyTorch


def _torch_cnn(torch):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(8)
            self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2)
            self.pool = torch.nn.MaxPool2d(2)
            self.act = torch.nn.Hardswish()
            self.fc = torch.nn.Linear(8 * 4 * 4 + 8, 5)

        def forward(self, x):
            a = torch.relu(self.bn1(self.conv1(x)))
            b = self.act(self.conv2(a)) + a                   # residual join
            p = self.pool(b)
            g = torch.nn.functional.adaptive_avg_pool2d(p, 1).flatten(1)
            return self.fc(torch.cat([p.flatten(1), g], 1))

    return Net()


def _export(torch, net, x, path):
    torch.onnx.export(net, (torch.from_numpy(x),), str(path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                      opset_version=13, dynamo=False)


def test_pytorch_model_matches_torch_output_and_input_gradient(tmp_path):
    torch = torch_or_skip()
    _onnx()
    torch.manual_seed(0)
    net = _torch_cnn(torch).double().eval()
    net.bn1.running_mean.uniform_(-0.5, 0.5)
    net.bn1.running_var.uniform_(0.5, 2.0)
    x = _rand(2, 3, 8, 8, dtype=np.float64)
    _export(torch, net, x, tmp_path / "net.onnx")
    g = striate.onnx.load(tmp_path / "net.onnx")
    kinds = [type(n.module).__name__ for n in g.nodes]
    assert kinds.count("Conv2d") == 2 and kinds.count("Linear") == 1   # BN folded by the exporter
    tx = torch.from_numpy(np.concatenate([x, x[:1]])).requires_grad_(True)
    ty = net(tx)
    y = g(tx.detach().numpy())                                # another batch size than exported
    assert_close(y, ty.detach().numpy(), np.float64, "output")
    dy = _rand(*y.shape, seed=5, dtype=np.float64)
    dx = g.backward(dy)
    ty.backward(torch.from_numpy(dy))
    assert_close(dx, tx.grad.numpy(), np.float64, "input gradient")
    fc = [m for _, m in g.named_modules() if isinstance(m, nn.Linear)][0]
    assert_close(fc.weight.grad, net.fc.weight.grad.numpy(), np.float64, "fc weight gradient")
    # and in float32, the exporter's default
    g32 = striate.onnx.load(tmp_path / "net.onnx").float()
    assert_close(g32(x.astype(np.float32)), net(torch.from_numpy(x)).detach().numpy(), np.float32)


def test_imported_model_fine_tunes(tmp_path):
    torch = torch_or_skip()
    _onnx()
    torch.manual_seed(1)
    net = _torch_cnn(torch).eval()
    x = _rand(16, 3, 8, 8, seed=6)
    _export(torch, net, x[:2], tmp_path / "net.onnx")
    g = striate.onnx.load(tmp_path / "net.onnx").train()
    labels = np.random.default_rng(7).integers(0, 5, 16)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(g.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = loss_fn(g(x), labels)
        g.backward(loss_fn.backward())
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(p.grad is not None for p in g.parameters())


def test_imported_model_saves_and_loads_as_npz(tmp_path):
    torch = torch_or_skip()
    _onnx()
    torch.manual_seed(2)
    net = _torch_cnn(torch).eval()
    x = _rand(2, 3, 8, 8, seed=8)
    _export(torch, net, x, tmp_path / "net.onnx")
    g = striate.onnx.load(tmp_path / "net.onnx")
    striate.save(g, tmp_path / "net.npz")
    g2 = striate.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(g2(x), g(x))
    assert g2.metadata["format"] == "onnx"


# ---------------------------------------------------------------------------- the backend API


def test_backend_interface():
    _onnx()
    from striate.onnx import backend

    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    node = _node("LeakyRelu", ["x"], ["y"], alpha=0.5)
    x = np.array([-2.0, 3.0], np.float32)
    np.testing.assert_array_equal(backend.run_node(node, [x])[0], [-1.0, 3.0])
    m = _model([_node("Conv", ["x", "W"], ["y"])], [("x", np.float32, [1, 1, 3, 3]),
                                                     ("W", np.float32, [1, 1, 2, 2])],
               [("y", np.float32, [1, 1, 2, 2])])
    w = np.ones((1, 1, 2, 2), np.float32)
    out = backend.run_model(m, {"x": np.ones((1, 1, 3, 3), np.float32), "W": w})
    np.testing.assert_array_equal(out.y, np.full((1, 1, 2, 2), 4.0, np.float32))
    rep = backend.prepare(m)
    with pytest.raises(OnnxError, match=r"expects 2 inputs \(x, W\); received 1"):
        rep.run([np.ones((1, 1, 3, 3), np.float32)])
    with pytest.raises(OnnxError, match="CPU only"):
        backend.prepare(m, "CUDA")


# ---------------------------------------------------------------------------- against onnxruntime

ORT_CASES = [  # (node attributes, input shape, extra initializers, opset)
    (dict(op="MaxRoiPool", pooled_shape=[2, 3], spatial_scale=0.5), (2, 3, 8, 9),
     [("rois", np.array([[0, 1, 2, 10, 12], [1, 0, 0, 15, 7], [1, 4, 3, 6, 6]], np.float32))], 13),
    (dict(op="LpPool", kernel_shape=[2, 3], strides=[2, 1], p=3, pads=[0, 1, 1, 0]), (2, 3, 6, 7),
     [], 13),
    (dict(op="GlobalMaxPool"), (2, 3, 5), [], 13),
    (dict(op="GlobalAveragePool"), (2, 3, 4, 5), [], 13),
    (dict(op="Softmax", axis=1), (2, 3, 4, 5), [], 11),
    (dict(op="LogSoftmax", axis=2), (2, 3, 4), [], 11),
    (dict(op="PRelu"), (2, 3, 4, 5), [("slope", np.array([[[0.1]], [[-0.2]], [[0.3]]], np.float32))], 13),
    (dict(op="ConvTranspose", strides=[2, 2], pads=[1, 0, 0, 2], output_padding=[1, 1]), (1, 2, 4, 5),
     [("W", np.linspace(-1, 1, 2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3))], 13),
    (dict(op="Conv", auto_pad="SAME_LOWER", strides=[2, 2], group=2), (1, 4, 7, 8),
     [("W", np.linspace(-1, 1, 4 * 2 * 3 * 2, dtype=np.float32).reshape(4, 2, 3, 2))], 13),
    (dict(op="AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          count_include_pad=1, ceil_mode=1), (1, 2, 6, 7), [], 13),
    (dict(op="Clip"), (3, 4), [("lo", np.array(0.0, np.float32)), ("hi", np.array(6.0, np.float32))], 13),
    (dict(op="Pad", mode="edge"), (2, 3, 4), [("pads", np.array([0, 1, 2, 0, 2, -1], np.int64))], 13),
]


@pytest.mark.parametrize("spec,shape,inits,opset", ORT_CASES, ids=lambda v: v.get("op") if isinstance(v, dict) else None)
def test_single_nodes_match_onnxruntime(spec, shape, inits, opset):
    ort = pytest.importorskip("onnxruntime")
    spec = dict(spec)
    op = spec.pop("op")
    node = _node(op, ["x"] + [n for n, _ in inits], ["y"], name="node", **spec)
    x = _rand(*shape, seed=9)
    m = _model([node], [("x", np.float32, list(shape))], [], inits, opset)
    # the output's type as ONNX infers it (the checker wants a shape on graph outputs)
    inferred = _onnx().shape_inference.infer_shapes(m)
    m.graph.output.extend([v for v in inferred.graph.value_info if v.name == "y"])
    ref = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    g = striate.onnx.load(m)
    assert_close(g(x), ref, np.float32, op)
    if op != "MaxRoiPool":                                    # its gradient is piecewise constant
        assert gradcheck(g, x.astype(np.float64), max_per_tensor=60) < 1e-6
