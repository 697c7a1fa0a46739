"""The benchmark's quick mode runs end to end (a smoke test: no timing is asserted)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from tests.util import torch_or_skip

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"


def test_quick_mode_produces_every_row(tmp_path, capsys):
    torch_or_skip()
    spec = importlib.util.spec_from_file_location("striate_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--quick", "--json", str(tmp_path / "rows.json")])
    names = [r["workload"] for r in rows]
    assert names[0].startswith("fashion_cnn train step") and names[2].startswith("resnet20 train step")
    assert sum(n.startswith("Conv2d") for n in names) == 8
    assert names[-2:] == ["peak RSS, fashion_cnn training", "peak RSS, resnet20 training"]
    for r in rows:
        assert r["ratio_vs_torch"] > 0
    assert (tmp_path / "rows.json").exists()
    if importlib.util.find_spec("onnxruntime") is not None:
        assert "ratio_vs_onnxruntime" in rows[1]
    else:
        pytest.skip("onnxruntime absent: inference compared with torch only")


def test_conv_routes_quick_mode_times_both_routes():
    path = BENCH.parent / "conv_routes.py"
    spec = importlib.util.spec_from_file_location("striate_conv_routes", path)
    routes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(routes)
    rows = routes.main(["--quick"])
    assert [r["shape"] for r in rows] == routes.QUICK
    for r in rows:
        assert min(r["infer_im2col"], r["infer_dft"], r["train_im2col"], r["train_dft"]) > 0
        assert r["model_ratio"] > 0 and set(r["auto"].values()) <= {"im2col", "dft"}
