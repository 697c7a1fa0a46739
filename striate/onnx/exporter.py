"""Export a striate model to ONNX: ``striate.onnx.export(model, path, input_shape)``.

The exporter traces the model once in evaluation mode (a zero input of batch
size 1, under ``no_grad``) and, module by module, writes the ONNX nodes that
compute the same thing: Sequential children in order, Graph nodes with their
named inputs, the blocks (BasicBlock, Bottleneck, BasicConv2d,
InceptionModule) by their own rules, and every leaf layer by the rule of its
class (:mod:`striate.onnx._export_ops`, :mod:`striate.onnx._export_pool`).
The traced shapes fix what ONNX needs statically (pooling windows, reshape
sizes); only the batch axis stays dynamic.  Layers without an ONNX form are
all collected and reported in one :class:`~striate.errors.OnnxError`.  The
model is left as it was (train/eval flags and backward caches restored).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError, OnnxError
from ..nn.blocks import BasicConv2d, InceptionModule, _ResidualBlock
from ..nn.container import Sequential
from ..nn.graph import Graph
from ..nn.module import Module, no_grad
from ._export_graph import GraphBuilder, Unsupported

__all__ = ["export", "MIN_OPSET", "MAX_OPSET"]

MIN_OPSET, MAX_OPSET = 9, 17


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            "striate.onnx.export needs the onnx package: pip install striate[onnx] "
            "(or pip install onnx)") from None
    return onnx


def _rule_table() -> dict[type, Any]:
    from . import _export_ops, _export_pool

    return {**_export_ops.rules(), **_export_pool.rules()}


class _Abort(Exception):
    """The trace cannot go on (a module without forward); the problems so far are reported."""


class _Exporter:
    """Walks a model, running it and writing ONNX nodes side by side."""

    def __init__(self, builder: GraphBuilder, root: Module) -> None:
        self.b = builder
        self.rules = _rule_table()
        self.problems: list[str] = []
        # node and initializer names: paths from the exported module (its state-dict keys)
        self.paths = {id(m): name for name, m in root.named_modules()}
        builder.root_hint = self._hint(root)

    def _hint(self, m: Module) -> str:
        return self.paths.get(id(m)) or type(m).__name__.lower()

    # ------------------------------------------------------------------ dispatch
    def _rule(self, m: Module) -> Any:
        """The rule of m's class, or of a base class whose forward m does not override."""
        for cls in type(m).__mro__:
            rule = self.rules.get(cls)
            if rule is not None and getattr(type(m), "forward") is getattr(cls, "forward"):
                return rule
        return None

    def emit(self, m: Module, names: list[str], vals: list[np.ndarray]) -> tuple[Any, Any]:
        """Write module ``m`` applied to ``names``; returns (output name(s), output value(s))."""
        hint = self._hint(m)
        kind = type(m)
        if kind is Sequential:
            return self._sequential(m, names, vals)
        if kind is Graph:
            return self._graph(m, names, vals)
        if isinstance(m, _ResidualBlock) and kind.forward is _ResidualBlock.forward:
            return self._residual(m, names, vals, hint)
        if kind is BasicConv2d:
            out, v = self.emit(m.bn, *self.emit_one(m.conv, names, vals))
            return self.b.node("Relu", [out], hint), np.maximum(v, 0)
        if kind is InceptionModule:
            return self._inception(m, names, vals, hint)
        try:
            y = m(*vals)
        except NotImplementedError:                       # e.g. a ModuleList: nothing to trace
            self.problems.append(f"{m.where()}: has no forward()")
            raise _Abort from None
        rule = self._rule(m)
        if rule is None:
            why = "has no ONNX export rule" if not m._modules else \
                "is a custom block without an ONNX export rule"
            self.problems.append(f"{m.where()}: {why}")
            return self.b.fresh(f"{hint}/unsupported"), y
        try:
            return rule(self.b, m, names, vals, y, hint), y
        except Unsupported as e:
            self.problems.append(f"{m.where()}: {e}")
            return self.b.fresh(f"{hint}/unsupported"), y

    def emit_one(self, m: Module, names: list[str], vals: list[np.ndarray]) -> tuple[list, list]:
        """emit() for a module with one output, as ([name], [value]) for chaining."""
        out, v = self.emit(m, names, vals)
        return [out], [v]

    # ------------------------------------------------------------------ containers
    def _sequential(self, m: Sequential, names: list, vals: list) -> tuple[Any, Any]:
        out: Any = (names[0], vals[0]) if len(names) == 1 else (tuple(names), tuple(vals))
        for child in m:                                    # an empty Sequential is the identity
            out = self.emit(child, *_as_lists(*out))
        return out

    def _graph(self, g: Graph, names: list, vals: list) -> tuple[Any, Any]:
        if len(names) != len(g.inputs):
            raise OnnxError(f"{g.where()} expects {len(g.inputs)} input(s); the export gave "
                            f"{len(names)} (one input_shape per graph input)")
        env = {k: (n, v) for k, n, v in zip(g.inputs, names, vals)}
        for node in g.nodes:
            ins = [env[i] for i in node.inputs]
            env[node.name] = self.emit(node.module, [n for n, _ in ins], [v for _, v in ins])
        outs = [env[o] for o in g.outputs]
        if len(outs) == 1:
            return outs[0]
        return tuple(n for n, _ in outs), tuple(v for _, v in outs)

    # ------------------------------------------------------------------ blocks
    def _residual(self, m: _ResidualBlock, names: list, vals: list, hint: str) -> tuple[Any, Any]:
        """conv/norm stages with ReLUs between, plus the (downsampled) identity, then ReLU."""
        cur = (names, vals)
        for i, (conv, norm) in enumerate(m._stages):
            out, v = self.emit(getattr(m, norm), *self.emit_one(getattr(m, conv), *cur))
            if i < len(m._stages) - 1:
                out, v = self.b.node("Relu", [out], f"{hint}/relu{i + 1}"), np.maximum(v, 0)
            cur = ([out], [v])
        ident, iv = (names[0], vals[0]) if m.downsample is None else self.emit(m.downsample, names, vals)
        total = self.b.node("Add", [cur[0][0], ident], f"{hint}/add")
        return self.b.node("Relu", [total], hint), np.maximum(cur[1][0] + iv, 0)

    def _inception(self, m: InceptionModule, names: list, vals: list, hint: str) -> tuple[Any, Any]:
        outs = [self.emit(getattr(m, br), names, vals) for br in m._branches]
        y = np.concatenate([v for _, v in outs], axis=1)
        return self.b.node("Concat", [n for n, _ in outs], hint, axis=1), y


def _as_lists(name: Any, val: Any) -> tuple[list, list]:
    """A module's output (one name or a tuple of names) as the input lists of the next one."""
    if isinstance(name, tuple):
        return list(name), list(val)
    return [name], [val]


# ---------------------------------------------------------------------------- arguments


def _shapes(input_shape: Any) -> list[tuple[int, ...]]:
    """One shape (without the batch axis) per model input."""
    def ok(s: Any) -> bool:
        return isinstance(s, (tuple, list)) and len(s) > 0 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in s)

    if ok(input_shape):
        return [tuple(int(v) for v in input_shape)]
    if isinstance(input_shape, (tuple, list)) and input_shape and all(ok(s) for s in input_shape):
        return [tuple(int(v) for v in s) for s in input_shape]
    raise ConfigError("export: input_shape must be a tuple of positive ints without the batch "
                      "axis, e.g. (1, 28, 28), or a list of such tuples (one per graph input); "
                      f"received {input_shape!r}")


def _names(value: Any, count: int, what: str) -> list[str]:
    """``count`` value names: a list as given, or a str (suffixed _0, _1, ... if count > 1)."""
    if isinstance(value, str) and value:
        return [value] if count == 1 else [f"{value}_{i}" for i in range(count)]
    if isinstance(value, (list, tuple)) and len(value) == count and \
            all(isinstance(v, str) and v for v in value) and len(set(value)) == count:
        return list(value)
    raise ConfigError(f"export: {what} must be a non-empty name or a list of {count} distinct "
                      f"names; received {value!r}")


def _check_args(model: Any, opset: Any, batch_size: Any) -> None:
    if not isinstance(model, Module):
        raise ConfigError(f"export: model must be a striate Module; received {type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"export: opset must be an int from {MIN_OPSET} to {MAX_OPSET}; "
                          f"received {opset!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"export: batch_size must be a positive int; received {batch_size!r}")


def _model_dtype(model: Module) -> np.dtype:
    for p in model.parameters():
        return p.data.dtype
    for b in model.buffers():
        if b.dtype.kind == "f":
            return b.dtype
    return np.dtype(np.float32)


# ---------------------------------------------------------------------------- export


def _trace(model: Module, b: GraphBuilder, names: list[str], shapes: list) -> tuple[list, list]:
    """Run the exporter over ``model`` in eval mode, restoring flags and caches afterwards."""
    saved = [(m, m.training, m._cache) for m in model.modules()]
    vals = [np.zeros((1, *s), dtype=b.dtype) for s in shapes]
    ex = _Exporter(b, model)
    try:
        model.eval()
        with no_grad():
            out, val = ex.emit(model, names, vals)
    except _Abort:
        out = val = None
    finally:
        for m, training, cache in saved:
            object.__setattr__(m, "training", training)
            object.__setattr__(m, "_cache", cache)
    if ex.problems:
        raise OnnxError(f"export: {len(ex.problems)} layer(s) of {type(model).__name__} cannot be "
                        "exported to ONNX: " + "; ".join(ex.problems))
    return _as_lists(out, val)


def _rename(b: GraphBuilder, old: str, new: str) -> None:
    """Rename value ``old`` to ``new`` in every node and initializer."""
    for node in b.nodes:
        for seq in (node.input, node.output):
            for j, v in enumerate(seq):
                if v == old:
                    seq[j] = new
    if old in b.initializers:
        b.initializers = {new if k == old else k: v for k, v in b.initializers.items()}
    b._names.add(new)


def _name_outputs(b: GraphBuilder, outs: list[str], wanted: list[str], inputs: list[str]) -> None:
    """Give the output values the names ``wanted`` (an Identity where a rename cannot do)."""
    done: set[str] = set()
    for src, dst in zip(outs, wanted):
        if src == dst:
            done.add(src)
            continue
        if dst in b._names:                       # an intermediate value has the name: move it
            moved = b.fresh(f"{dst}_inner")
            _rename(b, dst, moved)
            outs[:] = [moved if o == dst else o for o in outs]
            src = moved if src == dst else src
        if src in inputs or src in done or src in wanted:
            b.nodes.append(b.helper.make_node("Identity", [src], [dst], name=b.fresh(f"{dst}/Identity")))
            b._names.add(dst)
        else:
            _rename(b, src, dst)
        done.add(dst)


def build_model(model: Module, input_shape: Any, opset: int = 13, *, dynamic_batch: bool = True,
                batch_size: int = 1, input_name: Any = "input", output_name: Any = "output") -> Any:
    """The ONNX ModelProto of ``model`` (see :func:`export`), without writing a file."""
    _require_onnx()
    from onnx import helper

    from .. import __version__

    shapes = _shapes(input_shape)
    b = GraphBuilder(opset, _model_dtype(model))
    in_names = [b.reserve(n) for n in _names(input_name, len(shapes), "input_name")]
    outs, vals = _trace(model, b, in_names, shapes)
    out_names = _names(output_name, len(outs), "output_name")
    if set(out_names) & set(in_names):
        raise ConfigError(f"export: output names {out_names} clash with input names {in_names}")
    _name_outputs(b, outs, out_names, in_names)
    elem = helper.np_dtype_to_tensor_dtype(b.dtype)

    def batch(i: int) -> Any:
        if not dynamic_batch:
            return int(batch_size)
        return "N" if i == 0 else f"N_{in_names[i]}"

    graph_inputs = [helper.make_tensor_value_info(n, elem, [batch(i), *s])
                    for i, (n, s) in enumerate(zip(in_names, shapes))]
    first = "N" if (dynamic_batch and len(shapes) == 1) else None
    graph_outputs = [helper.make_tensor_value_info(
        n, helper.np_dtype_to_tensor_dtype(v.dtype),
        [first if dynamic_batch else int(batch_size) if len(shapes) == 1 else None, *v.shape[1:]])
        for n, v in zip(out_names, vals)]
    graph = helper.make_graph(b.nodes, type(model).__name__, graph_inputs, graph_outputs)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="striate",
                              producer_version=__version__,
                              doc_string=f"exported by striate {__version__} from {type(model).__name__}")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    b.fill_initializers(proto.graph)                     # after make_model, which copies the graph
    return proto


def _serialize_checked(proto: Any) -> bytes:
    """The file bytes of ``proto``, after onnx.checker accepts them."""
    import onnx

    try:
        data = proto.SerializeToString()
    except ValueError as e:                                  # protobuf's 2 GiB limit
        raise OnnxError(f"export: the model is too large for one ONNX file ({e})") from None
    try:
        onnx.checker.check_model(data)
    except (onnx.checker.ValidationError, ValueError) as e:     # a bug of the exporter's
        raise OnnxError(f"export: the ONNX model written for {proto.graph.name} fails "
                        f"onnx.checker: {e}") from None
    return data


def _write(data: bytes, path: str) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"export: the folder of '{path}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export(model: Module, path: Any, input_shape: Any, opset: int = 13, *,
           dynamic_batch: bool = True, batch_size: int = 1, input_name: Any = "input",
           output_name: Any = "output", fold_batchnorm: bool = False) -> Any:
    """Write ``model`` as an ONNX file that onnxruntime (and :func:`striate.onnx.load`) runs.

    The model is exported as it computes in evaluation mode (BatchNorm with its
    running statistics, Dropout the identity); the model itself is not changed.

    Args:
        model: any striate model built from supported layers: every zoo model,
            Sequential and Graph models, the blocks of :mod:`striate.nn.blocks`.
        path: the .onnx file to write (atomically), or None to only return the model.
        input_shape: the input's shape WITHOUT the batch axis, e.g. (3, 32, 32) or
            (40, 200) for a 1-D model, as for :func:`striate.summary`; a list of
            shapes for a Graph with several inputs (e.g. [(C, H, W), (5,)] for
            features and RoIPool boxes, whose first axis is then the box count).
            The spatial sizes are fixed in the file; the batch axis is dynamic.
        opset: the ONNX opset, 9 to 17 (13 by default).
        dynamic_batch: name the first axis of every input 'N' (and 'N_<name>' for
            further inputs) so any batch size runs; False fixes it to ``batch_size``.
        batch_size: the fixed batch size when dynamic_batch is False.
        input_name, output_name: the graph's input and output names (a list for
            several; a single name gets _0, _1, ... appended).
        fold_batchnorm: export :func:`striate.fold_batchnorm(model)` (BatchNorm
            merged into the preceding convolution or linear layer) instead.

    Shape:
        the ONNX input is (N, *input_shape) in the model's dtype (float32 for
        onnxruntime; float64 models export as double).

    Returns:
        The ``onnx.ModelProto`` (checked with ``onnx.checker``).

    Raises:
        OnnxError: naming every layer (path and class) that has no ONNX form
            (e.g. LPPool with odd p, AdaptiveMaxPool whose input size is not a
            multiple of its output, BatchNorm without running statistics).
        ConfigError: bad arguments; ShapeError: the model rejects input_shape.
        MissingDependencyError: onnx is not installed.
    """
    _check_args(model, opset, batch_size)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"export: path must be a file name or None; received {type(path).__name__}")
    if fold_batchnorm:
        from ..fold import fold_batchnorm as fold

        model = fold(model)
    proto = build_model(model, input_shape, int(opset), dynamic_batch=dynamic_batch,
                        batch_size=batch_size, input_name=input_name, output_name=output_name)
    data = _serialize_checked(proto)
    if path is not None:
        _write(data, os.fspath(path))
    return proto
