"""Per-layer rules of the summary: multiply-adds and receptive-field propagation.

MACs count the multiply-accumulates of a layer's weights with its input,
bias additions excluded, as fvcore and ptflops count convolutions and linear
layers:

* Conv1d/Conv2d: N * prod(output spatial) * C_out * (C_in/groups) * prod(kernel);
* ConvTranspose1d/2d: the same over the input positions,
  N * prod(input spatial) * C_in * (C_out/groups) * prod(kernel);
* LocallyConnected2d: N * OH * OW * C_out * C_in * KH * KW (a conv without sharing);
* Linear: in_features * out_features per row (every leading axis is a row).

Every other layer (normalisation, pooling, activation, dropout, merge, reshape,
and any layer striate does not know) counts 0: their elementwise work is
memory-bound and cheap next to the weight layers, and 0 keeps the total equal
to the hand count of the weight layers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..nn.adaptive_pooling import GlobalAvgPool2d, GlobalMaxPool2d, _AdaptivePoolNd
from ..nn.blur import BlurPool2d
from ..nn.conv import _ConvNd
from ..nn.conv_transpose import _ConvTransposeNd
from ..nn.linear import Flatten, Linear
from ..nn.local import LocallyConnected2d
from ..nn.module import Module
from ..nn.pooling import _PoolNd
from ..nn.roi import RoIPool
from ._fields import Fields, collapse, union

__all__ = ['layer_macs', 'layer_fields', 'first_array']


def first_array(value: Any) -> np.ndarray | None:
    """``value`` if it is an array, else the first array of a tuple/list (or None)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            if isinstance(v, np.ndarray):
                return v
    return None


def layer_macs(module: Module, inputs: Sequence[np.ndarray], output: Any) -> int:
    """Multiply-adds of one call of ``module`` (see the module docstring)."""
    y = first_array(output)
    if not inputs or y is None:
        return 0
    x = inputs[0]
    if isinstance(module, (_ConvNd, LocallyConnected2d)):
        # weight (C_out, C_in/groups, *k) or (OH, OW, C_out, C_in, KH, KW)
        per_output = int(np.prod(module.weight.data.shape[-(x.ndim - 1):]))
        return int(y.size) * per_output
    if isinstance(module, _ConvTransposeNd):
        per_input = int(module.weight.data[0].size)                  # (C_out/groups)*prod(k)
        return int(x.size) * per_input
    if isinstance(module, Linear):
        return int(x.size) * module.out_features
    return 0


def _spatial(x: np.ndarray, fields: Fields) -> bool:
    """Whether ``x`` is (N, C, *spatial) with one spatial axis per field axis."""
    return fields is not None and len(fields) > 0 and x.ndim - 2 == len(fields)


def _window_fields(module: Module, fields: tuple) -> tuple:
    """Fields after a convolution, a sliding pool or a blur pool."""
    if isinstance(module, BlurPool2d):
        k = module.filt_size
        return tuple(f.window(k, module.stride, (k - 1) // 2) for f in fields)
    if isinstance(module, (_ConvNd, LocallyConnected2d)):
        pads = [before for before, _ in module._pads]
        dilation = getattr(module, "dilation", (1,) * len(fields))
    else:                                                            # _PoolNd
        pads, dilation = module.padding, module.dilation
    return tuple(f.window(k, s, p, d) for f, k, s, p, d in
                 zip(fields, module.kernel_size, module.stride, pads, dilation))


def _flatten_fields(module: Flatten, x: np.ndarray, fields: Fields) -> Fields:
    """Flattening spatial axes collapses them (each becomes 'the whole input')."""
    if not _spatial(x, fields):
        return fields
    nd = x.ndim
    lo, hi = module.start_dim % nd, module.end_dim % nd
    axes = [a - 2 for a in range(max(lo, 2), hi + 1)]
    return collapse(fields, axes, [x.shape[a + 2] for a in axes])


def layer_fields(module: Module, in_fields: Sequence[Fields], inputs: Sequence[np.ndarray],
                 output: Any) -> Fields:
    """The receptive fields of ``module``'s output, from those of its inputs.

    Sliding windows (conv, pools, blur, locally connected) apply the window
    rule, transposed convs the transposed rule, adaptive and global pools the
    adaptive rule; Flatten collapses the axes it flattens, a Linear over a
    spatial input collapses the last axis.  A layer with several array inputs
    (Add, Concat, Mul) takes the union of their fields.  RoIPool's field
    depends on its boxes and is unknown (None).  Any other layer keeps the
    field if it keeps the spatial shape (elementwise, normalisation, dropout)
    and makes it unknown otherwise.
    """
    y = first_array(output)
    if not inputs or y is None or isinstance(module, RoIPool):
        return None
    x = inputs[0]
    if len(inputs) > 1:
        same = all(v.ndim == y.ndim and v.shape[2:] == y.shape[2:] for v in inputs)
        return union(in_fields) if same else None
    fields = in_fields[0]
    if isinstance(module, Flatten):
        return _flatten_fields(module, x, fields)
    if isinstance(module, Linear):
        if _spatial(x, fields):
            return collapse(fields, [len(fields) - 1], [x.shape[-1]])
        return fields
    geometric = (_ConvNd, LocallyConnected2d, _PoolNd, BlurPool2d, _ConvTransposeNd,
                 _AdaptivePoolNd, GlobalAvgPool2d, GlobalMaxPool2d)
    if isinstance(module, geometric):
        if not _spatial(x, fields) or y.ndim != x.ndim:
            return None
        if isinstance(module, _ConvTransposeNd):
            return tuple(f.transposed(k, s, p, d) for f, k, s, p, d in
                         zip(fields, module.kernel_size, module.stride, module.padding,
                             module.dilation))
        if isinstance(module, (_AdaptivePoolNd, GlobalAvgPool2d, GlobalMaxPool2d)):
            return tuple(f.adaptive(n, o) for f, n, o in zip(fields, x.shape[2:], y.shape[2:]))
        return _window_fields(module, fields)
    if y.ndim == x.ndim and y.shape[2:] == x.shape[2:]:
        return fields
    return None
