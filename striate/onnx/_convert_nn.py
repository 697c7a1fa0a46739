"""Converters of the ONNX operators that have weights: Conv, ConvTranspose, Gemm, MatMul, BatchNorm ...

Each becomes the striate layer with torch's layout (which is ONNX's), built
without random initialisation and given the file's weights as parameters.
"""

from __future__ import annotations

import numpy as np

from .. import init, nn
from ._context import Const, NodeContext, converter
from ._padding import geometry, pad_pairs, split_padding
from .axis_layers import BatchNormNd
from .layers import Elementwise, MatMul
from .pad_layers import Pad
from .shape_layers import Transpose


def param_dtype(a: np.ndarray) -> np.dtype:
    """The dtype of layers built from weights ``a``: theirs if floating, else float32."""
    return a.dtype if a.dtype.kind == "f" and a.dtype.itemsize >= 4 else np.dtype(np.float32)


def set_param(param: nn.Parameter, value: np.ndarray) -> None:
    """Give ``param`` the file's values (a copy in the parameter's dtype and shape)."""
    param.data = np.array(value, dtype=param.data.dtype).reshape(param.data.shape)


def _channel_bias(channels: int, nd: int):
    """accept() for fuse_next_add: a constant of shape (C, 1, ...) or (1, C, 1, ...)."""
    def accept(c: np.ndarray) -> np.ndarray | None:
        shape = c.shape[1:] if c.ndim == nd + 2 and c.shape[0] == 1 else c.shape
        return c.reshape(channels) if shape == (channels,) + (1,) * nd else None
    return accept


# ---------------------------------------------------------------------------- convolution


@converter("Conv", const=(1, 2))
def conv(ctx: NodeContext):
    w = ctx.const(1, "W, the weight")
    b = ctx.const_or(2, "B, the bias", None)
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise ctx.error(f"{nd}-D convolution is not supported (striate has Conv1d and Conv2d)",
                        "kernel_shape")
    kernel = ctx.ints("kernel_shape", list(w.shape[2:]))
    if tuple(kernel) != w.shape[2:]:
        raise ctx.error(f"{kernel} does not match the weight's shape {w.shape}", "kernel_shape")
    strides, dilations = geometry(ctx, nd, kernel)
    group = int(ctx.attr("group", 1))
    pairs = pad_pairs(ctx, nd, kernel, strides, dilations)
    x, pad = split_padding(ctx, ctx.value(0), pairs, kernel=kernel, strides=strides,
                           dilations=dilations, fill=0.0, limit=None)
    if b is None:
        b = ctx.fuse_next_add(_channel_bias(w.shape[0], nd))
    cls = nn.Conv2d if nd == 2 else nn.Conv1d
    with init.skip_init():
        layer = cls(w.shape[1] * group, w.shape[0], tuple(kernel), stride=tuple(strides),
                    padding=pad, dilation=tuple(dilations), groups=group, bias=b is not None,
                    dtype=param_dtype(w))
    set_param(layer.weight, w)
    if b is not None:
        set_param(layer.bias, b)
    return ctx.emit(layer, x)


def _transpose_pads(ctx: NodeContext, kernel: list[int], strides: list[int],
                    dilations: list[int], out_pad: list[int]) -> tuple[list, list[int]]:
    """(before, after) crop per axis and the output_padding of a ConvTranspose node."""
    nd = len(kernel)
    shape = ctx.info(0)[1]
    sizes = None if shape is None or len(shape) != nd + 2 else shape[2:]
    output_shape = ctx.ints("output_shape", None)
    auto = ctx.attr("auto_pad", "NOTSET")
    if output_shape is None and auto not in ("SAME_UPPER", "SAME_LOWER"):
        return pad_pairs(ctx, nd, kernel, strides, dilations), out_pad
    if sizes is None or any(s is None for s in sizes):
        raise ctx.error("needs the input's spatial size, which the file does not give",
                        "output_shape" if output_shape else "auto_pad")
    want = output_shape[-nd:] if output_shape else [s * st for s, st in zip(sizes, strides)]
    pairs, ops = [], list(out_pad)
    for i in range(nd):
        full = strides[i] * (sizes[i] - 1) + ops[i] + dilations[i] * (kernel[i] - 1) + 1
        total = full - want[i]
        if total < 0:                    # a larger output: extra output_padding rows
            ops[i] -= total
            total = 0
        small, large = total // 2, total - total // 2
        pairs.append((small, large) if auto == "SAME_UPPER" else (large, small))
    return pairs, ops


@converter("ConvTranspose", const=(1, 2))
def conv_transpose(ctx: NodeContext):
    w = ctx.const(1, "W, the weight")
    b = ctx.const_or(2, "B, the bias", None)
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise ctx.error(f"{nd}-D transposed convolution is not supported", "kernel_shape")
    kernel = ctx.ints("kernel_shape", list(w.shape[2:]))
    strides, dilations = geometry(ctx, nd, kernel)
    group = int(ctx.attr("group", 1))
    out_pad = ctx.ints("output_padding", [0] * nd)
    pairs, out_pad = _transpose_pads(ctx, kernel, strides, dilations, out_pad)
    inner = [min(p) for p in pairs]
    for op, s, d in zip(out_pad, strides, dilations):
        if op >= s and op >= d:
            raise ctx.error(f"output padding {out_pad} must be smaller than the stride or the "
                            "dilation", "output_padding")
    cls = nn.ConvTranspose2d if nd == 2 else nn.ConvTranspose1d
    with init.skip_init():
        layer = cls(w.shape[0], w.shape[1] * group, tuple(kernel), stride=tuple(strides),
                    padding=tuple(inner), output_padding=tuple(out_pad), groups=group,
                    bias=b is not None, dilation=tuple(dilations), dtype=param_dtype(w))
    set_param(layer.weight, w)
    if b is not None:
        set_param(layer.bias, b)
    y = ctx.emit(layer, ctx.value(0))
    crop = [[2 + i, p - bf, p - af] for i, ((bf, af), p) in enumerate(zip(pairs, inner))]
    if any(c[1] or c[2] for c in crop):
        y = ctx.emit(Pad(crop), y, suffix="crop")
    return y


# ---------------------------------------------------------------------------- normalisation


@converter("BatchNormalization", const=(1, 2, 3, 4))
def batch_norm(ctx: NodeContext):
    if int(ctx.attr("spatial", 1)) != 1:
        raise ctx.error("spatial=0 (per-activation statistics) is not supported", "spatial")
    if int(ctx.attr("training_mode", 0)) != 0:
        raise ctx.error("training_mode=1 is not supported: import the model and call "
                        "model.train() to use batch statistics", "training_mode")
    ctx.only_first_output("running statistics")
    names = ("scale", "B, the bias", "input_mean", "input_var")
    scale, bias, mean, var = (ctx.const(i, n) for i, n in zip(range(1, 5), names))
    channels = scale.size
    eps = float(ctx.attr("epsilon", 1e-5))
    momentum = 1.0 - float(ctx.attr("momentum", 0.9))     # ONNX keeps 0.9 of the old value
    if not 0.0 <= momentum <= 1.0:
        raise ctx.error(f"expected a momentum in [0, 1]; received {1 - momentum}", "momentum")
    rank = ctx.rank(0)
    cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}.get(rank, BatchNormNd)
    layer = cls(channels, eps=eps, momentum=momentum, dtype=param_dtype(scale))
    set_param(layer.weight, scale)
    set_param(layer.bias, bias)
    dt = layer.weight.data.dtype
    layer.set_buffer("running_mean", np.array(mean, dtype=dt).reshape(channels))
    layer.set_buffer("running_var", np.array(var, dtype=dt).reshape(channels))
    return ctx.emit(layer, ctx.value(0))


@converter("LRN")
def lrn(ctx: NodeContext):
    size = int(ctx.attr("size"))
    if size < 1 or size % 2 == 0:
        raise ctx.error(f"an even (or non-positive) window size is not supported: ONNX centres "
                        f"an even window differently from torch; received {size}", "size")
    layer = nn.LocalResponseNorm(size, alpha=float(ctx.attr("alpha", 1e-4)),
                                 beta=float(ctx.attr("beta", 0.75)), k=float(ctx.attr("bias", 1.0)))
    return ctx.emit(layer, ctx.value(0))


@converter("Dropout", const=(1, 2))
def dropout(ctx: NodeContext):
    ctx.only_first_output("mask")
    if ctx.opset >= 12:
        ratio = float(np.asarray(ctx.const_or(1, "ratio", 0.5)))
        if bool(np.asarray(ctx.const_or(2, "training_mode", False))):
            raise ctx.error("training_mode=True is not supported: import the model and call "
                            "model.train() to drop units")
    else:
        ratio = float(ctx.attr("ratio", 0.5))
    if not 0.0 <= ratio < 1.0:
        raise ctx.error(f"expected a ratio in [0, 1); received {ratio}", "ratio")
    return ctx.emit(nn.Dropout(p=ratio), ctx.value(0))


# ---------------------------------------------------------------------------- matrix products


def _linear(ctx: NodeContext, weight: np.ndarray, bias: np.ndarray | None, x, suffix: str = ""):
    """Emit Linear(x) with weight (out, in) and an optional (out,) bias."""
    with init.skip_init():
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                          dtype=param_dtype(weight))
    set_param(layer.weight, weight)
    if bias is not None:
        set_param(layer.bias, bias)
    return ctx.emit(layer, x, suffix=suffix)


@converter("MatMul", const=(1,))
def matmul(ctx: NodeContext):
    a, b = ctx.value(0), ctx.value(1)
    if isinstance(a, Const) or not isinstance(b, Const) or b.value.ndim != 2:
        return ctx.emit(MatMul(), a, b)
    out = b.value.shape[1]
    rank = ctx.rank(0)

    def accept(c: np.ndarray) -> np.ndarray | None:
        fits = c.size == out and c.shape[-1:] == (out,) and (c.ndim == 1 or (
            rank is not None and c.ndim <= rank))
        return c.reshape(out) if fits else None

    bias = ctx.fuse_next_add(accept)
    return _linear(ctx, b.value.T, bias, a)


@converter("Gemm", const=(1, 2))
def gemm(ctx: NodeContext):
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    a, b = ctx.value(0), ctx.value(1)
    c = ctx.value(2) if ctx.has(2) else None
    if int(ctx.attr("transA", 0)):
        a = ctx.emit(Transpose([1, 0]), a, suffix="transpose_a")
    trans_b = bool(int(ctx.attr("transB", 0)))
    if isinstance(b, Const) and not isinstance(a, Const):
        w = b.value if trans_b else b.value.T                         # (out, in)
        w = alpha * w if alpha != 1.0 else w
        bias = None
        if isinstance(c, Const):
            cb = beta * c.value
            if cb.size == w.shape[0] and cb.shape[-1:] == (w.shape[0],) and cb.ndim <= 2:
                bias, c = cb.reshape(-1), None
            elif cb.size == 1:
                bias, c = np.full(w.shape[0], cb.reshape(()), dtype=cb.dtype), None
            else:
                c = Const(cb)
        y = _linear(ctx, w, bias, a)
    else:
        if trans_b:
            b = ctx.emit(Transpose([1, 0]), b, suffix="transpose_b")
        y = ctx.emit(MatMul(), a, b, suffix="matmul")
        if alpha != 1.0:
            y = ctx.emit(Elementwise("mul"), y, Const(np.asarray(alpha, dtype=np.float32)),
                         suffix="alpha")
        if c is not None and beta != 1.0:
            c = ctx.emit(Elementwise("mul"), c, Const(np.asarray(beta, dtype=np.float32)),
                         suffix="beta")
    if c is not None:
        y = ctx.emit(Elementwise("add"), y, c, suffix="add_c")
    return y
