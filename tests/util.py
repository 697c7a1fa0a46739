"""Shared test helpers: tolerances, the PyTorch oracle comparison."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}


def rel_err(a: Any, b: Any) -> float:
    """max |a - b| / max |b|: the error of ``a`` relative to the reference ``b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape} != reference shape {b.shape}")
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def assert_close(a: Any, b: Any, dtype: Any = np.float64, what: str = "", tol: float | None = None) -> None:
    """Assert rel_err(a, b) <= the tolerance of ``dtype`` (1e-6 float64, 1e-4 float32)."""
    tol = TOL[np.dtype(dtype)] if tol is None else tol
    err = rel_err(a, b)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def torch_or_skip():
    """Import torch or skip the test (the oracle is a test-only dependency)."""
    torch = pytest.importorskip("torch")
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return torch


def to_torch(x: np.ndarray, grad: bool = True):
    torch = torch_or_skip()
    t = torch.from_numpy(np.array(x))
    if grad and t.dtype.is_floating_point:
        t.requires_grad_(True)
    return t


def copy_to_torch(module: Any, tmodule: Any) -> None:
    """Load a striate module's state dict into the same torch module (same keys)."""
    torch = torch_or_skip()
    tmodule.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in module.state_dict().items()})


def compare_with_torch(module: Any, tmodule: Any, inputs: list, dtype: Any = np.float64,
                       seed: int = 0, copy_weights: bool = True) -> np.ndarray:
    """Run a striate module and the same torch module, compare y, input grads, param grads.

    The striate module must already be in ``dtype``; the torch module is cast to
    it and given the striate weights through ``state_dict`` (so keys must match).
    Returns the striate output.
    """
    torch = torch_or_skip()
    dtype = np.dtype(dtype)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tmodule = tmodule.to(tdtype)
    if copy_weights:
        copy_to_torch(module, tmodule)
    tmodule.train(module.training)
    xs = [np.asarray(x, dtype=dtype) if np.asarray(x).dtype.kind == "f" else np.asarray(x) for x in inputs]
    txs = [to_torch(x) for x in xs]
    y = module(*xs)
    ty = tmodule(*txs)
    assert_close(y, ty.detach().numpy(), dtype, "output")
    dy = np.random.default_rng(seed).standard_normal(np.shape(y)).astype(dtype)
    module.zero_grad()
    grads = module.backward(dy)
    grads = grads if isinstance(grads, tuple) else (grads,)
    ty.backward(torch.from_numpy(dy))
    for i, (g, tx) in enumerate(zip(grads, txs)):
        if tx.requires_grad and tx.grad is not None:
            assert g is not None, f"input {i}: no gradient"
            assert_close(g, tx.grad.numpy(), dtype, f"input {i} grad")
    tparams = dict(tmodule.named_parameters())
    for name, p in module.named_parameters():
        tg = tparams[name].grad
        ref = np.zeros(p.data.shape) if tg is None else tg.numpy()
        got = np.zeros(p.data.shape) if p.grad is None else p.grad
        assert_close(got, ref, dtype, f"grad of {name}")
    tbufs = dict(tmodule.named_buffers())
    for name, b in module.named_buffers():
        if name in tbufs and np.asarray(b).dtype.kind == "f":
            assert_close(b, tbufs[name].numpy(), dtype, f"buffer {name}")
    return y


def blobs(n: int, seed: int):
    """Two classes of 1x6x6 uint8 images: bright top half vs bright bottom half (flip-invariant)."""
    from striate.data import ArrayDataset

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 80, (n, 1, 6, 6))
    x[y == 0, :, :3, :] += 150
    x[y == 1, :, 3:, :] += 150
    return ArrayDataset(x.astype(np.uint8), y)
