"""Graph (DAG models): residual, Inception, DenseNet and U-Net topologies against
PyTorch and finite differences; fan-out gradient sums; build- and run-time errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import striate
from striate.errors import ConfigError, ShapeError, StateError
from striate.nn import (Add, Concat, Conv2d, ConvTranspose2d, Graph, Linear, MaxPool2d, Mul,
                        ReLU, Sequential)
from tests.util import assert_close, compare_with_torch, torch_or_skip

RNG = 0


# ----------------------------------------------------------------------------- topologies
def residual_graph(c: int = 3, dtype=np.float64) -> Graph:
    """x -> conv1 -> relu1 -> conv2 -> (+ x) -> relu2."""
    rng = np.random.default_rng(RNG)
    g = Graph(inputs=["x"])
    g.add("conv1", Conv2d(c, c, 3, padding=1, dtype=dtype, rng=rng), "x")
    g.add("relu1", ReLU(), "conv1")
    g.add("conv2", Conv2d(c, c, 3, padding=1, dtype=dtype, rng=rng), "relu1")
    g.add("skip", Add(), "conv2", "x")
    g.add("relu2", ReLU(), "skip")
    return g.output("relu2")


def inception_graph(cin: int = 3, dtype=np.float64) -> Graph:
    """Parallel 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1 branches, concatenated."""
    rng = np.random.default_rng(RNG)

    def conv(ci, co, k, p=0):
        return Conv2d(ci, co, k, padding=p, dtype=dtype, rng=rng)

    return Graph(
        inputs=["x"],
        nodes=[
            ("b1", conv(cin, 2, 1), "x"),
            ("b2_reduce", conv(cin, 2, 1), "x"),
            ("b2_relu", ReLU(), "b2_reduce"),
            ("b2", conv(2, 3, 3, 1), "b2_relu"),
            ("b3_reduce", conv(cin, 1, 1), "x"),
            ("b3", conv(1, 2, 5, 2), "b3_reduce"),
            ("pool", MaxPool2d(3, stride=1, padding=1), "x"),
            ("b4", conv(cin, 2, 1), "pool"),
            ("cat", Concat(1), "b1", "b2", "b3", "b4"),
            ("out", ReLU(), "cat"),
        ],
        outputs="out",
    )


def dense_graph(cin: int = 2, growth: int = 2, dtype=np.float64) -> Graph:
    """DenseNet block: every conv reads the concatenation of all earlier features."""
    rng = np.random.default_rng(RNG)
    g = Graph(inputs=["x"])
    feats = ["x"]
    for i in range(1, 4):
        src = feats[0] if i == 1 else f"cat{i}"
        if i > 1:
            g.add(src, Concat(1), *feats)
        g.add(f"conv{i}", Conv2d(cin + (i - 1) * growth, growth, 3, padding=1, dtype=dtype, rng=rng), src)
        g.add(f"relu{i}", ReLU(), f"conv{i}")
        feats.append(f"relu{i}")
    g.add("out", Concat(1), *feats)
    return g.output("out")


def unet_graph(cin: int = 2, dtype=np.float64) -> Graph:
    """A two-level U-Net: the encoder's features skip to the decoder (concatenated)."""
    rng = np.random.default_rng(RNG)
    g = Graph(inputs=["x"])
    g.add("enc1", Conv2d(cin, 3, 3, padding=1, dtype=dtype, rng=rng), "x")
    g.add("enc1_relu", ReLU(), "enc1")
    g.add("down", MaxPool2d(2), "enc1_relu")
    g.add("enc2", Conv2d(3, 4, 3, padding=1, dtype=dtype, rng=rng), "down")
    g.add("enc2_relu", ReLU(), "enc2")
    g.add("up", ConvTranspose2d(4, 3, 2, stride=2, dtype=dtype, rng=rng), "enc2_relu")
    g.add("skip", Concat(1), "up", "enc1_relu")
    g.add("dec", Conv2d(6, 3, 3, padding=1, dtype=dtype, rng=rng), "skip")
    g.add("dec_relu", ReLU(), "dec")
    g.add("head", Conv2d(3, 1, 1, dtype=dtype, rng=rng), "dec_relu")
    return g.output("head")


# ----------------------------------------------------------------------------- torch references
def torch_reference(kind: str):
    torch = torch_or_skip()
    nn, F = torch.nn, torch.nn.functional

    class Residual(nn.Module):
        def __init__(self, c=3):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x):
            return F.relu(self.conv2(F.relu(self.conv1(x))) + x)

    class Inception(nn.Module):
        def __init__(self, cin=3):
            super().__init__()
            self.b1 = nn.Conv2d(cin, 2, 1)
            self.b2_reduce = nn.Conv2d(cin, 2, 1)
            self.b2 = nn.Conv2d(2, 3, 3, padding=1)
            self.b3_reduce = nn.Conv2d(cin, 1, 1)
            self.b3 = nn.Conv2d(1, 2, 5, padding=2)
            self.b4 = nn.Conv2d(cin, 2, 1)

        def forward(self, x):
            b2 = self.b2(F.relu(self.b2_reduce(x)))
            b3 = self.b3(self.b3_reduce(x))
            b4 = self.b4(F.max_pool2d(x, 3, stride=1, padding=1))
            return F.relu(torch.cat([self.b1(x), b2, b3, b4], 1))

    class Dense(nn.Module):
        def __init__(self, cin=2, growth=2):
            super().__init__()
            for i in range(1, 4):
                setattr(self, f"conv{i}", nn.Conv2d(cin + (i - 1) * growth, growth, 3, padding=1))

        def forward(self, x):
            feats = [x]
            for i in range(1, 4):
                feats.append(F.relu(getattr(self, f"conv{i}")(torch.cat(feats, 1))))
            return torch.cat(feats, 1)

    class UNet(nn.Module):
        def __init__(self, cin=2):
            super().__init__()
            self.enc1 = nn.Conv2d(cin, 3, 3, padding=1)
            self.enc2 = nn.Conv2d(3, 4, 3, padding=1)
            self.up = nn.ConvTranspose2d(4, 3, 2, stride=2)
            self.dec = nn.Conv2d(6, 3, 3, padding=1)
            self.head = nn.Conv2d(3, 1, 1)

        def forward(self, x):
            e1 = F.relu(self.enc1(x))
            e2 = F.relu(self.enc2(F.max_pool2d(e1, 2)))
            d = F.relu(self.dec(torch.cat([self.up(e2), e1], 1)))
            return self.head(d)

    return {"residual": Residual, "inception": Inception, "dense": Dense, "unet": UNet}[kind]()


TOPOLOGIES = {
    "residual": (residual_graph, (2, 3, 5, 5)),
    "inception": (inception_graph, (2, 3, 5, 5)),
    "dense": (dense_graph, (2, 2, 4, 4)),
    "unet": (unet_graph, (2, 2, 6, 6)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", list(TOPOLOGIES))
def test_topology_matches_torch(kind, dtype):
    build, shape = TOPOLOGIES[kind]
    g = build(dtype=dtype)
    t = torch_reference(kind)
    assert list(g.state_dict()) == list(t.state_dict())
    x = np.random.default_rng(1).standard_normal(shape)
    y = compare_with_torch(g, t, [x], dtype)
    assert y.dtype == dtype


@pytest.mark.parametrize("kind", list(TOPOLOGIES))
def test_topology_gradcheck(kind):
    build, shape = TOPOLOGIES[kind]
    g = build()
    x = np.random.default_rng(2).standard_normal(shape)
    report = striate.gradcheck(g, x, max_per_tensor=12, details=True)
    assert "input0" in report and len(report) == 1 + len(list(g.parameters()))
    assert max(report.values()) < 1e-6, report


def test_torch_weights_load_into_graph():
    torch = torch_or_skip()
    t = torch_reference("unet").double()
    g = unet_graph()
    g.load_state_dict(t.state_dict())
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 4))
    assert_close(g(x), t(torch.from_numpy(x)).detach().numpy(), np.float64, "output")


# ----------------------------------------------------------------------------- fan-out, multi in/out
def test_fan_out_gradients_sum():
    """y = a + a + a*a with a = W x: dL/da = 2 + 2a, summed over three reads of 'a'."""
    lin = Linear(3, 2, bias=False, dtype=np.float64, rng=0)
    g = Graph(["x"], nodes=[("a", lin, "x"), ("twice", Add(), "a", "a"),
                            ("sq", Mul(), "a", "a"), ("y", Add(), "twice", "sq")], outputs="y")
    x = np.array([[1.0, -2.0, 0.5]])
    y = g(x)
    a = x @ lin.weight.data.T
    np.testing.assert_allclose(y, 2 * a + a * a, rtol=1e-12)
    dx = g.backward(np.ones_like(y))
    da = 2.0 + 2.0 * a
    np.testing.assert_allclose(dx, da @ lin.weight.data, rtol=1e-12)
    np.testing.assert_allclose(lin.weight.grad, da.T @ x, rtol=1e-12)


def test_graph_input_read_directly_and_unused_input():
    g = Graph(["x", "unused"], nodes=[("twice", Add(), "x", "x")], outputs=["twice", "x"])
    x, u = np.ones((2, 2)), np.ones((3,))
    y, passthrough = g(x, u)
    assert passthrough is x
    dx, du = g.backward((np.full((2, 2), 2.0), np.full((2, 2), 5.0)))
    np.testing.assert_array_equal(dx, np.full((2, 2), 9.0))
    np.testing.assert_array_equal(du, np.zeros(3))


def test_multi_input_multi_output_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    g = Graph(inputs=["a", "b"])
    g.add("la", Linear(4, 3, dtype=np.float64, rng=rng), "a")
    g.add("lb", Linear(4, 3, dtype=np.float64, rng=rng), "b")
    g.add("s", Add(), "la", "lb")
    g.add("m", Mul(), "s", "la")
    g.output("m", "s")

    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.la, self.lb = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)

        def forward(self, a, b):
            la = self.la(a)
            s = la + self.lb(b)
            return s * la, s

    t = T().double()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in g.state_dict().items()})
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    ta, tb = (torch.from_numpy(v.copy()).requires_grad_() for v in (a, b))
    m, s = g(a, b)
    tm, ts = t(ta, tb)
    assert_close(m, tm.detach().numpy(), what="m")
    assert_close(s, ts.detach().numpy(), what="s")
    dm, ds = rng.standard_normal(m.shape), rng.standard_normal(s.shape)
    da, db = g.backward((dm, ds))
    torch.autograd.backward([tm, ts], [torch.from_numpy(dm), torch.from_numpy(ds)])
    assert_close(da, ta.grad.numpy(), what="da")
    assert_close(db, tb.grad.numpy(), what="db")
    tp = dict(t.named_parameters())
    for name, p in g.named_parameters():
        assert_close(p.grad, tp[name].grad.numpy(), what=name)


def test_two_input_graph_gradcheck():
    rng = np.random.default_rng(10)
    g = Graph("a").output("a")
    assert g.inputs == ("a",)
    g = Graph(["a", "b"], nodes=[
        ("ca", Conv2d(2, 2, 3, padding=1, dtype=np.float64, rng=rng), "a"),
        ("gate", Mul(), "ca", "b"),
        ("cat", Concat(1), "gate", "a", "b"),
    ], outputs="cat")
    a, b = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 2, 3, 3))
    report = striate.gradcheck(g, a, b, max_per_tensor=20, details=True)
    assert {"input0", "input1", "ca.weight", "ca.bias"} <= set(report)
    assert max(report.values()) < 1e-7, report


def test_dead_node_is_run_but_gets_no_gradient():
    rng = np.random.default_rng(5)
    g = Graph(["x"], nodes=[("used", Linear(2, 2, dtype=np.float64, rng=rng), "x"),
                            ("dead", Linear(2, 2, dtype=np.float64, rng=rng), "x")], outputs="used")
    x = np.ones((1, 2))
    g(x)
    g.zero_grad()
    g.backward(np.ones((1, 2)))
    assert g["used"].weight.grad is not None
    assert g["dead"].weight.grad is None


# ----------------------------------------------------------------------------- accessors, repr
def test_nodes_repr_and_state_dict_keys():
    g = residual_graph()
    assert [n.name for n in g.nodes] == ["conv1", "relu1", "conv2", "skip", "relu2"]
    assert g.nodes[3].inputs == ("conv2", "x")
    assert isinstance(g.nodes[3].module, Add)
    assert g.inputs == ("x",) and g.outputs == ("relu2",) and len(g) == 5
    assert g.consumers("x") == ["conv1", "skip"]
    assert list(g.state_dict()) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    text = repr(g)
    assert "inputs=['x'], outputs=['relu2']" in text
    assert "(skip) <- conv2, x: Add()" in text
    assert "(conv1) <- x: Conv2d(3, 3" in text


def test_recorded_constructor_arguments_rebuild_the_graph():
    """A graph grown with add()/output() records Graph(inputs, nodes=..., outputs=...),
    the description striate.save writes, so it can be rebuilt without this code."""
    g = dense_graph()
    args, kwargs = g._init_args
    assert args == (["x"],) and kwargs["outputs"] == ["out"]
    assert [spec[0] for spec in kwargs["nodes"]] == [n.name for n in g.nodes]
    nodes = [(name, copy.deepcopy(module), *ins) for name, module, *ins in kwargs["nodes"]]
    h = Graph(*args, nodes=nodes, outputs=kwargs["outputs"])
    h.load_state_dict(g.state_dict())
    x = np.random.default_rng(9).standard_normal((1, 2, 3, 3))
    np.testing.assert_array_equal(h(x), g(x))


def test_replace_keeps_order_and_inputs():
    g = residual_graph()
    new = ReLU()
    g.replace("relu1", new)
    assert g["relu1"] is new and g.nodes[1].inputs == ("conv1",)
    assert list(g._modules) == ["conv1", "relu1", "conv2", "skip", "relu2"]
    assert new.path == "relu1"
    assert g._init_args[1]["nodes"][1][1] is new
    with pytest.raises(ConfigError, match="no node named 'nope'"):
        g.replace("nope", ReLU())
    with pytest.raises(ConfigError, match="already node 'conv2'"):
        g.replace("conv1", g["conv2"])


def test_no_grad_forward_keeps_no_cache():
    g = residual_graph()
    x = np.zeros((1, 3, 4, 4))
    with striate.no_grad():
        g(x)
    with pytest.raises(StateError, match="Graph.*backward"):
        g.backward(np.zeros((1, 3, 4, 4)))


# ----------------------------------------------------------------------------- errors
def test_build_errors_name_the_problem():
    g = Graph(inputs=["x"])
    g.add("fc", Linear(2, 2), "x")
    with pytest.raises(ConfigError, match="'fc2'.*unknown.*'nope'"):
        g.add("fc2", Linear(2, 2), "nope")
    with pytest.raises(ConfigError, match="duplicate name 'fc'"):
        g.add("fc", Linear(2, 2), "x")
    with pytest.raises(ConfigError, match="duplicate name 'x'"):
        g.add("x", Linear(2, 2), "fc")
    with pytest.raises(ConfigError, match="'a.b'"):
        g.add("a.b", Linear(2, 2), "x")
    with pytest.raises(ConfigError, match="'outputs' clashes"):
        g.add("outputs", Linear(2, 2), "x")
    with pytest.raises(ConfigError, match="'fc2' reuses the module of node 'fc'"):
        g.add("fc2", g["fc"], "x")
    with pytest.raises(ConfigError, match="'fc2' needs a striate Module; received int"):
        g.add("fc2", 3, "x")
    with pytest.raises(ConfigError, match="'fc2' needs at least one input"):
        g.add("fc2", Linear(2, 2))
    with pytest.raises(ConfigError, match="unknown name.*'zzz'"):
        g.output("zzz")
    with pytest.raises(ConfigError, match="duplicate name 'x'"):
        Graph(inputs=["x", "x"])
    with pytest.raises(ConfigError, match="at least one input"):
        Graph(inputs=[])
    with pytest.raises(ConfigError, match=r"\(name, module, input, \.\.\.\).*'solo'"):
        Graph(["x"], nodes=[("solo",)])


def test_run_errors():
    g = Graph(inputs=["x"]).add("fc", Linear(2, 2), "x")
    with pytest.raises(StateError, match="no outputs declared"):
        g(np.ones((1, 2), np.float32))
    g.output("fc")
    with pytest.raises(ShapeError, match=r"expects 1 input\(s\) \(x\); received 2"):
        g(np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(StateError, match="Graph: backward\\(\\) called before forward"):
        g.backward(np.ones((1, 2)))
    two = Graph(["x"], nodes=[("fc", Linear(2, 2), "x")], outputs=["fc", "x"])
    two(np.ones((1, 2), np.float32))
    with pytest.raises(ShapeError, match="tuple of 2 gradients.*received 1"):
        two.backward(np.ones((1, 2), np.float32))


def test_runtime_error_names_the_node_path():
    g = residual_graph()
    with pytest.raises(ShapeError, match=r"conv1 \(Conv2d\) expects input \(N, 3, H, W\); received \(1, 4, 5, 5\)"):
        g(np.ones((1, 4, 5, 5)))
    model = Sequential(residual_graph())
    with pytest.raises(ShapeError, match=r"0\.conv1 \(Conv2d\)"):
        model(np.ones((1, 4, 5, 5)))
    bad = Graph(["x", "y"], nodes=[("sum", Add(), "x", "y")], outputs="sum")
    with pytest.raises(ShapeError, match=r"sum \(Add\).*\(1, 2\).*\(2, 1\)"):
        bad(np.ones((1, 2)), np.ones((2, 1)))
