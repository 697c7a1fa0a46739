"""striate as an ONNX backend: ``onnx.backend.test.BackendTest(striate.onnx.backend, __name__)``.

Implements :class:`onnx.backend.base.Backend` (``prepare``, ``run_model``,
``run_node``, ``supports_device``) and exposes its methods as module-level
functions, like the backends of onnxruntime and Caffe2, so ONNX's own test
cases run against striate's layers.

ONNX's node tests pass a layer's weights as graph inputs (Conv's ``W``,
BatchNormalization's statistics, Clip's bounds ...).  A striate layer holds
its weights, so the prepared model binds such inputs as constants when
``run`` receives them and imports the model then; inputs that carry data
stay graph inputs.  Models run in eval mode, under ``no_grad``, on the CPU,
in the dtype of their weights and inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import OnnxError
from ..nn.module import no_grad
from ._context import CONST_INPUTS, Const
from ._proto import check_model, require_onnx
from .importer import Builder, check_operators

require_onnx()
from onnx.backend.base import Backend, BackendRep, namedtupledict  # noqa: E402

__all__ = ["StriateBackend", "StriateRep", "prepare", "run_model", "run_node", "supports_device",
           "is_compatible"]


def weight_inputs(model: Any) -> list[str]:
    """Graph inputs (without initializers) that feed a weight or setting position of some node."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = {i.name for i in g.input if i.name not in inits}
    found = []
    for node in g.node:
        for pos in CONST_INPUTS.get(node.op_type, ()):
            if pos < len(node.input) and node.input[pos] in inputs and node.input[pos] not in found:
                found.append(node.input[pos])
    return found


class StriateRep(BackendRep):
    """A prepared model: ``run(inputs)`` returns its outputs (a namedtuple by output name)."""

    def __init__(self, model: Any, label: str) -> None:
        self.model, self.label = model, label
        g = model.graph
        inits = {i.name for i in g.initializer}
        self.input_names = [i.name for i in g.input if i.name not in inits]
        self.output_names = [o.name for o in g.output]
        self.bound = weight_inputs(model)
        self.imported = None if self.bound else Builder(model, label).build()

    def _feeds(self, inputs: Any) -> dict[str, np.ndarray]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            seq = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            if len(seq) != len(self.input_names):
                raise OnnxError(f"{self.label}: expects {len(self.input_names)} inputs "
                                f"({', '.join(self.input_names)}); received {len(seq)}")
            feeds = dict(zip(self.input_names, seq))
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise OnnxError(f"{self.label}: missing inputs {missing}")
        return {k: np.asarray(v) for k, v in feeds.items()}

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        feeds = self._feeds(inputs)
        imported = self.imported
        if imported is None:
            imported = Builder(self.model, self.label, {n: feeds[n] for n in self.bound}).build()
        graph = imported.graph
        dynamic = [o for o in imported.outputs if not isinstance(o, Const)]
        results: list[np.ndarray] = []
        if dynamic:
            graph.output(*(o.name for o in dynamic))
            graph.eval()
            with no_grad():
                ys = graph(*(feeds[n] for n in imported.input_names))
            results = list(ys) if isinstance(ys, tuple) else [ys]
        outs, it = [], iter(results)
        for o in imported.outputs:
            outs.append(np.asarray(o.value if isinstance(o, Const) else next(it)))
        return namedtupledict("Outputs", self.output_names)(*outs)


class StriateBackend(Backend):
    """The ONNX backend interface over :func:`striate.onnx.load`'s importer (CPU only)."""

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> StriateRep:
        if not cls.supports_device(device):
            raise OnnxError(f"striate runs on the CPU only; received device {device!r}")
        label = kwargs.get("label", "<ModelProto>")
        check_model(model, label)
        check_operators(model, label)
        return StriateRep(model, label)

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: Any, inputs: Any, device: str = "CPU", outputs_info: Any = None,
                 **kwargs: Any) -> tuple[Any, ...]:
        """Run one NodeProto on ``inputs`` (a list in the node's input order, or a dict)."""
        onnx = require_onnx()
        names = [n for n in node.input if n]
        values = [np.asarray(inputs[n]) for n in names] if isinstance(inputs, dict) \
            else [np.asarray(v) for v in inputs]
        if len(values) != len(names):
            raise OnnxError(f"run_node: node '{node.name}' ({node.op_type}) has {len(names)} "
                            f"inputs; received {len(values)}")
        helper = onnx.helper
        graph_inputs = [helper.make_tensor_value_info(
            n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in zip(names, values)]
        graph_outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
        graph = helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        check_operators(model, "run_node")
        return StriateRep(model, "run_node").run(values)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.split(":")[0].upper() == "CPU"


is_compatible = StriateBackend.is_compatible
prepare = StriateBackend.prepare
run_model = StriateBackend.run_model
run_node = StriateBackend.run_node
supports_device = StriateBackend.supports_device
