"""The command line: train/evaluate/predict/models/datasets end to end on tiny fake data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from striate import cli
from tests.data.helpers import fake_fashion_mnist


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """A 60/20-image Fashion-MNIST look-alike in data_dir, accepted by the checksum registry."""
    return fake_fashion_mnist(tmp_path, monkeypatch, n_train=60, n_test=20, seed=3)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_writes_model_metrics_checkpoint_and_json(fake_fashion, tmp_path, capsys):
    data_dir, _ = fake_fashion
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", "--epochs", "2", "--batch-size", "20", "--data-dir",
                          str(data_dir), "--out", str(out), "--no-progress", "--json")
    assert code == 0
    final = json.loads(stdout.strip().splitlines()[-1])
    assert set(final) == {"test_accuracy", "test_loss", "epochs", "seconds"}
    assert final["epochs"] == 2 and 0.0 <= final["test_accuracy"] <= 1.0
    assert (out / "model.npz").exists() and (out / "checkpoint.npz").exists()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2]
    # resume to 3 epochs continues from the checkpoint
    code, stdout, _ = run(capsys, "train", "--epochs", "3", "--batch-size", "20", "--data-dir",
                          str(data_dir), "--out", str(out), "--no-progress", "--resume", "--json")
    assert code == 0 and "resumed from" in stdout
    assert json.loads(stdout.strip().splitlines()[-1])["epochs"] == 3
    # evaluate and predict with the saved model
    code, stdout, _ = run(capsys, "evaluate", str(out / "model.npz"), "--dataset", "fashion-mnist",
                          "--data-dir", str(data_dir), "--json")
    assert code == 0
    ev = json.loads(stdout)
    assert np.sum(ev["confusion_matrix"]) == 20 and ev["classes"][0] == "T-shirt/top"


def test_predict_image(fake_fashion, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    data_dir, arrays = fake_fashion
    out = tmp_path / "run"
    assert run(capsys, "train", "--epochs", "1", "--batch-size", "30", "--data-dir", str(data_dir),
               "--out", str(out), "--no-progress")[0] == 0
    png = tmp_path / "x.png"
    Image.fromarray(arrays["test"][0][0]).save(png)
    code, stdout, _ = run(capsys, "predict", str(out / "model.npz"), str(png), "--topk", "2", "--json")
    assert code == 0
    res = json.loads(stdout)
    probs = [t["probability"] for t in res[0]["top"]]
    assert len(probs) == 2 and probs[0] >= probs[1] > 0


@pytest.mark.parametrize("argv,pattern", [
    (["train", "--epochs", "0"], "--epochs must be a positive integer; received 0"),
    (["train", "--lr", "-1"], "--lr must be a positive number; received -1.0"),
    (["train", "--batch-size", "0"], "--batch-size must be a positive integer; received 0"),
    (["train", "--model", "nope"], "--model must be one of .*received 'nope'"),
    (["evaluate", "missing.npz", "--dataset", "mnist"], "missing.npz: no such file"),
])
def test_user_errors_are_one_line_exit_2(argv, pattern, capsys):
    import re

    code, _, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert re.search(pattern, err), err


def test_python_dash_m_is_the_same(tmp_path):
    r = subprocess.run([sys.executable, "-m", "striate", "train", "--epochs", "-3"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert "--epochs must be a positive integer; received -3" in r.stderr


def test_datasets_lists_every_known_set(fake_fashion, capsys):
    data_dir, _ = fake_fashion
    code, stdout, _ = run(capsys, "datasets", "--data-dir", str(data_dir))
    assert code == 0
    names = [line.split()[0] for line in stdout.splitlines()]
    assert {"mnist", "fashion-mnist", "cifar10"} <= set(names)
    assert str(data_dir) in [line for line in stdout.splitlines() if line.startswith("fashion-mnist")][0]


def test_models_table(monkeypatch, capsys):
    from striate.models import registry as reg

    small = {k: v for k, v in reg._REGISTRY.items() if k in ("fashion_cnn", "lenet5", "resnet20")}
    monkeypatch.setattr(reg, "_REGISTRY", small)
    code, stdout, _ = run(capsys, "models")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in stdout.splitlines()}
    assert rows == {"fashion_cnn": "29,034", "lenet5": "61,706", "resnet20": "272,474"}


def test_model_args_parsed_as_json_or_text(capsys):
    assert cli.parse_model_args(["padding=2", "activation=relu", "hidden=null"]) == \
        {"padding": 2, "activation": "relu", "hidden": None}
    code, _, err = run(capsys, "train", "--model-arg", "padding")
    assert code == 2 and "--model-arg must be KEY=VALUE; received 'padding'" in err


def test_same_seed_same_weights_across_runs(fake_fashion, tmp_path, capsys):
    data_dir, _ = fake_fashion
    for name in ("a", "b"):
        assert run(capsys, "train", "--epochs", "2", "--batch-size", "16", "--augment", "--data-dir",
                   str(data_dir), "--out", str(tmp_path / name), "--no-progress", "--seed", "7")[0] == 0
    a = np.load(tmp_path / "a" / "model.npz", allow_pickle=False)
    b = np.load(tmp_path / "b" / "model.npz", allow_pickle=False)
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        if k != "__architecture__":
            assert np.array_equal(a[k], b[k]), k
