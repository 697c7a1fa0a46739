"""Model summary: output shapes, parameters, multiply-adds and receptive fields per layer.

    from striate.summary import summary
    s = summary(model, (1, 28, 28))
    print(s)              # a fixed-width table, one row per layer call, and totals
    s.total_macs, s.rows[0].rf, s.to_dict()
    summary_for("resnet18")  # a zoo name or a .npz file, as ``striate summary`` does

One forward pass of a random input (batch ``batch_size``) runs under
``striate.no_grad()`` with the model in evaluation mode, every module's forward
wrapped to record its call; afterwards the wrappers, the train/eval flags and
the backward caches are restored, so the model is left as it was.  The shapes
reported are therefore exactly what the model's forward computes.  Errors of
the model itself (a wrong input shape: ShapeError naming the layer's path)
propagate unchanged.

Conventions (see :mod:`striate.summary._rules` and :mod:`striate.summary._fields`):

* MACs count weight multiply-accumulates of conv, transposed conv, locally
  connected and linear layers, for the whole batch, bias additions excluded
  (as fvcore and ptflops); all other layers count 0.
* Receptive fields are per spatial axis of the input, in input pixels, with
  the classic recurrence j_out = j*s, r_out = r + (k_eff-1)*j,
  start_out = start + ((k_eff-1)/2 - p)*j (k_eff = d*(k-1)+1, pixel i centred
  at i); transposed convolutions divide the jump by the stride; adaptive and
  global pooling, Flatten and a Linear over a spatial axis cover the whole
  input of the layer; a merge (Add, Concat, a residual block) takes the union
  of its inputs' fields (the largest size when they share a centre, the
  smallest jump).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..nn.module import Module, no_grad
from ._fields import INPUT_FIELD, AxisField
from ._report import LayerRow, Summary
from ._sources import default_input_shape, summary_for
from ._trace import Tracer

__all__ = ['summary', 'summary_for', 'default_input_shape', 'Summary', 'LayerRow', 'AxisField',
           'INPUT_FIELD']


def _positive_ints(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) > 0 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value))


def _input_shapes(input_shape: Any) -> list[tuple[int, ...]]:
    """One shape per model input: a shape, or a list of shapes (multi-input graphs)."""
    if _positive_ints(input_shape):
        return [tuple(int(v) for v in input_shape)]
    if (isinstance(input_shape, (tuple, list)) and input_shape
            and all(_positive_ints(s) for s in input_shape)):
        return [tuple(int(v) for v in s) for s in input_shape]
    raise ConfigError(
        "summary: input_shape must be a tuple of positive ints without the batch axis, "
        f"e.g. (1, 28, 28), or a list of such tuples; received {input_shape!r}"
    )


def _check_args(model: Any, batch_size: Any, dtype: Any) -> np.dtype:
    if not isinstance(model, Module):
        raise ConfigError(
            f"summary: model must be a striate Module; received {type(model).__name__}")
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ConfigError(f"summary: batch_size must be a positive int; received {batch_size!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind != "f":
        raise ConfigError(f"summary: dtype must be a floating dtype (float32 or float64); "
                          f"received {dtype!r}")
    return dt


def summary(model: Module, input_shape: Any, batch_size: int = 1,
            dtype: Any = np.float32) -> Summary:
    """Run ``model`` once and report every layer's output shape, parameters, MACs and field.

    Args:
        model: any striate Module (Sequential, Graph, a zoo model, a single layer).
        input_shape: the input's shape without the batch axis, e.g. (1, 28, 28)
            for images or (40, 100) for sequences; a list of shapes for a model
            with several inputs.  Its rank minus one (the channel axis) is the
            number of spatial axes the receptive fields are given for.
        batch_size: the batch axis N of the input (MACs are for the whole batch).
        dtype: the input's floating dtype.

    Shape:
        the input is (batch_size, *input_shape), uniform random in [0, 1) from a
        fixed generator; each row's output shape is what the layer returned
        (e.g. Conv2d: H_out = floor((H + 2P - D*(K-1) - 1)/S) + 1).

    Returns:
        A :class:`Summary`: ``rows`` in execution order, ``total_params``
        (= ``model.num_parameters()``), ``total_macs``, ``output_shape``;
        ``str()`` is a table, ``to_dict()`` is JSON-able.

    Raises:
        ConfigError: a bad input_shape, batch_size, dtype or model.
        StriateError: whatever the model raises on this input (ShapeError naming
            the layer for an input of the wrong shape).
    """
    dt = _check_args(model, batch_size, dtype)
    shapes = [(int(batch_size), *s) for s in _input_shapes(input_shape)]
    rng = np.random.default_rng(0)
    inputs = [rng.random(s).astype(dt) for s in shapes]
    modules = list(model.modules())
    saved = [(m, m.training, m._cache) for m in modules]
    tracer = Tracer(model, len(shapes[0]) - 2)
    try:
        model.eval()
        with no_grad():
            out = tracer.run(inputs)
    finally:
        for m, training, cache in saved:
            object.__setattr__(m, "training", training)
            object.__setattr__(m, "_cache", cache)
    outputs = out if isinstance(out, tuple) else (out,)
    out_shapes = tuple(tuple(np.shape(o)) for o in outputs)
    params = list(model.parameters())
    return Summary(
        rows=list(tracer.rows),
        input_shape=shapes[0] if len(shapes) == 1 else tuple(shapes),
        output_shape=out_shapes[0] if len(out_shapes) == 1 else out_shapes,
        total_params=int(sum(p.data.size for p in params)),
        trainable_params=int(sum(p.data.size for p in params if p.requires_grad)),
        total_macs=int(sum(r.macs for r in tracer.rows)),
    )
