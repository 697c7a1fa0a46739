"""Converters of the ONNX pooling operators to striate's pooling layers."""

from __future__ import annotations

from .. import nn
from ._context import NodeContext, converter
from ._padding import geometry, pad_pairs, split_padding
from .axis_layers import GlobalPool
from .layers import Abs
from .pad_layers import AvgPoolExcludePad

_NEG_INF = float("-inf")


def _window(ctx: NodeContext) -> tuple[int, list[int], list[int], list[int]]:
    """(spatial dims, kernel, strides, dilations) of a 1-D or 2-D pooling node."""
    kernel = ctx.ints("kernel_shape")
    nd = len(kernel)
    if nd not in (1, 2):
        raise ctx.error(f"{nd}-D pooling is not supported (striate pools 1-D and 2-D inputs)",
                        "kernel_shape")
    strides, dilations = geometry(ctx, nd, kernel)
    return nd, kernel, strides, dilations


def _ceil(ctx: NodeContext) -> bool:
    mode = int(ctx.attr("ceil_mode", 0))
    if mode not in (0, 1):
        raise ctx.error(f"expected 0 or 1; received {mode}", "ceil_mode")
    return bool(mode)


@converter("MaxPool")
def max_pool(ctx: NodeContext):
    ctx.only_first_output("Indices")
    nd, kernel, strides, dilations = _window(ctx)
    ceil = _ceil(ctx)
    pairs = pad_pairs(ctx, nd, kernel, strides, dilations)
    x, pad = split_padding(ctx, ctx.value(0), pairs, kernel=kernel, strides=strides,
                           dilations=dilations, fill=_NEG_INF,
                           limit=[k // 2 for k in kernel], ceil_mode=ceil)
    cls = nn.MaxPool2d if nd == 2 else nn.MaxPool1d
    layer = cls(tuple(kernel), stride=tuple(strides), padding=pad, dilation=tuple(dilations),
                ceil_mode=ceil)
    return ctx.emit(layer, x)


@converter("AveragePool")
def average_pool(ctx: NodeContext):
    nd, kernel, strides, dilations = _window(ctx)
    if any(d != 1 for d in dilations):
        raise ctx.error(f"dilated average pooling is not supported (as in torch's AvgPool); "
                        f"received {dilations}", "dilations")
    ceil = _ceil(ctx)
    include = bool(int(ctx.attr("count_include_pad", 0)))
    pairs = pad_pairs(ctx, nd, kernel, strides, dilations)
    limit = [k // 2 for k in kernel]
    symmetric = not isinstance(pairs, str) and all(
        b == a and b <= m for (b, a), m in zip(pairs, limit))
    x = ctx.value(0)
    if not include and not symmetric:
        if ceil:
            raise ctx.error("ceil_mode with asymmetric padding and count_include_pad=0 is not "
                            "supported", "ceil_mode")
        if isinstance(pairs, str):
            layer = AvgPoolExcludePad(kernel, strides, same=pairs[5:].lower())
        else:
            layer = AvgPoolExcludePad(kernel, strides, pads=pairs)
        return ctx.emit(layer, x)
    x, pad = split_padding(ctx, x, pairs, kernel=kernel, strides=strides, dilations=dilations,
                           fill=0.0, limit=limit, ceil_mode=ceil)
    cls = nn.AvgPool2d if nd == 2 else nn.AvgPool1d
    layer = cls(tuple(kernel), stride=tuple(strides), padding=pad, ceil_mode=ceil,
                count_include_pad=include)
    return ctx.emit(layer, x)


@converter("LpPool")
def lp_pool(ctx: NodeContext):
    nd, kernel, strides, dilations = _window(ctx)
    if any(d != 1 for d in dilations):
        raise ctx.error(f"dilated LpPool is not supported (torch's LPPool has no dilation); "
                        f"received {dilations}", "dilations")
    ceil = _ceil(ctx)
    p = ctx.attr("p", 2)
    if p <= 0:
        raise ctx.error(f"expected a positive p; received {p}", "p")
    x = ctx.value(0)
    if p % 2 != 0:                       # ONNX sums |x|^p, torch x^p: equal for even p only
        x = ctx.emit(Abs(), x, suffix="abs")
    pairs = pad_pairs(ctx, nd, kernel, strides, dilations)
    x, _ = split_padding(ctx, x, pairs, kernel=kernel, strides=strides, dilations=dilations,
                         fill=0.0, limit=[0] * nd, ceil_mode=ceil)
    cls = nn.LPPool2d if nd == 2 else nn.LPPool1d
    return ctx.emit(cls(float(p), tuple(kernel), stride=tuple(strides), ceil_mode=ceil), x)


@converter("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx: NodeContext):
    kind = "avg" if ctx.op == "GlobalAveragePool" else "max"
    if ctx.rank(0) == 4:
        layer = nn.GlobalAvgPool2d() if kind == "avg" else nn.GlobalMaxPool2d()
    else:
        layer = GlobalPool(kind)
    return ctx.emit(layer, ctx.value(0))


@converter("MaxRoiPool")
def max_roi_pool(ctx: NodeContext):
    shape = ctx.ints("pooled_shape")
    if len(shape) != 2 or min(shape) < 1:
        raise ctx.error(f"expected two positive integers; received {shape}", "pooled_shape")
    scale = float(ctx.attr("spatial_scale", 1.0))
    if scale <= 0:
        raise ctx.error(f"expected a positive number; received {scale}", "spatial_scale")
    return ctx.emit(nn.RoIPool(tuple(shape), scale), ctx.value(0), ctx.value(1))

