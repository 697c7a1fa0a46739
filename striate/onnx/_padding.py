"""ONNX's padding attributes (pads, auto_pad) turned into layer padding plus a Pad layer.

torch-style layers pad both sides of an axis alike.  ONNX pads each side
separately, or computes 'SAME' padding from the input size.  The helpers
below give the layer the symmetric part it can express and put the rest in
a :class:`~striate.onnx.pad_layers.Pad` (or run-time
:class:`~striate.onnx.pad_layers.SamePad`) node in front of it.
"""

from __future__ import annotations

from ._context import NodeContext, Value
from .pad_layers import Pad, SamePad, same_pads

Pairs = list[tuple[int, int]]


def geometry(ctx: NodeContext, nd: int, kernel: list[int]) -> tuple[list[int], list[int]]:
    """(strides, dilations) of a Conv/pool node, checked positive."""
    strides = ctx.ints("strides", [1] * nd)
    dilations = ctx.ints("dilations", [1] * nd)
    for name, v in (("strides", strides), ("dilations", dilations), ("kernel_shape", kernel)):
        if len(v) != nd or any(s < 1 for s in v):
            raise ctx.error(f"expected {nd} positive integers; received {v}", name)
    return strides, dilations


def pad_pairs(ctx: NodeContext, nd: int, kernel: list[int], strides: list[int],
              dilations: list[int]) -> Pairs | str:
    """(before, after) per spatial axis from auto_pad/pads; 'SAME_UPPER'/'SAME_LOWER'
    when the padding depends on the input size (a stride above 1)."""
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if any(s != 1 for s in strides):
            return auto
        # stride 1: the total is dilation*(kernel-1) whatever the input size
        return list(same_pads((1,) * nd, tuple(kernel), (1,) * nd, tuple(dilations),
                              auto == "SAME_LOWER"))
    if auto == "VALID":
        return [(0, 0)] * nd
    if auto != "NOTSET":
        raise ctx.error(f"expected NOTSET, SAME_UPPER, SAME_LOWER or VALID; received {auto!r}",
                        "auto_pad")
    pads = ctx.ints("pads", [0] * (2 * nd))
    if len(pads) != 2 * nd or any(p < 0 for p in pads):
        raise ctx.error(f"expected {2 * nd} non-negative integers; received {pads}", "pads")
    return list(zip(pads[:nd], pads[nd:]))


def split_padding(ctx: NodeContext, x: Value, pairs: Pairs | str, *, kernel: list[int],
                  strides: list[int], dilations: list[int], fill: float,
                  limit: list[int] | None, ceil_mode: bool = False) -> tuple[Value, tuple[int, ...]]:
    """Emit the padding a layer cannot do itself; return (its input, the layer's padding).

    Args:
        pairs: from :func:`pad_pairs`.
        fill: the padding value (0, or -inf for max pooling).
        limit: the most padding the layer takes per axis (pools: kernel // 2), None for
            no limit (convolutions keep min(before, after) and pad the rest outside).
        ceil_mode: the layer rounds its output size up; its rule for a last window that
            starts in the padding is ONNX's only with symmetric layer padding.
    """
    nd = len(kernel)
    if isinstance(pairs, str):
        if ceil_mode:
            raise ctx.error(f"ceil_mode with auto_pad {pairs} is not supported", "ceil_mode")
        x = ctx.emit(SamePad(kernel, strides, dilations, lower=pairs == "SAME_LOWER", value=fill),
                     x, suffix="pad")
        return x, (0,) * nd
    symmetric = all(b == a for b, a in pairs)
    if symmetric and (limit is None or all(b <= m for (b, _), m in zip(pairs, limit))):
        return x, tuple(b for b, _ in pairs)
    if ceil_mode:
        raise ctx.error(f"ceil_mode with padding {pairs} that the layer cannot apply itself "
                        "(asymmetric or over kernel_size // 2) is not supported", "pads")
    inner = [min(b, a) if limit is None else 0 for b, a in pairs]
    outer = [[2 + i, b - p, a - p] for i, ((b, a), p) in enumerate(zip(pairs, inner))]
    x = ctx.emit(Pad(outer, "constant", fill), x, suffix="pad")
    return x, tuple(inner)

