"""The summary's forward pass: wrap every module's forward, record each leaf call.

Every module of the model gets a temporary ``forward`` (an instance attribute
shadowing the class method; removed again afterwards, even on error) that
records the call.  Leaf modules (no children, or parameters of their own) give
rows.  Receptive fields travel with the arrays: each array a module returns is
remembered (by identity, through a weak reference) with its field, and a
module's input is looked up the same way.  An input that no module produced
(``relu(out)`` computed inside a block with a kernel function, or a cast copy
of the block's input) is given the field of the latest value of the same shape
produced inside the enclosing module, else of that module's input if the shapes
agree, else of the latest value produced inside it; a composite
module whose output no child produced gets the union of the values produced
inside it that no module consumed (e.g. both branches of a residual block).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..nn.module import Module
from ._fields import Fields, input_fields, union
from ._report import LayerRow
from ._rules import first_array, layer_fields, layer_macs

__all__ = ['Tracer']


@dataclass
class _Scope:
    """One running composite module: its inputs' fields and the values produced inside."""

    input_fields: Fields
    input_shapes: tuple = ()
    produced: list = field(default_factory=list)      # [(entry id, fields, shape)] of children
    consumed: set = field(default_factory=set)        # entry ids read by a module

    def guess(self, shape: tuple) -> tuple[int | None, Fields]:
        """(entry, fields) of the most likely source of an unknown array of ``shape``.

        The latest value produced here with that shape, else the scope's input
        if it has that shape (a cast copy of it), else the latest value
        produced here, else the scope's input.
        """
        for entry, fields, s in reversed(self.produced):
            if s == shape:
                return entry, fields
        if shape in self.input_shapes or not self.produced:
            return None, self.input_fields
        entry, fields, _ = self.produced[-1]
        return entry, fields

    def dangling(self) -> list[Fields]:
        return [f for e, f, _ in self.produced if e not in self.consumed]


def _arrays(value: Any) -> list[np.ndarray]:
    """The arrays of an output: the array itself, or those of a tuple/list."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, np.ndarray)]
    return []


def _shape(value: Any) -> Any:
    arrays = _arrays(value)
    if isinstance(value, np.ndarray) or len(arrays) == 1:
        return tuple(arrays[0].shape) if arrays else ()
    return tuple(tuple(a.shape) for a in arrays)


class Tracer:
    """Wraps a model's modules, runs it once and collects the rows.

    Args:
        model: the model to trace (left unchanged afterwards).
        n_axes: spatial axes of the model input (its rank minus batch and channels).
    """

    def __init__(self, model: Module, n_axes: int) -> None:
        self.model = model
        self.n_axes = n_axes
        self.rows: list[LayerRow] = []
        self._values: dict[int, tuple[Any, int, Fields]] = {}   # id -> (weakref, entry, fields)
        self._scopes: list[_Scope] = [_Scope(input_fields(n_axes))]
        self._entries = 0
        self._counted: set[int] = set()
        self._names = {id(m): name for name, m in model.named_modules()}   # paths within model

    # ------------------------------------------------------------------ values
    def _remember(self, value: Any, fields: Fields) -> None:
        """Record the arrays of ``value`` with ``fields`` in the current scope."""
        for a in _arrays(value):
            self._entries += 1
            self._values[id(a)] = (weakref.ref(a), self._entries, fields)
            self._scopes[-1].produced.append((self._entries, fields, a.shape))

    def _lookup(self, a: np.ndarray) -> Fields:
        """The field of input ``a``; see the module docstring for unknown arrays."""
        scope = self._scopes[-1]
        known = self._values.get(id(a))
        if known is not None and known[0]() is a:
            scope.consumed.add(known[1])
            return known[2]
        entry, fields = scope.guess(a.shape)
        if entry is not None:
            scope.consumed.add(entry)
        return fields

    # ------------------------------------------------------------------ running
    def run(self, inputs: list[np.ndarray]) -> Any:
        """Run the model on ``inputs`` with every module wrapped; return its output."""
        for x in inputs:
            self._remember(x, input_fields(self.n_axes))
        saved = []
        try:
            for _, m in self.model.named_modules():
                saved.append((m, m.__dict__.get("forward", _MISSING)))
                object.__setattr__(m, "forward", self._wrap(m, m.forward))
            return self.model(*inputs)
        finally:
            for m, previous in saved:
                if previous is _MISSING:
                    m.__dict__.pop("forward", None)
                else:
                    object.__setattr__(m, "forward", previous)

    def _wrap(self, module: Module, forward: Callable) -> Callable:
        leaf = not module._modules

        def traced(*args: Any, **kwargs: Any) -> Any:
            inputs = [a for a in args if isinstance(a, np.ndarray)]
            in_fields = [self._lookup(a) for a in inputs]
            if leaf:
                out = forward(*args, **kwargs)
                fields = layer_fields(module, in_fields, inputs, out)
                self._record(module, out, layer_macs(module, inputs, out), fields)
            else:
                out, fields = self._run_composite(module, forward, args, kwargs, inputs, in_fields)
                if module._parameters:
                    self._record(module, out, 0, fields)
            self._remember(out, fields)
            return out

        return traced

    def _run_composite(self, module: Module, forward: Callable, args: tuple, kwargs: dict,
                       inputs: list[np.ndarray], in_fields: list[Fields]) -> tuple[Any, Fields]:
        """Run a module with children in its own scope; return its output and field."""
        scope = _Scope(union(in_fields) if in_fields else input_fields(self.n_axes),
                       tuple(x.shape for x in inputs))
        self._scopes.append(scope)
        try:
            out = forward(*args, **kwargs)
        finally:
            self._scopes.pop()
        y = first_array(out)
        if y is None:
            return out, None
        known = self._values.get(id(y))
        if known is not None and known[0]() is y:
            return out, known[2]
        dangling = scope.dangling()
        if dangling:
            return out, union(dangling)
        x = inputs[0] if inputs else None
        same = x is not None and x.ndim == y.ndim and x.shape[2:] == y.shape[2:]
        return out, scope.input_fields if same else None

    def _record(self, module: Module, out: Any, macs: int, fields: Fields) -> None:
        params = 0
        if id(module) not in self._counted:
            self._counted.add(id(module))
            params = int(sum(p.data.size for p in module._parameters.values()))
        self.rows.append(LayerRow(path=self._names[id(module)], type=type(module).__name__,
                                  output_shape=_shape(out), params=params, macs=int(macs),
                                  fields=fields))


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
