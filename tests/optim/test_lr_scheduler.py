"""Learning-rate schedulers against torch.optim.lr_scheduler: lr (and momentum) sequences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from striate import optim
from striate.errors import ConfigError, StateError
from striate.nn.parameter import Parameter
from striate.optim import lr_scheduler as S
from tests.util import torch_or_skip

LRS = (0.1, 0.02)


def _optimizers(opt_name: str = "SGD", **kw):
    """A striate optimizer and, when torch is present, the same torch one (two groups)."""
    ours = getattr(optim, opt_name)([{"params": [Parameter(np.zeros(2))], "lr": LRS[0]},
                                     {"params": [Parameter(np.zeros(3))], "lr": LRS[1]}], **kw)
    torch = torch_or_skip()
    theirs = getattr(torch.optim, opt_name)(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": LRS[0]},
         {"params": [torch.zeros(3, requires_grad=True)], "lr": LRS[1]}], **kw)
    return ours, theirs


def _momenta(opt) -> list[float]:
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _compare(cls_name: str, steps: int, opt_name: str = "SGD", opt_kw: dict | None = None,
             momentum: bool = False, metrics=None, **kw) -> None:
    torch = torch_or_skip()
    ours_opt, torch_opt = _optimizers(opt_name, **(opt_kw or {}))
    ours = getattr(S, cls_name)(ours_opt, **kw)
    theirs = getattr(torch.optim.lr_scheduler, cls_name)(torch_opt, **kw)
    seq, ref = [ours.get_last_lr()], [theirs.get_last_lr()]
    mom, tmom = [_momenta(ours_opt)], [_momenta(torch_opt)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(steps):
            ours_opt.step()
            torch_opt.step()
            if metrics is None:
                ours.step()
                theirs.step()
            else:
                ours.step(metrics[i])
                theirs.step(metrics[i])
            seq.append(ours.get_last_lr())
            ref.append(theirs.get_last_lr())
            mom.append(_momenta(ours_opt))
            tmom.append(_momenta(torch_opt))
    seq, ref = np.array(seq), np.array(ref, dtype=np.float64)
    np.testing.assert_allclose(seq, ref, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(seq[-1], [g["lr"] for g in ours_opt.param_groups])
    assert len(np.unique(seq[:, 0])) > 1, "the schedule never changed the lr"
    if momentum:
        np.testing.assert_allclose(np.array(mom), np.array(tmom), rtol=1e-12, atol=0)
        assert len(np.unique(np.array(mom)[:, 0])) > 1


def test_step_lr():
    _compare("StepLR", 20, step_size=3, gamma=0.5)
    _compare("StepLR", 12, step_size=1)


def test_multi_step_lr_with_repeated_milestone():
    _compare("MultiStepLR", 15, milestones=[2, 5, 5, 9], gamma=0.3)


@pytest.mark.parametrize("T_max,eta_min", ((7, 0.001), (10, 0.0), (1, 0.005)))
def test_cosine_annealing_over_three_periods(T_max, eta_min):
    _compare("CosineAnnealingLR", 3 * T_max + 2, T_max=T_max, eta_min=eta_min)


@pytest.mark.parametrize("kw", (
    dict(total_steps=40),
    dict(total_steps=37, anneal_strategy="linear", pct_start=0.25),
    dict(total_steps=30, three_phase=True, div_factor=10.0, final_div_factor=100.0),
    dict(epochs=4, steps_per_epoch=9, pct_start=0.4),
    dict(total_steps=20, base_momentum=[0.8, 0.7], max_momentum=0.9),
))
def test_one_cycle_lr_and_sgd_momentum(kw):
    _compare("OneCycleLR", kw.get("total_steps", 36), momentum=True, opt_kw=dict(momentum=0.9),
             max_lr=[0.5, 0.05], **kw)


def test_one_cycle_lr_cycles_adam_beta1():
    _compare("OneCycleLR", 25, "Adam", momentum=True, max_lr=0.01, total_steps=25, pct_start=0.2)


def test_one_cycle_lr_without_momentum_cycling():
    _compare("OneCycleLR", 15, "Adam", max_lr=0.01, total_steps=15, cycle_momentum=False)


def test_one_cycle_lr_stepping_past_the_end():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(StateError, match="tried to step 4 times.*total_steps=3"):
        sched.step()


METRICS = [10, 9, 9, 9.5, 9.2, 8.9995, 9.0, 9.1, 9.3, 7.0, 7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8,
           7.9, 8.0, 8.1, 8.2, 8.3]


@pytest.mark.parametrize("kw", (
    dict(patience=2),
    dict(patience=1, cooldown=2, factor=0.5, threshold=0.01, threshold_mode="abs"),
    dict(patience=0, factor=0.3, min_lr=[0.01, 0.005]),
    dict(patience=1, min_lr=0.003, eps=1e-3),
))
def test_reduce_lr_on_plateau_min(kw):
    _compare("ReduceLROnPlateau", len(METRICS), metrics=METRICS, **kw)


@pytest.mark.parametrize("threshold_mode", ("rel", "abs"))
def test_reduce_lr_on_plateau_max(threshold_mode):
    _compare("ReduceLROnPlateau", len(METRICS), metrics=[-m for m in METRICS], mode="max",
             patience=1, threshold_mode=threshold_mode, threshold=0.02)


# ---------------------------------------------------------------------------- without torch
def test_construction_sets_initial_lr_and_epoch_zero_lr():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    sched = S.CosineAnnealingLR(opt, T_max=4)
    assert opt.param_groups[0]["initial_lr"] == 0.1 and sched.get_last_lr() == [0.1]
    lrs = []
    for _ in range(4):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    closed = [0.05 * (1 + np.cos(np.pi * t / 4)) for t in range(1, 5)]
    np.testing.assert_allclose(lrs, closed, rtol=1e-12, atol=1e-15)
    opt = optim.SGD([Parameter(np.zeros(1))], lr=1.0, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / 25) and opt.param_groups[0]["momentum"] == 0.95


@pytest.mark.parametrize("make", (
    lambda o: S.StepLR(o, step_size=2, gamma=0.5),
    lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
    lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=12),
))
def test_scheduler_state_dict_round_trip(make):
    def fresh():
        return optim.SGD([Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    opt = fresh()
    sched = make(opt)
    for _ in range(4):
        sched.step()
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in saved_sched
    opt2 = fresh()
    sched2 = make(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    a, b = [], []
    for _ in range(6):
        sched.step()
        sched2.step()
        a.append((sched.get_last_lr(), _momenta(opt)))
        b.append((sched2.get_last_lr(), _momenta(opt2)))
    assert a == b


def test_plateau_state_dict_round_trip():
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    sched = S.ReduceLROnPlateau(opt, patience=1)
    for m in METRICS[:6]:
        sched.step(m)
    opt2 = optim.SGD([Parameter(np.zeros(1))], lr=0.1)
    sched2 = S.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    for m in METRICS[6:]:
        sched.step(m)
        sched2.step(m)
        assert sched.get_last_lr() == sched2.get_last_lr()


# ---------------------------------------------------------------------------- errors
def _opt():
    return optim.SGD([Parameter(np.zeros(1))], lr=0.1)


@pytest.mark.parametrize("make,match", (
    (lambda: S.StepLR(_opt(), step_size=0), "StepLR: step_size.*0"),
    (lambda: S.StepLR("sgd", step_size=2), "StepLR.*Optimizer.*str"),
    (lambda: S.MultiStepLR(_opt(), milestones=[1.5]), "MultiStepLR: milestones.*1.5"),
    (lambda: S.CosineAnnealingLR(_opt(), T_max=0), "T_max.*0"),
    (lambda: S.OneCycleLR(_opt(), max_lr=1.0), "total_steps or both epochs"),
    (lambda: S.OneCycleLR(_opt(), max_lr=1.0, total_steps=-3), "total_steps.*-3"),
    (lambda: S.OneCycleLR(_opt(), max_lr=1.0, total_steps=10, pct_start=1.5), "pct_start.*1.5"),
    (lambda: S.OneCycleLR(_opt(), max_lr=1.0, total_steps=10, anneal_strategy="exp"), "anneal_strategy.*'exp'"),
    (lambda: S.OneCycleLR(_opt(), max_lr=[1.0, 2.0], total_steps=10), "max_lr.*one value per parameter group \\(1\\)"),
    (lambda: S.ReduceLROnPlateau(_opt(), factor=1.0), "factor.*1.0"),
    (lambda: S.ReduceLROnPlateau(_opt(), mode="avg"), "mode.*'avg'"),
    (lambda: S.ReduceLROnPlateau(_opt(), threshold_mode="pct"), "threshold_mode.*'pct'"),
    (lambda: S.ReduceLROnPlateau(_opt(), patience=-1), "patience.*-1"),
    (lambda: S.ReduceLROnPlateau(_opt(), min_lr=[0.1, 0.2]), "min_lr.*received 2 values"),
))
def test_bad_arguments(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_one_cycle_needs_momentum_to_cycle():
    class Plain(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, dict(lr=0.1))

    with pytest.raises(ConfigError, match="cycle_momentum=True needs.*Plain"):
        S.OneCycleLR(Plain([Parameter(np.zeros(1))]), max_lr=1.0, total_steps=5)
    S.OneCycleLR(Plain([Parameter(np.zeros(1))]), max_lr=1.0, total_steps=5, cycle_momentum=False)


def test_resuming_needs_initial_lr():
    with pytest.raises(StateError, match="initial_lr"):
        S.StepLR(_opt(), step_size=2, last_epoch=3)


def test_one_cycle_zero_length_warmup_starts_at_max_lr():
    # pct_start * total_steps == 1 makes torch divide by zero; here the warm-up is simply over
    opt = optim.SGD([Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=2.0, total_steps=10, pct_start=0.1)
    assert sched.get_last_lr() == [2.0] and opt.param_groups[0]["momentum"] == 0.85
    sched.step()
    assert 0 < sched.get_last_lr()[0] < 2.0
