"""What an operator converter sees: the node, its inputs as constants or graph values, ``emit``.

A converter turns one ONNX node into striate modules.  Its inputs are
:class:`Const` (known at import: initializers and everything computed from
them) or :class:`Dyn` (a value of the striate graph).  ``ctx.emit(module,
*inputs)`` adds the module as a graph node, or, when every input is a
constant, runs it at once and returns the result as a new constant: this is
how constant subgraphs (Shape of a weight, ConstantOfShape, Unsqueeze of a
scale ...) are folded, with the same code that runs them in a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import OnnxError
from ..nn.module import Module, no_grad
from ._proto import attributes
from .const_layers import WithConstants

_MISSING = object()

#: the largest tensor (in elements) a constant subgraph may create at import: 2^30,
#: 4 GiB of float32; a file asking for more is refused rather than allocated
MAX_CONSTANT_ELEMENTS = 1 << 30


@dataclass(frozen=True)
class Const:
    """A value known at import time."""

    value: np.ndarray


@dataclass(frozen=True)
class Dyn:
    """A value computed when the model runs: a graph input or node of the striate Graph."""

    name: str


Value = Const | Dyn

#: op_type -> converter(ctx) returning the node's output value(s)
CONVERTERS: dict[str, Callable[["NodeContext"], Any]] = {}
#: op_type -> input positions that hold weights or settings: the backend binds graph
#: inputs found there as constants before importing (see striate.onnx.backend)
CONST_INPUTS: dict[str, tuple[int, ...]] = {}


def converter(*ops: str, const: tuple[int, ...] = ()) -> Callable:
    """Register a converter for the ONNX operator(s) ``ops``."""
    def register(fn: Callable) -> Callable:
        for op in ops:
            CONVERTERS[op] = fn
            CONST_INPUTS[op] = tuple(const)
        return fn
    return register


class NodeContext:
    """One node being converted: attributes, inputs, types, and ``emit``."""

    def __init__(self, builder: Any, index: int, node: Any, name: str) -> None:
        self.builder = builder
        self.index = index
        self.node = node
        self.op = node.op_type
        self.opset = builder.opset
        self.name = name
        self.attrs = attributes(node)

    # ------------------------------------------------------------------ errors
    def where(self) -> str:
        """"file: node 'conv1' (Conv)": how messages name this node."""
        label = self.node.name or (self.node.output[0] if self.node.output else f"#{self.index}")
        return f"{self.builder.label}: node '{label}' ({self.op})"

    def error(self, message: str, attribute: str | None = None) -> OnnxError:
        """An OnnxError naming the file, the node, its operator and the attribute."""
        attr = f", attribute '{attribute}'" if attribute else ""
        return OnnxError(f"{self.where()}{attr}: {message}")

    # ------------------------------------------------------------------ attributes
    def attr(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.attrs:
            return self.attrs[name]
        if default is _MISSING:
            raise self.error("required attribute is missing", name)
        return default

    def ints(self, name: str, default: Any = _MISSING) -> list[int] | None:
        value = self.attr(name, default)
        if value is None:
            return None
        try:
            return [int(v) for v in np.asarray(value).reshape(-1)]
        except (TypeError, ValueError):
            raise self.error(f"expected a list of integers; received {value!r}", name) from None

    # ------------------------------------------------------------------ inputs
    def has(self, i: int) -> bool:
        """Whether optional input ``i`` is given."""
        return i < len(self.node.input) and self.node.input[i] != ""

    def value(self, i: int) -> Value:
        if not self.has(i):
            raise self.error(f"input {i} is required but missing")
        return self.builder.lookup(self.node.input[i], self)

    def values(self) -> list[Value]:
        """Every given input, in order (omitted optional inputs skipped)."""
        return [self.value(i) for i in range(len(self.node.input)) if self.has(i)]

    def const(self, i: int, what: str) -> np.ndarray:
        """Input ``i`` as an array; OnnxError if it is only known at run time."""
        v = self.value(i)
        if isinstance(v, Const):
            return v.value
        raise self.error(
            f"input {i} ({what}) must be a constant (an initializer or computed from "
            f"constants); received '{self.node.input[i]}', which is only known at run time"
        )

    def const_or(self, i: int, what: str, default: Any) -> Any:
        return self.const(i, what) if self.has(i) else default

    def info(self, i: int) -> tuple[np.dtype | None, tuple | None]:
        """(dtype, shape) of input ``i`` as far as known (None where unknown)."""
        v = self.value(i)
        if isinstance(v, Const):
            return v.value.dtype, tuple(v.value.shape)
        return self.builder.types.get(self.node.input[i], (None, None))

    def rank(self, i: int) -> int | None:
        shape = self.info(i)[1]
        return None if shape is None else len(shape)

    def is_float(self, i: int) -> bool:
        dtype = self.info(i)[0]
        return dtype is not None and dtype.kind == "f"

    def output_used(self, k: int) -> bool:
        """Whether output ``k`` of this node is read by another node or is a graph output."""
        if k >= len(self.node.output) or not self.node.output[k]:
            return False
        name = self.node.output[k]
        return bool(self.builder.consumers.get(name)) or name in self.builder.graph_outputs

    def only_first_output(self, what: str) -> None:
        for k in range(1, len(self.node.output)):
            if self.output_used(k):
                raise self.error(f"output {k} ({what}) is not supported; only the first output is")

    # ------------------------------------------------------------------ building
    def check_size(self, shape: Any, what: str) -> None:
        """Refuse a constant of more than MAX_CONSTANT_ELEMENTS elements before making it."""
        dims = [int(d) for d in np.asarray(shape).reshape(-1)]
        if any(d < 0 for d in dims) or int(np.prod(dims, dtype=object)) > MAX_CONSTANT_ELEMENTS:
            raise self.error(f"{what} of shape {dims} is negative or larger than "
                             f"{MAX_CONSTANT_ELEMENTS} elements")

    def emit(self, module: Module, *inputs: Value, suffix: str = "") -> Value:
        """Add ``module(*inputs)`` to the graph, or run it now if every input is constant."""
        if all(isinstance(v, Const) for v in inputs):
            module.eval()
            with no_grad():
                y = module(*(v.value for v in inputs))
            return Const(np.asarray(y))
        fixed = [i for i, v in enumerate(inputs) if isinstance(v, Const)]
        if fixed:
            consts = [inputs[i].value for i in fixed]
            wrapper = WithConstants(module, fixed, [c.shape for c in consts],
                                    [c.dtype.name for c in consts])
            for i, c in zip(fixed, consts):
                wrapper.set_constant(i, c)
            module = wrapper
        names = [v.name for v in inputs if isinstance(v, Dyn)]
        return self.builder.add_node(self.name + (f"_{suffix}" if suffix else ""), module, names)

    def fuse_next_add(self, accept: Callable[[np.ndarray], np.ndarray | None]) -> np.ndarray | None:
        """Absorb an Add that is the only reader of this node's output into this node.

        ``accept(constant)`` returns the bias to use (or None to refuse).  If the
        next node is an Add of this output and a constant that ``accept`` takes,
        the Add is skipped and its output becomes this node's; the bias is returned.
        """
        b = self.builder
        out = self.node.output[0]
        readers = b.consumers.get(out, [])
        if len(readers) != 1 or out in b.graph_outputs or self.opset < 7:
            return None
        nxt = b.nodes[readers[0]]
        if nxt.op_type != "Add" or nxt.domain not in ("", "ai.onnx") or len(nxt.input) != 2:
            return None
        other = nxt.input[1] if nxt.input[0] == out else nxt.input[0]
        v = b.values.get(other)
        if other == out or not isinstance(v, Const):
            return None
        bias = accept(v.value)
        if bias is not None:
            b.aliases[readers[0]] = out
        return bias
