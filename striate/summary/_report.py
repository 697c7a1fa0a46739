"""The result of :func:`striate.summary`: one row per layer call, totals, a table and a dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ._fields import Fields

__all__ = ['LayerRow', 'Summary']

Shape = Any
"""A shape tuple, or a tuple of shape tuples for a layer that returns several arrays."""


def _num(v: float) -> int | float:
    """An int when the value is integral (JSON and the table stay tidy), else the float."""
    return int(v) if float(v).is_integer() else float(v)


def _fmt_num(v: float) -> str:
    v = _num(v)
    return str(v) if isinstance(v, int) else f"{v:.4g}"


def _fmt_axes(values: list[float]) -> str:
    """'5' when every axis agrees, '5x3' (H x W) when they differ."""
    texts = [_fmt_num(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def _fmt_shape(shape: Shape) -> str:
    if shape and isinstance(shape[0], tuple):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join(str(int(v)) for v in shape) + ")"


def _shape_json(shape: Shape) -> list:
    if shape and isinstance(shape[0], tuple):
        return [_shape_json(s) for s in shape]
    return [int(v) for v in shape]


@dataclass(frozen=True)
class LayerRow:
    """One call of one layer during the summary's forward pass.

    Attributes:
        path: the layer's dotted path in the summarised model ('features.3'; '' for
            the model itself).
        type: the layer's class name.
        output_shape: the output's shape, batch axis included (a tuple of
            shapes when the layer returns several arrays).
        params: the layer's own parameters (scalars), counted at its first call
            only, so the column sums to the parameters of the layers that ran.
        macs: multiply-adds of this call (0 for layers without weights).
        fields: receptive field per spatial axis of the input (H, W or L), as
            AxisField(size, jump, start); () for an input without spatial axes;
            None where it is unknown.
    """

    path: str
    type: str
    output_shape: Shape
    params: int
    macs: int
    fields: Fields

    @property
    def rf(self) -> Optional[tuple]:
        """Receptive-field size per axis, or None."""
        return None if self.fields is None else tuple(_num(f.size) for f in self.fields)

    @property
    def jump(self) -> Optional[tuple]:
        """Jump (cumulative stride) per axis, or None."""
        return None if self.fields is None else tuple(_num(f.jump) for f in self.fields)

    @property
    def start(self) -> Optional[tuple]:
        """Centre of the first output's field per axis, or None."""
        return None if self.fields is None else tuple(_num(f.start) for f in self.fields)

    def to_dict(self) -> dict:
        """JSON-able form: lists for tuples, null receptive field where unknown."""
        rf = None
        if self.fields is not None:
            rf = {"size": list(self.rf), "jump": list(self.jump), "start": list(self.start)}
        return {"path": self.path, "type": self.type,
                "output_shape": _shape_json(self.output_shape),
                "params": self.params, "macs": self.macs, "receptive_field": rf}

    def cells(self) -> list[str]:
        """The row's table cells: path, type, shape, params, MACs, RF, jump, start."""
        if not self.fields:
            rf = ["-", "-", "-"]
        else:
            rf = [_fmt_axes(list(v)) for v in (self.rf, self.jump, self.start)]
        return [self.path or "(model)", self.type, _fmt_shape(self.output_shape),
                f"{self.params:,}", f"{self.macs:,}", *rf]


_HEADER = ["Layer (path)", "Type", "Output shape", "Params", "MACs", "RF", "jump", "start"]
_LEFT = 3          # the first three columns are left-aligned, the numbers right-aligned


@dataclass(frozen=True)
class Summary:
    """Shapes, parameters, multiply-adds and receptive fields of a model, layer by layer.

    Attributes:
        rows: one :class:`LayerRow` per layer call, in execution order.
        input_shape: the input's shape, batch axis included (a tuple of
            shapes for a model with several inputs).
        output_shape: the model output's shape (a tuple of shapes for several outputs).
        total_params: every parameter of the model (``model.num_parameters()``),
            including those of layers that did not run.
        trainable_params: those with ``requires_grad``.
        total_macs: the sum of the rows' MACs.
    """

    rows: list
    input_shape: Shape
    output_shape: Shape
    total_params: int
    trainable_params: int
    total_macs: int

    @property
    def unused_params(self) -> int:
        """Parameters of layers that did not run in the pass (e.g. auxiliary heads)."""
        return self.total_params - sum(r.params for r in self.rows)

    def to_dict(self) -> dict:
        """JSON-able form of the whole summary (``json.dumps(s.to_dict())`` works)."""
        return {"input_shape": _shape_json(self.input_shape),
                "output_shape": _shape_json(self.output_shape),
                "total_params": self.total_params, "trainable_params": self.trainable_params,
                "unused_params": self.unused_params, "total_macs": self.total_macs,
                "layers": [r.to_dict() for r in self.rows]}

    def __str__(self) -> str:
        table = [_HEADER] + [r.cells() for r in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(_HEADER))]

        def line(cells: list[str]) -> str:
            parts = [c.ljust(w) if i < _LEFT else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths))]
            return "  ".join(parts).rstrip()

        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        out = [line(_HEADER), rule, *(line(r) for r in table[1:]), rule.replace("-", "=")]
        out.append(f"Input shape: {_fmt_shape(self.input_shape)}    "
                   f"Output shape: {_fmt_shape(self.output_shape)}")
        out.append(f"Total params: {self.total_params:,}  (trainable {self.trainable_params:,})")
        if self.unused_params:
            out.append(f"Params of layers that did not run: {self.unused_params:,}")
        out.append(f"Total MACs: {self.total_macs:,}")
        out.append("RF, jump, start: receptive field size, cumulative stride and centre of "
                   "the first output's field, in input pixels (HxW when they differ)")
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"Summary({len(self.rows)} layers, total_params={self.total_params:,}, "
                f"total_macs={self.total_macs:,}, output_shape={self.output_shape})")
