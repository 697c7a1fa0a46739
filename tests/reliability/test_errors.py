"""Issue 7, 'Bad input gets a clear error': one test per failure a user can cause.

Each test checks the StriateError subclass and that the message says what was
expected, what was received and where (layer path, file name and byte offset,
training step, command-line option).
"""

from __future__ import annotations

import gzip
import pickle
import re
import struct
import time
import zlib

import numpy as np
import pytest

import striate
from striate import cli, models, nn, optim
from striate.data import ArrayDataset, DataLoader, ImageFolder, download_file, read_idx
from striate.data.cifar import read_cifar_batch
from striate.data.images import MAX_IMAGE_PIXELS, load_image_for_model
from striate.errors import (ConfigError, DataError, DTypeError, NonFiniteError, ShapeError,
                            StateDictError, StriateError)
from striate.train import Trainer, evaluate
from striate.train.recipe import predict_files
from tests.data.helpers import idx_bytes, py2_pickle


def tiny_trainer(batches, **kw):
    """A Trainer of a 2-class conv net over ``batches``: a list of (x, y)."""
    striate.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    return Trainer(model, nn.CrossEntropyLoss(), opt, batches, epochs=1, progress=False, log=None,
                   num_classes=2, **kw)


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 6, 6)).astype(np.float32), rng.integers(0, 2, n)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- wrong input rank / shape / channels / dtype -------------------------------------------------

def test_wrong_rank_names_the_layer_path():
    model = models.get_model("fashion_cnn")
    with pytest.raises(ShapeError, match=re.escape("0 (Conv2d) expects input (N, 1, H, W); "
                                                   "received (1, 28, 28)")):
        model(np.zeros((1, 28, 28), np.float32))


def test_wrong_channels_names_the_layer_path():
    model = models.get_model("fashion_cnn")
    with pytest.raises(ShapeError, match=re.escape("0 (Conv2d) expects input (N, 1, H, W); "
                                                   "received (2, 3, 28, 28)")):
        model(np.zeros((2, 3, 28, 28), np.float32))


def test_wrong_spatial_size_reaches_the_linear_layer_with_its_path():
    model = models.get_model("fashion_cnn")
    with pytest.raises(ShapeError, match=re.escape("9 (Linear) expects input (N, 1568); "
                                                   "received (2, 2048)")):
        model(np.zeros((2, 1, 32, 32), np.float32))


def test_wrong_dtype_names_layer_and_dtype():
    model = models.get_model("fashion_cnn")
    with pytest.raises(DTypeError, match=r"0 \(Conv2d\) expects a floating-point input .*received "
                                         r"dtype uint8"):
        model(np.zeros((2, 1, 28, 28), np.uint8))


# -- a batch of zero -----------------------------------------------------------------------------

def test_batch_of_zero_in_training():
    x, y = batch()
    t = tiny_trainer([(x, y), (x[:0], y[:0])])
    with pytest.raises(ShapeError, match=re.escape(
            "Trainer: epoch 1, step 2 (batch 2): expected a batch of at least one sample (N, ...); "
            "received an input of shape (0, 1, 6, 6)")):
        t.fit()


def test_batch_of_zero_in_evaluation():
    x, y = batch()
    t = tiny_trainer([(x, y)])
    with pytest.raises(ShapeError, match=r"evaluate: batch 1: expected a batch of at least one sample"):
        evaluate(t.model, [(x[:0], y[:0])], t.criterion, 2)


def test_labels_that_do_not_fit_the_batch():
    x, y = batch()
    with pytest.raises(ShapeError, match=re.escape("batch 1): expected labels (4,), one per sample "
                                                   "of the input (4, 1, 6, 6); received (3,)")):
        tiny_trainer([(x, y[:3])]).fit()
    with pytest.raises(DTypeError, match="expected integer class labels; received dtype float64"):
        tiny_trainer([(x, y.astype(np.float64))]).fit()


# -- labels outside [0, num_classes) -------------------------------------------------------------

def test_labels_out_of_range_in_training_name_step_sample_and_value():
    x, y = batch()
    y[2] = 7
    t = tiny_trainer([(x, y)])
    before = t.model.state_dict()
    with pytest.raises(DataError, match=re.escape(
            "Trainer: epoch 1, step 1 (batch 1): label 7 of sample 2 is outside [0, 2) (the model "
            "has 2 classes); 1 label(s) out of range")):
        t.fit()
    for k, v in t.model.state_dict().items():     # nothing was updated
        assert np.array_equal(v, before[k]), k


def test_negative_label_in_evaluation():
    x, y = batch()
    y[0] = -1
    t = tiny_trainer([(x, y)])
    with pytest.raises(DataError, match=r"evaluate: batch 1: label -1 of sample 0 is outside \[0, 2\)"):
        evaluate(t.model, [(x, y)], t.criterion, 2)


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss, nn.NLLLoss])
def test_labels_out_of_range_in_the_losses(loss):
    with pytest.raises(DataError, match=rf"{loss.__name__}: class label 3 at target index \(1,\) is "
                                        r"outside \[0, 3\)"):
        loss()(np.zeros((2, 3), np.float32), np.array([0, 3]))


# -- NaN or Inf in inputs --------------------------------------------------------------------------

def test_nan_input_in_training_names_step_sample_and_index():
    x, y = batch()
    x[2, 0, 1, 4] = np.nan
    x[3, 0, 0, 0] = np.inf
    t = tiny_trainer([(x, y)])
    before = t.model.state_dict()
    with pytest.raises(NonFiniteError, match=re.escape(
            "Trainer: epoch 1, step 1 (batch 1): expected finite input values; received 2 NaN/Inf "
            "value(s), the first in sample 2 at index (2, 0, 1, 4)")):
        t.fit()
    for k, v in t.model.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_inf_input_in_evaluation():
    x, y = batch()
    x[1, 0, 5, 5] = -np.inf
    t = tiny_trainer([(x, y)])
    with pytest.raises(NonFiniteError, match=r"evaluate: batch 1: .* 1 NaN/Inf value\(s\), the first "
                                             r"in sample 1 at index \(1, 0, 5, 5\)"):
        evaluate(t.model, [(x, y)], t.criterion, 2)


def test_non_finite_input_in_prediction_names_the_file(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    # A corrupt std in the model file makes the normalised pixels overflow to Inf.
    striate.save(model, tmp_path / "m.npz", metadata={"input_shape": [1, 4, 4], "mean": [0.0],
                                                       "std": [1e-45], "classes": ["a", "b"]})
    Image.fromarray(np.full((4, 4), 200, np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(NonFiniteError, match=r"predict: .*x\.png \(after the model's normalisation\): "
                                             r"expected finite input values; received 16"):
        predict_files(str(tmp_path / "m.npz"), [str(tmp_path / "x.png")])


# -- image files that are not images, or are huge --------------------------------------------------

def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height grey pixels (the data is a stub)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_image_file_that_is_not_an_image(tmp_path):
    pytest.importorskip("PIL.Image")
    path = tmp_path / "notes.png"
    path.write_text("these are my notes, not a picture")
    with pytest.raises(DataError, match=r"notes\.png: not a readable image"):
        load_image_for_model(path, (1, 28, 28))
    (tmp_path / "set" / "cat").mkdir(parents=True)
    (tmp_path / "set" / "cat" / "a.png").write_bytes(b"GIF89a nonsense")
    with pytest.raises(DataError, match=r"cannot decode image .*cat/a\.png"):
        ImageFolder(tmp_path / "set")


def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    pytest.importorskip("PIL.Image")
    path = tmp_path / "wide.png"
    path.write_bytes(png_claiming(10_000, 6_000))          # 60M pixels in a ~100-byte file
    start = time.perf_counter()
    with pytest.raises(DataError, match=rf"wide\.png: image of 10000x6000 pixels is larger than the "
                                        rf"limit of {MAX_IMAGE_PIXELS:,} pixels"):
        load_image_for_model(path, (1, 28, 28))
    (tmp_path / "set" / "cat").mkdir(parents=True)
    (tmp_path / "set" / "cat" / "a.png").write_bytes(png_claiming(10_000, 6_000))
    with pytest.raises(DataError, match=r"a\.png: image of 10000x6000 pixels is larger than the limit"):
        ImageFolder(tmp_path / "set")
    assert time.perf_counter() - start < 2.0


def test_decompression_bomb_becomes_a_data_error(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(20_000, 20_000))         # above Pillow's own bomb limit
    with pytest.raises(DataError, match=r"bomb\.png") as info:
        load_image_for_model(path, (1, 28, 28))
    assert not isinstance(info.value, Image.DecompressionBombError)


# -- truncated, corrupt or mis-sized IDX files -------------------------------------------------------

def test_truncated_idx_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 4, 4), np.uint8), 0x08)[:-10]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: truncated: data ends at byte "
                                        r"86 of the uncompressed content; the header promises 96 bytes"):
        read_idx(path)


def test_corrupt_idx_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(b"\x00\x00\x42\x01" + struct.pack(">I", 3) + bytes(3))
    with pytest.raises(DataError, match=r"labels\.idx: unknown IDX type code 0x42 at byte 2"):
        read_idx(path)


def test_mis_sized_idx_header_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(b"\x00\x00\x0d\x02" + struct.pack(">II", 1_000_000, 1_000_000) + bytes(40))
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"huge\.idx: IDX header claims shape \(1000000, 1000000\) "
                                        r"\(4000000000000 data bytes\) but the file has 40 bytes"):
        read_idx(path)
    assert time.perf_counter() - start < 1.0


# -- a checksum mismatch after download --------------------------------------------------------------

def test_checksum_mismatch_after_download_keeps_nothing(tmp_path):
    served = tmp_path / "mirror" / "train-labels-idx1-ubyte.gz"
    served.parent.mkdir()
    served.write_bytes(b"tampered content")
    dest = tmp_path / "cache" / "train-labels-idx1-ubyte.gz"
    dest.parent.mkdir()
    with pytest.raises(DataError, match=r"could not download train-labels-idx1-ubyte\.gz:\n  file://"
                                        r".*MD5 checksum mismatch: expected "
                                        r"0123456789abcdef0123456789abcdef, "
                                        r"received [0-9a-f]{32}"):
        download_file([served.as_uri()], dest, "0123456789abcdef0123456789abcdef")
    assert list(dest.parent.iterdir()) == []


# -- a CIFAR batch with anything but plain types -----------------------------------------------------

class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))            # would create the marker file if run


def test_cifar_batch_with_an_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    raw = pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0],
                        "x": _Payload(str(marker))}, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_1: refusing global io\.open: .* \(pickle opcode at "
                                        r"byte \d+\)"):
        read_cifar_batch(raw, "data_batch_1")
    assert not marker.exists()
    good = py2_pickle({"data": np.zeros((1, 3072), np.uint8), "labels": [3]})
    assert read_cifar_batch(good, "ok")[1].tolist() == [3]


# -- a model file from a different architecture ------------------------------------------------------

def test_weights_of_another_architecture_name_missing_unexpected_and_misshaped_keys():
    lenet = models.get_model("lenet5")
    with pytest.raises(StateDictError) as info:
        lenet.load_state_dict(models.get_model("fashion_cnn").state_dict())
    msg = str(info.value)
    assert "missing keys: c1.weight" in msg
    assert "unexpected keys: 0.weight" in msg


def test_model_file_with_misshaped_weights_names_file_and_key(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    striate.save(model, tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz", allow_pickle=False))
    arrays["0.weight"] = np.zeros((3, 5), np.float32)
    np.savez(tmp_path / "other.npz", **arrays)
    with pytest.raises(DataError, match=r"other\.npz: state dict does not fit Sequential: mis-shaped "
                                        r"keys: 0\.weight: model has \(3, 4\), file has \(3, 5\)"):
        striate.load(tmp_path / "other.npz")


def test_resume_with_another_model_names_checkpoint_and_keys(fake_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--epochs", "1", "--batch-size", "50", "--data-dir", str(fake_fashion), "--out", str(out),
              "--no-progress"]
    assert run_cli(capsys, "train", *common)[0] == 0
    code, _, err = run_cli(capsys, "train", *common, "--model", "lenet5", "--model-arg", "padding=2",
                           "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.search(r"error: DataError: .*run/checkpoint\.npz: state dict does not fit Sequential: "
                     r"missing keys: c1\.weight.*unexpected keys: 0\.weight", err), err


# -- a corrupt model or checkpoint file ----------------------------------------------------------------

def test_truncated_model_file(tmp_path):
    striate.save(nn.Sequential(nn.Linear(4, 3)), tmp_path / "m.npz")
    raw = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.npz: not a valid striate \.npz file"):
        striate.load(tmp_path / "cut.npz")


def test_model_file_with_a_flipped_byte(tmp_path):
    striate.save(nn.Sequential(nn.Linear(4, 3)), tmp_path / "m.npz")
    raw = bytearray((tmp_path / "m.npz").read_bytes())
    raw[200] ^= 0x55                                   # inside the first array's data
    (tmp_path / "bad.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"bad\.npz: "):
        striate.load(tmp_path / "bad.npz")


def test_model_file_whose_array_header_claims_huge_shape(tmp_path):
    import zipfile

    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += b" " * (117 - len(header)) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("0.weight.npy", member)
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"huge\.npz: member 0\.weight\.npy header claims shape "
                                        r"\(1000000, 1000000\) of float32 \(4000000000000 bytes\) but "
                                        r"the member holds 16 bytes"):
        striate.load(tmp_path / "huge.npz")
    assert time.perf_counter() - start < 1.0


def test_corrupt_checkpoint_on_resume(fake_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    code, _, err = run_cli(capsys, "train", "--epochs", "1", "--data-dir", str(fake_fashion), "--out",
                           str(out), "--no-progress", "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.search(r"DataError: .*run/checkpoint\.npz: not a valid striate \.npz file", err), err


# -- an ONNX file that is malformed or uses an unsupported operator ------------------------------------

def _onnx_load():
    pytest.importorskip("onnx")
    try:
        from striate.onnx import load
    except ImportError:
        pytest.skip("striate.onnx is not available")
    return load


def test_malformed_onnx_file(tmp_path):
    load = _onnx_load()
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x04junk" + bytes(50))
    with pytest.raises(StriateError, match=r"model\.onnx"):
        load(path)


def test_onnx_file_with_an_unsupported_operator(tmp_path):
    load = _onnx_load()
    import onnx
    from onnx import TensorProto, helper

    from striate.errors import UnsupportedOperatorError

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Hardmax", ["h"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOperatorError, match="Hardmax"):
        load(tmp_path / "m.onnx")


# -- impossible hyperparameters ------------------------------------------------------------------------

@pytest.mark.parametrize("build,message", [
    (lambda p: optim.SGD(p, lr=-0.1), r"SGD: invalid learning rate value: -0\.1"),
    (lambda p: optim.Adam(p, betas=(1.5, 0.9)), r"Adam: invalid beta parameter at index 0: 1\.5"),
    (lambda p: nn.Dropout(p=1.5), r"Dropout: p must be a probability in \[0, 1\) .*received 1\.5"),
    (lambda p: DataLoader(ArrayDataset(np.zeros((2, 1, 2, 2), np.uint8), np.zeros(2, np.int64)),
                          batch_size=0), r"DataLoader: batch_size must be an int >= 1; received 0"),
    (lambda p: nn.Conv2d(1, 1, 0), r"Conv2d kernel_size must be >= 1; received 0"),
])
def test_impossible_hyperparameters_in_the_library(build, message):
    with pytest.raises(ConfigError, match=message):
        build(nn.Linear(2, 2).parameters())


@pytest.mark.parametrize("argv,message", [
    (["--lr", "-0.5"], r"--lr must be a positive number; received -0\.5"),
    (["--batch-size", "0"], r"--batch-size must be a positive integer; received 0"),
    (["--weight-decay", "nan"], r"--weight-decay must be a number >= 0; received nan"),
    (["--momentum", "-1"], r"--momentum must be a number >= 0; received -1\.0"),
    (["--label-smoothing", "1.5"], r"--label-smoothing must be a number in \[0, 1\]; received 1\.5"),
    (["--early-stopping", "0"], r"--early-stopping must be a positive integer; received 0"),
])
def test_impossible_hyperparameters_on_the_command_line(argv, message, capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "run"), *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert re.search(r"^striate train: error: ConfigError: " + message, err), err
    assert not (tmp_path / "run").exists()          # refused before anything was written


# -- the command line: exit 2 for user errors, 1 for internal errors, --debug for tracebacks ----------

def test_cli_internal_error_exit_1_and_debug_traceback(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "models", broken)
    code, _, err = run_cli(capsys, "models")
    assert code == 1
    assert err.strip() == ("striate models: internal error: RuntimeError: a bug "
                           "(run with --debug for the traceback)")
    code, _, err = run_cli(capsys, "--debug", "models")
    assert code == 1 and "Traceback (most recent call last)" in err and 'raise RuntimeError("a bug")' in err


def test_cli_user_error_debug_shows_traceback(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path / "none.npz"), "--dataset", "mnist")
    assert code == 2 and err.count("\n") == 1 and "none.npz: no such file" in err
    code, _, err = run_cli(capsys, "--debug", "evaluate", str(tmp_path / "none.npz"), "--dataset", "mnist")
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("striate evaluate: error: DataError:")
