"""Round trip of every zoo model: striate -> ONNX -> onnxruntime, and -> striate.onnx.load.

For each model of ``striate.models.list_models()`` (built by its builder with
random weights from ``striate.manual_seed``, BatchNorm given random affine
parameters and running statistics, biases made non-zero,
the classifier scaled so the logits are O(1)):

* the exported file passes onnx.checker and onnxruntime's output equals
  striate's evaluation-mode output (max abs difference <= 1e-4) for batch 2
  and batch 3 (one file: the batch axis is dynamic);
* the file imported back with ``striate.onnx.load`` gives the same output, the
  same input gradient and the same gradient of every parameter (parameters are
  matched by value, so the check does not depend on the importer's names).

The large models run at (about) their smallest input: VGG at 32x32, AlexNet at
63x63 (67 for the Caffe layout), the ImageNet ResNets, GoogLeNet and MobileNet
at 32x32.  VGG's classifier (120M parameters, the same in every variant) is
checked whole in vgg11 only (see test_vgg_round_trip).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import striate
from striate import models
from striate.nn.container import Sequential
from striate.nn.module import Module, no_grad
from tests.onnx.export_util import randomize_batchnorm, session
from tests.util import rel_err

onnx = pytest.importorskip("onnx")

from striate.onnx.exporter import export  # noqa: E402  (after the skip: needs onnx)

NUM_CLASSES = 5


def input_shape(name: str) -> tuple[int, ...]:
    if name == "tdnn":
        return (40, 20)                                   # the frame context is 15
    if name == "fashion_cnn":
        return (1, 28, 28)
    if name == "lenet5":
        return (1, 32, 32)
    if name == "alexnet":
        return (3, 63, 63)
    if name == "alexnet_2012":
        return (3, 67, 67)
    return (3, 32, 32)


def prepared_model(name: str) -> tuple[Module, tuple[int, ...]]:
    """The zoo model with random weights, BatchNorm statistics and O(1) outputs."""
    striate.manual_seed(0)
    shape = input_shape(name)
    kwargs = {"num_classes": NUM_CLASSES}
    if name == "alexnet_2012":
        kwargs["input_size"] = shape[-1]
    model = models.get_model(name, **kwargs)
    rng = np.random.default_rng(1)
    for p in model.parameters():
        if np.all(p.data == p.data.flat[0]):             # zero biases: make every tensor distinct
            p.data[...] = rng.normal(0.0, 0.01, p.data.shape)
    randomize_batchnorm(model, rng)
    probe = rng.standard_normal((2, *shape)).astype(np.float32)
    model.eval()
    with no_grad():
        scale = float(np.max(np.abs(model(probe))))
    head = [m for m in model.modules() if "weight" in m._parameters][-1]   # the classifier
    head.weight.data /= scale
    if head.bias is not None:
        head.bias.data /= scale
    return model, shape


def _match(original: Module, imported: Module) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, original grad, imported grad) per original parameter, matched by value.

    An imported parameter may hold the same values reshaped (a PReLU slope) or
    transposed (a Gemm weight); its gradient is brought to the original layout.
    """
    pool = list(imported.named_parameters())
    used: set[int] = set()
    out = []
    for name, p in original.named_parameters():
        found = None
        for i, (_, q) in enumerate(pool):
            if i in used or q.data.size != p.data.size:
                continue
            if np.array_equal(q.data.ravel(), p.data.ravel()):
                found = (i, lambda g, shape=p.data.shape: g.reshape(shape))
            elif q.data.ndim == 2 and np.array_equal(q.data.T, p.data):
                found = (i, lambda g: g.T)
            if found:
                break
        assert found is not None, f"parameter {name} {p.data.shape} not found in the imported model"
        used.add(found[0])
        q = pool[found[0]][1]
        out.append((name, p.grad, found[1](q.grad)))
    return out


def _check_onnxruntime(model: Module, shape: tuple[int, ...], path: str) -> None:
    """onnxruntime's output equals striate's for batch 2 and batch 3 through one file."""
    sess = session(path)
    rng = np.random.default_rng(3)
    for n in (2, 3):
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        with no_grad():
            ref = model(x)
        (got,) = sess.run(None, {"input": x})
        assert got.shape == ref.shape
        err = float(np.max(np.abs(got - ref)))
        assert err <= 1e-4, f"batch {n}: max |onnxruntime - striate| = {err:.3g}"


def _check_reimport(model: Module, shape: tuple[int, ...], path: str) -> None:
    """striate.onnx.load(path) gives the same output, input gradient and parameter gradients."""
    imported = striate.onnx.load(path)
    imported.eval()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    y, y_imp = model(x), imported(x)
    assert np.max(np.abs(y_imp - y)) <= 1e-4
    dy = rng.standard_normal(y.shape).astype(np.float32)
    model.zero_grad()
    imported.zero_grad()
    dx, dx_imp = model.backward(dy), imported.backward(dy)
    assert rel_err(dx_imp, dx) <= 1e-4, "input gradient"
    pairs = _match(model, imported)
    assert len(pairs) == len(list(model.parameters())) > 0
    for pname, g, g_imp in pairs:
        assert rel_err(g_imp, g) <= 1e-4, f"gradient of {pname}"


VGG = [n for n in models.list_models() if n.startswith("vgg")]


@pytest.mark.parametrize("name", [n for n in models.list_models() if n not in VGG])
def test_zoo_model_round_trip(name, tmp_path):
    model, shape = prepared_model(name)
    path = str(tmp_path / f"{name}.onnx")
    proto = export(model, path, shape)
    onnx.checker.check_model(path)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    del proto
    with no_grad():
        ref = model(np.random.default_rng(2).standard_normal((2, *shape)).astype(np.float32))
    assert ref.shape == (2, NUM_CLASSES) and 0.05 < np.max(np.abs(ref)) < 20   # O(1) logits
    _check_reimport(model, shape, path)
    _check_onnxruntime(model, shape, path)


@pytest.mark.parametrize("name", VGG)
def test_vgg_round_trip(name, tmp_path):
    """Every VGG's convolutional body (what differs between the variants) through
    onnxruntime and re-import with gradients; the whole model, classifier included,
    through onnxruntime for the smallest variant.

    The classifier (Flatten, Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096),
    ..., the same in every VGG) holds 120M of the 130M+ parameters: exporting and
    loading it costs ~7 s and ~3 GB per model, and its re-import with gradients
    several GB more, so the whole-model check is done once.
    """
    model, shape = prepared_model(name)
    path = str(tmp_path / f"{name}.onnx")
    body = Sequential(OrderedDict((k, model[k]) for k in ("features", "avgpool", "flatten")))
    export(body, path, shape)
    _check_onnxruntime(body, shape, path)
    _check_reimport(body, shape, path)
    if name == "vgg11":
        export(model, path, shape)
        _check_onnxruntime(model, shape, path)


@pytest.mark.parametrize("name, opset", [("googlenet", 9), ("mobilenet_v1", 10), ("tdnn", 11),
                                         ("alexnet_2012", 12), ("resnet18", 17)])
def test_zoo_models_at_other_opsets(name, opset, tmp_path):
    """Opset 9 has no ceil_mode (GoogLeNet's pools get explicit end pads) and Clip takes
    attributes before 11 (MobileNet's ReLU6)."""
    model, shape = prepared_model(name)
    path = str(tmp_path / f"{name}.onnx")
    proto = export(model, path, shape, opset)
    assert proto.opset_import[0].version == opset
    _check_onnxruntime(model, shape, path)
