"""Every layer documents its shapes (with the output-size formula where sizes change)."""

from __future__ import annotations

import inspect

import striate.nn as nn

CONTAINERS = {"Module", "ModuleList"}


def layer_classes():
    return [(n, c) for n, c in vars(nn).items()
            if inspect.isclass(c) and issubclass(c, nn.Module) and n not in CONTAINERS]


def test_every_layer_has_a_shape_section():
    missing = [n for n, c in layer_classes() if "Shape:" not in (inspect.getdoc(c) or "")]
    assert missing == []


def test_size_changing_layers_give_their_formula():
    size_changing = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "LocallyConnected2d",
                     "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "LPPool1d", "LPPool2d", "BlurPool2d"]
    lacking = [n for n in size_changing if "floor" not in inspect.getdoc(getattr(nn, n))
               and "stride" not in inspect.getdoc(getattr(nn, n)).split("Shape:")[1]]
    assert lacking == []


def test_many_layers_exported():
    names = {n for n, _ in layer_classes()}
    expected = {
        "Conv1d", "Conv2d", "ConvTranspose2d", "LocallyConnected2d", "MaxPool1d", "MaxPool2d",
        "AvgPool1d", "AvgPool2d", "LPPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
        "GlobalAvgPool2d", "GlobalMaxPool2d", "RoIPool", "BlurPool2d", "BatchNorm1d", "BatchNorm2d",
        "LocalResponseNorm", "Dropout", "Dropout2d", "Linear", "Flatten", "Identity", "ReLU",
        "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "ReLU6", "Hardswish", "GELU",
        "Softplus", "PReLU", "Concat", "Add", "Sequential", "Graph", "BasicBlock", "Bottleneck",
        "InceptionModule", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "MSELoss",
    }
    assert expected - names == set()
