"""ONNX's own conformance cases, run through striate.onnx.backend (shared by two test files).

``onnx.backend.test.BackendTest`` generates ONNX's node tests in memory (about
8 s, once per process) and adds the model cases shipped in the onnx wheel
(``backend/test/data``: pytorch-converted, pytorch-operator, simple and the
``light`` whole models that BackendTest names after the real ones).  Included:
every case of the operators striate imports.  Excluded, each with its reason
below: the cases that need something striate does not do.  Cases outside the
include list and the CUDA variants are dropped instead of reported as skips.
"""

from __future__ import annotations

import functools
import re
import unittest

import pytest

onnx_backend_test = pytest.importorskip("onnx.backend.test")

import striate.onnx.backend as striate_backend  # noqa: E402  (needs onnx)

# ONNX node tests of the operators in striate's import list (names as ONNX generates them).
NODE_OPS = [
    r"add", r"sub", r"mul", r"div", r"sum", r"relu", r"leakyrelu", r"prelu", r"elu", r"sigmoid",
    r"tanh", r"softmax", r"logsoftmax", r"hardswish", r"hardsigmoid", r"softplus", r"erf",
    r"clip", r"constant", r"constantofshape", r"constant_pad", r"edge_pad", r"reflect_pad",
    r"wrap_pad", r"unsqueeze", r"squeeze", r"shape", r"identity", r"flatten", r"reshape",
    r"transpose", r"concat", r"gather", r"gemm", r"matmul", r"conv", r"convtranspose",
    r"maxpool", r"averagepool", r"lppool", r"globalaveragepool", r"globalmaxpool", r"maxroipool",
    r"batchnorm", r"lrn", r"dropout", r"training_dropout",
]
INCLUDE = [
    rf"^test_({'|'.join(NODE_OPS)})(_.*)?_cpu$",
    # pytorch-converted (torch.nn modules exported at opset 6/9/12) of the listed operators
    r"^test_(AvgPool[12]d|BatchNorm\dd|ConstantPad2d|Conv[123]d|ConvTranspose2d|ELU|Embedding"
    r"|LeakyReLU|Linear|LogSoftmax|MaxPool[123]d|PReLU|PixelShuffle|ReLU|ReflectionPad2d"
    r"|ReplicationPad2d|Sigmoid|Softmax|Softplus|Tanh|ZeroPad2d|log_softmax|softmax)(_.*)?_cpu$",
    r"^test_(AvgPool3d|MaxPool3d)(_.*)?_cpu$",
    # pytorch-operator cases whose graphs use only listed operators
    r"^test_operator_(add_broadcast|add_size1_\w+|addconstant|addmm|clip|concat2|conv"
    r"|convtranspose|flatten|maxpool|mm|non_float_params|pad|permute2|view)_cpu$",
    r"^test_single_relu_model_cpu$",
    # whole models: BackendTest runs onnx/backend/test/data/light/light_<name>.onnx as these
    r"^test_(bvlc_alexnet|zfnet512|vgg19|resnet50|inception_v1|inception_v2|squeezenet"
    r"|densenet121|shufflenet)_cpu$",
]
# Other operators that the loose names above catch: not in striate's list.
EXCLUDE_OTHER_OPS = [
    r"^test_(convinteger|matmulinteger|gather_elements|gathernd|gatherelements)",
    r"^test_(constantofshape|constant|shape|gather)_.*(string|bfloat|float16|float8|int4|uint4)",
    r"^test_softmax_cross_entropy", r"^test_(sub|add|mul|div)_uint64_overflow",
]
# (pattern, reason): the cases of listed operators that striate does not pass, reported as skips.
EXCLUDE = [
    # ONNX's "_expanded" variants replace the operator by its function body; the clip and
    # hardswish expansions made of Identity or HardSigmoid + Mul import and are kept.
    (r"^test_clip_(?!default_(int8_)?inbounds_expanded)(.*_)?expanded",
     "expanded function body uses Less and Where, which striate does not import"),
    (r"^test_(hardsigmoid|leakyrelu|logsoftmax|softmax|elu|prelu|relu|softplus)_.*expanded",
     "expanded function body uses Where/Less/CastLike/Exp/Log/ReduceMax/ReduceSum/Max, "
     "which striate does not import"),
    (r"^test_(averagepool|maxpool|lppool|convtranspose)_3d|^test_(AvgPool3d|MaxPool3d|Conv3d)",
     "3-D input: striate has 1-D and 2-D convolution and pooling layers only"),
    (r"^test_(averagepool|lppool)_2d_dilations",
     "dilated average/LP pooling: striate's AvgPool2d and LPPool2d, like torch's, have no dilation"),
    (r"^test_training_dropout",
     "training_mode=True: a random mask from ONNX's generator; an imported model drops units "
     "after model.train() instead"),
    (r"^test_batchnorm_.*_training_mode",
     "training_mode=1 outputs running statistics that ONNX updates with the biased variance "
     "(striate, like torch, uses the unbiased one); model.train() uses batch statistics instead"),
    (r"^test_dropout_default_mask", "Dropout's mask output is not returned by striate's Dropout"),
    (r"^test_maxpool_with_argmax", "MaxPool's Indices output is not supported"),
    (r"^test_maxpool_2d_uint8", "striate's pooling layers take floating-point input only"),
    (r"^test_identity_(opt|sequence)", "optional and sequence values: striate graphs carry tensors"),
    # The light squeezenet's constant weights make its 1000 logits ~9.5e9 and equal only if
    # every channel's float32 sum rounds the same way; OpenBLAS's sgemm sums identical
    # weight rows up to a few ulp (2048 here) apart, so the softmax comes out near one-hot.
    # test_backend_models.py::test_light_squeezenet_float64 checks the same model in float64.
    (r"^test_squeezenet_cpu$",
     "float32 logits of ~9.5e9 must round identically in all 1000 channels (see "
     "test_light_squeezenet_float64)"),
]


@functools.lru_cache(maxsize=None)
def _backend_test():
    bt = onnx_backend_test.BackendTest(striate_backend, __name__)
    for pattern in INCLUDE:
        bt.include(pattern)
    for pattern in EXCLUDE_OTHER_OPS:
        bt.exclude(pattern)
    return bt.test_cases


_DROPPED = ("no matched include pattern", "Backend doesn't support device CUDA")


def _excluded_other(func) -> bool:
    why = getattr(func, "__unittest_skip_why__", "")
    return any(p in why for p in EXCLUDE_OTHER_OPS)


def backend_cases(categories: tuple[str, ...], module: str) -> dict[str, type]:
    """The BackendTest classes of ``categories`` ('NodeModel', 'RealModel', ...) for ``module``,
    without the cases outside the include list (and without CUDA variants)."""
    out = {}
    for name, cls in _backend_test().items():
        if not any(name == f"OnnxBackend{c}Test" for c in categories):
            continue
        for attr in [a for a in vars(cls) if a.startswith("test_")]:
            func = getattr(cls, attr)
            if getattr(func, "__unittest_skip_why__", None) in _DROPPED or _excluded_other(func):
                delattr(cls, attr)
                continue
            for pattern, reason in EXCLUDE:
                if re.search(pattern, attr):
                    setattr(cls, attr, unittest.skip(f"not supported by striate: {reason}")(func))
                    break
        cls.__module__ = module
        out[name] = cls
    return out
