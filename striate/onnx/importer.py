"""ONNX import: ``striate.onnx.load(model)`` builds a trainable striate Graph.

The importer reads the file (``onnx`` is needed only here), refuses a model
with unsupported operators in one error that lists them all, and then walks
the nodes in order.  Initializers and everything computed from them alone are
folded into constants with NumPy; the rest becomes striate layers (Conv2d,
BatchNorm2d, Linear ... with the file's weights as their parameters, so the
model fine-tunes) and the generic layers of :mod:`striate.onnx.layers`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from ..errors import OnnxError, StriateError, UnsupportedOperatorError
from ..nn.graph import Graph
from ..nn.module import Module
from . import _convert_act, _convert_nn, _convert_pool, _convert_tensor  # noqa: F401  (registration)
from ._context import CONVERTERS, Const, Dyn, NodeContext, Value
from ._proto import check_model, opset_version, read_model, require_onnx, to_array, value_types
from .const_layers import Constant

__all__ = ['load', 'supported_operators']

_DEFAULT_DOMAINS = ("", "ai.onnx")
_RESERVED = set(dir(Graph)) | {"training"}


def supported_operators() -> list[str]:
    """The ONNX operator types striate imports, sorted."""
    return sorted(CONVERTERS)


def load(source: Any, *, check: bool = True) -> Graph:
    """Import an ONNX model as a striate :class:`~striate.nn.Graph`.

    Args:
        source: a path to an ``.onnx`` file, its bytes, or an ``onnx.ModelProto``.
        check: run ``onnx.checker`` first.

    Returns:
        A Graph in eval mode whose inputs are the model's non-initializer inputs
        (in order) and whose outputs are the model's outputs.  Its layers hold
        the model's weights as parameters: call ``.train()`` to fine-tune it.
        ``graph.metadata`` records the opset, producer and input/output shapes.

    Raises:
        MissingDependencyError: the ``onnx`` package is not installed.
        UnsupportedOperatorError: listing every operator striate does not import.
        OnnxError: the file is malformed, or a node has settings striate cannot
            express (the message names the node, its operator and the attribute).
    """
    model, label = read_model(source)
    if check:
        check_model(model, label)
    return Builder(model, label).build().as_graph()


def check_operators(model: Any, label: str) -> None:
    """Raise UnsupportedOperatorError listing every unsupported operator (count and nodes)."""
    found: dict[str, list[str]] = defaultdict(list)
    for i, node in enumerate(model.graph.node):
        op = node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
        if node.domain not in _DEFAULT_DOMAINS or node.op_type not in CONVERTERS:
            found[op].append(node.name or (node.output[0] if node.output else f"#{i}"))
    if found:
        parts = []
        for op, names in sorted(found.items()):
            shown = ", ".join(f"'{n}'" for n in names[:3]) + (", ..." if len(names) > 3 else "")
            parts.append(f"{op} ({len(names)} node{'s' if len(names) > 1 else ''}: {shown})")
        raise UnsupportedOperatorError(
            f"{label}: {len(found)} unsupported operator type{'s' if len(found) > 1 else ''}: "
            + "; ".join(parts) + f". striate imports: {', '.join(supported_operators())}"
        )


def sanitize(name: str, prefix: str) -> str:
    """A Graph-safe identifier from an ONNX name ('/features/0/Conv' -> 'features_0_Conv')."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_")
    if not s or s[0].isdigit():
        s = f"{prefix}_{s}" if s else prefix
    return s


class Imported:
    """The result of a build: the Graph (None if nothing runs) and every output value."""

    def __init__(self, graph: Graph | None, outputs: list[Value], input_names: list[str],
                 metadata: dict) -> None:
        self.graph, self.outputs, self.input_names, self.metadata = graph, outputs, input_names, metadata

    def as_graph(self) -> Graph:
        """The Graph, with constant outputs as Constant nodes; OnnxError if it has no inputs."""
        if self.graph is None:
            raise OnnxError(f"{self.metadata['source']}: the model has no run-time inputs "
                            "(every output is a constant), so there is no graph to build")
        g = self.graph
        names = []
        for k, v in enumerate(self.outputs):
            if isinstance(v, Const):
                node = Constant(v.value.shape, v.value.dtype.name)
                node.set_buffer("value", v.value)
                name = _unique(f"output_{k}", set(g._modules) | set(g.inputs))
                g.add(name, node, g.inputs[0])
                v = Dyn(name)
            names.append(v.name)
        g.output(*names)
        g.eval()
        object.__setattr__(g, "metadata", self.metadata)
        return g


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken or name in _RESERVED or name.startswith("_"):
        name, k = f"{base}_{k}", k + 1
    return name


class Builder:
    """Walks one ONNX graph and builds the striate Graph.

    Args:
        model: an onnx.ModelProto.
        label: how messages name it (a path).
        bind: graph input name -> array: inputs to treat as constants (the
            backend binds the weights that ONNX's node tests pass as inputs).
    """

    def __init__(self, model: Any, label: str, bind: dict[str, np.ndarray] | None = None) -> None:
        require_onnx()
        self.model, self.label = model, label
        self.opset = opset_version(model, label)
        self.nodes = list(model.graph.node)
        self.bind = dict(bind or {})
        self.values: dict[str, Value] = {}
        self.aliases: dict[int, str] = {}
        self.graph: Graph | None = None
        self.taken: set[str] = set()
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(self.nodes):
            for name in set(node.input):
                if name:
                    self.consumers[name].append(i)
        self.graph_outputs = {o.name for o in model.graph.output}
        self.types = value_types(model)

    # ------------------------------------------------------------------ values
    def lookup(self, name: str, ctx: NodeContext) -> Value:
        if name not in self.values:
            raise ctx.error(f"reads '{name}', which no earlier node, input or initializer defines")
        return self.values[name]

    def add_node(self, base: str, module: Module, inputs: list[str]) -> Dyn:
        name = _unique(base, self.taken)
        self.taken.add(name)
        self.graph.add(name, module, *inputs)
        return Dyn(name)

    def _inputs(self) -> list[str]:
        """Register initializers, bound inputs and graph inputs; return the run-time input names."""
        g = self.model.graph
        for init in g.initializer:
            try:
                self.values[init.name] = Const(to_array(init))
            except Exception as e:             # data that does not fit its declared shape
                raise OnnxError(f"{self.label}: initializer '{init.name}' is unreadable "
                                f"({type(e).__name__}: {e})") from None
        dynamic = []
        for vi in g.input:
            if vi.name in self.bind:
                self.values[vi.name] = Const(np.asarray(self.bind[vi.name]))
            elif vi.name not in self.values:
                if not vi.type.HasField("tensor_type"):
                    raise OnnxError(f"{self.label}: input '{vi.name}' is not a tensor "
                                    "(sequences, maps and optionals are not supported)")
                dynamic.append(vi.name)
        if dynamic:
            names = []
            for n in dynamic:
                names.append(_unique(sanitize(n, "input"), self.taken))
                self.taken.add(names[-1])
            self.graph = Graph(inputs=names)
            for onnx_name, name in zip(dynamic, names):
                self.values[onnx_name] = Dyn(name)
        return dynamic

    def _node_name(self, node: Any) -> str:
        base = node.name or (node.output[0] if node.output else "")
        return sanitize(base, node.op_type.lower())

    # ------------------------------------------------------------------ build
    def build(self) -> Imported:
        """Convert every node; return the Graph and the output values."""
        check_operators(self.model, self.label)
        dynamic = self._inputs()
        for i, node in enumerate(self.nodes):
            if i in self.aliases:                 # an Add fused into the node before it
                self.values[node.output[0]] = self.values[self.aliases[i]]
                continue
            try:
                ctx = NodeContext(self, i, node, self._node_name(node))
            except Exception as e:             # an attribute tensor that does not fit its shape
                raise OnnxError(f"{self.label}: node '{node.name or i}' ({node.op_type}) has "
                                f"unreadable attributes ({type(e).__name__}: {e})") from None
            result = self._convert(ctx)
            outs = list(result) if isinstance(result, (list, tuple)) else [result]
            for name, v in zip(node.output, outs):
                if name:
                    self.values[name] = v
        outputs = []
        for o in self.model.graph.output:
            if o.name not in self.values:
                raise OnnxError(f"{self.label}: output '{o.name}' is not computed by any node")
            outputs.append(self.values[o.name])
        return Imported(self.graph, outputs, dynamic, self._metadata(dynamic))

    @staticmethod
    def _convert(ctx: NodeContext) -> Any:
        """Run the node's converter; any failure becomes an OnnxError naming the node."""
        try:
            return CONVERTERS[ctx.op](ctx)
        except OnnxError:
            raise
        except (StriateError, ValueError, TypeError, IndexError, KeyError, OverflowError,
                MemoryError) as e:      # e.g. a folded constant of impossible shape
            raise OnnxError(f"{ctx.where()}: cannot import it ({type(e).__name__}: {e})") from None

    def _metadata(self, dynamic: list[str]) -> dict:
        def shape(name: str) -> list | None:
            s = self.types.get(name, (None, None))[1]
            return None if s is None else list(s)

        counts = Counter(n.op_type for n in self.nodes)
        return {
            "source": self.label,
            "format": "onnx",
            "opset": self.opset,
            "producer": f"{self.model.producer_name} {self.model.producer_version}".strip(),
            "inputs": [[n, shape(n)] for n in dynamic],
            "outputs": [[o.name, shape(o.name)] for o in self.model.graph.output],
            "operators": dict(sorted(counts.items())),
        }
