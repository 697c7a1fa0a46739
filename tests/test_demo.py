"""The main-job demo trains: loss falls and accuracy is far above chance."""

from __future__ import annotations

from striate import demo


def test_demo_learns(capsys):
    acc = demo.main(["--epochs", "3", "--seed", "1"])
    out = capsys.readouterr().out
    losses = [float(line.split("train loss ")[1].split()[0]) for line in out.splitlines() if "train loss" in line]
    assert len(losses) == 3
    assert losses[0] > losses[1] > losses[2]
    assert acc > 0.9
