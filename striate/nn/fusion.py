"""Fused inference: Conv + BatchNorm + ReLU as one convolution with an in-place ReLU.

In eval mode a BatchNorm after a convolution is a per-channel affine map, so
the pair is one convolution with weight a * W and bias a * bias + b (see
:mod:`striate.fold`); a ReLU after it can clamp the convolution's fresh output
in place.  :class:`~striate.nn.Sequential` runs its children this way when the
model is in eval mode and no gradient is being recorded (``no_grad``), which
removes two full passes over every such activation and two allocations.  A
max-pooling right after the ReLU runs before it (max(relu(a), relu(b)) =
relu(max(a, b))), so the ReLU clamps the pooled, smaller array.  The
folded weights are computed on each call (a few microseconds), so changing the
parameters or the running statistics is always seen.

Nothing is fused when a module's ``forward`` has been replaced on the instance
(as ``striate.summary`` and the pictures of ``striate.viz`` do to watch each
layer), so every layer is then called on its own.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..fold import _foldable, folded_parameters
from ..functional import conv as F
from ..functional._parallel import parallel_for
from ..functional.conv_pool import conv2d_max_pool_fits, conv2d_max_pool_infer
from .activation import ReLU
from .conv import Conv1d, Conv2d
from .linear import Linear
from .module import Module
from .normalization import fusable_batch_norm
from .pooling import MaxPool1d, MaxPool2d

__all__: list[str] = []


def _plain(m: Module | None) -> bool:
    """The module runs its class's own forward (nobody is watching it) and is in eval mode."""
    return m is not None and "forward" not in m.__dict__ and not m.training


def _folds_into(conv: Module, bn: Module | None) -> bool:
    """Whether ``bn`` is an eval-mode BatchNorm with running statistics over conv's outputs."""
    return bn is not None and _plain(bn) and _foldable(conv, bn)


def _conv(conv: Module, bn: Module | None, x: Any, pool: Module | None) -> np.ndarray:
    """conv (followed by ``bn`` folded into it, when given), then ``pool``.

    A 2-D ``pool`` runs on each slice of the convolution's output while that slice is
    still in the cache (``conv2d_infer(post=...)``), never storing the full output.
    """
    x = conv._input(x)
    if bn is not None:
        w, b = folded_parameters(conv, bn)                          # (O, C/G, KH[, KW]), (O,)
    else:
        w, b = conv.weight.data, None if conv.bias is None else conv.bias.data
    if conv._nd == 2:
        k = _pool_tile(conv, pool, x, w)
        if k:
            return conv2d_max_pool_infer(x, w, b, padding=conv._pads, k=k)
        return F.conv2d_infer(x, w, b, stride=conv.stride, padding=conv._pads,
                              dilation=conv.dilation, groups=conv.groups, post=pool)
    y = F.conv2d_infer(x[:, :, None, :], w[:, :, None, :], b,              # (N, C, 1, L)
                       stride=(1, conv.stride[0]), padding=((0, 0), conv._pads[0]),
                       dilation=(1, conv.dilation[0]), groups=conv.groups)
    y = y[:, :, 0, :]                                               # (N, O, L_out)
    return y if pool is None else pool(y)


def _pool_tile(conv: Module, pool: Module | None, x: np.ndarray, w: np.ndarray) -> int:
    """k when conv + ``pool`` run faster as one strided GEMM (:mod:`~striate.functional.conv_pool`), else 0.

    That needs a stride-1, undilated, ungrouped convolution on the im2col route with few
    column rows, then a k x k max-pooling of stride k (no padding, floor mode) that fits.
    """
    if pool is None or tuple(conv.stride) != (1, 1) or tuple(conv.dilation) != (1, 1):
        return 0
    k = pool.kernel_size[0]
    square = pool.kernel_size == (k, k) and pool.stride == (k, k)
    if (conv.groups != 1 or not square or pool.padding != (0, 0) or pool.dilation != (1, 1)
            or pool.ceil_mode or x.ndim != 4 or x.shape[1] != w.shape[1]
            or not conv2d_max_pool_fits(w.shape, k)):
        return 0
    oh, ow = F.conv2d_output_hw(x.shape[2:], w.shape[2:], (1, 1), conv._pads, (1, 1))
    if oh < k or ow < k or F.choose_algorithm(x, w, (1, 1), conv._pads, (1, 1), 1, "auto",
                                              training=False) != "im2col":
        return 0
    return k


def _plain_relu(m: Module | None) -> bool:
    return type(m) is ReLU and _plain(m)


def _plain_max_pool(m: Module | None) -> bool:
    return type(m) in (MaxPool2d, MaxPool1d) and _plain(m) and not m.return_indices


def run_inference(modules: Sequence[Module], x: Any) -> Any:
    """Run ``modules`` in order, fusing Conv(+BatchNorm)(+ReLU(+MaxPool)) and Linear+ReLU.

    Only called in eval mode under ``no_grad``; the result equals running each
    module in turn up to float rounding (the folded weights are computed in float64).
    """
    i, count = 0, len(modules)

    def at(k: int) -> Module | None:
        return modules[k] if k < count else None

    while i < count:
        m = modules[i]
        conv = type(m) in (Conv2d, Conv1d) and _plain(m)
        bn = at(i + 1) if conv and _folds_into(m, at(i + 1)) else None
        j = i + 1 + (bn is not None)                        # the module after conv (+ BN)
        relu = (conv or (type(m) is Linear and _plain(m))) and _plain_relu(at(j))
        if bn is None and not relu:
            x, i = m(x), i + 1
            continue
        pool = at(j + 1) if conv and relu and _plain_max_pool(at(j + 1)) else None
        x = _conv(m, bn, x, pool) if conv else m(x)         # max-pooling before the ReLU:
        i = j + relu + (pool is not None)                   # max(relu(a), relu(b)) =
        if relu:                                            # relu(max(a, b)), on 1/4 the data
            _relu_inplace(x)
    return x


class _BatchNormRelu:
    """A BatchNorm followed by a ReLU, run as one operation (BatchNorm.forward_relu): the
    ReLU costs no pass of its own.  Called like a module; not a module of the model."""

    def __init__(self, bn: Module) -> None:
        self.bn = bn

    def __call__(self, x: Any) -> np.ndarray:
        return self.bn.forward_relu(x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.bn.backward_relu(dy)[0]


def training_order(modules: Sequence[Module]) -> list[Any]:
    """The steps to run ``modules`` in when training.

    * A BatchNorm followed by a ReLU runs as one fused step (:class:`_BatchNormRelu`).
    * Otherwise a MaxPool right after a ReLU runs first: relu(maxpool(x)) =
      maxpool(relu(x)), and the gradients are the same too (a window's maximum is the
      same element either way, and where it is <= 0 both give 0), but the ReLU then
      works on the pooled array, a quarter of the size for 2x2 windows.

    Layers whose forward is replaced on the instance (watched) are neither fused nor moved.
    """
    order: list[Any] = []
    for m in modules:
        prev = order[-1] if order else None
        if type(m) is ReLU and "forward" not in m.__dict__ and fusable_batch_norm(prev):
            order[-1] = _BatchNormRelu(prev)
        else:
            order.append(m)
    for i in range(len(order) - 1):
        relu, pool = order[i], order[i + 1]
        if (type(relu) is ReLU and type(pool) in (MaxPool2d, MaxPool1d) and not pool.return_indices
                and "forward" not in relu.__dict__ and "forward" not in pool.__dict__):
            order[i], order[i + 1] = pool, relu
    return order


def _relu_inplace(x: np.ndarray) -> None:
    """max(x, 0) into x (this call's own array), split over threads."""
    zero = x.dtype.type(0)

    def clamp(start: int, stop: int) -> None:
        np.maximum(x[start:stop], zero, out=x[start:stop])

    parallel_for(clamp, len(x), x.size)
