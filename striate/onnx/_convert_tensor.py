"""Converters of the ONNX tensor operators: arithmetic, shapes, indexing, constants, Clip, Pad."""

from __future__ import annotations

import numpy as np

from .. import nn
from ._context import Const, Dyn, NodeContext, converter
from .layers import Clip, Elementwise
from .pad_layers import PAD_MODES, Pad
from .const_layers import ConstantOfShape, Shape
from .shape_layers import FlattenTo2d, Gather, Reshape, Squeeze, TensorConcat, Transpose, Unsqueeze

_ARITH = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


@converter(*_ARITH)
def arithmetic(ctx: NodeContext):
    axis = None
    if ctx.opset < 7 and int(ctx.attr("broadcast", 0)) and "axis" in ctx.attrs:
        axis = int(ctx.attr("axis"))                  # legacy broadcast of B from ``axis`` of A
    return ctx.emit(Elementwise(_ARITH[ctx.op], axis=axis), ctx.value(0), ctx.value(1))


@converter("Sum")
def sum_(ctx: NodeContext):
    values = ctx.values()
    if len(values) == 1:
        return values[0]
    return ctx.emit(Elementwise("add"), *values)


@converter("Identity")
def identity(ctx: NodeContext):
    return ctx.value(0)


@converter("Concat")
def concat(ctx: NodeContext):
    axis = int(ctx.attr("axis", 1 if ctx.opset < 4 else None))
    values = ctx.values()
    floating = all(isinstance(v, Dyn) and ctx.is_float(i) for i, v in enumerate(values))
    layer = nn.Concat(dim=axis) if floating else TensorConcat(axis)
    return ctx.emit(layer, *values)


@converter("Flatten")
def flatten(ctx: NodeContext):
    axis = int(ctx.attr("axis", 1))
    rank = ctx.rank(0)
    layer = nn.Flatten() if axis == 1 and rank is not None and rank >= 2 else FlattenTo2d(axis)
    return ctx.emit(layer, ctx.value(0))


@converter("Reshape", const=())
def reshape(ctx: NodeContext):
    allowzero = bool(int(ctx.attr("allowzero", 0)))
    if ctx.opset < 5:
        return ctx.emit(Reshape(ctx.ints("shape"), allowzero), ctx.value(0))
    shape = ctx.value(1)
    if isinstance(shape, Const):
        return ctx.emit(Reshape(shape.value, allowzero), ctx.value(0))
    return ctx.emit(Reshape(None, allowzero), ctx.value(0), shape)


@converter("Transpose")
def transpose(ctx: NodeContext):
    return ctx.emit(Transpose(ctx.ints("perm", None)), ctx.value(0))


def _axes(ctx: NodeContext, required: bool) -> list[int] | None:
    """The axes of Squeeze/Unsqueeze: an attribute before opset 13, a constant input after."""
    if ctx.opset < 13:
        return ctx.ints("axes") if required else ctx.ints("axes", None)
    if not ctx.has(1):
        if required:
            raise ctx.error("input 1 (axes) is required but missing")
        return None
    return [int(a) for a in np.asarray(ctx.const(1, "axes")).reshape(-1)]


@converter("Squeeze", const=(1,))
def squeeze(ctx: NodeContext):
    return ctx.emit(Squeeze(_axes(ctx, required=False)), ctx.value(0))


@converter("Unsqueeze", const=(1,))
def unsqueeze(ctx: NodeContext):
    return ctx.emit(Unsqueeze(_axes(ctx, required=True)), ctx.value(0))


@converter("Shape")
def shape(ctx: NodeContext):
    # Run-time, even where the file declares every size: the batch size stays free.
    return ctx.emit(Shape(int(ctx.attr("start", 0)), ctx.attr("end", None)), ctx.value(0))


@converter("Gather")
def gather(ctx: NodeContext):
    return ctx.emit(Gather(int(ctx.attr("axis", 0))), ctx.value(0), ctx.value(1))


@converter("Constant")
def constant(ctx: NodeContext):
    a = ctx.attrs
    if "value" in a:
        return Const(np.asarray(a["value"]))
    if "value_float" in a:
        return Const(np.asarray(a["value_float"], dtype=np.float32))
    if "value_floats" in a:
        return Const(np.asarray(a["value_floats"], dtype=np.float32))
    if "value_int" in a:
        return Const(np.asarray(a["value_int"], dtype=np.int64))
    if "value_ints" in a:
        return Const(np.asarray(a["value_ints"], dtype=np.int64))
    given = ", ".join(sorted(a)) or "none"
    raise ctx.error(f"only tensor, float(s) and int(s) constants are supported; received {given}",
                    "value")


@converter("ConstantOfShape")
def constant_of_shape(ctx: NodeContext):
    value = np.asarray(ctx.attr("value", np.zeros(1, dtype=np.float32)))
    if value.size != 1:
        raise ctx.error(f"expected a one-element tensor; received shape {value.shape}", "value")
    layer = ConstantOfShape(value.reshape(()).item(), value.dtype.name)
    shape = ctx.value(0)
    if isinstance(shape, Const):
        ctx.check_size(shape.value, "the constant")
    return ctx.emit(layer, shape)


def _bound(value) -> float | int | None:
    if value is None:
        return None
    v = np.asarray(value).reshape(()).item()
    return None if isinstance(v, float) and np.isinf(v) else v


@converter("Clip", const=(1, 2))
def clip(ctx: NodeContext):
    if ctx.opset < 11:
        lo, hi = _bound(ctx.attr("min", None)), _bound(ctx.attr("max", None))
    else:
        lo, hi = _bound(ctx.const_or(1, "min", None)), _bound(ctx.const_or(2, "max", None))
    if lo == 0 and hi == 6 and ctx.is_float(0):
        return ctx.emit(nn.ReLU6(), ctx.value(0))
    return ctx.emit(Clip(lo, hi), ctx.value(0))


@converter("Pad", const=(1, 2, 3))
def pad(ctx: NodeContext):
    mode = ctx.attr("mode", "constant")
    if mode not in PAD_MODES:
        raise ctx.error(f"expected one of {PAD_MODES}; received {mode!r}", "mode")
    if ctx.opset < 11:
        pads = ctx.ints("pads" if "pads" in ctx.attrs else "paddings")
        value = float(ctx.attr("value", 0.0))
        axes = None
    else:
        pads = [int(p) for p in np.asarray(ctx.const(1, "pads")).reshape(-1)]
        value = ctx.const_or(2, "constant_value", None)
        value = 0 if value is None or np.asarray(value).size == 0 else np.asarray(value).reshape(()).item()
        axes = ctx.const_or(3, "axes", None)
        axes = None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    k = len(pads) // 2
    axes = list(range(k)) if axes is None else axes
    if len(pads) % 2 or len(axes) != k:
        raise ctx.error(f"expected 2 values per padded axis ({len(axes)} axes); received {pads}",
                        "pads")
    triples = [[a, pads[i], pads[k + i]] for i, a in enumerate(axes)]
    x = ctx.value(0)
    if isinstance(x, Const):
        shape = list(x.value.shape)
        for a, before, after in triples:
            if -len(shape) <= a < len(shape):
                shape[a] += before + after
        ctx.check_size(shape, "the padded constant")
    return ctx.emit(Pad(triples, mode, value), x)
