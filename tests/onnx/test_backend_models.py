"""The ``light`` whole models of ONNX's test data, run on striate through the backend.

bvlc_alexnet, zfnet512, vgg19, resnet50, inception_v1, inception_v2, squeezenet,
densenet121 and shufflenet, as BackendTest runs them: the wheel's
light_<name>.onnx (the architecture with constant weights) on a fixed input,
compared with the stored reference output.
"""

import os

import pytest

pytest.importorskip("onnx")

from ._cases import backend_cases  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _onnx_home(tmp_path_factory):
    """BackendTest writes each model's test data under $ONNX_HOME: keep it out of ~/.onnx."""
    old = os.environ.get("ONNX_HOME")
    os.environ["ONNX_HOME"] = str(tmp_path_factory.mktemp("onnx_home"))
    yield
    if old is None:
        os.environ.pop("ONNX_HOME", None)
    else:
        os.environ["ONNX_HOME"] = old


globals().update(backend_cases(("RealModel",), __name__))


def test_light_squeezenet_float64():
    """The light squeezenet (skipped in float32, see _cases.py) matches its reference in float64.

    Its constant weights give 1000 logits of ~9.5e9 that are equal in exact arithmetic,
    so the reference output is 0.001 everywhere; float64 keeps their spread far below 1.
    """
    import numpy as np
    import onnx

    import striate.onnx

    folder = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    model = striate.onnx.load(os.path.join(folder, "light_squeezenet.onnx")).double()
    x = (np.arange(3 * 224 * 224) / (3 * 224 * 224)).reshape(1, 3, 224, 224)  # BackendTest's input
    ref = onnx.TensorProto()
    with open(os.path.join(folder, "light_squeezenet_output_0.pb"), "rb") as f:
        ref.ParseFromString(f.read())
    np.testing.assert_allclose(model(x), onnx.numpy_helper.to_array(ref), rtol=1e-3, atol=1e-7)
