"""Converters of the ONNX activation operators (Relu ... Softmax, PRelu, Erf)."""

from __future__ import annotations

import numpy as np

from .. import nn
from ._context import NodeContext, converter
from .axis_layers import BroadcastPReLU, FlatSoftmax
from .layers import Erf, HardSigmoid

_SIMPLE = {
    "Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "HardSwish": nn.Hardswish,
    "Softplus": nn.Softplus, "Erf": Erf,
}


@converter(*_SIMPLE)
def simple(ctx: NodeContext):
    return ctx.emit(_SIMPLE[ctx.op](), ctx.value(0))


@converter("LeakyRelu")
def leaky_relu(ctx: NodeContext):
    return ctx.emit(nn.LeakyReLU(float(ctx.attr("alpha", 0.01))), ctx.value(0))


@converter("Elu")
def elu(ctx: NodeContext):
    return ctx.emit(nn.ELU(float(ctx.attr("alpha", 1.0))), ctx.value(0))


@converter("HardSigmoid")
def hard_sigmoid(ctx: NodeContext):
    layer = HardSigmoid(float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5)))
    return ctx.emit(layer, ctx.value(0))


@converter("Softmax", "LogSoftmax")
def softmax(ctx: NodeContext):
    log = ctx.op == "LogSoftmax"
    rank = ctx.rank(0)
    if ctx.opset >= 13:
        axis = int(ctx.attr("axis", -1))
        layer = nn.LogSoftmax(dim=axis) if log else nn.Softmax(dim=axis)
    else:                                 # before opset 13: softmax of the input flattened at axis
        axis = int(ctx.attr("axis", 1))
        last = axis == -1 or (rank is not None and axis % max(rank, 1) == rank - 1)
        if last:
            layer = nn.LogSoftmax(dim=-1) if log else nn.Softmax(dim=-1)
        else:
            layer = FlatSoftmax(axis, log=log)
    return ctx.emit(layer, ctx.value(0))


@converter("PRelu", const=(1,))
def prelu(ctx: NodeContext):
    slope = ctx.const(1, "slope")
    dt = slope.dtype if slope.dtype.kind == "f" else np.dtype(np.float32)
    rank = ctx.rank(0)
    squeezed = slope.reshape(slope.shape[next((i for i, s in enumerate(slope.shape) if s != 1),
                                              slope.ndim):])          # leading 1s dropped
    channel = rank is not None and rank >= 2 and squeezed.shape == (squeezed.size,) + (1,) * (rank - 2)
    if ctx.opset < 7 and slope.ndim == 1:            # PRelu-6: a 1-D slope is per channel
        channel = True
    if slope.size == 1:
        layer = nn.PReLU(1, dtype=dt)
    elif channel:
        layer = nn.PReLU(slope.size, dtype=dt)
    else:
        layer = BroadcastPReLU(slope.shape, dtype=dt)
    layer.weight.data = np.array(slope, dtype=dt).reshape(layer.weight.data.shape)
    return ctx.emit(layer, ctx.value(0))
