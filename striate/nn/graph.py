"""Graph: a model whose layers form a directed acyclic graph (skips, branches, joins).

A node has a name, a module and the names of its inputs (graph inputs or
earlier nodes).  Because a node may only read names that already exist, the
insertion order is a topological order and cycles cannot be built.  Forward
runs the nodes in that order; backward runs them in reverse and sums the
gradients of a value that feeds several consumers.

    g = Graph(inputs=["x"])
    g.add("conv1", Conv2d(3, 16, 3, padding=1), "x")
    g.add("relu1", ReLU(), "conv1")
    g.add("skip", Add(), "relu1", "x")        # a multi-input node
    g.output("skip")

Node modules are children named after their nodes, so ``state_dict()`` keys
are ``conv1.weight`` etc., the keys of a torch module with those attribute names.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError, ShapeError, StateError
from .module import Module

__all__ = ['Graph', 'GraphNode']


class GraphNode(NamedTuple):
    """One node of a Graph: its name, its module and the names it reads."""

    name: str
    module: Module
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class _GraphCache:
    """What Graph.backward needs: which nodes ran and the graph inputs' shapes/dtypes."""

    ran: tuple[str, ...]
    input_specs: tuple[tuple[tuple[int, ...], np.dtype], ...]


class Graph(Module):
    """A directed acyclic graph of modules with named inputs and outputs.

    Args:
        inputs: the names of the graph's inputs, in the order ``forward`` takes them.
        nodes: optional ``(name, module, input_name, ...)`` tuples, added in
            order as by :meth:`add` (so a whole graph can be built in one call).
        outputs: optional output name or names, as by :meth:`output`.

    Shape:
        whatever the nodes map the inputs to; ``forward(*xs)`` returns one array
        per output name (a tuple when there are several), and ``backward`` takes
        the output gradient(s) in the same form and returns one input gradient per
        graph input (a tuple when there are several).
    """

    def __init__(self, inputs: Any = ("x",), nodes: Any = (), outputs: Any = None) -> None:
        super().__init__()
        if isinstance(inputs, str):
            inputs = (inputs,)
        try:
            names = tuple(inputs)
        except TypeError:
            raise ConfigError(f"Graph: inputs must be a list of names; received {inputs!r}") from None
        if not names:
            raise ConfigError("Graph: needs at least one input name; received none")
        object.__setattr__(self, "_input_names", ())
        object.__setattr__(self, "_node_inputs", OrderedDict())
        object.__setattr__(self, "_output_names", ())
        seen: list[str] = []
        for n in names:
            self._check_new_name(n, seen)
            seen.append(n)
        object.__setattr__(self, "_input_names", tuple(names))
        for spec in nodes:
            if not isinstance(spec, (tuple, list)) or len(spec) < 3:
                raise ConfigError(
                    f"Graph: each node must be (name, module, input, ...); received {spec!r}"
                )
            self.add(spec[0], spec[1], *spec[2:])
        if outputs is not None:
            self.output(*((outputs,) if isinstance(outputs, str) else tuple(outputs)))
        self._record_init()

    def _record_init(self) -> None:
        """Keep the recorded constructor arguments equal to the current graph.

        A graph grown with add()/output() is then described by
        ``Graph(inputs, nodes=[...], outputs=[...])``, so saving the architecture
        (striate.save) rebuilds it without the code that built it.
        """
        nodes = [(n, self._modules[n], *ins) for n, ins in self._node_inputs.items()]
        kwargs = {"nodes": nodes, "outputs": list(self._output_names) or None}
        object.__setattr__(self, "_init_args", ((list(self._input_names),), kwargs))

    # ------------------------------------------------------------------ building
    def _check_new_name(self, name: Any, taken: list[str]) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ConfigError(
                f"Graph: names must be non-empty strings without '.'; received {name!r}"
            )
        if name in taken or name in self._input_names or name in self._node_inputs:
            raise ConfigError(f"Graph: duplicate name '{name}'")
        if hasattr(type(self), name) or name in self.__dict__:
            raise ConfigError(f"Graph: name '{name}' clashes with an attribute of Graph")

    def add(self, name: str, module: Module, *inputs: str) -> "Graph":
        """Add node ``name`` computing ``module(*inputs)``; returns the graph (chainable).

        Raises:
            ConfigError: a duplicate or invalid name, an unknown input name, no
                inputs, or a module that is not a Module or is already in the graph.
        """
        self._check_new_name(name, [])
        if not isinstance(module, Module) or module is self:
            raise ConfigError(
                f"Graph: node '{name}' needs a striate Module; received {type(module).__name__}"
            )
        for other, m in self._modules.items():
            if m is module:
                raise ConfigError(
                    f"Graph: node '{name}' reuses the module of node '{other}'; a module keeps "
                    "one forward cache, so give each node its own module"
                )
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        if not inputs:
            raise ConfigError(f"Graph: node '{name}' needs at least one input name")
        known = self._input_names + tuple(self._node_inputs)
        unknown = [i for i in inputs if i not in known]
        if unknown:
            raise ConfigError(
                f"Graph: node '{name}' reads unknown name(s) {unknown}; inputs and earlier "
                f"nodes are {list(known)}"
            )
        self.add_module(name, module)
        self._node_inputs[name] = tuple(inputs)
        self._record_init()
        return self

    def output(self, *names: str) -> "Graph":
        """Declare the output node(s); several names make forward return a tuple."""
        if len(names) == 1 and isinstance(names[0], (list, tuple)):
            names = tuple(names[0])
        if not names:
            raise ConfigError("Graph.output: needs at least one name")
        known = self._input_names + tuple(self._node_inputs)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"Graph.output: unknown name(s) {unknown}; known names are {list(known)}")
        object.__setattr__(self, "_output_names", tuple(names))
        self._record_init()
        return self

    def replace(self, name: str, module: Module) -> None:
        """Swap the module of node ``name`` (same inputs), e.g. a folded BatchNorm for Identity."""
        if name not in self._node_inputs:
            raise ConfigError(f"Graph.replace: no node named '{name}'; nodes are {list(self._node_inputs)}")
        if not isinstance(module, Module):
            raise ConfigError(f"Graph.replace: needs a striate Module; received {type(module).__name__}")
        for other, m in self._modules.items():
            if m is module and other != name:
                raise ConfigError(f"Graph.replace: the module is already node '{other}'")
        self._modules[name] = module                 # in place: the child order is kept
        object.__setattr__(module, "_parent", (self, name))
        self._record_init()

    # ------------------------------------------------------------------ inspecting
    @property
    def inputs(self) -> tuple[str, ...]:
        """The input names, in the order forward takes them."""
        return self._input_names

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output names, in the order forward returns them."""
        return self._output_names

    @property
    def nodes(self) -> list[GraphNode]:
        """Every node (name, module, input names) in execution order: a summary listing."""
        return [GraphNode(n, self._modules[n], ins) for n, ins in self._node_inputs.items()]

    def consumers(self, name: str) -> list[str]:
        """The nodes that read ``name`` (a graph input or a node), once each."""
        return [n for n, ins in self._node_inputs.items() if name in ins]

    def __getitem__(self, name: str) -> Module:
        return self._modules[name]

    def __len__(self) -> int:
        return len(self._node_inputs)

    # ------------------------------------------------------------------ running
    def forward(self, *xs: Any) -> Any:
        if not self._output_names:
            raise StateError(f"{self.where()}: no outputs declared; call graph.output(name) first")
        if len(xs) != len(self._input_names):
            raise ShapeError(
                f"{self.where()} expects {len(self._input_names)} input(s) "
                f"({', '.join(self._input_names)}); received {len(xs)}"
            )
        values: dict[str, Any] = dict(zip(self._input_names, xs))
        for name, ins in self._node_inputs.items():
            values[name] = self._modules[name](*(values[i] for i in ins))
        specs = tuple((np.shape(x), np.asarray(x).dtype) for x in xs)
        self._keep(_GraphCache(tuple(self._node_inputs), specs))
        outs = tuple(values[n] for n in self._output_names)
        return outs[0] if len(outs) == 1 else outs

    def backward(self, dy: Any) -> Any:
        cache = self._take()
        dys = self._output_grads(dy)
        grads: dict[str, np.ndarray] = {}
        for name, g in zip(self._output_names, dys):
            _add_grad(grads, name, g)
        for name in reversed(cache.ran):
            g = grads.pop(name, None)
            if g is None:        # this node's value reaches no output: nothing flows back
                continue
            ins = self._node_inputs[name]
            dxs = self._modules[name].backward(g)
            if len(ins) == 1 and not isinstance(dxs, tuple):
                dxs = (dxs,)
            if not isinstance(dxs, tuple) or len(dxs) != len(ins):
                got = len(dxs) if isinstance(dxs, tuple) else 1
                raise StateError(
                    f"{self._modules[name].where()}: backward returned {got} gradient(s) "
                    f"for {len(ins)} input(s)"
                )
            for i, dx in zip(ins, dxs):
                if dx is not None:
                    _add_grad(grads, i, dx)
        out = []
        for name, (shape, dt) in zip(self._input_names, cache.input_specs):
            g = grads.get(name)
            if g is None and dt.kind == "f":
                g = np.zeros(shape, dtype=dt)
            out.append(g)
        return out[0] if len(out) == 1 else tuple(out)

    def _output_grads(self, dy: Any) -> tuple:
        k = len(self._output_names)
        if k == 1:
            return (dy,)
        if not isinstance(dy, (tuple, list)) or len(dy) != k:
            got = len(dy) if isinstance(dy, (tuple, list)) else 1
            raise ShapeError(
                f"{self.where()}: backward expects a tuple of {k} gradients (outputs "
                f"{', '.join(self._output_names)}); received {got}"
            )
        return tuple(dy)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return f"inputs={list(self._input_names)}, outputs={list(self._output_names)}"

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, ins in self._node_inputs.items():
            sub = repr(self._modules[name]).replace("\n", "\n  ")
            lines.append(f"  ({name}) <- {', '.join(ins)}: {sub}")
        return "\n".join(lines) + "\n)"


def _add_grad(grads: dict[str, np.ndarray], name: str, g: np.ndarray) -> None:
    """Sum a gradient into ``grads[name]`` out of place (``g`` may be shared)."""
    grads[name] = g if name not in grads else grads[name] + g
