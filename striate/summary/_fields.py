"""Receptive-field arithmetic along one input axis: size r, jump j and start.

A feature map's positions are described, per spatial axis of the model input,
by three numbers (the classic recurrence, e.g. Araujo et al. 2019, "Computing
Receptive Fields of Convolutional Neural Networks"):

* size r: how many input pixels along the axis can affect one output value;
* jump j: the distance, in input pixels, between neighbouring output positions
  (the cumulative stride; a fraction after a transposed convolution);
* start: the centre of output position 0's field, in input pixel coordinates,
  where input pixel i has its centre at i (so the input itself has start 0;
  a negative start lies in the zero padding).

Fields are not clipped to the input: a field that reaches into the padding is
reported at its full size, as the recurrence gives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

__all__ = ['AxisField', 'INPUT_FIELD', 'Fields', 'union', 'input_fields', 'collapse']


@dataclass(frozen=True)
class AxisField:
    """The receptive field of a feature map's positions along one input axis.

    Attributes:
        size: r, input pixels that can affect one output value.
        jump: j, input pixels between neighbouring output positions.
        start: centre of output 0's field, in input pixel coordinates (pixel i at i).
    """

    size: float
    jump: float
    start: float

    @property
    def lo(self) -> float:
        """Input coordinate of the first pixel of output 0's field."""
        return self.start - (self.size - 1) / 2

    @property
    def hi(self) -> float:
        """Input coordinate of the last pixel of output 0's field."""
        return self.start + (self.size - 1) / 2

    def window(self, kernel: int, stride: int, pad_before: int, dilation: int = 1) -> "AxisField":
        """After a sliding window (convolution or pooling) along this axis.

        With k_eff = dilation*(kernel-1) + 1:
        j_out = j*stride, r_out = r + (k_eff-1)*j,
        start_out = start + ((k_eff-1)/2 - pad_before)*j.
        """
        k_eff = dilation * (kernel - 1) + 1
        return AxisField(size=self.size + (k_eff - 1) * self.jump,
                         jump=self.jump * stride,
                         start=self.start + ((k_eff - 1) / 2 - pad_before) * self.jump)

    def transposed(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> "AxisField":
        """After a transposed convolution along this axis.

        Output o = i*stride - padding + dilation*m reads input positions i with
        i*stride in [o + padding - (k_eff-1), o + padding]: at most
        n = floor((k_eff-1)/stride) + 1 of them, centred on input position
        (o + padding - (k_eff-1)/2) / stride.  Hence
        j_out = j/stride, r_out = r + (n-1)*j,
        start_out = start + (padding - (k_eff-1)/2)/stride * j.
        output_padding adds positions at the end and leaves these unchanged.
        """
        k_eff = dilation * (kernel - 1) + 1
        n = (k_eff - 1) // stride + 1
        return AxisField(size=self.size + (n - 1) * self.jump,
                         jump=self.jump / stride,
                         start=self.start + (padding - (k_eff - 1) / 2) / stride * self.jump)

    def adaptive(self, in_size: int, out_size: int) -> "AxisField":
        """After adaptive pooling from in_size to out_size positions (global pooling: 1).

        Bin i spans [floor(i*L/O), ceil((i+1)*L/O)); the size uses the widest
        bin, the jump is the mean bin step L/O, the start is bin 0's centre.
        With out_size 1 the field covers the whole input of the layer.
        """
        i = np.arange(out_size)
        widths = -((-(i + 1) * in_size) // out_size) - (i * in_size) // out_size   # (O,)
        first = math.ceil(in_size / out_size)
        return AxisField(size=self.size + (int(widths.max()) - 1) * self.jump,
                         jump=self.jump * in_size / out_size,
                         start=self.start + (first - 1) / 2 * self.jump)


INPUT_FIELD = AxisField(1.0, 1.0, 0.0)
"""The field of the input itself: each pixel sees itself, at its own position."""

Fields = Optional[tuple]
"""A tuple of AxisField, one per spatial axis of the model input, or None (unknown)."""


def union(fields: Iterable[Fields]) -> Fields:
    """The field of a value computed from several others (a residual sum, a concatenation).

    Per axis, the union of output 0's fields: from the smallest ``lo`` to the
    largest ``hi`` (so size = max size when the fields share a centre, as the
    branches of a padded residual or Inception block do), start at its centre,
    and the smallest jump.  None if any field is unknown or they disagree on
    the number of axes; None for no fields.
    """
    fields = list(fields)
    if not fields or any(f is None for f in fields) or len({len(f) for f in fields}) != 1:
        return None
    if len(fields) == 1:
        return fields[0]
    out = []
    for axis in zip(*fields):
        lo = min(a.lo for a in axis)
        hi = max(a.hi for a in axis)
        out.append(AxisField(size=hi - lo + 1, jump=min(a.jump for a in axis), start=(lo + hi) / 2))
    return tuple(out)


def input_fields(n_axes: int) -> tuple:
    """The fields of a model input with ``n_axes`` spatial axes."""
    return (INPUT_FIELD,) * n_axes


def collapse(fields: tuple, axes: Sequence[int], sizes: Sequence[int]) -> tuple:
    """Fields after the given axes (of lengths ``sizes``) are pooled or flattened away."""
    out = list(fields)
    for a, size in zip(axes, sizes):
        out[a] = out[a].adaptive(size, 1)
    return tuple(out)
