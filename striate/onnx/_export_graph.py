"""The graph under construction during an ONNX export: nodes, initializers, names, opset.

:class:`GraphBuilder` collects ``onnx.NodeProto`` s and initializers while the
exporter walks a model, hands out unique value names, and hides the
operators whose signature changed between opsets 9 and 17 (Clip's bounds and
Pad's pads became inputs in opset 11, Squeeze/Unsqueeze's axes in opset 13,
Softmax's axis semantics changed in 13, HardSwish exists from 14).  The
exporter's layer rules (:mod:`striate.onnx._export_ops`) only call these
helpers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class Unsupported(Exception):
    """Raised by a layer rule: this layer (with this configuration) has no ONNX form.

    The exporter collects these, and reports every one in a single OnnxError.
    """


class GraphBuilder:
    """Nodes and initializers of one ONNX graph, with opset-aware node helpers.

    Args:
        opset: the default-domain opset the graph is written for.
        dtype: the floating dtype of the model (float32 or float64); constants
            the rules create are cast to it.
    """

    def __init__(self, opset: int, dtype: np.dtype) -> None:
        from onnx import helper

        self.helper = helper
        self.opset = int(opset)
        self.dtype = np.dtype(dtype)
        self.nodes: list[Any] = []
        self.initializers: dict[str, np.ndarray] = {}       # name -> array, in creation order
        self._names: set[str] = set()
        self._param_names: dict[tuple[int, Any], tuple[str, Any]] = {}
        self.root_hint = ""          # the hint of the exported module itself (no key prefix)

    # ------------------------------------------------------------------ names
    def reserve(self, name: str) -> str:
        """Claim ``name`` (a graph input); error if it is already taken."""
        if name in self._names:
            raise ValueError(f"duplicate ONNX value name {name!r}")
        self._names.add(name)
        return name

    def fresh(self, hint: str) -> str:
        """A new unique value name based on ``hint`` ('conv1', then 'conv1_1', ...)."""
        hint = hint or "v"
        name, i = hint, 0
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    # ------------------------------------------------------------------ constants
    def key(self, hint: str, attr: str) -> str:
        """The state-dict key of parameter ``attr`` of the module named ``hint``."""
        return attr if hint == self.root_hint else f"{hint}.{attr}"

    def param(self, key: str, array: np.ndarray, owner: Any, variant: Any = None) -> str:
        """An initializer holding a model parameter or buffer, named by its state-dict key.

        The same ``owner`` (a Parameter or buffer array, by identity) and
        ``variant`` (e.g. a reshape) give the same initializer, so a shared
        weight is stored once.
        """
        memo = (id(owner), variant)
        if memo in self._param_names:
            return self._param_names[memo][0]
        name = self.fresh(key)
        self.initializers[name] = np.ascontiguousarray(array)
        self._param_names[memo] = (name, owner)          # holding owner keeps its id unique
        return name

    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """An initializer holding a constant (the model dtype unless ``dtype`` is given)."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.fresh(hint)
        self.initializers[name] = np.ascontiguousarray(arr)
        return name

    def ints(self, values: Sequence[int], hint: str) -> str:
        """An int64 1-D initializer (shapes, axes, pads, indices)."""
        return self.const(np.asarray(list(values), dtype=np.int64), hint, np.int64)

    # ------------------------------------------------------------------ nodes
    def node(self, op: str, inputs: Sequence[str], hint: str, n_out: int = 1,
             **attrs: Any) -> Any:
        """Append node ``op`` reading ``inputs``; returns its output name (a list if n_out > 1).

        Attributes whose value is None are left out; ``hint`` names the node and
        its outputs.
        """
        outs = [self.fresh(hint) for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        node = self.helper.make_node(op, list(inputs), outs, name=self.fresh(f"{hint}/{op}"),
                                     **attrs)
        self.nodes.append(node)
        return outs[0] if n_out == 1 else outs

    def clip(self, x: str, lo: float, hi: float, hint: str) -> str:
        """Clip(x, lo, hi): attributes before opset 11, inputs from 11."""
        if self.opset < 11:
            return self.node("Clip", [x], hint, min=float(lo), max=float(hi))
        return self.node("Clip", [x, self.const(lo, f"{hint}/min"), self.const(hi, f"{hint}/max")],
                         hint)

    def pad(self, x: str, pads: Sequence[int], mode: str, hint: str) -> str:
        """Pad(x) with ONNX pads [b_0, ..., b_k, e_0, ..., e_k] and mode
        'constant' (zeros), 'reflect' or 'edge'."""
        if self.opset < 11:
            return self.node("Pad", [x], hint, mode=mode, pads=[int(p) for p in pads])
        return self.node("Pad", [x, self.ints(pads, f"{hint}/pads")], hint, mode=mode)

    def reshape(self, x: str, shape: Sequence[int], hint: str) -> str:
        """Reshape(x, shape); 0 copies the input's size on that axis, -1 is inferred."""
        return self.node("Reshape", [x, self.ints(shape, f"{hint}/shape")], hint)

    def softmax(self, op: str, x: str, axis: int, ndim: int, hint: str) -> str:
        """Softmax or LogSoftmax along ``axis`` (>= 0) of an ``ndim``-D value.

        Before opset 13 the operator normalises over all axes from ``axis`` on
        (the input coerced to 2-D), so an axis other than the last is moved to
        the end by a Transpose and back.
        """
        if self.opset >= 13 or axis == ndim - 1:
            return self.node(op, [x], hint, axis=int(axis))
        perm = list(range(ndim))
        perm[axis], perm[-1] = perm[-1], perm[axis]              # a swap is its own inverse
        t = self.node("Transpose", [x], f"{hint}/to_last", perm=perm)
        y = self.node(op, [t], hint, axis=ndim - 1)
        return self.node("Transpose", [y], f"{hint}/back", perm=perm)

    def binary(self, op: str, x: str, value: Any, hint: str) -> str:
        """``op``(x, constant) for the elementwise Add, Sub, Mul and Div."""
        return self.node(op, [x, self.const(value, f"{hint}/{op.lower()}_const")], hint)

    def fill_initializers(self, graph: Any) -> None:
        """Write the initializers into ``graph`` (raw little-endian data, one copy each)."""
        for name, arr in self.initializers.items():
            t = graph.initializer.add()
            t.name = name
            t.data_type = self.helper.np_dtype_to_tensor_dtype(arr.dtype)
            t.dims.extend(arr.shape)
            t.raw_data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
