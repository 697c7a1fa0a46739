"""ONNX's node tests and the wheel's pytorch-converted / pytorch-operator cases, run on striate.

Every case of an operator striate imports runs through ``striate.onnx.backend``
(``onnx.backend.test.BackendTest``); the excluded ones are listed with their
reasons in tests/onnx/_cases.py and reported as skips.
"""

import pytest

pytest.importorskip("onnx")

from ._cases import backend_cases  # noqa: E402

globals().update(backend_cases(("NodeModel", "PyTorchConvertedModel", "PyTorchOperatorModel",
                             "SimpleModel"), __name__))
