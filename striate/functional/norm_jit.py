"""Batch norm's passes with the compiled kernels of :mod:`._jit_norm` (llvmlite installed).

Each function splits the (N*C) planes of its arrays over the threads and returns
per-channel results; :mod:`striate.functional.norm` takes this path for
contiguous float32/float64 arrays when the kernels are available.
"""

from __future__ import annotations

import numpy as np

from . import _jit
from ._jit_norm import norm_kernel
from ._parallel import parallel_kernels

__all__ = ["ready", "moments", "affine", "affine_relu", "grad_sums", "grad_input"]


def ready(*arrays: np.ndarray) -> bool:
    """Whether the compiled passes can take these (N, C, *) arrays of one float dtype."""
    first = arrays[0]
    return (_jit.jit_available() and first.ndim >= 2 and first.dtype in (np.float32, np.float64)
            and all(a.dtype == first.dtype and a.shape == first.shape and a.flags.c_contiguous
                    for a in arrays))


def _run(kind: str, arrays: list[np.ndarray], x: np.ndarray) -> None:
    """The kernel over all planes of x, split over the threads (outputs are per plane)."""
    n, c = x.shape[:2]
    planes = n * c
    size = x.size // planes if planes else 0
    kernel = norm_kernel(kind, x.dtype.name)
    ptrs = [a.ctypes.data for a in arrays]

    def calls(start: int, stop: int) -> list:
        return [(kernel, (*ptrs, start, stop, size, c))]

    parallel_kernels(calls, planes, x.size * (len(arrays) - 1))


def _per_channel(per_plane: np.ndarray, c: int) -> np.ndarray:
    """(N*C,) plane sums -> (C,) channel sums, added in float64."""
    return per_plane.reshape(-1, c).sum(axis=0, dtype=np.float64)


def _vec(v: np.ndarray | float, c: int, dtype: np.dtype) -> np.ndarray:
    """v as a contiguous (C,) vector of ``dtype`` (v itself when it already is one)."""
    if isinstance(v, np.ndarray) and v.shape == (c,) and v.dtype == dtype and v.flags.c_contiguous:
        return v
    return np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=dtype), (c,)))


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance, one pass (sums of x and x^2 in float64).

    Shape:
        (N, C, *) -> mean (C,), var (C,) in x's dtype.
    """
    n, c = x.shape[:2]
    m = x.size // c
    s1, s2 = np.empty(n * c), np.empty(n * c)                  # float64 per plane
    _run("moments", [x, s1, s2], x)
    mean = _per_channel(s1, c) / m
    var = np.maximum(_per_channel(s2, c) / m - mean * mean, 0.0)
    return mean.astype(x.dtype), var.astype(x.dtype)


def affine(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """y = (x - mean) * scale + shift per channel, one pass.

    Shape:
        (N, C, *), (C,) x 3 -> (N, C, *)
    """
    c = x.shape[1]
    y = np.empty_like(x)
    _run("affine", [x, _vec(mean, c, x.dtype), _vec(scale, c, x.dtype), _vec(shift, c, x.dtype), y], x)
    return y


def affine_relu(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                residual: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """y = relu((x - mean) * scale + shift [+ residual]) per channel, one pass.

    With a residual the ReLU's mask (pre-activation > 0) is returned too (its
    backward cannot recompute it without the residual); without, the mask is None:
    :func:`grad_sums` and :func:`grad_input` recompute it from x (``relu=``).

    Shape:
        (N, C, *), (C,) x 3[, (N, C, *)] -> y (N, C, *), mask (N, C, *) bool or None
    """
    c = x.shape[1]
    y = np.empty_like(x)
    vecs = [_vec(v, c, x.dtype) for v in (mean, scale, shift)]
    if residual is None:
        _run("affine_relu", [x, *vecs, y], x)
        return y, None
    mask = np.empty(x.shape, dtype=bool)
    _run("affine_add_relu", [x, *vecs, residual, y, mask], x)
    return y, mask


def _relu_vectors(relu: tuple[np.ndarray, np.ndarray] | None, c: int, dtype: np.dtype) -> list:
    """The (scale, shift) of a fused ReLU's pre-activation as kernel arguments ([] if none)."""
    return [] if relu is None else [_vec(v, c, dtype) for v in relu]


def grad_sums(dy: np.ndarray, x: np.ndarray, mean: np.ndarray,
              relu: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sum g, sum g * (x - mean)) per channel in float64, one pass over dy and x.

    g = dy, or with ``relu=(scale, shift)`` dy where (x - mean) * scale + shift > 0
    (the gradient through :func:`affine_relu`), else 0.
    """
    n, c = x.shape[:2]
    s1, s2 = np.empty(n * c, dtype=x.dtype), np.empty(n * c, dtype=x.dtype)
    extra = _relu_vectors(relu, c, x.dtype)
    kind = "grad_sums" if relu is None else "grad_sums_relu"
    _run(kind, [dy, x, _vec(mean, c, x.dtype), *extra, s1, s2], x)
    return _per_channel(s1, c), _per_channel(s2, c)


def grad_input(dy: np.ndarray, x: np.ndarray, mean: np.ndarray, a: np.ndarray, b: np.ndarray,
               d: np.ndarray, relu: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """dx = a * g - b * (x - mean) - d per channel, one pass (g as in :func:`grad_sums`).

    Shape:
        (N, C, *) x 2, (C,) x 4 -> (N, C, *)
    """
    c = x.shape[1]
    dx = np.empty_like(dy)
    extra = _relu_vectors(relu, c, x.dtype)
    vecs = [_vec(v, c, x.dtype) for v in (a, b, d)]
    kind = "grad_input" if relu is None else "grad_input_relu"
    _run(kind, [dy, x, _vec(mean, c, x.dtype), *extra, *vecs, dx], x)
    return dx
