"""Fold BatchNorm into the preceding convolution or linear layer, for inference.

In eval mode a BatchNorm is a per-channel affine map y = a*x + b (a and b from
its running statistics and affine parameters), so a Conv/Linear followed by it
is one Conv/Linear with weight W' = a * W (scaled along the output channels)
and bias b' = a * bias + b.  :func:`fold_batchnorm` does that wherever the
layer's output feeds only the BatchNorm, and replaces each folded BatchNorm by
an Identity (rather than deleting it), so the names (and ``state_dict`` keys)
of every other layer stay as they were; the folded model's keys are the
original's minus the folded BatchNorms' plus ``<conv>.bias`` where a
convolution had none.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

from .nn.container import Sequential
from .nn.conv import Conv1d, Conv2d
from .nn.graph import Graph
from .nn.linear import Identity, Linear
from .nn.module import Module
from .nn.normalization import BatchNorm1d, BatchNorm2d
from .nn.parameter import Parameter

__all__ = ['fold_batchnorm', 'count_batchnorm']


def fold_batchnorm(model: Module) -> Module:
    """Return a new eval-mode model with every foldable BatchNorm merged into its layer.

    A BatchNorm1d/2d is folded when it directly follows a Conv1d/Conv2d/Linear
    with as many output channels: consecutive items of a Sequential, a Graph
    node whose only input is a conv node read by nothing else (and not a graph
    output), and the conv/BN pairs of the blocks (BasicBlock, Bottleneck,
    BasicConv2d, hence InceptionModule).  Each folded BatchNorm becomes an
    Identity; a convolution without bias gains one.  BatchNorms that use batch
    statistics in eval mode (track_running_stats=False) are left alone.
    Linear + BatchNorm1d assumes 2-D (N, features) inputs, BatchNorm1d's channel axis.

    Args:
        model: any model; it is not modified.

    Returns:
        A deep copy in eval mode, whose output equals ``model.eval()``'s up to rounding.
    """
    folded = copy.deepcopy(model).eval()
    for m in list(folded.modules()):
        if isinstance(m, Graph):
            _fold_graph(m)
        elif isinstance(m, Sequential):
            names = list(m._modules)
            for conv_name, bn_name in zip(names[:-1], names[1:]):
                _fold_pair(m, conv_name, bn_name)
        for conv_name, bn_name in getattr(m, "_conv_bn_pairs", ()):
            _fold_pair(m, conv_name, bn_name)
    for m in folded.modules():
        object.__setattr__(m, "_cache", None)
    return folded


def _fold_graph(g: Graph) -> None:
    """Fold every BN node whose single input is a conv node that only it reads."""
    for name, module, ins in g.nodes:
        if len(ins) != 1 or ins[0] not in g._modules:
            continue
        src = ins[0]
        if g.consumers(src) != [name] or src in g.outputs:
            continue
        if _foldable(g[src], module):
            _fold_into(g[src], module)
            g.replace(name, Identity())


def _fold_pair(parent: Module, conv_name: str, bn_name: str) -> None:
    conv = parent._modules.get(conv_name)
    bn = parent._modules.get(bn_name)
    if conv is not None and bn is not None and _foldable(conv, bn):
        _fold_into(conv, bn)
        _swap_child(parent, bn_name, Identity())


def _swap_child(parent: Module, name: str, module: Module) -> None:
    """Replace child ``name`` in place (keeping its position in the child order)."""
    parent._modules[name] = module
    object.__setattr__(module, "_parent", (parent, name))


def _batchnorm_types() -> dict[type, tuple[type, ...]]:
    """BatchNorm class -> the layer classes it can be folded into."""
    return {BatchNorm1d: (Conv1d, Linear), BatchNorm2d: (Conv2d,)}


def _foldable(conv: Module, bn: Module) -> bool:
    layers = _batchnorm_types().get(type(bn))
    if layers is None or not isinstance(conv, layers):
        return False
    if getattr(bn, "running_mean", None) is None or getattr(bn, "running_var", None) is None:
        return False          # uses batch statistics even in eval mode
    return int(bn.num_features) == conv.weight.data.shape[0]


def folded_parameters(conv: Module, bn: Module) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias of ``conv`` followed by eval-mode ``bn`` as one layer.

    weight' = a * weight (per output channel), bias' = a * bias + b, with (a, b) from
    ``bn.scale_shift()``; computed in float64, returned in the weight's dtype.
    """
    a, b = bn.scale_shift()
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    w = conv.weight.data
    dt = w.dtype
    scale = a.reshape((-1,) + (1,) * (w.ndim - 1))          # (O, 1, ...) against (O, C, *K)
    old_bias = 0.0 if conv.bias is None else conv.bias.data.astype(np.float64)
    return (w.astype(np.float64) * scale).astype(dt), (a * old_bias + b).astype(dt)


def _fold_into(conv: Module, bn: Module) -> None:
    """conv.weight *= a (per output channel); conv.bias = a * bias + b."""
    conv.weight.data, new_bias = folded_parameters(conv, bn)
    if conv.bias is None:
        conv.bias = Parameter(new_bias)
        _record_bias(conv)
    else:
        conv.bias.data = new_bias
    conv.weight.grad = None
    conv.bias.grad = None


def _record_bias(conv: Module) -> None:
    """Update the recorded constructor arguments (if any) to bias=True."""
    init_args = getattr(conv, "_init_args", None)
    if init_args is None:
        return
    args, kwargs = init_args
    try:
        bound = inspect.signature(type(conv).__init__).bind(conv, *args, **kwargs)
    except TypeError:
        return
    bound.arguments["bias"] = True
    object.__setattr__(conv, "_init_args", (tuple(bound.args[1:]), dict(bound.kwargs)))


def count_batchnorm(model: Module) -> int:
    """The number of BatchNorm1d/2d modules in ``model`` (to check what folding removed)."""
    kinds = tuple(_batchnorm_types())
    return sum(isinstance(m, kinds) for m in model.modules())

