"""ONNX export rules of striate's leaf layers: convolutions, Linear, norms, activations, merges.

A rule ``rule(b, m, xs, vals, y, hint) -> name`` writes the nodes computing
layer ``m`` into the :class:`GraphBuilder` ``b``: ``xs`` are the ONNX names of
its inputs, ``vals`` the input arrays and ``y`` the output array of the
traced forward pass (their shapes fix what ONNX needs statically), ``hint``
the layer's path, used to name nodes and values.  It returns the name of the
output, or raises :class:`Unsupported` with the reason.  Only operators that
:func:`striate.onnx.load` imports are written (the issue's list plus Erf and
Softplus).  The pooling rules live in :mod:`striate.onnx._export_pool`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..nn import activation as A
from ..nn import conv, conv_transpose, dropout, linear, merge, normalization
from ..nn.parameter import Parameter
from ._export_graph import GraphBuilder, Unsupported

Rule = Callable[..., str]


def _weight(b: GraphBuilder, m: Any, attr: str, hint: str, shape: Any = None) -> str:
    """The initializer of parameter/buffer ``m.<attr>``, named by its state-dict key."""
    p = getattr(m, attr)
    data = p.data if isinstance(p, Parameter) else p
    shape = None if shape is None else tuple(shape)
    return b.param(b.key(hint, attr), data if shape is None else data.reshape(shape), p, shape)


def _pads(pairs: Any) -> list[int]:
    """((b0, e0), (b1, e1)) -> ONNX pads [b0, b1, e0, e1]."""
    return [int(p[0]) for p in pairs] + [int(p[1]) for p in pairs]


# ---------------------------------------------------------------------------- conv / linear


def conv_rule(b, m, xs, vals, y, hint):
    """Conv1d/Conv2d -> Conv, 'same' padding written out as explicit (maybe uneven) pads."""
    inputs = [xs[0], _weight(b, m, "weight", hint)]
    if m.bias is not None:
        inputs.append(_weight(b, m, "bias", hint))
    return b.node("Conv", inputs, hint, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=_pads(m._pads), dilations=list(m.dilation), group=m.groups)


def conv_transpose_rule(b, m, xs, vals, y, hint):
    """ConvTranspose1d/2d -> ConvTranspose with torch's pads and output_padding."""
    inputs = [xs[0], _weight(b, m, "weight", hint)]
    if m.bias is not None:
        inputs.append(_weight(b, m, "bias", hint))
    pads = list(m.padding) * 2
    # output_padding is what the traced call used (an output_size argument cannot be
    # passed inside a model, so it is the layer's own)
    return b.node("ConvTranspose", inputs, hint, kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), pads=pads, dilations=list(m.dilation), group=m.groups,
                  output_padding=list(m.output_padding))


def linear_rule(b, m, xs, vals, y, hint):
    """Linear -> Gemm(transB=1) on (N, in); MatMul + Add over the last axis of an N-D input."""
    w = _weight(b, m, "weight", hint)
    if vals[0].ndim == 2:
        inputs = [xs[0], w]
        if m.bias is not None:
            inputs.append(_weight(b, m, "bias", hint))
        elif b.opset < 11:                                    # C became optional in opset 11
            inputs.append(b.const(np.zeros(m.out_features), f"{hint}/zero_bias"))
        return b.node("Gemm", inputs, hint, transB=1)
    wt = b.node("Transpose", [w], f"{hint}/weight_t", perm=[1, 0])       # (in, out)
    out = b.node("MatMul", [xs[0], wt], hint)
    if m.bias is not None:
        out = b.node("Add", [out, _weight(b, m, "bias", hint)], f"{hint}/bias")
    return out


def flatten_rule(b, m, xs, vals, y, hint):
    """Flatten -> Flatten(axis=1) for the default axes, else Reshape to the traced shape."""
    nd = vals[0].ndim
    s, e = m.start_dim % nd, m.end_dim % nd
    if s == 1 and e == nd - 1:
        return b.node("Flatten", [xs[0]], hint, axis=1)
    shape = list(y.shape)
    shape[0] = -1 if s == 0 else 0          # keep the (dynamic) batch, or merge it in
    return b.reshape(xs[0], shape, hint)


def identity_rule(b, m, xs, vals, y, hint):
    """Identity and evaluation-mode Dropout: no node, the input value is the output."""
    return xs[0]


# ---------------------------------------------------------------------------- norms


def batch_norm_rule(b, m, xs, vals, y, hint):
    """BatchNorm1d/2d in evaluation mode -> BatchNormalization with the running statistics."""
    if m.running_mean is None:
        raise Unsupported("track_running_stats=False uses batch statistics in evaluation "
                          "mode; BatchNormalization needs running statistics")
    c = m.num_features
    scale = _weight(b, m, "weight", hint) if m.weight is not None else b.const(np.ones(c), f"{hint}/scale")
    bias = _weight(b, m, "bias", hint) if m.bias is not None else b.const(np.zeros(c), f"{hint}/shift")
    mean = _weight(b, m, "running_mean", hint)
    var = _weight(b, m, "running_var", hint)
    return b.node("BatchNormalization", [xs[0], scale, bias, mean, var], hint, epsilon=m.eps)


def lrn_rule(b, m, xs, vals, y, hint):
    """LocalResponseNorm with an odd size -> LRN (4-D only in onnxruntime: other ranks
    are reshaped to (N, C, -1, 1) and back).

    An even size is refused: torch's window is [c - size//2, c + (size-1)//2] and
    ONNX's [c - (size-1)//2, c + size//2], and onnxruntime runs odd sizes only.
    """
    if m.size % 2 == 0:
        raise Unsupported(f"even size {m.size} (ONNX centres an even window one channel "
                          "off torch's, and onnxruntime's LRN takes odd sizes only)")
    x, shape = xs[0], vals[0].shape
    if len(shape) != 4:
        x = b.reshape(x, [0, shape[1], -1, 1], f"{hint}/to_4d")          # (N, C, prod(*), 1)
    x = b.node("LRN", [x], hint if len(shape) == 4 else f"{hint}/lrn", size=m.size,
               alpha=m.alpha, beta=m.beta, bias=m.k)
    if len(shape) != 4:
        x = b.reshape(x, [0, *shape[1:]], hint)
    return x


# ---------------------------------------------------------------------------- activations


def _simple(op: str) -> Rule:
    def rule(b, m, xs, vals, y, hint):
        return b.node(op, [xs[0]], hint)
    rule.__doc__ = f"-> {op}"
    return rule


def leaky_relu_rule(b, m, xs, vals, y, hint):
    return b.node("LeakyRelu", [xs[0]], hint, alpha=m.negative_slope)


def elu_rule(b, m, xs, vals, y, hint):
    return b.node("Elu", [xs[0]], hint, alpha=m.alpha)


def relu6_rule(b, m, xs, vals, y, hint):
    """ReLU6 -> Clip(0, 6)."""
    return b.clip(xs[0], 0.0, 6.0, hint)


def hardswish_rule(b, m, xs, vals, y, hint):
    """Hardswish -> HardSwish (opset 14+), else x * Clip(x + 3, 0, 6) / 6."""
    if b.opset >= 14:
        return b.node("HardSwish", [xs[0]], hint)
    t = b.clip(b.binary("Add", xs[0], 3.0, f"{hint}/plus3"), 0.0, 6.0, f"{hint}/relu6")
    return b.binary("Div", b.node("Mul", [xs[0], t], f"{hint}/times_x"), 6.0, hint)


def gelu_rule(b, m, xs, vals, y, hint):
    """GELU -> 0.5 * x * (1 + Erf(x / sqrt 2)), or torch's tanh formula for approximate='tanh'."""
    x = xs[0]
    if m.approximate == "tanh":
        cube = b.node("Mul", [x, b.node("Mul", [x, x], f"{hint}/x2")], f"{hint}/x3")
        inner = b.node("Add", [x, b.binary("Mul", cube, 0.044715, f"{hint}/c_x3")], f"{hint}/inner")
        t = b.node("Tanh", [b.binary("Mul", inner, math.sqrt(2.0 / math.pi), f"{hint}/k")],
                   f"{hint}/tanh")
    else:
        t = b.node("Erf", [b.binary("Mul", x, 1.0 / math.sqrt(2.0), f"{hint}/scaled")],
                   f"{hint}/erf")
    one_plus = b.binary("Add", t, 1.0, f"{hint}/one_plus")
    return b.binary("Mul", b.node("Mul", [x, one_plus], f"{hint}/times_x"), 0.5, hint)


def softplus_rule(b, m, xs, vals, y, hint):
    """Softplus -> Softplus(beta * x) / beta.

    ONNX's Softplus has no threshold; torch returns x where beta * x > threshold,
    which differs from log(1 + exp(beta x)) / beta by less than
    exp(-threshold) / |beta|: refused when that exceeds 1e-6.
    """
    err = math.exp(-m.threshold) / abs(m.beta) if m.threshold < 700 else 0.0
    if err > 1e-6:
        raise Unsupported(f"threshold={m.threshold} makes torch's Softplus differ from ONNX's "
                          f"by up to {err:.2g} (ONNX has no threshold; needs exp(-threshold)/|beta| "
                          "<= 1e-6)")
    x = xs[0] if m.beta == 1 else b.binary("Mul", xs[0], m.beta, f"{hint}/beta_x")
    out = b.node("Softplus", [x], hint)
    return out if m.beta == 1 else b.binary("Div", out, m.beta, f"{hint}/over_beta")


def softmax_rule(b, m, xs, vals, y, hint):
    """Softmax/LogSoftmax along the layer's axis (resolved for the traced rank)."""
    op = "LogSoftmax" if isinstance(m, A.LogSoftmax) else "Softmax"
    return b.softmax(op, xs[0], m._axis(vals[0]), vals[0].ndim, hint)


def prelu_rule(b, m, xs, vals, y, hint):
    """PReLU -> PRelu, the slope shaped (C, 1, ...) to broadcast over axis 1."""
    nd = vals[0].ndim
    shape = (m.num_parameters,) + (1,) * max(nd - 2, 0) if m.num_parameters > 1 else (1,)
    return b.node("PRelu", [xs[0], _weight(b, m, "weight", hint, shape)], hint)


# ---------------------------------------------------------------------------- merges


def concat_rule(b, m, xs, vals, y, hint):
    return b.node("Concat", xs, hint, axis=m.dim % vals[0].ndim)


def add_rule(b, m, xs, vals, y, hint):
    """Add -> Add of two inputs, Sum of more, no node for one."""
    if len(xs) == 1:
        return xs[0]
    return b.node("Add" if len(xs) == 2 else "Sum", xs, hint)


def mul_rule(b, m, xs, vals, y, hint):
    """Mul -> a chain of Mul nodes."""
    out = xs[0]
    for i, x in enumerate(xs[1:]):
        out = b.node("Mul", [out, x], hint if i == len(xs) - 2 else f"{hint}/partial")
    return out


def rules() -> dict[type, Rule]:
    """Layer class -> export rule (pooling rules are added by the exporter)."""
    return {
        conv.Conv1d: conv_rule, conv.Conv2d: conv_rule,
        conv_transpose.ConvTranspose1d: conv_transpose_rule,
        conv_transpose.ConvTranspose2d: conv_transpose_rule,
        linear.Linear: linear_rule, linear.Flatten: flatten_rule, linear.Identity: identity_rule,
        dropout.Dropout: identity_rule, dropout.Dropout2d: identity_rule,
        normalization.BatchNorm1d: batch_norm_rule, normalization.BatchNorm2d: batch_norm_rule,
        normalization.LocalResponseNorm: lrn_rule,
        A.ReLU: _simple("Relu"), A.Sigmoid: _simple("Sigmoid"), A.Tanh: _simple("Tanh"),
        A.LeakyReLU: leaky_relu_rule, A.ELU: elu_rule, A.ReLU6: relu6_rule,
        A.Hardswish: hardswish_rule, A.GELU: gelu_rule, A.Softplus: softplus_rule,
        A.Softmax: softmax_rule, A.LogSoftmax: softmax_rule, A.PReLU: prelu_rule,
        merge.Concat: concat_rule, merge.Add: add_rule, merge.Mul: mul_rule,
    }
