"""ONNX export rules of the pooling-like layers: max/avg/LP pools, adaptive and global
pools, BlurPool2d, LocallyConnected2d and RoIPool.

Same rule signature as :mod:`striate.onnx._export_ops`.  The spatial sizes are
static in an export (only the batch axis is dynamic), so window counts and
divisors are computed here from the traced shapes: where ONNX's operator
divides differently from torch (a divisor_override, the partial windows of
ceil_mode before opset 10, LPPool's ceil_mode) the exporter writes the ONNX
pool with explicit end pads and multiplies by a constant correction map.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..nn import adaptive_pooling as AP
from ..nn import blur, local, pooling, roi
from ._export_graph import GraphBuilder, Unsupported
from ._export_ops import _weight


def _ceil_end_pads(sizes: Sequence[int], out: Sequence[int], m: Any, pads: Sequence[int],
                   dilation: Sequence[int]) -> list[int]:
    """End pads giving floor-mode pooling the ceil-mode output sizes ``out``."""
    return [max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)
            for n, o, k, s, p, d in zip(sizes, out, m.kernel_size, m.stride, pads, dilation)]


def _axis_counts(n: int, out: int, k: int, s: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output position of one axis: torch's avg-pool window length (real padding
    included, ceil overhang not) and the number of real input elements."""
    start = np.arange(out) * s - p
    torch_len = np.minimum(start + k, n + p) - start
    real = np.minimum(start + k, n) - np.maximum(start, 0)
    return torch_len.astype(np.float64), real.astype(np.float64)


def _outer(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The outer product of per-axis vectors: (OH,) x (OW,) -> (OH, OW)."""
    out = parts[0]
    for v in parts[1:]:
        out = np.multiply.outer(out, v)
    return out


def _scale(b: GraphBuilder, x: str, ratio: np.ndarray, hint: str) -> str:
    """x * ratio (a (1, 1, *spatial) constant), or x itself if the ratio is all ones."""
    if np.all(ratio == 1):
        return x
    return b.binary("Mul", x, ratio.reshape((1, 1) + ratio.shape), f"{hint}/divisor")


# ---------------------------------------------------------------------------- sliding pools


def max_pool_rule(b, m, xs, vals, y, hint):
    """MaxPool1d/2d -> MaxPool (ceil_mode from opset 10, explicit end pads before)."""
    if m.return_indices:
        raise Unsupported("return_indices=True (ONNX's MaxPool indices count over the "
                          "whole tensor, torch's over each plane)")
    dilated = any(d != 1 for d in m.dilation)
    if dilated and b.opset < 10:
        raise Unsupported(f"dilation {m.dilation} needs opset 10 or later; received opset {b.opset}")
    ends = list(m.padding)
    ceil = None
    if m.ceil_mode and b.opset >= 10:
        ceil = 1
    elif m.ceil_mode:
        ends = _ceil_end_pads(vals[0].shape[2:], y.shape[2:], m, m.padding, m.dilation)
        if any(e >= k for e, k in zip(ends, m.kernel_size)):
            raise Unsupported("ceil_mode with this kernel needs opset 10 or later")
    return b.node("MaxPool", [xs[0]], hint, kernel_shape=list(m.kernel_size),
                  strides=list(m.stride), pads=list(m.padding) + ends, ceil_mode=ceil,
                  dilations=list(m.dilation) if dilated else None)


def avg_pool_rule(b, m, xs, vals, y, hint):
    """AvgPool1d/2d -> AveragePool; torch's divisor restored by a constant map where ONNX's differs."""
    sizes, out = vals[0].shape[2:], y.shape[2:]
    explicit = m.divisor_override is not None or (m.ceil_mode and b.opset < 10)
    if not explicit:
        return b.node("AveragePool", [xs[0]], hint, kernel_shape=list(m.kernel_size),
                      strides=list(m.stride), pads=list(m.padding) * 2,
                      count_include_pad=int(m.count_include_pad),
                      ceil_mode=1 if m.ceil_mode else None)
    ends = _ceil_end_pads(sizes, out, m, m.padding, (1,) * len(sizes))
    counts = [_axis_counts(n, o, k, s, p)
              for n, o, k, s, p in zip(sizes, out, m.kernel_size, m.stride, m.padding)]
    real = _outer([c[1] for c in counts])
    if m.divisor_override is not None:
        divisor = np.full(real.shape, float(m.divisor_override))
    else:
        divisor = _outer([c[0] for c in counts]) if m.count_include_pad else real
    avg = b.node("AveragePool", [xs[0]], f"{hint}/real_mean", kernel_shape=list(m.kernel_size),
                 strides=list(m.stride), pads=list(m.padding) + ends, count_include_pad=0)
    return _scale(b, avg, real / divisor, hint)


def lp_pool_rule(b, m, xs, vals, y, hint):
    """LPPool1d/2d with an even integer p -> LpPool (ceil_mode as end pads and a correction).

    torch computes (sum x^p)^(1/p) and ONNX (sum |x|^p)^(1/p): equal for even p only.
    """
    p = float(m.norm_type)
    if not (np.isfinite(p) and p > 0 and p == int(p) and int(p) % 2 == 0):
        raise Unsupported(f"norm_type={m.norm_type} (ONNX's LpPool sums |x|^p: only even "
                          "integer p agree with torch's sum of x^p)")
    sizes, out = vals[0].shape[2:], y.shape[2:]
    nd = len(sizes)
    ends = [0] * nd
    ratio = np.ones(out)
    if m.ceil_mode:
        ends = _ceil_end_pads(sizes, out, m, (0,) * nd, (1,) * nd)
        counts = [_axis_counts(n, o, k, s, 0)
                  for n, o, k, s in zip(sizes, out, m.kernel_size, m.stride)]
        area = float(np.prod(m.kernel_size))
        ratio = (area / _outer([c[1] for c in counts])) ** (1.0 / p)   # torch scales partial windows
    pooled = b.node("LpPool", [xs[0]], f"{hint}/lp", kernel_shape=list(m.kernel_size),
                    strides=list(m.stride), pads=[0] * nd + ends, p=int(p))
    return _scale(b, pooled, ratio, hint)


# ---------------------------------------------------------------------------- adaptive / global


def _adaptive_matrix(n: int, out: int) -> np.ndarray:
    """(out, n): row o averages torch's window [floor(o*n/out), ceil((o+1)*n/out))."""
    a = np.zeros((out, n))
    for o in range(out):
        lo, hi = (o * n) // out, -(-((o + 1) * n) // out)
        a[o, lo:hi] = 1.0 / (hi - lo)
    return a


def adaptive_avg_rule(b, m, xs, vals, y, hint):
    """AdaptiveAvgPool1d/2d -> GlobalAveragePool (output 1), AveragePool (sizes divide),
    else one MatMul per axis by the (exact) averaging matrix."""
    sizes, out = vals[0].shape[2:], y.shape[2:]
    if all(o == 1 for o in out):
        return b.node("GlobalAveragePool", [xs[0]], hint)
    if all(n % o == 0 for n, o in zip(sizes, out)):
        k = [n // o for n, o in zip(sizes, out)]
        return b.node("AveragePool", [xs[0]], hint, kernel_shape=k, strides=k)
    x, nd = xs[0], vals[0].ndim
    if len(sizes) == 2 and sizes[0] != out[0]:                     # rows: (N, C, W, H) @ (H, OH)
        perm = list(range(nd - 2)) + [nd - 1, nd - 2]
        t = b.node("Transpose", [x], f"{hint}/rows_last", perm=perm)
        t = b.node("MatMul", [t, b.const(_adaptive_matrix(sizes[0], out[0]).T, f"{hint}/rows")],
                   f"{hint}/pool_rows")
        x = b.node("Transpose", [t], f"{hint}/rows_back", perm=perm)
    if sizes[-1] != out[-1]:                                       # columns: (..., W) @ (W, OW)
        x = b.node("MatMul", [x, b.const(_adaptive_matrix(sizes[-1], out[-1]).T, f"{hint}/cols")],
                   hint)
    return x


def adaptive_max_rule(b, m, xs, vals, y, hint):
    """AdaptiveMaxPool1d/2d -> GlobalMaxPool (output 1) or MaxPool when the sizes divide."""
    if m.return_indices:
        raise Unsupported("return_indices=True has no ONNX form")
    sizes, out = vals[0].shape[2:], y.shape[2:]
    if all(o == 1 for o in out):
        return b.node("GlobalMaxPool", [xs[0]], hint)
    if not all(n % o == 0 for n, o in zip(sizes, out)):
        raise Unsupported(f"input size {tuple(sizes)} is not a multiple of the output size "
                          f"{tuple(out)} (windows of unequal sizes have no ONNX MaxPool form)")
    k = [n // o for n, o in zip(sizes, out)]
    return b.node("MaxPool", [xs[0]], hint, kernel_shape=k, strides=k)


def global_avg_rule(b, m, xs, vals, y, hint):
    return b.node("GlobalAveragePool", [xs[0]], hint)


def global_max_rule(b, m, xs, vals, y, hint):
    return b.node("GlobalMaxPool", [xs[0]], hint)


# ---------------------------------------------------------------------------- others


def blur_pool_rule(b, m, xs, vals, y, hint):
    """BlurPool2d -> Pad (reflect/edge) + depthwise strided Conv with the fixed filter."""
    from ..functional.blur import blur_pads

    (pt, pb), (pl, pr) = blur_pads(m.filt_size)
    x, pads = xs[0], [pt, pl, pb, pr]
    if m.pad_type != "zero":
        mode = "reflect" if m.pad_type == "reflect" else "edge"
        x = b.pad(x, [0, 0, pt, pl, 0, 0, pb, pr], mode, f"{hint}/pad")
        pads = [0, 0, 0, 0]
    k = m.filt_size
    return b.node("Conv", [x, _weight(b, m, "filt", hint)], hint, kernel_shape=[k, k],
                  strides=[m.stride, m.stride], pads=pads, group=m.channels)


def locally_connected_rule(b, m, xs, vals, y, hint):
    """LocallyConnected2d -> patches by a one-hot depthwise Conv, then a batched MatMul.

    (N, C, H, W) -Conv-> (N, C*KH*KW, OH, OW) -Reshape/Transpose-> (OH*OW, N, C*KH*KW)
    -MatMul (OH*OW, C*KH*KW, O)-> (OH*OW, N, O) -Transpose/Reshape-> (N, O, OH, OW) + bias.
    """
    c, (kh, kw), (oh, ow), o = m.in_channels, m.kernel_size, m.output_size, m.out_channels
    kk, npos = kh * kw, oh * ow
    onehot = np.zeros((c * kk, 1, kh, kw))
    for i in range(kh):
        for j in range(kw):
            onehot[i * kw + j::kk, 0, i, j] = 1.0                  # channel c*KK + i*KW + j
    cols = b.node("Conv", [xs[0], b.const(onehot, f"{hint}/patches_w")], f"{hint}/patches",
                  kernel_shape=[kh, kw], strides=list(m.stride),
                  pads=[m._pads[0][0], m._pads[1][0], m._pads[0][1], m._pads[1][1]], group=c)
    cols = b.reshape(cols, [0, c * kk, npos], f"{hint}/cols")         # (N, C*KH*KW, OH*OW)
    cols = b.node("Transpose", [cols], f"{hint}/cols_t", perm=[2, 0, 1])  # (OH*OW, N, C*KH*KW)
    w = m.weight.data.reshape(npos, o, c * kk).transpose(0, 2, 1)   # (OH*OW, C*KH*KW, O)
    wname = b.param(b.key(hint, "weight"), w, m.weight, "patch_matmul")
    out = b.node("MatMul", [cols, wname], f"{hint}/matmul")           # (OH*OW, N, O)
    out = b.node("Transpose", [out], f"{hint}/out_t", perm=[1, 2, 0])  # (N, O, OH*OW)
    out = b.reshape(out, [0, o, oh, ow], f"{hint}/out" if m.bias is not None else hint)
    if m.bias is not None:
        out = b.node("Add", [out, _weight(b, m, "bias", hint)], hint)
    return out


def roi_pool_rule(b, m, xs, vals, y, hint):
    """RoIPool(features, boxes (K, 5)) -> MaxRoiPool (same rounding and bins as torchvision)."""
    if len(xs) != 2:
        raise Unsupported("needs the boxes as a (K, 5) tensor input")
    return b.node("MaxRoiPool", xs, hint, pooled_shape=list(m.output_size),
                  spatial_scale=m.spatial_scale)


def rules() -> dict[type, Any]:
    """Pooling-like layer class -> export rule."""
    return {
        pooling.MaxPool1d: max_pool_rule, pooling.MaxPool2d: max_pool_rule,
        pooling.AvgPool1d: avg_pool_rule, pooling.AvgPool2d: avg_pool_rule,
        pooling.LPPool1d: lp_pool_rule, pooling.LPPool2d: lp_pool_rule,
        AP.AdaptiveAvgPool1d: adaptive_avg_rule, AP.AdaptiveAvgPool2d: adaptive_avg_rule,
        AP.AdaptiveMaxPool1d: adaptive_max_rule, AP.AdaptiveMaxPool2d: adaptive_max_rule,
        AP.GlobalAvgPool2d: global_avg_rule, AP.GlobalMaxPool2d: global_max_rule,
        blur.BlurPool2d: blur_pool_rule, local.LocallyConnected2d: locally_connected_rule,
        roi.RoIPool: roi_pool_rule,
    }
