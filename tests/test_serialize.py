"""striate.save / striate.load: one .npz with weights and architecture JSON, no pickle."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DataError


def small_net():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(4 * 3 * 3, 3, rng=1),
    )


def test_round_trip_rebuilds_architecture_and_weights(tmp_path):
    model = small_net()
    x = np.random.default_rng(0).standard_normal((5, 1, 6, 6)).astype(np.float32)
    model(x)  # move the BN running stats away from their defaults
    model.eval()
    path = tmp_path / "m.npz"
    striate.save(model, path)
    back = striate.load(path)
    assert repr(back) == repr(model)
    assert not back.training
    np.testing.assert_array_equal(back(x), model(x))
    assert list(back.state_dict()) == list(model.state_dict())


def test_folded_model_round_trip(tmp_path):
    model = small_net()
    model(np.random.default_rng(1).standard_normal((4, 1, 6, 6)).astype(np.float32))
    folded = striate.fold_batchnorm(model)
    striate.save(folded, tmp_path / "f.npz")
    back = striate.load(tmp_path / "f.npz")
    assert isinstance(back[1], nn.Identity)
    x = np.random.default_rng(2).standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(back(x), folded(x), rtol=0, atol=0)


def test_file_is_plain_arrays_and_json(tmp_path):
    striate.save(small_net(), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        arch = json.loads(z["__architecture__"].tobytes())
        assert arch["format"] == "striate-model-1"
        assert arch["model"]["class"] == "Sequential"
        assert z["0.weight"].shape == (4, 1, 3, 3)


def test_custom_module_cannot_be_described(tmp_path):
    class Mine(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ConfigError, match="Mine is not a striate layer"):
        striate.save(nn.Sequential(Mine()), tmp_path / "m.npz")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        striate.load(tmp_path / "absent.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(DataError, match="not a valid striate .npz"):
        striate.load(bad)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(DataError, match="not a model saved by striate.save"):
        striate.load(plain)


def test_unknown_layer_class_is_refused(tmp_path):
    arch = {"format": "striate-model-1", "model": {"class": "os.system", "args": ["echo hi"]}}
    np.savez(tmp_path / "evil.npz", __architecture__=np.frombuffer(json.dumps(arch).encode(), np.uint8))
    with pytest.raises(DataError, match="unknown layer class 'os.system'"):
        striate.load(tmp_path / "evil.npz")


def test_weights_from_other_architecture_named(tmp_path):
    striate.save(small_net(), tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        names = z.namelist()
    assert "__architecture__.npy" in names
    data = dict(np.load(tmp_path / "m.npz", allow_pickle=False))
    data["6.weight"] = np.zeros((3, 99), np.float32)
    np.savez(tmp_path / "wrong.npz", **data)
    with pytest.raises(DataError, match=r"6.weight: model has \(3, 36\), file has \(3, 99\)"):
        striate.load(tmp_path / "wrong.npz")


def test_saved_file_has_ordinary_permissions(tmp_path):
    import os
    import stat

    striate.save(small_net(), tmp_path / "m.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]       # no temporary left behind
