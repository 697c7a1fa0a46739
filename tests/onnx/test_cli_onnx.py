"""The ONNX commands of the CLI: ``striate export``, ``striate convert``, ``striate summary m.onnx``."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import striate
from striate import cli, models, nn
from striate.nn.module import no_grad
from tests.onnx.export_util import randomize_batchnorm, run_ort

onnx = pytest.importorskip("onnx")


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def saved(tmp_path):
    """A fashion_cnn with random BatchNorm statistics, saved with its input shape."""
    striate.manual_seed(0)
    model = models.get_model("fashion_cnn", num_classes=4)
    randomize_batchnorm(model, np.random.default_rng(0))
    path = tmp_path / "m.npz"
    striate.save(model.eval(), path, metadata={"input_shape": [1, 28, 28]})
    return model, path


def _x(n=2):
    return np.random.default_rng(5).standard_normal((n, 1, 28, 28)).astype(np.float32)


def test_export_then_convert_back(saved, tmp_path, capsys):
    model, npz = saved
    out = tmp_path / "m.onnx"
    code, stdout, _ = run(capsys, "export", npz, out)
    assert code == 0
    assert stdout.startswith(f"wrote {out}: ONNX opset 13, input (N, 1, 28, 28), ")
    assert stdout.rstrip().endswith(f"{model.num_parameters():,} parameters")
    with no_grad():
        ref = model(_x())
    (got,) = run_ort(str(out), _x())
    assert np.max(np.abs(got - ref)) <= 1e-4

    back = tmp_path / "back.npz"
    code, stdout, _ = run(capsys, "convert", out, back, "--json")
    assert code == 0
    info = json.loads(stdout)
    assert info["input_shape"] == ["N", 1, 28, 28] and info["parameters"] == model.num_parameters()
    assert info["operators"]["Conv"] == 2
    loaded = striate.load(back)
    assert loaded.metadata["input_shape"] == [1, 28, 28]
    assert loaded.metadata["onnx"]["producer"].startswith("striate")
    with no_grad():
        assert np.max(np.abs(loaded.eval()(_x()) - ref)) <= 1e-5
    # the converted file exports again without --input-shape, and loads in a fresh process
    code, _, _ = run(capsys, "export", back, tmp_path / "again.onnx")
    assert code == 0
    script = f"import striate; m = striate.load({str(back)!r}); print(m.num_parameters())"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and int(done.stdout) == model.num_parameters(), done.stderr


def test_export_options(saved, tmp_path, capsys):
    model, npz = saved
    out = tmp_path / "m.onnx"
    code, stdout, _ = run(capsys, "export", npz, out, "--opset", "9", "--fold-batchnorm", "--json")
    assert code == 0
    info = json.loads(stdout)
    assert info["opset"] == 9 and info["input_shape"] == ["N", 1, 28, 28]
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 9
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node}
    assert info["nodes"] == len(proto.graph.node)
    with no_grad():
        ref = model(_x(3))
    (got,) = run_ort(str(out), _x(3))
    assert np.max(np.abs(got - ref)) <= 1e-4


def test_export_input_shape(tmp_path, capsys):
    """A model file without a recorded shape needs --input-shape; a zoo file has defaults."""
    striate.manual_seed(0)
    plain = tmp_path / "plain.npz"
    striate.save(nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU()), plain)
    code, _, err = run(capsys, "export", plain, tmp_path / "p.onnx")
    assert code == 2 and "records no input shape; give one with --input-shape" in err
    assert err.count("\n") == 1
    code, stdout, _ = run(capsys, "export", plain, tmp_path / "p.onnx", "--input-shape", "2,5,6")
    assert code == 0 and "input (N, 2, 5, 6)" in stdout
    zoo = tmp_path / "lenet.npz"
    striate.save(models.get_model("lenet5", rng=0), zoo)
    code, stdout, _ = run(capsys, "export", zoo, tmp_path / "l.onnx")
    assert code == 0 and "input (N, 1, 32, 32)" in stdout


def test_summary_of_an_onnx_file(saved, tmp_path, capsys):
    model, npz = saved
    out = tmp_path / "m.onnx"
    assert run(capsys, "export", npz, out)[0] == 0
    code, stdout, _ = run(capsys, "summary", out, "--json")
    assert code == 0
    d = json.loads(stdout)
    assert d["input_shape"] == [1, 1, 28, 28] and d["output_shape"] == [1, 4]
    assert d["total_params"] == model.num_parameters()
    assert d["total_macs"] == striate.summary(model, (1, 28, 28)).total_macs
    code, stdout, _ = run(capsys, "summary", out)
    assert code == 0 and "Conv2d" in stdout


def test_convert_a_residual_graph(tmp_path, capsys):
    striate.manual_seed(0)
    model = models.get_model("resnet20", num_classes=3)
    path = tmp_path / "r.onnx"
    striate.onnx.exporter.export(model, path, (3, 16, 16))
    code, stdout, _ = run(capsys, "convert", path, tmp_path / "r.npz")
    assert code == 0 and "input (N, 3, 16, 16)" in stdout
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with no_grad():
        np.testing.assert_allclose(striate.load(tmp_path / "r.npz").eval()(x), model.eval()(x),
                                   atol=1e-5)


def test_a_converted_residual_graph_loads_in_a_fresh_process(tmp_path, capsys):
    striate.manual_seed(0)
    striate.onnx.exporter.export(models.get_model("resnet20", num_classes=3), tmp_path / "r.onnx",
                                 (3, 16, 16))
    assert run(capsys, "convert", tmp_path / "r.onnx", tmp_path / "r.npz")[0] == 0
    script = f"import striate; print(striate.load({str(tmp_path / 'r.npz')!r}).num_parameters())"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]


def _onnx_with(op: str, path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], name="n0")], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


@pytest.mark.parametrize("argv, pattern", [
    (["export", "{tmp}/missing.npz", "{tmp}/m.onnx"], "DataError: .*missing.npz: no such file"),
    (["export", "{tmp}/lp.npz", "{tmp}/m.onnx"], r"OnnxError: .*0 \(LPPool2d\): norm_type=3"),
    (["export", "{tmp}/lp.npz", "{tmp}/m.onnx", "--opset", "18"], "opset must be an int from 9 to 17"),
    (["export", "{tmp}/lp.npz", "{tmp}/m.onnx", "--input-shape", "1,a"], "--input-shape must be"),
    (["convert", "{tmp}/garbage.onnx", "{tmp}/m.npz"], "OnnxError: .*garbage.onnx: not a valid ONNX"),
    (["convert", "{tmp}/cos.onnx", "{tmp}/m.npz"], "UnsupportedOperatorError: .*Cos"),
    (["convert", "{tmp}/missing.onnx", "{tmp}/m.npz"], "missing.onnx: no such ONNX file"),
    (["summary", "{tmp}/cos.onnx"], "UnsupportedOperatorError: .*Cos"),
])
def test_user_errors_are_one_line_exit_2(argv, pattern, tmp_path, capsys):
    striate.save(nn.Sequential(nn.LPPool2d(3, 2)), tmp_path / "lp.npz", metadata={"input_shape": [1, 4, 4]})
    (tmp_path / "garbage.onnx").write_bytes(b"not a protobuf at all")
    _onnx_with("Cos", tmp_path / "cos.onnx")
    code, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"striate {argv[0]}: error: ")
    assert re.search(pattern, err), err
