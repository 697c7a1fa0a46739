"""Loss kernels: cross-entropy, NLL, BCE-with-logits and MSE (torch.nn.functional semantics).

Every loss is a pure pair ``xxx_forward(input, target, *, ...) -> (loss, cache)``
and ``xxx_backward(grad, cache) -> d loss / d input``.  The forward pass
computes the local derivative of each element's loss directly (for
cross-entropy ``softmax * sum(q) - q``, with ``q`` the weighted and smoothed
target distribution), so the cache holds one array of the input's shape and
the reduction's normaliser.

Reductions follow PyTorch: 'sum' adds the per-item losses; 'mean' divides by
the number of items, or, for class-index targets, by the total weight of the
non-ignored targets (NaN when every target is ignored, with a zero gradient);
'none' returns the per-item losses.

The kernels assume validated arguments (the layers in ``striate.nn.loss``
check shapes and dtypes; :func:`check_class_labels` checks label ranges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError

REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class LossCache:
    """What every loss backward needs: the local derivative and the reduction."""

    dlocal: np.ndarray        # d loss_item / d input, the input's shape (N, C, *) or (N, *)
    item_axis: int | None     # the class axis summed away per item (1), or None (elementwise)
    reduction: str
    norm: float               # the divisor of 'mean' (1.0 for 'sum' and 'none')
    unbatched: bool           # the input had no batch axis: (C,) and a 0-d target


# ---------------------------------------------------------------------------- helpers
def check_class_labels(target: np.ndarray, num_classes: int, ignore_index: int, where: str) -> None:
    """Refuse class labels outside [0, num_classes) other than ``ignore_index``.

    Raises:
        DataError: naming the first offending label and its position in ``target``.
    """
    bad = ((target < 0) | (target >= num_classes)) & (target != ignore_index)
    if np.any(bad):
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{where}: class label {int(target[pos])} at target index {pos} is outside "
            f"[0, {num_classes}) (input has C={num_classes} classes; "
            f"ignore_index={ignore_index}); {int(bad.sum())} label(s) out of range"
        )


def _reduce(per_item: np.ndarray, reduction: str, norm: float) -> np.ndarray:
    """Reduce per-item losses: their sum, their sum / norm, or themselves."""
    if reduction == "none":
        return per_item
    total = per_item.sum(dtype=per_item.dtype)
    if reduction == "sum":
        return total
    return total / per_item.dtype.type(norm) if norm else per_item.dtype.type(np.nan)


def _item_grad(grad: np.ndarray | float, cache: LossCache) -> np.ndarray:
    """The upstream gradient of each item: grad / norm (mean), grad (sum) or per item (none)."""
    g = np.asarray(grad, dtype=cache.dlocal.dtype)
    if cache.reduction == "mean":
        return g / cache.dlocal.dtype.type(cache.norm) if cache.norm else np.zeros_like(g)
    if cache.reduction == "none" and g.ndim and cache.item_axis is not None:
        g = np.expand_dims(g, cache.item_axis)                      # (N, 1, *)
    return g


def _backward(grad: np.ndarray | float, cache: LossCache) -> np.ndarray:
    dx = _item_grad(grad, cache) * cache.dlocal
    return dx[0] if cache.unbatched else dx


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """Stable log-softmax: x - max - log(sum(exp(x - max)))."""
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _class_axis_shape(ndim: int, num_classes: int) -> tuple[int, ...]:
    """(1, C, 1, ...): a class-weight vector broadcast over (N, C, *)."""
    return (1, num_classes) + (1,) * (ndim - 2)


def _index_target_distribution(target: np.ndarray, shape: tuple[int, ...], dtype: np.dtype,
                               weight: np.ndarray | None, ignore_index: int,
                               label_smoothing: float) -> tuple[np.ndarray, float]:
    """The weighted, smoothed target distribution q of class-index targets, and sum of target weights.

    q[i, c] = (1 - eps) * w[y_i] * [c == y_i] + eps / C * w[c] for kept items, 0 for ignored ones.

    Returns:
        (q of ``shape`` (N, C, *), the total weight of the non-ignored targets).
    """
    c = shape[1]
    keep = target != ignore_index                                   # (N, *)
    safe = np.where(keep, target, 0).astype(np.intp)                # (N, *)
    w_item = keep.astype(dtype) if weight is None else weight[safe] * keep   # (N, *)
    q = np.zeros(shape, dtype=dtype)                                # (N, C, *)
    np.put_along_axis(q, safe[:, None], ((1.0 - label_smoothing) * w_item)[:, None], axis=1)
    if label_smoothing > 0.0:
        w_cls = 1.0 if weight is None else weight.reshape(_class_axis_shape(len(shape), c))
        q += (label_smoothing / c) * (w_cls * keep[:, None].astype(dtype))   # (N, C, *)
    return q, float(w_item.sum(dtype=np.float64))


def _batched(x: np.ndarray, target: np.ndarray, probs: bool) -> tuple[np.ndarray, np.ndarray, bool]:
    """Add a batch axis to an unbatched (C,) input and its target."""
    if x.ndim != 1:
        return x, target, False
    return x[None], (target[None] if probs else target.reshape(1)), True   # (1, C), (1,) / (1, C)


# ---------------------------------------------------------------------------- cross-entropy
def cross_entropy_forward(x: np.ndarray, target: np.ndarray, *, weight: np.ndarray | None = None,
                          ignore_index: int = -100, reduction: str = "mean",
                          label_smoothing: float = 0.0) -> tuple[np.ndarray, LossCache]:
    """Softmax cross-entropy over axis 1 (PyTorch's cross_entropy).

    Args:
        x: logits (N, C, *) or (C,).
        target: class indices (N, *) (integers; ``ignore_index`` items count for
            nothing) or class probabilities of the input's shape (floating).
        weight: per-class weights (C,) or None.
        ignore_index: the label of items to skip (class-index targets only).
        reduction: 'mean', 'sum' or 'none'.
        label_smoothing: eps in [0, 1]; the target becomes (1 - eps) * target + eps / C.

    Shape:
        (N, C, *) -> () for 'mean'/'sum', (N, *) for 'none'.
        loss_i = -sum_c q_ic log_softmax(x_i)_c; 'mean' divides the sum by
        sum_i w[y_i] over kept items (index targets) or by N * prod(*) (probabilities).

    Returns:
        (loss, cache) for :func:`cross_entropy_backward`.
    """
    probs = target.dtype.kind == "f"
    x, target, unbatched = _batched(x, target, probs)
    logp = _log_softmax(x, axis=1)                                  # (N, C, *)
    if probs:
        q = target.astype(x.dtype, copy=False)
        if label_smoothing > 0.0:
            q = q * (1.0 - label_smoothing) + label_smoothing / x.shape[1]
        if weight is not None:
            q = q * weight.reshape(_class_axis_shape(x.ndim, x.shape[1]))
        norm = float(x.size // x.shape[1])
    else:
        q, norm = _index_target_distribution(target, x.shape, x.dtype, weight, ignore_index,
                                             label_smoothing)
    per_item = -(q * logp).sum(axis=1)                              # (N, *)
    dlocal = np.exp(logp) * q.sum(axis=1, keepdims=True) - q        # (N, C, *)
    norm = norm if reduction == "mean" else 1.0
    loss = _reduce(per_item, reduction, norm)
    if unbatched and reduction == "none":
        loss = loss[0]
    return loss, LossCache(dlocal, 1, reduction, norm, unbatched)


def cross_entropy_backward(grad: np.ndarray | float, cache: LossCache) -> np.ndarray:
    """Gradient of cross_entropy_forward: grad * (softmax * sum_c q - q), scaled by the reduction.

    Args:
        grad: upstream gradient: a scalar ('mean'/'sum') or an array of the 'none' output's shape.
        cache: from :func:`cross_entropy_forward`.

    Returns:
        d loss / d x, the input's shape.
    """
    return _backward(grad, cache)


# ---------------------------------------------------------------------------- NLL
def nll_forward(x: np.ndarray, target: np.ndarray, *, weight: np.ndarray | None = None,
                ignore_index: int = -100, reduction: str = "mean") -> tuple[np.ndarray, LossCache]:
    """Negative log-likelihood of log-probabilities (PyTorch's nll_loss).

    Args:
        x: log-probabilities (N, C, *) or (C,).
        target: class indices (N, *) or a 0-d index for a (C,) input.
        weight: per-class weights (C,) or None.
        ignore_index: the label of items to skip.
        reduction: 'mean' (divides by the kept targets' total weight), 'sum' or 'none'.

    Shape:
        (N, C, *) -> () for 'mean'/'sum', (N, *) for 'none'; loss_i = -w[y_i] * x[i, y_i].

    Returns:
        (loss, cache) for :func:`nll_backward`.
    """
    x, target, unbatched = _batched(x, target, False)
    q, norm = _index_target_distribution(target, x.shape, x.dtype, weight, ignore_index, 0.0)
    per_item = -(q * x).sum(axis=1)                                 # (N, *)
    norm = norm if reduction == "mean" else 1.0
    loss = _reduce(per_item, reduction, norm)
    if unbatched and reduction == "none":
        loss = loss[0]
    return loss, LossCache(-q, 1, reduction, norm, unbatched)


def nll_backward(grad: np.ndarray | float, cache: LossCache) -> np.ndarray:
    """Gradient of nll_forward: -grad * w[y] at each item's target class, 0 elsewhere."""
    return _backward(grad, cache)


# ---------------------------------------------------------------------------- BCE with logits
def bce_with_logits_forward(x: np.ndarray, target: np.ndarray, *, weight: np.ndarray | None = None,
                            pos_weight: np.ndarray | None = None, reduction: str = "mean"
                            ) -> tuple[np.ndarray, LossCache]:
    """Binary cross-entropy on logits, computed stably (PyTorch's binary_cross_entropy_with_logits).

    Args:
        x: logits, any shape.
        target: probabilities in [0, 1], the input's shape.
        weight: per-element weights broadcastable to the input, or None.
        pos_weight: weights of the positive term broadcastable to the input
            (typically (C,) for (N, C)), or None.
        reduction: 'mean' (over all elements), 'sum' or 'none'.

    Shape:
        x -> () for 'mean'/'sum', x's shape for 'none';
        loss = w * ((1 - t) * x + (1 + (pw - 1) * t) * softplus(-x)),
        softplus(-x) = max(-x, 0) + log1p(exp(-|x|)).

    Returns:
        (loss, cache) for :func:`bce_with_logits_backward`.
    """
    t = target.astype(x.dtype, copy=False)
    log_weight = 1.0 if pos_weight is None else 1.0 + (pos_weight - 1.0) * t
    lp = np.log1p(np.exp(-np.abs(x)))
    softplus_neg = np.maximum(-x, 0) + lp                           # log(1 + exp(-x))
    loss = (1.0 - t) * x + log_weight * softplus_neg
    sig_neg = np.exp(-(np.maximum(x, 0) + lp))                      # sigmoid(-x) = exp(-softplus(x))
    dlocal = (1.0 - t) - log_weight * sig_neg
    if weight is not None:
        loss = loss * weight
        dlocal = dlocal * weight
    norm = float(x.size) if reduction == "mean" else 1.0
    value = _reduce(np.asarray(loss, dtype=x.dtype), reduction, norm)
    return value, LossCache(np.asarray(dlocal, dtype=x.dtype), None, reduction, norm, False)


def bce_with_logits_backward(grad: np.ndarray | float, cache: LossCache) -> np.ndarray:
    """Gradient of bce_with_logits_forward: grad * w * ((1 - t) - (1 + (pw - 1) t) * sigmoid(-x))."""
    return _backward(grad, cache)


# ---------------------------------------------------------------------------- MSE
def mse_forward(x: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
                ) -> tuple[np.ndarray, LossCache]:
    """Mean squared error (PyTorch's mse_loss) of same-shaped arrays.

    Shape:
        x -> () for 'mean'/'sum', x's shape for 'none'; loss = (x - target)^2.

    Returns:
        (loss, cache) for :func:`mse_backward`.
    """
    diff = x - target.astype(x.dtype, copy=False)
    norm = float(x.size) if reduction == "mean" else 1.0
    return _reduce(diff * diff, reduction, norm), LossCache(2.0 * diff, None, reduction, norm, False)


def mse_backward(grad: np.ndarray | float, cache: LossCache) -> np.ndarray:
    """Gradient of mse_forward: grad * 2 (x - target), scaled by the reduction."""
    return _backward(grad, cache)
