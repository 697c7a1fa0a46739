"""Learning-rate schedulers with torch.optim.lr_scheduler's semantics.

A scheduler wraps an optimizer.  Constructing it records each group's
'initial_lr' (when ``last_epoch == -1``) and sets the epoch-0 learning rate;
each ``step()`` (called after ``optimizer.step()``) advances one epoch (or one
batch, for OneCycleLR) and writes the new rates into ``group['lr']``.  The
update formulas are torch's (recursive where torch's are), so the sequences
agree with PyTorch to rounding.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable

from ..errors import ConfigError, StateError
from .optimizer import Optimizer

__all__ = ['LRScheduler', 'StepLR', 'MultiStepLR', 'CosineAnnealingLR', 'OneCycleLR',
           'ReduceLROnPlateau']


def _check_optimizer(optimizer: Any, name: str) -> None:
    if not isinstance(optimizer, Optimizer):
        raise ConfigError(f"{name}: expected a striate Optimizer; received {type(optimizer).__name__}")


def _positive_int(value: Any, arg: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: {arg} must be a positive int; received {value!r}")
    return value


def _per_group(value: Any, arg: str, optimizer: Optimizer, name: str) -> list:
    """A value per parameter group: a list of the right length, or one value repeated."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(f"{name}: {arg} must have one value per parameter group ({n}); "
                              f"received {len(value)} values")
        return list(value)
    return [value] * n


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, state dicts; subclasses define ``get_lr()``.

    Args:
        optimizer: the optimizer whose group learning rates are scheduled.
        last_epoch: the index of the last epoch; -1 starts afresh (and records
            'initial_lr'), another value resumes (the groups need 'initial_lr').
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer, type(self).__name__)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise StateError(
                        f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr' to resume "
                        f"from with last_epoch={last_epoch}; load the optimizer's state first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for ``last_epoch`` (called by ``step``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_lr()")

    def step(self) -> None:
        """Advance one epoch and set every group's 'lr'."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the latest ``step`` (one per group)."""
        return list(self._last_lr)

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by ``state_dict``."""
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Args:
        optimizer: the wrapped optimizer.
        step_size: the period of the decay (a positive int).
        gamma: the factor.
        last_epoch: see :class:`LRScheduler`.

    Shape:
        lr(epoch) = initial_lr * gamma ** (epoch // step_size).
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = _positive_int(step_size, "step_size", "StepLR")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone epoch.

    Args:
        optimizer: the wrapped optimizer.
        milestones: epoch indices (a repeated milestone decays that many times).
        gamma: the factor.
        last_epoch: see :class:`LRScheduler`.

    Shape:
        lr(epoch) = initial_lr * gamma ** (number of milestones <= epoch).
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        try:
            ms = list(milestones)
        except TypeError:
            raise ConfigError(f"MultiStepLR: milestones must be a list of ints; received {milestones!r}") from None
        if any(isinstance(m, bool) or not isinstance(m, int) for m in ms):
            raise ConfigError(f"MultiStepLR: milestones must be ints; received {ms!r}")
        self.milestones = Counter(ms)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in self._group_lrs()]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial lr to ``eta_min`` over ``T_max`` epochs (no restarts).

    Uses torch's recursive update, so the learning rate keeps following the
    cosine (rising again after T_max) and composes with other changes to 'lr'.

    Args:
        optimizer: the wrapped optimizer.
        T_max: the half period, in epochs (> 0).
        eta_min: the minimum learning rate.
        last_epoch: see :class:`LRScheduler`.

    Shape:
        lr(t) = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if isinstance(T_max, bool) or not isinstance(T_max, (int, float)) or not T_max > 0:
            raise ConfigError(f"CosineAnnealingLR: T_max must be > 0; received {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, eta = self.last_epoch, self.T_max, self.eta_min
        lrs = self._group_lrs()
        if self._is_initial:
            return lrs
        if self._step_count == 1 and t > 0:
            return [eta + (base - eta) * (1 + math.cos(t * math.pi / T)) / 2 for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [lr + (base - eta) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(lrs, self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta) + eta for lr in lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy: warm up from max_lr / div_factor to max_lr, then anneal far below.

    Step it after every batch.  With ``cycle_momentum`` the momentum (SGD's
    'momentum' or Adam's betas[0]) moves the opposite way, between
    ``max_momentum`` and ``base_momentum``.

    Args:
        optimizer: the wrapped optimizer.
        max_lr: the peak learning rate (one value, or one per group).
        total_steps: the number of steps in the cycle; or give ``epochs`` and ``steps_per_epoch``.
        epochs, steps_per_epoch: total_steps = epochs * steps_per_epoch.
        pct_start: the fraction of the cycle spent increasing the learning rate.
        anneal_strategy: 'cos' or 'linear'.
        cycle_momentum: cycle the momentum inversely to the learning rate.
        base_momentum, max_momentum: the momentum range (one value, or one per group).
        div_factor: initial_lr = max_lr / div_factor.
        final_div_factor: min_lr = initial_lr / final_div_factor.
        three_phase: warm up, come back down to initial_lr symmetrically, then anneal to min_lr.
        last_epoch: see :class:`LRScheduler`.

    Shape:
        Phase k runs from step s0 to s1 (pct_start * total_steps - 1 ends the
        warm-up; total_steps - 1 ends the cycle): lr = anneal(start, end, (step - s0) / (s1 - s0)),
        anneal_cos(a, b, p) = b + (a - b) * (1 + cos(pi * p)) / 2.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85, max_momentum: float | list[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        name = "OneCycleLR"
        _check_optimizer(optimizer, name)
        if total_steps is not None:
            self.total_steps = _positive_int(total_steps, "total_steps", name)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int(epochs, "epochs", name)
                                * _positive_int(steps_per_epoch, "steps_per_epoch", name))
        else:
            raise ConfigError(f"{name}: give either total_steps or both epochs and steps_per_epoch; "
                              f"received total_steps={total_steps!r}, epochs={epochs!r}, "
                              f"steps_per_epoch={steps_per_epoch!r}")
        if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) or not 0 <= pct_start <= 1:
            raise ConfigError(f"{name}: pct_start must be a float in [0, 1]; received {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ConfigError(f"{name}: anneal_strategy must be 'cos' or 'linear'; received {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self._phases = self._make_phases(float(pct_start), three_phase)
        max_lrs = _per_group(max_lr, "max_lr", optimizer, name)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self._init_momentum(optimizer, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)

    def _make_phases(self, pct: float, three_phase: bool) -> list[tuple[float, str, str, str, str]]:
        """(end_step, start_lr key, end_lr key, start_momentum key, end_momentum key) per phase."""
        n = self.total_steps
        if three_phase:
            return [(pct * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (2 * pct * n - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                    (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(pct * n - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _init_momentum(self, optimizer: Optimizer, base: Any, peak: Any, last_epoch: int) -> None:
        if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ConfigError(
                f"OneCycleLR: cycle_momentum=True needs an optimizer with 'momentum' or 'betas'; "
                f"received {type(optimizer).__name__} (pass cycle_momentum=False)"
            )
        self.use_beta1 = "betas" in optimizer.defaults
        peaks = _per_group(peak, "max_momentum", optimizer, "OneCycleLR")
        bases = _per_group(base, "base_momentum", optimizer, "OneCycleLR")
        if last_epoch == -1:
            for group, m_peak, m_base in zip(optimizer.param_groups, peaks, bases):
                self._set_momentum(group, m_peak)
                group["max_momentum"] = m_peak
                group["base_momentum"] = m_base

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise StateError(f"OneCycleLR: tried to step {step} times; the cycle has "
                             f"total_steps={self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    # a zero-length phase (torch divides by zero) counts as finished
                    pct = (step - start) / (end - start) if end != start else 1.0
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
                    break
                start = end
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a metric stops improving.

    Args:
        optimizer: the wrapped optimizer.
        mode: 'min' (the metric should decrease) or 'max'.
        factor: new_lr = lr * factor (< 1).
        patience: epochs without improvement tolerated before reducing.
        threshold: the least change that counts as an improvement.
        threshold_mode: 'rel' (best * (1 -/+ threshold)) or 'abs' (best -/+ threshold).
        cooldown: epochs to wait after a reduction before counting bad epochs again.
        min_lr: the lower bound (one value, or one per group).
        eps: reductions smaller than this are skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0, eps: float = 1e-8) -> None:
        name = "ReduceLROnPlateau"
        _check_optimizer(optimizer, name)
        if not factor < 1.0:
            raise ConfigError(f"{name}: factor must be < 1.0; received {factor!r}")
        if mode not in ("min", "max"):
            raise ConfigError(f"{name}: mode must be 'min' or 'max'; received {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ConfigError(f"{name}: threshold_mode must be 'rel' or 'abs'; received {threshold_mode!r}")
        for arg, val in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 0:
                raise ConfigError(f"{name}: {arg} must be an int >= 0; received {val!r}")
        self.optimizer = optimizer
        self.factor = factor
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.min_lrs = _per_group(min_lr, "min_lr", optimizer, name)
        self.patience, self.cooldown, self.eps = patience, cooldown, eps
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record this epoch's metric; reduce the learning rates after too many bad epochs."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._group_lrs()

    def _reduce_lr(self) -> None:
        n = len(self.optimizer.param_groups)
        if len(self.min_lrs) != n and self.default_min_lr is not None:
            self.min_lrs = [self.default_min_lr] * n
        if len(self.min_lrs) != n:
            raise StateError(
                f"ReduceLROnPlateau: the optimizer has {len(self.optimizer.param_groups)} parameter "
                f"groups but min_lrs has {len(self.min_lrs)} values; update min_lrs"
            )
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0
