"""Loss layers: CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss, MSELoss (torch.nn's arguments).

``loss = criterion(input, target)`` returns the loss (a NumPy scalar for
'mean' and 'sum', an array for 'none') and keeps what backward needs;
``dx = criterion.backward(grad=1.0)`` returns d loss / d input (``grad`` is the
upstream gradient: a scalar, or an array of the 'none' output's shape).
Class weights and ``pos_weight`` are buffers named as in PyTorch, so state
dicts match.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, DTypeError, ShapeError
from ..functional import loss as F
from .module import Module

__all__ = ['CrossEntropyLoss', 'NLLLoss', 'BCEWithLogitsLoss', 'MSELoss']


def _weight_array(value: Any, name: str, arg: str, one_dim: bool) -> np.ndarray | None:
    """Turn a weight argument into a floating array (or None), refusing impossible values."""
    if value is None:
        return None
    arr = np.array(value.detach().cpu().numpy() if hasattr(value, "detach") else value, copy=True)
    if arr.dtype.kind not in "fiu":
        raise ConfigError(f"{name}: {arg} must be numeric; received dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    if one_dim and arr.ndim != 1:
        raise ConfigError(f"{name}: {arg} must be a 1-D array of per-class weights; "
                          f"received shape {arr.shape}")
    return arr


class _Loss(Module):
    """Shared base: the reduction, the upstream-gradient check and backward.

    Args:
        reduction: 'mean', 'sum' or 'none'.
    """

    _backward_kernel = staticmethod(F.mse_backward)

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in F.REDUCTIONS:
            raise ConfigError(
                f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none'; "
                f"received {reduction!r}"
            )
        self.reduction = reduction

    def backward(self, grad: Any = 1.0) -> np.ndarray:
        """d loss / d input, given the upstream gradient of the loss (1.0 by default).

        Args:
            grad: a scalar for 'mean'/'sum'; a scalar or an array of the 'none'
                output's shape for 'none'.

        Returns:
            The input gradient, the input's shape and dtype.
        """
        cache = self._take()
        g = np.asarray(grad)
        if g.dtype.kind not in "fiu":
            raise DTypeError(f"{self.where()}.backward expects a numeric gradient; received dtype {g.dtype}")
        out_shape = self._output_shape(cache)
        if g.ndim and g.shape != out_shape:
            if g.size != 1 or out_shape != ():
                raise ShapeError(
                    f"{self.where()}.backward expects a gradient of the loss's shape {out_shape} "
                    f"(or a scalar); received {g.shape}"
                )
            g = g.reshape(())                                        # ()
        return self._backward_kernel(g, cache)

    @staticmethod
    def _output_shape(cache: F.LossCache) -> tuple[int, ...]:
        """The shape of the forward output: () unless reduction='none'."""
        if cache.reduction != "none" or cache.unbatched:
            return ()
        shape = cache.dlocal.shape
        if cache.item_axis is None:
            return shape
        return shape[:cache.item_axis] + shape[cache.item_axis + 1:]

    def _float_target(self, x: np.ndarray, target: Any) -> np.ndarray:
        """A floating target of exactly the input's shape."""
        t = target if isinstance(target, np.ndarray) else np.asarray(target)
        if t.dtype.kind != "f":
            raise DTypeError(
                f"{self.where()} expects a floating-point target; received dtype {t.dtype} "
                "(convert with target.astype(np.float32))"
            )
        if t.shape != x.shape:
            raise ShapeError(
                f"{self.where()} expects target {tuple(x.shape)} (the input's shape); "
                f"received {tuple(t.shape)}"
            )
        return t

    def _broadcast_buffer(self, x: np.ndarray, arr: np.ndarray | None, arg: str) -> np.ndarray | None:
        """A weight buffer in the input's dtype, checked to broadcast to the input's shape."""
        if arr is None:
            return None
        try:
            fits = np.broadcast_shapes(arr.shape, x.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"{self.where()}: {arg} of shape {arr.shape} does not broadcast to the input "
                f"{tuple(x.shape)}"
            )
        return arr.astype(x.dtype, copy=False)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _ClassLoss(_Loss):
    """Shared input/label checks of the losses over a class axis (CrossEntropy, NLL)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        name = type(self).__name__
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise ConfigError(f"{name}: ignore_index must be an int; received {ignore_index!r}")
        self.ignore_index = int(ignore_index)
        self.register_buffer("weight", _weight_array(weight, name, "weight", one_dim=True))

    def _class_input(self, x: Any) -> tuple[np.ndarray, int]:
        """The floating input (N, C, *) or (C,) and its number of classes C."""
        x = self._float_input(x)
        if x.ndim == 0:
            self._check_ndim(x, ("N", "C", "*"), " (or (C,) for one unbatched item)")
        return x, (x.shape[1] if x.ndim > 1 else x.shape[0])

    def _class_weight(self, x: np.ndarray, num_classes: int) -> np.ndarray | None:
        if self.weight is None:
            return None
        if self.weight.shape != (num_classes,):
            raise ShapeError(
                f"{self.where()}: weight must have one value per class ({num_classes},) for an "
                f"input with C={num_classes}; received weight of shape {self.weight.shape}"
            )
        return self.weight.astype(x.dtype, copy=False)

    def _index_target(self, x: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
        """Check integer class labels: shape (N, *) for input (N, C, *), values in [0, C)."""
        want = tuple(x.shape[:1] + x.shape[2:]) if x.ndim > 1 else ()
        if target.dtype.kind not in "iu":
            raise DTypeError(
                f"{self.where()} expects integer class labels of shape {want}; received dtype "
                f"{target.dtype} (convert with target.astype(np.int64))"
            )
        if target.shape != want:
            raise ShapeError(
                f"{self.where()} expects target {want} (class indices) for input "
                f"{tuple(x.shape)}; received {tuple(target.shape)}"
            )
        F.check_class_labels(target, num_classes, self.ignore_index, self.where())
        return target

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.ignore_index != -100:
            s += f", ignore_index={self.ignore_index}"
        return s


class CrossEntropyLoss(_ClassLoss):
    """Softmax cross-entropy between logits and class indices or class probabilities.

    Args:
        weight: per-class weights (C,), or None.
        ignore_index: items with this label count for nothing (class-index targets).
        reduction: 'mean' (divided by the total weight of the kept targets for
            class indices, by the number of items for probabilities), 'sum' or 'none'.
        label_smoothing: eps in [0, 1]; targets become (1 - eps) * target + eps / C.

    Shape:
        input (N, C, *) or (C,); target (N, *) integer labels in [0, C) (or
        ``ignore_index``), or floating probabilities of the input's shape.
        Output () for 'mean'/'sum', (N, *) for 'none';
        loss_i = -sum_c q_ic log_softmax(x_i)_c, q the weighted, smoothed target.

    Returns:
        The loss (a NumPy scalar, or an array for 'none').
    """

    _backward_kernel = staticmethod(F.cross_entropy_backward)

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, ignore_index, reduction)
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
                or not 0.0 <= label_smoothing <= 1.0:
            raise ConfigError(
                f"CrossEntropyLoss: label_smoothing must be a float in [0, 1]; received {label_smoothing!r}"
            )
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Any, target: Any) -> np.ndarray:
        x, c = self._class_input(input)
        t = target if isinstance(target, np.ndarray) else np.asarray(target)
        if not (t.dtype.kind == "f" and t.shape == x.shape):
            t = self._index_target(x, t, c)
        loss, cache = F.cross_entropy_forward(
            x, t, weight=self._class_weight(x, c), ignore_index=self.ignore_index,
            reduction=self.reduction, label_smoothing=self.label_smoothing)
        self._keep(cache)
        return loss

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", label_smoothing={self.label_smoothing}" if self.label_smoothing else "")


class NLLLoss(_ClassLoss):
    """Negative log-likelihood of log-probabilities (use after LogSoftmax).

    Args:
        weight: per-class weights (C,), or None.
        ignore_index: items with this label count for nothing.
        reduction: 'mean' (divided by the total weight of the kept targets), 'sum' or 'none'.

    Shape:
        input (N, C, *) or (C,) log-probabilities; target (N, *) integer labels.
        Output () for 'mean'/'sum', (N, *) for 'none'; loss_i = -w[y_i] * input[i, y_i].

    Returns:
        The loss (a NumPy scalar, or an array for 'none').
    """

    _backward_kernel = staticmethod(F.nll_backward)

    def forward(self, input: Any, target: Any) -> np.ndarray:
        x, c = self._class_input(input)
        t = self._index_target(x, np.asarray(target), c)
        loss, cache = F.nll_forward(x, t, weight=self._class_weight(x, c),
                                    ignore_index=self.ignore_index, reduction=self.reduction)
        self._keep(cache)
        return loss


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one numerically stable step.

    Args:
        weight: per-element weights broadcastable to the input, or None.
        reduction: 'mean' (over all elements), 'sum' or 'none'.
        pos_weight: weights of the positive examples broadcastable to the input
            (e.g. (C,) for an (N, C) input), or None.

    Shape:
        input and target of the same shape (*); output () for 'mean'/'sum', (*) for 'none';
        loss = weight * ((1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x))).

    Returns:
        The loss (a NumPy scalar, or an array for 'none').
    """

    _backward_kernel = staticmethod(F.bce_with_logits_backward)

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        name = type(self).__name__
        self.register_buffer("weight", _weight_array(weight, name, "weight", one_dim=False))
        self.register_buffer("pos_weight", _weight_array(pos_weight, name, "pos_weight", one_dim=False))

    def forward(self, input: Any, target: Any) -> np.ndarray:
        x = self._float_input(input)
        t = self._float_target(x, target)
        loss, cache = F.bce_with_logits_forward(
            x, t, weight=self._broadcast_buffer(x, self.weight, "weight"),
            pos_weight=self._broadcast_buffer(x, self.pos_weight, "pos_weight"),
            reduction=self.reduction)
        self._keep(cache)
        return loss


class MSELoss(_Loss):
    """Mean squared error.

    Args:
        reduction: 'mean' (over all elements), 'sum' or 'none'.

    Shape:
        input and target of the same shape (*) (no broadcasting); output () for
        'mean'/'sum', (*) for 'none'; loss = (input - target)^2.

    Returns:
        The loss (a NumPy scalar, or an array for 'none').
    """

    _backward_kernel = staticmethod(F.mse_backward)

    def forward(self, input: Any, target: Any) -> np.ndarray:
        x = self._float_input(input)
        t = self._float_target(x, target)
        loss, cache = F.mse_forward(x, t, reduction=self.reduction)
        self._keep(cache)
        return loss
