"""A public finite-difference gradient check (float64).

``gradcheck(layer, x)`` compares the gradients that ``backward`` computes with
central differences of the forward pass, for the input(s) and every parameter,
and returns the worst relative error (0 is perfect; 1e-6 or less is a pass in
float64).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from .errors import ConfigError
from .nn.module import Module


def _rel_error(a: np.ndarray, idx: np.ndarray, n: np.ndarray) -> float:
    """max |a[idx] - n| / max(max |a|, max |n|, 1e-10): a scale-free error of one tensor.

    The scale is the whole analytic gradient's, not only the checked entries': when
    every sampled entry is (near) zero, rounding noise of the central differences
    (~1e-10) is not a relative error of 1.
    """
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(n), initial=0.0)), 1e-10)
    return float(np.max(np.abs(a[idx] - n), initial=0.0)) / scale


def _pick(size: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or size <= limit:
        return np.arange(size)
    return rng.choice(size, size=limit, replace=False)


def _numeric(f: Callable[[], float], arr: np.ndarray, idx: np.ndarray, eps: float) -> np.ndarray:
    flat = arr.reshape(-1)
    out = np.empty(len(idx))
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[j] = (fp - fm) / (2 * eps)
    return out


def _as_tuple(g: Any) -> tuple:
    return g if isinstance(g, tuple) else (g,)


def gradcheck(module_or_fn: Any, *inputs: Any, backward: Callable | None = None,
              eps: float = 1e-6, max_per_tensor: int | None = 200, seed: int = 0,
              details: bool = False) -> float | dict[str, float]:
    """Finite-difference check of input and parameter gradients, in float64.

    Args:
        module_or_fn: a Module (checked on a float64 copy; the original is not
            touched), a loss module, or a kernel forward ``fn(*inputs) -> (y, cache)``
            together with ``backward(dy, cache) -> grads`` (one per input, None
            where not differentiable).
        *inputs: the inputs; floating arrays are checked, others (labels) are not.
        backward: the kernel's backward, when ``module_or_fn`` is a function.
        eps: the central-difference step.
        max_per_tensor: check at most this many random elements per tensor (None: all).
        seed: seed of the random projection and the element sample.
        details: return {tensor name: relative error} instead of the worst.

    Returns:
        The worst relative error max|analytic - numeric| / max(|analytic|, |numeric|)
        over the checked tensors (or the per-tensor dict).
    """
    rng = np.random.default_rng(seed)
    xs = [np.array(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
          for x in inputs]
    if isinstance(module_or_fn, Module):
        model = copy.deepcopy(module_or_fn).double()
        run, analytic = _module_runner(model, xs, rng)
        tensors = [(f"input{i}", x) for i, x in enumerate(xs)]
        tensors += [(name, p.data) for name, p in model.named_parameters() if p.requires_grad]
    elif callable(module_or_fn):
        if backward is None:
            raise ConfigError("gradcheck: a function needs backward=, its backward kernel")
        run, analytic = _function_runner(module_or_fn, backward, xs, rng)
        tensors = [(f"input{i}", x) for i, x in enumerate(xs)]
    else:
        raise ConfigError(f"gradcheck: expected a Module or a function; received {type(module_or_fn).__name__}")
    report: dict[str, float] = {}
    for name, arr in tensors:
        a = analytic.get(name)
        if a is None or arr.dtype.kind != "f":
            continue
        idx = _pick(arr.size, max_per_tensor, rng)
        num = _numeric(run, arr, idx, eps)
        report[name] = _rel_error(np.asarray(a, dtype=np.float64).reshape(-1), idx, num)
    if not report:
        raise ConfigError("gradcheck: nothing to check (no floating inputs or parameters with gradients)")
    return report if details else max(report.values())


def _rng_states(model: Module) -> list[tuple[Module, dict]]:
    return [(m, copy.deepcopy(m.rng.bit_generator.state)) for m in model.modules()
            if isinstance(getattr(m, "rng", None), np.random.Generator)]


def _module_runner(model: Module, xs: list, rng: np.random.Generator):
    states = _rng_states(model)
    is_loss = hasattr(model, "reduction") and len(xs) == 2 and not model._parameters

    def forward() -> Any:
        for m, st in states:  # random layers (dropout) draw the same mask every time
            m.rng.bit_generator.state = copy.deepcopy(st)
        return model(*xs)

    y0 = np.asarray(forward(), dtype=np.float64)
    proj = rng.standard_normal(y0.shape)

    def run() -> float:
        return float(np.sum(np.asarray(forward(), dtype=np.float64) * proj))

    model.zero_grad()
    forward()
    grads = _as_tuple(model.backward(proj) if not is_loss or proj.ndim else model.backward(float(proj)))
    analytic: dict[str, Any] = {f"input{i}": g for i, g in enumerate(grads)}
    for name, p in model.named_parameters():
        analytic[name] = p.grad if p.grad is not None else np.zeros_like(p.data)
    return run, analytic


def _function_runner(fn: Callable, backward: Callable, xs: list, rng: np.random.Generator):
    y0, cache = fn(*xs)
    proj = rng.standard_normal(np.shape(y0))

    def run() -> float:
        return float(np.sum(np.asarray(fn(*xs)[0], dtype=np.float64) * proj))

    grads = _as_tuple(backward(proj, cache))
    return run, {f"input{i}": g for i, g in enumerate(grads)}
