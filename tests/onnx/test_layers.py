"""The generic layers of imported ONNX graphs (striate.onnx.layers, axis_, const_, shape_, pad_layers).

PyTorch oracle comparisons (forward, input grads, param grads), float64 finite
differences with striate.gradcheck, integer inputs, and bad-input errors.
None of these tests needs the onnx package.
"""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate.errors import ConfigError, DTypeError, ShapeError
from striate.gradcheck import gradcheck
from striate.nn import Graph
from striate.onnx.axis_layers import BatchNormNd, BroadcastPReLU, FlatSoftmax, GlobalPool
from striate.onnx.const_layers import Constant, ConstantOfShape, Shape, WithConstants
from striate.onnx.layers import Abs, Clip, Elementwise, Erf, HardSigmoid, MatMul, unbroadcast
from striate.onnx.pad_layers import (AvgPoolExcludePad, Pad, SamePad, nd_pad_backward,
                                     nd_pad_forward, same_pads)
from striate.onnx.shape_layers import (FlattenTo2d, Gather, Reshape, Squeeze, TensorConcat,
                                       Transpose, Unsqueeze)
from tests.util import compare_with_torch, torch_or_skip


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _torch_fn(fn):
    """A parameterless torch module computing ``fn(*inputs)``."""
    torch = torch_or_skip()

    class Fn(torch.nn.Module):
        def forward(self, *xs):
            return fn(torch, *xs)

    return Fn()


# ---------------------------------------------------------------------------- arithmetic

BROADCAST = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)),
             ((), (2, 2)), ((2, 3, 1, 1), (1, 3, 2, 2))]
TORCH_OPS = {"add": lambda t, a, b: a + b, "sub": lambda t, a, b: a - b,
             "mul": lambda t, a, b: a * b, "div": lambda t, a, b: a / b}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", list(TORCH_OPS))
@pytest.mark.parametrize("sa,sb", BROADCAST)
def test_elementwise_matches_torch(op, sa, sb, dtype):
    a, b = _rand(*sa, seed=1), _rand(*sb, seed=2)
    if op == "div":
        b = np.sign(b) * (np.abs(b) + 0.5)            # away from 0
    y = compare_with_torch(Elementwise(op), _torch_fn(TORCH_OPS[op]), [a, b], dtype)
    assert y.shape == np.broadcast_shapes(sa, sb)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_elementwise_gradcheck(op):
    a, b = _rand(3, 1, 4, seed=3), _rand(2, 1, seed=4) + 3.0
    assert gradcheck(Elementwise(op), a, b) < 1e-6


def test_elementwise_sum_of_three_and_one():
    xs = [_rand(2, 3), _rand(3), _rand(1, 1)]
    layer = Elementwise("add")
    np.testing.assert_allclose(layer(*xs), xs[0] + xs[1] + xs[2])
    grads = layer.backward(np.ones((2, 3)))
    assert [g.shape for g in grads] == [(2, 3), (3,), (1, 1)]
    np.testing.assert_array_equal(grads[1], np.full(3, 2.0))     # summed over the broadcast rows
    assert gradcheck(layer, *xs) < 1e-6
    single = Elementwise("add")
    x = _rand(2, 2)
    y = single(x)
    assert y is not x and np.array_equal(y, x)


def test_elementwise_legacy_axis_broadcast():
    a, b = _rand(2, 3, 4, 5), _rand(3, 4)
    layer = Elementwise("mul", axis=1)                      # ONNX opset < 7: B lines up at axis 1
    np.testing.assert_allclose(layer(a, b), a * b[None, :, :, None])
    assert gradcheck(layer, a, b) < 1e-6


def test_integer_arithmetic_rounds_toward_zero_and_has_no_gradient():
    a = np.array([7, -7, 7, -7, 6], dtype=np.int32)
    b = np.array([2, 2, -2, -2, 3], dtype=np.int32)
    layer = Elementwise("div")
    y = layer(a, b)
    np.testing.assert_array_equal(y, [3, -3, -3, 3, 2])
    assert y.dtype == np.int32
    assert layer.backward(np.ones(5)) == (None, None)
    u = Elementwise("sub")(np.array([1], np.uint8), np.array([2], np.uint8))
    np.testing.assert_array_equal(u, [255])                  # wraps, as ONNX's uint8 does


def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.ones((2, 3, 4))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(unbroadcast(g, ()), np.array(24.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (4, 3)),
                                   ((2, 3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_matches_torch(sa, sb, dtype):
    compare_with_torch(MatMul(), _torch_fn(lambda t, a, b: t.matmul(a, b)),
                       [_rand(*sa, seed=5), _rand(*sb, seed=6)], dtype)


def test_matmul_gradcheck_and_errors():
    assert gradcheck(MatMul(), _rand(2, 1, 3, 4), _rand(3, 4, 2)) < 1e-6
    with pytest.raises(ShapeError, match=r"MatMul expects \(\*, n, k\) @ \(\*, k, m\); received \(3, 4\)"):
        MatMul()(_rand(3, 4), _rand(5, 2))
    with pytest.raises(ShapeError, match="broadcast"):
        MatMul()(_rand(2, 3, 4), _rand(3, 4, 2))


# ---------------------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pointwise_layers_match_torch(dtype):
    x = np.linspace(-4, 4, 24).reshape(2, 3, 4) + 0.01
    compare_with_torch(Clip(-1.5, 2.0), _torch_fn(lambda t, v: t.clamp(v, -1.5, 2.0)), [x], dtype)
    compare_with_torch(Clip(None, 0.5), _torch_fn(lambda t, v: t.clamp(v, max=0.5)), [x], dtype)
    compare_with_torch(Erf(), _torch_fn(lambda t, v: t.erf(v)), [x], dtype)
    compare_with_torch(Abs(), _torch_fn(lambda t, v: t.abs(v)), [x], dtype)
    compare_with_torch(HardSigmoid(1 / 6, 0.5), _torch_fn(lambda t, v: t.nn.functional.hardsigmoid(v)),
                       [x], dtype)


def test_pointwise_gradcheck():
    x = _rand(3, 5, seed=7) * 2
    for layer in (Clip(-1.0, 1.0), Erf(), Abs(), HardSigmoid(0.2, 0.5)):
        assert gradcheck(layer, x) < 1e-6, layer


def test_clip_min_above_max_and_integers():
    np.testing.assert_array_equal(Clip(2, 1)(np.array([0.0, 5.0])), [1.0, 1.0])
    layer = Clip(-3, 3)
    y = layer(np.array([-10, 0, 10], dtype=np.int8))
    np.testing.assert_array_equal(y, [-3, 0, 3])
    assert y.dtype == np.int8 and layer.backward(np.ones(3)) is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis,log", [(1, False), (2, True), (0, False), (-1, True)])
def test_flat_softmax_matches_torch(axis, log, dtype):
    x = _rand(2, 3, 4, seed=8)

    def ref(t, v):
        a = axis % v.ndim
        flat = v.reshape(int(np.prod(v.shape[:a])), -1)
        f = t.log_softmax if log else t.softmax
        return f(flat, dim=1).reshape(v.shape)

    compare_with_torch(FlatSoftmax(axis, log=log), _torch_fn(ref), [x], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,w_shape", [((2, 3, 4), (4,)), ((2, 3, 4, 5), (3, 1, 1)),
                                             ((2, 3, 4, 5), (1, 4, 5))])
def test_broadcast_prelu_matches_torch(x_shape, w_shape, dtype):
    torch = torch_or_skip()
    layer = BroadcastPReLU(w_shape, dtype=dtype)
    layer.weight.data = _rand(*w_shape, seed=9).astype(dtype)

    class Ref(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(w_shape))

        def forward(self, v):
            return torch.where(v > 0, v, self.weight * v)

    compare_with_torch(layer, Ref(), [_rand(*x_shape, seed=10)], dtype)
    assert gradcheck(layer, _rand(*x_shape, seed=11)) < 1e-6


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_nd_matches_torch_in_5d(training):
    torch = torch_or_skip()
    layer = BatchNormNd(3, dtype=np.float64)
    layer.weight.data = _rand(3, seed=12)
    layer.set_buffer("running_var", np.abs(_rand(3, seed=13)) + 0.5)
    layer.train(training)
    compare_with_torch(layer, torch.nn.BatchNorm3d(3), [_rand(2, 3, 2, 3, 2, seed=14)])
    assert gradcheck(BatchNormNd(3).train(training), _rand(2, 3, 2, 2, 2, seed=15)) < 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 2, 3, 2)])
def test_global_pool_matches_torch(shape, dtype):
    axes = tuple(range(2, len(shape)))
    compare_with_torch(GlobalPool("avg"), _torch_fn(lambda t, v: v.mean(dim=axes, keepdim=True)),
                       [_rand(*shape, seed=16)], dtype)
    compare_with_torch(GlobalPool("max"), _torch_fn(lambda t, v: v.amax(dim=axes, keepdim=True)),
                       [_rand(*shape, seed=17)], dtype)
    assert gradcheck(GlobalPool("max"), _rand(*shape, seed=18)) < 1e-6


# ---------------------------------------------------------------------------- shapes


def test_shape_layers_forward_and_gradcheck():
    x = _rand(2, 3, 4, seed=19)
    cases = [
        (Reshape([0, -1]), (2, 12)), (Reshape([4, 0, 2]), (4, 3, 2)), (FlattenTo2d(2), (6, 4)),
        (FlattenTo2d(0), (1, 24)), (Transpose([2, 0, 1]), (4, 2, 3)), (Transpose(), (4, 3, 2)),
        (Unsqueeze([0, -1]), (1, 2, 3, 4, 1)),
    ]
    for layer, shape in cases:
        assert layer(x).shape == shape, layer
        assert gradcheck(layer, x) < 1e-6, layer
    np.testing.assert_array_equal(Transpose([2, 0, 1])(x), np.transpose(x, (2, 0, 1)))
    sq = _rand(1, 3, 1, 2)
    assert Squeeze()(sq).shape == (3, 2) and Squeeze([-2])(sq).shape == (1, 3, 2)
    assert gradcheck(Squeeze([0]), sq) < 1e-6


def test_reshape_takes_its_target_as_an_input():
    layer = Reshape()
    x = _rand(2, 6)
    y = layer(x, np.array([3, -1], dtype=np.int64))
    assert y.shape == (3, 4)
    dx, dshape = layer.backward(np.ones((3, 4)))
    assert dx.shape == (2, 6) and dshape is None
    assert Reshape([0], allowzero=True)(np.zeros((0, 3)).reshape(0)).shape == (0,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis,idx", [(0, [2, 0, 2]), (1, [[0, -1], [1, 1]]), (-1, 3), (2, [])])
def test_gather_matches_torch(axis, idx, dtype):
    data = _rand(3, 4, 5, seed=20)
    idx = np.array(idx, dtype=np.int64)

    def ref(t, d, i):
        a = axis % d.ndim
        i = t.where(i < 0, i + d.shape[a], i)
        out = t.index_select(d, a, i.reshape(-1))
        return out.reshape(d.shape[:a] + tuple(i.shape) + d.shape[a + 1:])

    compare_with_torch(Gather(axis), _torch_fn(ref), [data, idx], dtype)


def test_gather_repeated_indices_sum_and_gradcheck():
    layer = Gather(0)
    layer(np.zeros((3, 2)), np.array([1, 1, 1]))
    dx, none = layer.backward(np.ones((3, 2)))
    np.testing.assert_array_equal(dx, [[0, 0], [3, 3], [0, 0]])
    assert none is None
    assert gradcheck(Gather(1), _rand(2, 4, 3), np.array([[3, 0], [0, 0]])) < 1e-6


def test_int_shape_pipeline_and_constants():
    x = _rand(5, 2, 3)
    s = Shape()(x)
    assert s.dtype == np.int64 and list(s) == [5, 2, 3]
    assert list(Shape(1, -1)(x)) == [2] and list(Shape(-1)(x)) == [3]
    first = Gather(0)(s, np.array(0))
    target = TensorConcat(0)(Unsqueeze([0])(first), np.array([-1]))
    assert Reshape()(x, target).shape == (5, 6)
    c = ConstantOfShape(1.5, "float64")(np.array([2, 3]))
    assert c.dtype == np.float64 and c.shape == (2, 3) and c.min() == c.max() == 1.5
    k = Constant((2,), "int64")
    k.set_buffer("value", np.array([7, 8]))
    np.testing.assert_array_equal(k(x), [7, 8])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tensor_concat_matches_torch(dtype):
    compare_with_torch(TensorConcat(-1), _torch_fn(lambda t, *v: t.cat(v, -1)),
                       [_rand(2, 3), _rand(2, 1), _rand(2, 4)], dtype)


def test_with_constants_feeds_fixed_inputs_and_drops_their_gradients():
    layer = WithConstants(Elementwise("sub"), [0], [(3,)], ["float64"])
    layer.set_constant(0, np.array([1.0, 2.0, 3.0]))
    x = _rand(2, 3)
    np.testing.assert_allclose(layer(x), np.array([1.0, 2.0, 3.0]) - x)
    np.testing.assert_array_equal(layer.backward(np.ones((2, 3))), -np.ones((2, 3)))
    assert gradcheck(layer, x) < 1e-6
    assert list(layer.state_dict()) == ["input0"]
    layer.to(np.float32)
    assert layer.input0.dtype == np.float32


def test_graph_of_onnx_layers_saves_and_loads(tmp_path):
    g = Graph(["x"])
    fixed = WithConstants(Elementwise("add"), [1], [(4,)], ["float32"])
    fixed.set_constant(1, np.arange(4, dtype=np.float32))
    g.add("plus", fixed, "x")
    g.add("t", Transpose([1, 0]), "plus")
    g.add("r", Reshape([-1]), "t")
    g.add("pad", Pad([[0, 1, -1]], "reflect"), "r")
    g.output("pad")
    striate.save(g, tmp_path / "m.npz")
    g2 = striate.load(tmp_path / "m.npz")
    x = _rand(3, 4).astype(np.float32)
    np.testing.assert_array_equal(g2(x), g(x))


# ---------------------------------------------------------------------------- padding


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode,torch_mode", [("constant", "constant"), ("reflect", "reflect"),
                                             ("edge", "replicate"), ("wrap", "circular")])
def test_pad_matches_torch(mode, torch_mode, dtype):
    x = _rand(2, 3, 5, 6, seed=21)
    pads = [[2, 1, 2], [3, 0, 3]]                      # H: 1 before, 2 after; W: 0, 3

    def ref(t, v):
        kw = {"value": 0.5} if mode == "constant" else {}
        return t.nn.functional.pad(v, (0, 3, 1, 2), mode=torch_mode, **kw)

    value = 0.5 if mode == "constant" else 0.0
    compare_with_torch(Pad(pads, mode, value), _torch_fn(ref), [x], dtype)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_gradcheck_with_crops(mode):
    layer = Pad([[0, 1, 0], [1, -1, 2], [-1, 2, -1]], mode)
    x = _rand(2, 4, 5, seed=22)
    assert layer(x).shape == (3, 5, 6)
    assert gradcheck(layer, x) < 1e-6


def test_nd_pad_kernel_pair_and_integers():
    y, cache = nd_pad_forward(np.arange(3, dtype=np.int32), ((2, 1),), mode="edge")
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 2, 2])
    g = nd_pad_backward(np.ones(6), cache)
    np.testing.assert_array_equal(g, [3, 1, 2])
    assert Pad([[0, 1, 1]]).forward(np.array([1, 2])).dtype == np.int64


def test_same_pads_and_same_pad_layer():
    assert same_pads((5,), (3,), (2,), (1,), lower=False) == ((1, 1),)
    assert same_pads((6,), (3,), (2,), (1,), lower=False) == ((0, 1),)
    assert same_pads((6,), (3,), (2,), (1,), lower=True) == ((1, 0),)
    layer = SamePad((3, 3), (2, 2), (1, 1), value=0.0)
    x = _rand(1, 2, 6, 5, seed=23)
    assert layer(x).shape == (1, 2, 7, 7)
    assert gradcheck(layer, x) < 1e-6


@pytest.mark.parametrize("pads,same", [([[0, 1], [1, 0]], None), (None, "upper"), (None, "lower")])
def test_avg_pool_exclude_pad_divides_by_input_cells(pads, same):
    x = _rand(2, 3, 5, 6, seed=24)
    layer = AvgPoolExcludePad((2, 3), (2, 2), pads=pads, same=same)
    y = layer(x)
    if pads is None:
        lower = same == "lower"
        pads = [list(p) for p in same_pads((5, 6), (2, 3), (2, 2), (1, 1), lower)]
    # reference: mean over the in-input cells of each window, by loops
    (t, b), (l, r) = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=np.nan)
    oh, ow = (xp.shape[2] - 2) // 2 + 1, (xp.shape[3] - 3) // 2 + 1
    ref = np.array([[[[np.nanmean(xp[n, c, i * 2:i * 2 + 2, j * 2:j * 2 + 3]) for j in range(ow)]
                      for i in range(oh)] for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    assert gradcheck(layer, x) < 1e-6


# ---------------------------------------------------------------------------- errors


def test_constructor_errors_name_the_value():
    with pytest.raises(ConfigError, match="Elementwise: op must be one of .*received 'pow'"):
        Elementwise("pow")
    with pytest.raises(ConfigError, match="Clip: min must be a number or None; received 'a'"):
        Clip("a")
    with pytest.raises(ConfigError, match="HardSigmoid: alpha must be a finite number; received inf"):
        HardSigmoid(float("inf"))
    with pytest.raises(ConfigError, match="GlobalPool: kind .* received 'sum'"):
        GlobalPool("sum")
    with pytest.raises(ConfigError, match="Pad: mode must be one of .*received 'mirror'"):
        Pad([[0, 1, 1]], "mirror")
    with pytest.raises(ConfigError, match=r"Pad: pads must be \[axis, before, after\] triples"):
        Pad([1, 2])
    with pytest.raises(ConfigError, match="Unsqueeze: axes must be a non-empty list"):
        Unsqueeze([])
    with pytest.raises(ConfigError, match="Reshape: shape must be a list of ints; received 'ab'"):
        Reshape("ab")
    with pytest.raises(ConfigError, match="AvgPoolExcludePad: give pads or same"):
        AvgPoolExcludePad((2, 2), (2, 2))


def test_input_errors_name_the_layer_and_shapes():
    with pytest.raises(ShapeError, match=r"Elementwise expects inputs that broadcast together; "
                                         r"received \(2, 3\), \(4,\)"):
        Elementwise("add")(_rand(2, 3), _rand(4))
    with pytest.raises(ShapeError, match="Elementwise expects 2 inputs; received 3"):
        Elementwise("sub")(_rand(2), _rand(2), _rand(2))
    with pytest.raises(ShapeError, match=r"cannot reshape input \(2, 3\) to \[4, -1\]"):
        Reshape([4, -1])(_rand(2, 3))
    with pytest.raises(ShapeError, match=r"can only squeeze axes of size 1; received input \(2, 3\)"):
        Squeeze([0])(_rand(2, 3))
    with pytest.raises(ShapeError, match=r"indices must lie in \[-3, 3\)"):
        Gather(0)(_rand(3, 2), np.array([3]))
    with pytest.raises(ShapeError, match="perm .* is not a permutation"):
        Transpose([0, 0])(_rand(2, 2))
    with pytest.raises(ShapeError, match="Pad: axis 0 is padded twice"):
        Pad([[0, 1, 1], [-2, 1, 1]])(_rand(2, 3))
    with pytest.raises(ShapeError, match="reflect padding .* needs each pad smaller"):
        Pad([[0, 3, 0]], "reflect")(_rand(3))
    with pytest.raises(ShapeError, match=r"BroadcastPReLU expects an input the slope \(3,\) broadcasts to"):
        BroadcastPReLU((3,))(_rand(2, 4))
    with pytest.raises(DTypeError, match="Erf expects a floating-point input"):
        Erf()(np.arange(3))
    with pytest.raises(ShapeError, match=r"BatchNormNd expects input \(N, 3, \*\); received \(2, 4\)"):
        BatchNormNd(3)(_rand(2, 4))
    with pytest.raises(ShapeError, match=r"SamePad expects input \(N, C, 2 spatial axes\)"):
        SamePad((3, 3), (2, 2), (1, 1))(_rand(2, 3, 4))
