"""Helpers of the ONNX export tests: run an exported model in onnxruntime, compare with striate."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pytest

from striate.nn.module import Module, no_grad
from striate.nn.normalization import _BatchNorm


def session(proto_or_path: Any) -> Any:
    """An onnxruntime CPU session (one thread, warnings off); skips without onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    src = proto_or_path if isinstance(proto_or_path, str) else proto_or_path.SerializeToString()
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def run_ort(proto_or_path: Any, *inputs: np.ndarray) -> list[np.ndarray]:
    """Every output of the exported model for ``inputs`` (fed in graph-input order)."""
    sess = session(proto_or_path)
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, inputs)))


def randomize_batchnorm(model: Module, rng: np.random.Generator) -> None:
    """Random BatchNorm affine parameters and running statistics (mean ~ N(0, 0.1^2),
    variance ~ U(0.5, 2)), so evaluation mode is a non-trivial per-channel map.

    (Statistics of real activations would be more realistic, but a channel whose
    mean is large against its spread then amplifies float32 rounding a lot.)
    """
    for bn in (m for m in model.modules() if isinstance(m, _BatchNorm)):
        if bn.weight is not None:
            bn.weight.data[...] = rng.uniform(0.5, 1.5, bn.weight.data.shape)
            bn.bias.data[...] = rng.normal(0.0, 0.1, bn.bias.data.shape)
        if bn.running_mean is not None:
            c = bn.num_features
            bn.set_buffer("running_mean", rng.normal(0.0, 0.1, c).astype(bn.running_mean.dtype))
            bn.set_buffer("running_var", rng.uniform(0.5, 2.0, c).astype(bn.running_var.dtype))


def compare_ort(model: Module, shape: Sequence[int], batches: Sequence[int] = (2, 3),
                opset: int = 13, atol: float = 1e-5, seed: int = 0, **kwargs: Any) -> Any:
    """Export ``model`` for ``shape`` and check onnxruntime's output, and that of the file
    imported back with striate.onnx.load, against striate's eval-mode output for random
    inputs of each batch size; returns the ModelProto."""
    import striate.onnx
    from striate.onnx.exporter import export

    proto = export(model, None, shape, opset, **kwargs)
    imported = striate.onnx.load(proto)
    sess = session(proto)
    name = sess.get_inputs()[0].name
    rng = np.random.default_rng(seed)
    model.eval()
    for n in batches:
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        with no_grad():
            ref, back = model(x), imported(x)
        (got,) = sess.run(None, {name: x})
        for what, y in (("onnxruntime", got), ("striate.onnx.load", back)):
            assert y.shape == ref.shape, f"batch {n}: {what} {y.shape} vs striate {ref.shape}"
            err = float(np.max(np.abs(y - ref)))
            assert err <= atol, f"batch {n}, opset {opset}: max |{what} - striate| = {err:.3g}"
    return proto


def op_types(proto: Any) -> list[str]:
    return [n.op_type for n in proto.graph.node]
