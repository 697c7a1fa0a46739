"""Optimizers (SGD, Adam, AdamW, RMSprop) and gradient clipping against torch.optim / torch.nn.utils."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from striate import nn, optim
from striate.errors import ConfigError, NonFiniteError, StateDictError
from striate.nn.parameter import Parameter
from tests.util import assert_close, torch_or_skip

SHAPES = ((3, 4), (5,))
STEPS = 8

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict()),                                                  # default lr 1e-3
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.1)),       # lerp's second branch
    ("Adam", dict(lr=0.02, amsgrad=True, eps=1e-6)),
    ("Adam", dict(lr=0.01, maximize=True, weight_decay=0.05)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.02, betas=(0.8, 0.99), maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, centered=True, momentum=0.5, eps=1e-4)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
]


def _init_params(dtype=np.float64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _quadratic_grad(values: np.ndarray, i: int, step: int) -> np.ndarray:
    """The gradient of a fixed anisotropic quadratic plus a step-dependent pull."""
    scale = np.linspace(0.5, 3.0, values.size).reshape(values.shape)
    g = scale * (values - 0.3 * i) + 0.1 * np.cos(step + np.arange(values.size)).reshape(values.shape)
    return g.astype(values.dtype)


def _run_striate(name: str, kw: dict, init: list[np.ndarray], steps: int) -> list[list[np.ndarray]]:
    params = [Parameter(v) for v in init]
    frozen = Parameter(np.ones(2, dtype=init[0].dtype))             # never gets a gradient
    opt = getattr(optim, name)(params + [frozen], **kw)
    out = []
    for step in range(steps):
        opt.zero_grad()
        for i, p in enumerate(params):
            p.accumulate(_quadratic_grad(p.data, i, step))
        opt.step()
        out.append([p.data.copy() for p in params])
    assert np.array_equal(frozen.data, np.ones(2)) and frozen not in opt.state
    return out


def _run_torch(name: str, kw: dict, init: list[np.ndarray], steps: int) -> list[list[np.ndarray]]:
    torch = torch_or_skip()
    params = [torch.tensor(v, requires_grad=True) for v in init]
    opt = getattr(torch.optim, name)(params, **kw)
    out = []
    for step in range(steps):
        opt.zero_grad()
        for i, p in enumerate(params):
            p.grad = torch.from_numpy(_quadratic_grad(p.detach().numpy(), i, step))
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch_float64(name, kw):
    init = _init_params()
    ours, ref = _run_striate(name, kw, init, STEPS), _run_torch(name, kw, init, STEPS)
    for step, (a, b) in enumerate(zip(ours, ref)):
        for i, (pa, pb) in enumerate(zip(a, b)):
            assert_close(pa, pb, np.float64, f"{name} step {step} param {i}", tol=1e-12)
    assert not np.allclose(ours[-1][0], init[0])                      # it did move


@pytest.mark.parametrize("name,kw", [CASES[2], CASES[7], CASES[11], CASES[16]])
def test_trajectory_matches_torch_float32(name, kw):
    init = _init_params(np.float32)
    ours = _run_striate(name, kw, init, STEPS)
    ref = _run_torch(name, kw, init, STEPS)
    for a, b in zip(ours, ref):
        for pa, pb in zip(a, b):
            assert pa.dtype == np.float32
            assert_close(pa, pb, np.float32)


def test_param_groups_with_own_hyperparameters_match_torch():
    torch = torch_or_skip()
    init = _init_params()
    ps = [Parameter(v) for v in init]
    tps = [torch.tensor(v, requires_grad=True) for v in init]
    opt = optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.5, "momentum": 0.5}],
                    lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([{"params": [tps[0]]}, {"params": [tps[1]], "lr": 0.5, "momentum": 0.5}],
                           lr=0.1, momentum=0.9)
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[0]["lr"] == 0.1
    for step in range(5):
        for i, (p, tp) in enumerate(zip(ps, tps)):
            p.grad = _quadratic_grad(p.data, i, step)
            tp.grad = torch.from_numpy(_quadratic_grad(tp.detach().numpy(), i, step))
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        assert_close(p.data, tp.detach().numpy(), tol=1e-12)


# ---------------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name,kw", [CASES[4], CASES[8], CASES[11], CASES[16]])
def test_state_dict_round_trip_continues_identically(name, kw):
    init = _init_params()
    ps = [Parameter(v) for v in init]
    opt = getattr(optim, name)(ps, **kw)

    def train(opt, params, steps, start):
        for step in range(start, start + steps):
            opt.zero_grad()
            for i, p in enumerate(params):
                p.accumulate(_quadratic_grad(p.data, i, step))
            opt.step()

    train(opt, ps, 3, 0)
    saved = opt.state_dict()
    snapshot = copy.deepcopy(saved)
    ps2 = [Parameter(p.data) for p in ps]
    train(opt, ps, 3, 3)
    for k, v in saved["state"].items():                               # the saved state is a copy
        for key, arr in v.items():
            assert np.array_equal(arr, snapshot["state"][k][key])
    opt2 = getattr(optim, name)(ps2, lr=123.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kw.get("lr", 1e-3)
    train(opt2, ps2, 3, 3)
    for a, b in zip(ps, ps2):
        assert np.array_equal(a.data, b.data)


def test_state_dict_structure_matches_torch():
    torch = torch_or_skip()
    init = _init_params()
    for name, kw in (CASES[4], CASES[8], CASES[16]):
        ps = [Parameter(v) for v in init]
        tps = [torch.tensor(v, requires_grad=True) for v in init]
        opt = getattr(optim, name)([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.3}], **kw)
        topt = getattr(torch.optim, name)([{"params": tps[:1]}, {"params": tps[1:], "lr": 0.3}], **kw)
        for p, tp in zip(ps, tps):
            p.grad = np.ones_like(p.data)
            tp.grad = torch.ones_like(tp)
        opt.step()
        topt.step()
        sd, tsd = opt.state_dict(), topt.state_dict()
        assert sorted(sd["state"]) == sorted(tsd["state"]) == [0, 1]
        for k in sd["state"]:
            assert set(sd["state"][k]) == set(tsd["state"][k])
            for key, v in sd["state"][k].items():
                tv = tsd["state"][k][key]
                assert_close(np.asarray(v), tv.numpy(), tol=1e-12)
        for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
            assert g["params"] == tg["params"]
            assert set(g) <= set(tg), set(g) - set(tg)
            assert all(g[k] == tg[k] for k in g)


def test_load_torch_state_dict_and_continue():
    torch = torch_or_skip()
    name, kw = CASES[8]
    init = _init_params()
    tps = [torch.tensor(v, requires_grad=True) for v in init]
    topt = torch.optim.Adam(tps, **kw)
    for step in range(4):
        for i, tp in enumerate(tps):
            tp.grad = torch.from_numpy(_quadratic_grad(tp.detach().numpy(), i, step))
        topt.step()
    ps = [Parameter(tp.detach().numpy()) for tp in tps]
    opt = optim.Adam(ps)
    opt.load_state_dict(topt.state_dict())
    for step in range(4, 7):
        for i, (p, tp) in enumerate(zip(ps, tps)):
            p.grad = _quadratic_grad(p.data, i, step)
            tp.grad = torch.from_numpy(_quadratic_grad(tp.detach().numpy(), i, step))
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps):
        assert_close(p.data, tp.detach().numpy(), tol=1e-12)


def test_load_state_dict_refuses_a_different_layout():
    ps = [Parameter(v) for v in _init_params()]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    for p in ps:
        p.grad = np.ones_like(p.data)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(StateDictError, match="has 1 parameter groups; the optimizer has 2"):
        optim.SGD([{"params": ps[:1]}, {"params": ps[1:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(StateDictError, match="group 0 has 2 parameters.*has 1"):
        optim.SGD(ps[:1], lr=0.1).load_state_dict(sd)
    swapped = [Parameter(np.zeros(5)), Parameter(np.zeros((3, 4)))]
    with pytest.raises(StateDictError, match="momentum_buffer.*\\(3, 4\\).*\\(5,\\)"):
        optim.SGD(swapped, lr=0.1).load_state_dict(sd)


# ---------------------------------------------------------------------------- behaviour
def test_zero_grad_and_skipping_params_without_grad():
    ps = [Parameter(np.ones(3)), Parameter(np.ones(2))]
    opt = optim.SGD(ps, lr=0.5)
    ps[0].grad = np.full(3, 2.0)
    opt.step()
    assert np.array_equal(ps[0].data, np.zeros(3)) and np.array_equal(ps[1].data, np.ones(2))
    opt.zero_grad(set_to_none=False)
    assert np.array_equal(ps[0].grad, np.zeros(3)) and ps[1].grad is None
    opt.zero_grad()
    assert ps[0].grad is None


def test_updates_in_place_and_with_a_model():
    model = nn.Linear(3, 2, rng=0)
    w = model.weight.data
    opt = optim.Adam(model.parameters(), lr=0.1)
    x = np.ones((4, 3), dtype=np.float32)
    y = model(x)
    model.backward(np.ones_like(y))
    before = w.copy()
    opt.step()
    assert model.weight.data is w and w.dtype == np.float32
    assert np.all(np.abs(w - before) > 0.09)                          # Adam's first step is ~lr
    assert opt.step(closure=lambda: 3.5) == 3.5


def test_add_param_group_fills_defaults():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(3))
    opt = optim.Adam([a], lr=0.01, betas=(0.8, 0.9))
    opt.add_param_group({"params": b, "lr": 0.5})
    g = opt.param_groups[1]
    assert g["params"] == [b] and g["lr"] == 0.5 and g["betas"] == (0.8, 0.9) and g["eps"] == 1e-8
    with pytest.raises(ConfigError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name,kw,match", [
    ("SGD", dict(lr=-0.1), "learning rate.*-0.1"),
    ("SGD", dict(momentum=-0.5), "momentum.*-0.5"),
    ("SGD", dict(weight_decay=-1), "weight_decay.*-1"),
    ("SGD", dict(nesterov=True), "Nesterov.*momentum=0"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1), "Nesterov.*dampening=0.1"),
    ("Adam", dict(lr=-1e-3), "learning rate.*-0.001"),
    ("Adam", dict(betas=(1.0, 0.999)), "beta parameter at index 0: 1.0"),
    ("Adam", dict(betas=(0.9, -0.1)), "beta parameter at index 1: -0.1"),
    ("Adam", dict(betas=0.9), "betas.*0.9"),
    ("Adam", dict(eps=-1e-8), "epsilon.*-1e-08"),
    ("AdamW", dict(weight_decay=-0.01), "weight_decay.*-0.01"),
    ("RMSprop", dict(alpha=-0.9), "alpha.*-0.9"),
    ("RMSprop", dict(momentum=-1), "momentum.*-1"),
    ("RMSprop", dict(lr="fast"), "learning rate.*'fast'"),
])
def test_bad_hyperparameters(name, kw, match):
    with pytest.raises(ConfigError, match=f"{name}.*{match}"):
        getattr(optim, name)([Parameter(np.zeros(2))], **kw)


def test_bad_params_argument():
    with pytest.raises(ConfigError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ConfigError, match="single Parameter"):
        optim.SGD(Parameter(np.zeros(2)), lr=0.1)
    with pytest.raises(ConfigError, match="model.parameters\\(\\)"):
        optim.SGD(nn.Linear(2, 2), lr=0.1)
    with pytest.raises(ConfigError, match="only optimize Parameters; received ndarray"):
        optim.Adam([np.zeros(2)])
    p = Parameter(np.zeros(2))
    with pytest.raises(ConfigError, match="same parameter more than once"):
        optim.SGD([p, p])


# ---------------------------------------------------------------------------- clipping
def _grads_pair(torch, dtype=np.float64):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(dtype) * 3 for s in ((4, 3), (7,), (2, 2, 2))]
    ps = [Parameter(np.zeros_like(g)) for g in grads] + [Parameter(np.zeros(3, dtype=dtype))]
    tps = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True) for g in grads]
    tps.append(torch.zeros(3, dtype=tps[0].dtype, requires_grad=True))   # no grad: skipped
    for p, tp, g in zip(ps, tps, grads):
        p.grad = g.copy()
        tp.grad = torch.from_numpy(g.copy())
    return ps, tps


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("norm_type", (2.0, 1, 3.5, float("inf"), "inf"))
@pytest.mark.parametrize("max_norm", (0.5, 1e4))
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    torch = torch_or_skip()
    ps, tps = _grads_pair(torch, dtype)
    total = optim.clip_grad_norm_(ps, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert_close(total, ttotal.numpy(), dtype)
    for p, tp in zip(ps, tps):
        if tp.grad is None:
            assert p.grad is None
        else:
            assert_close(p.grad, tp.grad.numpy(), dtype)
            assert p.grad.dtype == dtype


def test_clip_grad_norm_without_torch():
    p, q = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    p.grad, q.grad = np.array([3.0, 0.0]), np.array([4.0])
    assert optim.clip_grad_norm_(p, 100.0) == pytest.approx(3.0)      # a single Parameter works
    assert optim.clip_grad_norm_([p, q], 1.0) == pytest.approx(5.0)
    assert np.sqrt(np.sum(p.grad ** 2) + np.sum(q.grad ** 2)) == pytest.approx(1.0, rel=1e-5)
    assert optim.clip_grad_norm_([Parameter(np.zeros(2))], 1.0) == 0.0
    q.grad = np.array([np.inf])
    with pytest.raises(NonFiniteError, match="non-finite|inf"):
        optim.clip_grad_norm_([p, q], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch():
    torch = torch_or_skip()
    ps, tps = _grads_pair(torch)
    optim.clip_grad_value_(ps, 1.5)
    torch.nn.utils.clip_grad_value_(tps, 1.5)
    for p, tp in zip(ps, tps):
        if tp.grad is not None:
            assert np.array_equal(p.grad, tp.grad.numpy())
    assert max(np.abs(p.grad).max() for p in ps if p.grad is not None) == 1.5


def test_clip_errors():
    p = Parameter(np.zeros(2))
    p.grad = np.ones(2)
    with pytest.raises(ConfigError, match="max_norm.*-1"):
        optim.clip_grad_norm_([p], -1)
    with pytest.raises(ConfigError, match="norm_type.*'l2'"):
        optim.clip_grad_norm_([p], 1.0, norm_type="l2")
    with pytest.raises(ConfigError, match="clip_value.*-0.5"):
        optim.clip_grad_value_([p], -0.5)
    with pytest.raises(ConfigError, match="Parameters; received ndarray"):
        optim.clip_grad_value_([np.zeros(2)], 1.0)
