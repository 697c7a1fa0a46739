"""striate.summary: shapes against real forwards, hand-counted parameters and MACs,
hand-computed receptive fields checked also against gradient footprints, merges,
1-D models, the table and dict, errors, and that the model is left untouched."""

from __future__ import annotations

import json
import re
from collections import OrderedDict

import numpy as np
import pytest

from striate import models
from striate.errors import ConfigError, ShapeError
from striate.nn import (Add, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d,
                        BasicBlock, BatchNorm2d, Concat, Conv1d, Conv2d, ConvTranspose1d,
                        ConvTranspose2d, Dropout, Flatten, Graph, Linear, LocallyConnected2d,
                        MaxPool2d, Module, Parameter, ReLU, RoIPool, Sequential, conv1x1)
from striate.serialize import save
from striate.summary import AxisField, default_input_shape, summary, summary_for
from striate.summary._fields import union
from striate.summary._rules import layer_fields, layer_macs


def fields_of(s, path):
    """(rf, jump, start) of the row with ``path`` (the last call of it)."""
    row = [r for r in s.rows if r.path == path][-1]
    return row.rf, row.jump, row.start


def row(s, path):
    return [r for r in s.rows if r.path == path][-1]


# ----------------------------------------------------------------------------- receptive fields
def test_hand_computed_stack():
    """conv3 s1 -> conv3 s1 -> pool2 s2 -> conv3: RF 3, 5, 6, 10; jumps 1, 1, 2, 2."""
    model = Sequential(Conv2d(1, 2, 3), Conv2d(2, 2, 3), MaxPool2d(2), Conv2d(2, 2, 3))
    s = summary(model, (1, 16, 16))
    assert [r.rf for r in s.rows] == [(3, 3), (5, 5), (6, 6), (10, 10)]
    assert [r.jump for r in s.rows] == [(1, 1), (1, 1), (2, 2), (2, 2)]
    # centre of output 0: pixel 1, then 2, then (2 + 3) / 2 = 2.5, then 2.5 + 1 * 2
    assert [r.start for r in s.rows] == [(1, 1), (2, 2), (2.5, 2.5), (4.5, 4.5)]
    assert [r.output_shape for r in s.rows] == [(1, 2, 14, 14), (1, 2, 12, 12), (1, 2, 6, 6),
                                                (1, 2, 4, 4)]


def test_dilated_conv():
    """k3 d2 spans 5 pixels; then k3 d4 (span 9) adds 8 more."""
    model = Sequential(Conv2d(1, 1, 3, dilation=2, padding=2), Conv2d(1, 1, 3, dilation=4))
    s = summary(model, (1, 20, 20))
    assert fields_of(s, "0") == ((5, 5), (1, 1), (0, 0))        # padding 2 = (k_eff-1)/2: centred
    assert fields_of(s, "1") == ((13, 13), (1, 1), (4, 4))
    assert row(s, "1").output_shape == (1, 1, 12, 12)


def test_strided_padded_start_offsets():
    model = Sequential(Conv2d(1, 1, 3, stride=2, padding=1),     # centred on pixel 0
                       Conv2d(1, 1, 3, stride=2, padding=1),
                       Conv2d(1, 1, 4, stride=2, padding=1),     # even kernel: half-pixel centre
                       Conv2d(1, 1, 3, stride=1, padding=0))
    s = summary(model, (1, 64, 64))
    assert fields_of(s, "0") == ((3, 3), (2, 2), (0, 0))
    assert fields_of(s, "1") == ((7, 7), (4, 4), (0, 0))
    assert fields_of(s, "2") == ((19, 19), (8, 8), (2, 2))      # 0 + (1.5 - 1) * 4
    assert fields_of(s, "3") == ((35, 35), (8, 8), (10, 10))    # 2 + 1 * 8


def test_per_axis_fields_and_same_padding():
    model = Sequential(Conv2d(1, 1, (3, 5), stride=(1, 2), padding=(0, 2)),
                       Conv2d(1, 1, 4, padding="same"))          # pads 1 before, 2 after
    s = summary(model, (1, 9, 12))
    assert fields_of(s, "0") == ((3, 5), (1, 2), (1, 0))
    assert fields_of(s, "1") == ((6, 11), (1, 2), (1.5, 1))      # start + (1.5 - 1) * j
    assert "6x11" in str(s) and "1x2" in str(s)


def test_transposed_conv():
    """k4 s2 p1 doubles the size: jump 1/2, start -1/4, each output reads 2 inputs."""
    model = Sequential(ConvTranspose2d(1, 1, 4, stride=2, padding=1), Conv2d(1, 1, 3, padding=1),
                       ConvTranspose2d(1, 1, 3, stride=1))
    s = summary(model, (1, 5, 5))
    assert fields_of(s, "0") == ((2, 2), (0.5, 0.5), (-0.25, -0.25))
    assert fields_of(s, "1") == ((3, 3), (0.5, 0.5), (-0.25, -0.25))
    assert fields_of(s, "2") == ((4, 4), (0.5, 0.5), (-0.75, -0.75))   # output 0 reads input -2..0
    assert row(s, "0").output_shape == (1, 1, 10, 10)
    assert "-0.25" in str(s)
    s = summary(ConvTranspose1d(1, 1, 2, stride=2), (1, 4))      # 2x upsampling, no overlap
    assert (s.rows[0].rf, s.rows[0].jump, s.rows[0].start) == ((1,), (0.5,), (-0.25,))
    assert s.rows[0].output_shape == (1, 1, 8) and s.rows[0].macs == 4 * 2


def test_adaptive_and_global_pooling_cover_the_input():
    s = summary(Sequential(Conv1d(1, 1, 3), AdaptiveAvgPool1d(3)), (1, 7))
    # 5 positions -> 3 bins [0,2) [1,4) [3,5): widest 3, mean step 5/3, bin 0 centred at 0.5
    rf, jump, start = fields_of(s, "1")
    assert rf == (5,) and start == (1 + 0.5,)
    assert jump[0] == pytest.approx(5 / 3)
    s = summary(Sequential(Conv2d(1, 2, 3), AdaptiveAvgPool2d(1), Flatten(),
                           Linear(2, 3)), (1, 10, 8))
    assert fields_of(s, "1")[0] == (10, 8)                       # the whole input, per axis
    assert fields_of(s, "1")[2] == (4.5, 3.5)                    # centred on it
    assert fields_of(s, "3") == fields_of(s, "1")


def test_flatten_and_linear_on_spatial_axes():
    s = summary(Sequential(Conv2d(1, 1, 3, padding=1), Flatten(), Linear(36, 4)), (1, 6, 6))
    assert fields_of(s, "1")[0] == (8, 8)                         # 3 + 5 positions
    s = summary(Sequential(Conv2d(1, 1, 3, padding=1), Linear(6, 2)), (1, 6, 6))
    assert fields_of(s, "1") == ((3, 8), (1, 6), (0, 2.5))       # Linear mixes the last axis (W)


def test_union_of_fields():
    a, b, c = AxisField(3, 1, 0), AxisField(2, 1, 0.5), AxisField(5, 2, 3)
    assert union([(a,), (b,)]) == (AxisField(3, 1, 0),)          # [-1, 1] and [0, 1]
    assert union([(a,), (c,)]) == (AxisField(7, 1, 2),)          # [-1, 1] and [1, 5]
    assert union([(a,), None]) is None
    assert union([]) is None


@pytest.mark.parametrize("model, n, positions", [
    (lambda: Sequential(Conv2d(1, 1, 3), Conv2d(1, 1, 3), AvgPool2d(2), Conv2d(1, 1, 3)),
     24, (5, 6)),
    (lambda: Sequential(Conv2d(1, 1, 3, stride=2, padding=1), Conv2d(1, 1, 3, dilation=2),
                        AvgPool2d(3, stride=2, padding=1), Conv2d(1, 1, 4, stride=2, padding=1)),
     64, (3, 4)),
    (lambda: Sequential(Conv1d(1, 1, 5), Conv1d(1, 1, 3, dilation=2), AvgPool1d(2),
                        Conv1d(1, 1, 3, dilation=3)), 60, (8, 9)),
])
def test_fields_equal_gradient_footprints(model, n, positions):
    """An output's field is where its input gradient is non-zero (positive weights, avg pools)."""
    model = model()
    for p in model.parameters():
        p.data[...] = np.abs(p.data) + 0.1
    nd = 1 if isinstance(model[0], Conv1d) else 2
    shape = (1, 1) + (n,) * nd
    s = summary(model, shape[1:])
    f = s.rows[-1].fields
    x = np.random.default_rng(0).random(shape).astype(np.float32) + 0.5
    y = model(x)
    for pos in positions:
        dy = np.zeros_like(y)
        dy[(0, 0) + (pos,) * nd] = 1
        model.zero_grad()
        dx = model.backward(dy)[0, 0]
        for axis in range(nd):
            hit = np.nonzero(np.any(dx != 0, axis=tuple(a for a in range(nd) if a != axis)))[0]
            centre = f[axis].start + pos * f[axis].jump
            assert (hit[0], hit[-1]) == (centre - (f[axis].size - 1) / 2,
                                         centre + (f[axis].size - 1) / 2)


# ----------------------------------------------------------------------------- zoo totals
def test_fashion_cnn_totals():
    model = models.get_model("fashion_cnn", rng=0)
    s = summary(model, (1, 28, 28))
    assert s.total_params == model.num_parameters() == 29_034 == sum(r.params for r in s.rows)
    macs = {r.path: r.macs for r in s.rows}
    assert macs["0"] == 28 * 28 * 16 * 25 == 313_600
    assert macs["4"] == 14 * 14 * 32 * 16 * 25 == 2_508_800
    assert macs["9"] == 1568 * 10 == 15_680
    assert all(macs[p] == 0 for p in ("1", "2", "3", "5", "6", "7", "8"))
    assert s.total_macs == 313_600 + 2_508_800 + 15_680
    assert s.output_shape == (1, 10)
    assert summary(model, (1, 28, 28), batch_size=3).total_macs == 3 * s.total_macs


def test_lenet5_totals():
    model = models.get_model("lenet5", rng=0)
    s = summary(model, (1, 32, 32))
    assert s.total_params == model.num_parameters() == 61_706
    macs = {r.path: r.macs for r in s.rows}
    assert macs == {**{p: 0 for p in macs}, "c1": 28 * 28 * 6 * 25, "c3": 10 * 10 * 16 * 6 * 25,
                    "c5": 120 * 16 * 25, "f6": 120 * 84, "output": 84 * 10}
    assert s.total_macs == 416_520
    assert fields_of(s, "c5") == ((32, 32), (4, 4), (15.5, 15.5))   # C5 sees the whole 32x32


def test_shapes_agree_with_the_forward_pass():
    """Every row of a Sequential has the shape its layer returns; totals match the models."""
    model = models.get_model("fashion_cnn", rng=0).eval()
    x = np.random.default_rng(1).random((2, 1, 28, 28)).astype(np.float32)
    s = summary(model, (1, 28, 28), batch_size=2)
    for layer, r in zip(model, s.rows):
        x = layer(x)
        assert r.output_shape == x.shape
    for name, shape in (("resnet20", (3, 16, 16)), ("googlenet", (3, 40, 40)),
                        ("mobilenet_v1", (3, 32, 32))):
        model = models.get_model(name, num_classes=7, rng=0).eval()
        s = summary(model, shape)
        y = model(np.zeros((1, *shape), np.float32))
        assert s.output_shape == y.shape == (1, 7)
        assert s.total_params == model.num_parameters() == sum(r.params for r in s.rows)
        assert all(r.fields is not None for r in s.rows), name


# ----------------------------------------------------------------------------- merges
def test_residual_block_takes_the_union_of_its_branches():
    rng = np.random.default_rng(0)
    block = BasicBlock(8, 16, stride=2, downsample=Sequential(conv1x1(8, 16, 2, rng=rng),
                                                              BatchNorm2d(16)), rng=rng)
    model = Sequential(OrderedDict([("stem", Conv2d(3, 8, 3, padding=1, rng=rng)),
                                    ("block", block),
                                    ("head", Conv2d(16, 4, 3, padding=1, rng=rng))]))
    s = summary(model, (3, 12, 12))
    assert [r.path for r in s.rows] == ["stem", "block.conv1", "block.bn1", "block.conv2",
                                        "block.bn2", "block.downsample.0", "block.downsample.1",
                                        "head"]
    assert fields_of(s, "block.conv2") == ((9, 9), (2, 2), (0, 0))
    assert fields_of(s, "block.downsample.0") == ((3, 3), (2, 2), (0, 0))
    # the block's output is the union (9), not the last branch that ran (3): 9 + 2*2
    assert fields_of(s, "head") == ((13, 13), (2, 2), (0, 0))
    assert row(s, "head").output_shape == (1, 4, 6, 6)
    # a float64 input makes the block cast it (an array no layer produced): same fields
    model = Sequential(block, Conv2d(16, 4, 3, padding=1, rng=rng))
    s32, s64 = (summary(model, (8, 12, 12), dtype=dt) for dt in (np.float32, np.float64))
    assert fields_of(s32, "0.downsample.0") == ((1, 1), (2, 2), (0, 0))
    assert fields_of(s32, "1") == ((11, 11), (2, 2), (0, 0))
    assert [r.fields for r in s64.rows] == [r.fields for r in s32.rows]


def test_graph_merges():
    rng = np.random.default_rng(0)
    g = Graph(inputs=["x"])
    g.add("a", Conv2d(2, 2, 3, padding=1, rng=rng), "x")
    g.add("b", Conv2d(2, 2, 4, padding="same", rng=rng), "x")    # field [-1, 2], centre 0.5
    g.add("sum", Add(), "a", "b")
    g.add("cat", Concat(), "sum", "x")
    g.add("relu", ReLU(), "cat")
    g.output("relu")
    s = summary(g, (2, 8, 8))
    assert [r.path for r in s.rows] == ["a", "b", "sum", "cat", "relu"]
    assert fields_of(s, "sum") == ((4, 4), (1, 1), (0.5, 0.5))
    assert fields_of(s, "cat") == fields_of(s, "sum")
    assert row(s, "cat").output_shape == (1, 4, 8, 8)


def test_custom_module_reusing_a_layer_and_an_unused_child():
    class Twice(Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv2d(2, 2, 3, padding=1, rng=0)
            self.spare = Linear(3, 3, rng=0)                     # never called

        def forward(self, x):
            return self.conv(np.maximum(self.conv(x), 0))        # a kernel between the calls

    s = summary(Twice(), (2, 6, 6))
    assert [r.path for r in s.rows] == ["conv", "conv"]
    assert [r.params for r in s.rows] == [38, 0]                  # counted at the first call
    assert [r.macs for r in s.rows] == [36 * 2 * 18] * 2
    assert [r.rf for r in s.rows] == [(3, 3), (5, 5)]
    assert s.unused_params == 12 and s.total_params == 50
    assert "Params of layers that did not run: 12" in str(s)


# ----------------------------------------------------------------------------- other layers
def test_conv_transpose_and_locally_connected_macs():
    model = Sequential(ConvTranspose2d(4, 6, 3, stride=2, groups=2),
                       LocallyConnected2d(6, 2, input_size=11, kernel_size=3, stride=2))
    s = summary(model, (4, 5, 5), batch_size=2)
    assert row(s, "0").macs == 2 * 5 * 5 * 4 * (6 // 2) * 9      # over the input positions
    assert row(s, "0").output_shape == (2, 6, 11, 11)
    assert row(s, "1").macs == 2 * 5 * 5 * 2 * 6 * 9
    assert row(s, "1").output_shape == (2, 2, 5, 5)
    # k3 s2 transposed: r 2, jump 1/2, start -1/2; then k3 s2: r 2 + 2/2, jump 1, start -1/2 + 1/2
    assert fields_of(s, "0") == ((2, 2), (0.5, 0.5), (-0.5, -0.5))
    assert fields_of(s, "1") == ((3, 3), (1, 1), (0, 0))


def test_one_dimensional_model():
    model = models.get_model("tdnn", num_classes=3, in_channels=4, channels=8, pool_channels=8,
                             embedding_dim=8, rng=0)
    s = summary(model, (4, 20))
    assert fields_of(s, "tdnn5.conv") == ((15,), (1,), (7,))     # the x-vector's 15-frame context
    assert row(s, "tdnn5.conv").output_shape == (1, 8, 6)
    assert fields_of(s, "pool") == ((20,), (6,), (9.5,))          # the whole sequence
    assert row(s, "tdnn1.conv").macs == 16 * 8 * 4 * 5
    assert s.total_params == model.num_parameters()
    text = str(s)
    assert re.search(r"^tdnn5\.conv\s+Conv1d\s+\(1, 8, 6\)\s+72\s+384\s+15\s+1\s+7$", text, re.M)


def test_input_without_spatial_axes():
    s = summary(Sequential(Linear(5, 3), ReLU(), Dropout()), (5,))
    assert [r.fields for r in s.rows] == [(), (), ()]
    assert s.total_macs == 15
    assert re.search(r"^0\s+Linear\s+\(1, 3\)\s+18\s+15\s+-\s+-\s+-$", str(s), re.M)


# ----------------------------------------------------------------------------- table and dict
def test_table_text():
    s = summary(models.get_model("fashion_cnn", rng=0), (1, 28, 28))
    lines = str(s).splitlines()
    assert lines[0].split() == ["Layer", "(path)", "Type", "Output", "shape", "Params", "MACs",
                                "RF", "jump", "start"]
    assert lines[2].split() == ["0", "Conv2d", "(1,", "16,", "28,", "28)", "416", "313,600",
                                "5", "1", "0"]
    assert re.search(r"^4\s+Conv2d\s+\(1, 32, 14, 14\)\s+12,832\s+2,508,800\s+14\s+2\s+0\.5$",
                     str(s), re.M)
    assert re.search(r"^9\s+Linear\s+\(1, 10\)\s+15,690\s+15,680\s+40\s+28\s+13\.5$", str(s), re.M)
    assert "Total params: 29,034  (trainable 29,034)" in lines
    assert "Total MACs: 2,838,080" in lines
    macs_end = lines[0].index("MACs") + len("MACs")               # numbers right-aligned
    for ln in lines[2:12]:
        assert ln[macs_end - 1].isdigit() and ln[macs_end] == " ", ln
    assert set(lines[1]) == {"-"} and set(lines[12]) == {"="} and len(lines[1]) == len(lines[12])


def test_to_dict_is_json():
    s = summary(Sequential(Conv2d(1, 2, 4, stride=2, padding=1), Flatten()), (1, 6, 6))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["input_shape"] == [1, 1, 6, 6] and d["output_shape"] == [1, 18]
    assert d["total_params"] == 34 and d["total_macs"] == 9 * 2 * 16
    assert d["layers"][0] == {"path": "0", "type": "Conv2d", "output_shape": [1, 2, 3, 3],
                              "params": 34, "macs": 288,
                              "receptive_field": {"size": [4, 4], "jump": [2, 2],
                                                  "start": [0.5, 0.5]}}


# ----------------------------------------------------------------------------- errors and state
def test_wrong_input_shape_propagates_the_layers_error():
    model = models.get_model("fashion_cnn", rng=0)
    with pytest.raises(ShapeError, match=r"0 \(Conv2d\) expects input \(N, 1, H, W\); "
                                         r"received \(1, 3, 28, 28\)"):
        summary(model, (3, 28, 28))
    with pytest.raises(ShapeError, match=r"9 \(Linear\)"):
        summary(model, (1, 32, 32))
    assert all("forward" not in m.__dict__ for m in model.modules())   # wrappers removed
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("kwargs, match", [
    ({"input_shape": (1, 0, 28)}, r"input_shape .*received \(1, 0, 28\)"),
    ({"input_shape": 28}, r"input_shape .*received 28"),
    ({"input_shape": (1, 28, 28), "batch_size": 0}, r"batch_size .*received 0"),
    ({"input_shape": (1, 28, 28), "dtype": np.int32}, r"dtype .*received"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        summary(models.get_model("fashion_cnn", rng=0), **kwargs)


def test_bad_model():
    with pytest.raises(ConfigError, match=r"summary: model .*received function"):
        summary(lambda x: x, (1, 4, 4))


def test_model_is_left_as_it_was():
    model = models.get_model("fashion_cnn", rng=0)
    x = np.random.default_rng(2).random((2, 1, 28, 28)).astype(np.float32)
    y = model(x)                                                  # training mode, caches kept
    state = model.state_dict()
    summary(model, (1, 28, 28), dtype=np.float64)
    assert all(m.training for m in model.modules())
    for k, v in model.state_dict().items():                       # BN running stats untouched
        np.testing.assert_array_equal(v, state[k])
    dx = model.backward(np.ones_like(y))                          # the caches survived
    assert dx.shape == x.shape


def test_submodule_paths_are_relative_and_own_parameters_get_a_row():
    model = models.get_model("resnet20", num_classes=3, rng=0)
    s = summary(model.layer2, (16, 8, 8))
    assert s.rows[0].path == "0.conv1" and s.rows[0].output_shape == (1, 32, 4, 4)
    assert s.total_params == model.layer2.num_parameters()

    class Scaled(Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv2d(1, 1, 3, rng=0)
            self.scale = Parameter(np.ones(1))

        def forward(self, x):
            return self.conv(x) * self.scale.data

    s = summary(Scaled(), (1, 5, 5))
    assert [(r.path, r.type, r.params, r.rf) for r in s.rows] == [
        ("conv", "Conv2d", 10, (3, 3)), ("", "Scaled", 1, (3, 3))]
    assert re.search(r"^\(model\)\s+Scaled\s+\(1, 1, 3, 3\)\s+1\s+0\s+3\s+1\s+1$", str(s), re.M)


def test_graph_with_two_inputs_and_outputs():
    g = Graph(inputs=["a", "b"])
    g.add("conv", Conv2d(2, 2, 3, padding=1, rng=0), "a")
    g.add("sum", Add(), "conv", "b")
    g.output("sum", "conv")
    s = summary(g, [(2, 6, 6), (2, 6, 6)], batch_size=2)
    assert s.input_shape == ((2, 2, 6, 6), (2, 2, 6, 6))
    assert s.output_shape == ((2, 2, 6, 6), (2, 2, 6, 6))
    assert fields_of(s, "sum") == ((3, 3), (1, 1), (0, 0))
    assert json.loads(json.dumps(s.to_dict()))["output_shape"] == [[2, 2, 6, 6], [2, 2, 6, 6]]


def test_roi_pool_field_is_unknown():
    feats = np.zeros((1, 2, 8, 8), np.float32)
    boxes = np.array([[0, 0, 0, 4, 4]], np.float32)
    layer = RoIPool(2, 1.0)
    out = layer(feats, boxes)
    assert layer_fields(layer, [(AxisField(3, 1, 0),) * 2, None], [feats, boxes], out) is None
    assert layer_macs(layer, [feats, boxes], out) == 0


# ----------------------------------------------------------------------------- summary_for / CLI
def test_summary_for_zoo_names_and_files(tmp_path):
    s = summary_for("fashion_cnn")                                # input_size 28, 1 channel
    assert s.input_shape == (1, 1, 28, 28) and s.total_macs == 2_838_080
    s = summary_for("lenet5", "1x32x32", num_classes=5)
    assert s.output_shape == (1, 5)
    assert default_input_shape(models.get_model("resnet20", rng=0)) == (3, 32, 32)
    assert default_input_shape(models.get_model("tdnn", rng=0)) == (40, 200)
    model = models.get_model("traffic_sign_cnn", num_classes=4, rng=0)
    path = str(tmp_path / "m.npz")
    save(model, path, metadata={"input_shape": [3, 32, 32]})
    s = summary_for(path)
    assert s.input_shape == (1, 3, 32, 32) and s.output_shape == (1, 4)
    assert s.total_params == model.num_parameters()


@pytest.mark.parametrize("args, error, match", [
    (("no_such_model",), ConfigError, r"unknown model 'no_such_model'"),
    (("net.onnx", None, 3), ConfigError, r"--num-classes applies to zoo models only"),
    (("fashion_cnn", "1,28,28,"), None, None),
    (("fashion_cnn", "1,a,28"), ConfigError, r"--input-shape .*received '1,a,28'"),
    (("fashion_cnn", "1,0,28"), ConfigError, r"received '1,0,28'"),
    (("m.npz", None, 3), ConfigError, r"--num-classes applies to zoo models only"),
])
def test_summary_for_errors(args, error, match):
    if error is None:                                             # a trailing comma is fine
        assert summary_for(*args).input_shape == (1, 1, 28, 28)
        return
    with pytest.raises(error, match=match):
        summary_for(*args)


def test_command_line(capsys):
    cli = pytest.importorskip("striate.cli")
    assert cli.main(["summary", "fashion_cnn", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["total_macs"] == 2_838_080 and d["layers"][0]["receptive_field"]["size"] == [5, 5]
    # a zoo model is built for the given input: 3 channels, 32x32
    assert cli.main(["summary", "lenet5", "--input-shape", "3,32,32", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layers"][0]["params"] == 3 * 6 * 25 + 6
    assert cli.main(["summary", "resnet20", "--input-shape", "1,0,28"]) == 2
    assert "--input-shape must be positive ints" in capsys.readouterr().err
