"""The optimizer base class: parameter groups, per-parameter state and state dicts (torch.optim)."""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, StateDictError
from ..nn.parameter import Parameter

__all__ = ['Optimizer']


def _to_numpy(value: Any) -> Any:
    """A NumPy copy of an array-like state value (NumPy array or torch tensor); others unchanged."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


class Optimizer:
    """Base class of the optimizers: ``param_groups``, ``state``, ``step``, state dicts.

    Args:
        params: an iterable of :class:`Parameter` (e.g. ``model.parameters()``) or
            of dicts ``{'params': [...], <hyperparameter>: value}``, one per group;
            a group's missing hyperparameters come from ``defaults``.
        defaults: the default hyperparameters of every group.

    Attributes:
        param_groups: list of dicts, each with 'params' (a list of Parameters)
            and its hyperparameters (as torch: 'lr', 'momentum', 'betas', ...).
        state: {Parameter: {name: value}}, filled lazily by ``step``.
        defaults: the constructor's hyperparameters.
    """

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Parameter, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = self._as_list(params, "params")
        if not groups:
            raise ConfigError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def _as_list(self, params: Any, what: str) -> list:
        name = type(self).__name__
        if isinstance(params, (Parameter, np.ndarray)):
            raise ConfigError(
                f"{name}: {what} must be an iterable of Parameters or of dicts; received a single "
                f"{type(params).__name__} (wrap it in a list)"
            )
        try:
            return list(params)
        except TypeError:
            hint = " (pass model.parameters())" if hasattr(params, "parameters") else ""
            raise ConfigError(
                f"{name}: {what} must be an iterable of Parameters or of dicts; received "
                f"{type(params).__name__}{hint}"
            ) from None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest).

        Raises:
            ConfigError: if a parameter is not a Parameter, appears twice or is already
                in another group, or a hyperparameter is invalid.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise ConfigError(f"{name}: a parameter group must be a dict; received {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ConfigError(f"{name}: a parameter group needs a 'params' entry; received keys {sorted(group)}")
        ps = group["params"]
        params = [ps] if isinstance(ps, Parameter) else self._as_list(ps, "'params'")
        for p in params:
            if not isinstance(p, Parameter):
                raise ConfigError(f"{name} can only optimize Parameters; received {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ConfigError(f"{name}: a parameter group contains the same parameter more than once")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ConfigError(f"{name}: some parameters appear in more than one parameter group")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate(group)
        self.param_groups.append(group)

    def _validate(self, group: dict[str, Any]) -> None:
        """Check a group's hyperparameters (subclasses raise ConfigError naming the value)."""

    def _check_min(self, group: dict[str, Any], key: str, what: str, low: float = 0.0) -> None:
        """Refuse a hyperparameter below ``low`` (or not a real number)."""
        v = group[key]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v >= low:
            raise ConfigError(f"{type(self).__name__}: invalid {what} value: {v!r} (must be >= {low:g})")

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: None (default) or zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()`` if given.

        Args:
            closure: a function that recomputes the loss (and gradients), called first.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p: Parameter, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define _update()")

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}, as torch.

        Parameters are numbered in group order; state arrays are copies.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {index[id(p)]: {k: _to_numpy(v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load hyperparameters and state saved by ``state_dict`` (NumPy arrays or torch tensors).

        Raises:
            StateDictError: if the groups or their sizes differ, or a state array's
                shape differs from its parameter's.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise StateDictError(f"{name}.load_state_dict expects a dict with 'state' and 'param_groups'")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise StateDictError(
                f"{name}: loaded state dict has {len(saved)} parameter groups; "
                f"the optimizer has {len(self.param_groups)}"
            )
        params: dict[int, Parameter] = {}
        for i, (g, s) in enumerate(zip(self.param_groups, saved)):
            if len(g["params"]) != len(s["params"]):
                raise StateDictError(
                    f"{name}: loaded parameter group {i} has {len(s['params'])} parameters; "
                    f"the optimizer's has {len(g['params'])}"
                )
            params.update(zip((int(k) for k in s["params"]), g["params"]))
        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, values in state_dict["state"].items():
            p = params.get(int(key))
            if p is not None:
                new_state[p] = {k: self._load_value(p, k, v) for k, v in values.items()}
        self.param_groups = [
            {**{k: copy.deepcopy(v) for k, v in s.items() if k != "params"}, "params": g["params"]}
            for g, s in zip(self.param_groups, saved)
        ]
        self.state = new_state

    def _load_value(self, p: Parameter, key: str, value: Any) -> Any:
        value = _to_numpy(value)
        if key == "step":
            return float(value)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            if value.shape != p.data.shape:
                raise StateDictError(
                    f"{type(self).__name__}: state '{key}' has shape {value.shape}; its parameter "
                    f"has {p.data.shape}"
                )
            return value.astype(p.data.dtype, copy=False)
        return value

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def lerp_(a: np.ndarray, b: np.ndarray, weight: float) -> None:
    """a <- a + weight * (b - a) in place, with torch's two-branch formula (same rounding)."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1.0 - weight)
