"""Normalisation layers: BatchNorm1d, BatchNorm2d and LocalResponseNorm (torch.nn's API)."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError, StateError
from ..functional import norm as F
from ..functional import norm_relu as FR
from .module import Module
from .parameter import Parameter

__all__ = ['BatchNorm1d', 'BatchNorm2d', 'LocalResponseNorm']


def _real(layer: str, name: str, value: Any, minimum: float | None = None) -> float:
    """``value`` as a finite float (>= minimum if given), or ConfigError naming it."""
    ok = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
    if not ok or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ConfigError(f"{layer}: {name} must be a finite real number{bound}; received {value!r}")
    return float(value)


def fusable_batch_norm(m: Any) -> bool:
    """A batch norm running its class's own forward (nobody watching it, as summary and viz
    do): it may run fused with the ReLU after it (:meth:`_BatchNorm.forward_relu`)."""
    return isinstance(m, _BatchNorm) and "forward" not in m.__dict__


class _BatchNorm(Module):
    """Batch normalisation over axis 1 with torch's parameters, buffers and update rule."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if (isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer))
                or num_features < 1):
            raise ConfigError(f"{name}: num_features must be a positive int; received {num_features!r}")
        self.num_features = int(num_features)
        self.eps = _real(name, "eps", eps, minimum=0.0)
        if momentum is not None:
            momentum = _real(name, "momentum", momentum, minimum=0.0)
            if momentum > 1:
                raise ConfigError(f"{name}: momentum must be in [0, 1] or None; received {momentum!r}")
        self.momentum = momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dt = np.dtype(dtype or np.float32)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(c, dtype=dt))
            self.bias = Parameter(np.zeros(c, dtype=dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype=dt))
            self.register_buffer("running_var", np.ones(c, dtype=dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for buf in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buf, None)

    def reset_running_stats(self) -> None:
        """running_mean = 0, running_var = 1, num_batches_tracked = 0 (if tracked)."""
        if self.track_running_stats:
            self.set_buffer("running_mean", np.zeros_like(self.running_mean))
            self.set_buffer("running_var", np.ones_like(self.running_var))
            self.set_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def reset_parameters(self) -> None:
        """torch's default: running stats reset, weight = 1, bias = 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def _check_input(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _dtype(self) -> np.dtype | None:
        """The dtype inputs are cast to: the parameters' (or buffers'); None keeps x's."""
        if self.weight is not None:
            return self.weight.data.dtype
        return None if self.running_mean is None else self.running_mean.dtype

    def forward(self, x: Any) -> np.ndarray:
        x, centred, mean, var, use_batch = self._statistics(x)
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        y, cache = F.batch_norm_forward(x, mean, var, w, b, eps=self.eps, batch_stats=use_batch,
                                         centred=centred)
        self._keep(cache)
        return y

    def forward_relu(self, x: Any, residual: np.ndarray | None = None,
                     moments: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """relu(self(x) [+ residual]) in one operation (ResNet blocks; see functional.norm_relu).

        The ReLU costs no pass of its own; :meth:`backward_relu` is its backward pass.
        ``moments``: x's per-channel mean and biased variance when already known (from
        :meth:`Conv2d.forward_moments`); used only where the batch's statistics are.

        Shape:
            (N, C, *)[, (N, C, *)] -> (N, C, *).
        """
        if residual is not None and np.shape(residual) != np.shape(x):   # before any update
            raise ShapeError(f"{self.where()}: the residual {tuple(np.shape(residual))} does not "
                             f"match the input {tuple(np.shape(x))}")
        x, centred, mean, var, use_batch = self._statistics(x, moments)
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        y, cache = FR.batch_norm_relu_forward(x, mean, var, w, b, eps=self.eps,
                                              batch_stats=use_batch, centred=centred,
                                              residual=residual)
        self._keep(cache)
        return y

    def backward_relu(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradients of :meth:`forward_relu`: (dx, gradient of the residual or None)."""
        cache = self._take()
        if not isinstance(cache, FR.BatchNormReluCache):
            raise StateError(f"{self.where()}: backward_relu() after forward(), not forward_relu()")
        dx, dres, dw, db = FR.batch_norm_relu_backward(dy, cache)
        self._accumulate(dw, db)
        return dx, dres

    def _statistics(self, x: Any, moments: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, bool]:
        """(x as a float array, x - mean or None, mean, var, whether they are the batch's own);
        updates the running statistics when training.  ``moments``: the batch's (mean, var)."""
        x = self._float_input(x, self._dtype())
        self._check_input(x)
        use_batch = self.training or self.running_mean is None
        if use_batch:
            count = x.size // self.num_features
            if count < 2:
                raise ShapeError(
                    f"{self.where()}: expected more than 1 value per channel when training "
                    f"(batch statistics); received input {tuple(x.shape)}"
                )
            if moments is not None:
                centred, mean, var = None, *(np.asarray(m).astype(x.dtype) for m in moments)
            else:
                centred, mean, var = F.batch_centred_moments(x)
            if self.training and self.track_running_stats:
                self._update_running(mean, var, count)
        else:
            centred, mean, var = None, self.running_mean, self.running_var
        return x, centred, mean, var, use_batch

    def _update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        """torch's update: unbiased variance; factor momentum, or 1/n when momentum is None."""
        tracked = int(self.num_batches_tracked) + 1
        self.set_buffer("num_batches_tracked", np.array(tracked, dtype=np.int64))
        f = 1.0 / tracked if self.momentum is None else self.momentum
        rm, rv = self.running_mean, self.running_var
        unbiased = var * (count / (count - 1))
        self.set_buffer("running_mean", ((1 - f) * rm + f * mean).astype(rm.dtype, copy=False))
        self.set_buffer("running_var", ((1 - f) * rv + f * unbiased).astype(rv.dtype, copy=False))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self._take()
        if isinstance(cache, FR.BatchNormReluCache):
            raise StateError(f"{self.where()}: backward() after forward_relu(); use backward_relu()")
        dx, dw, db = F.batch_norm_backward(dy, cache)
        self._accumulate(dw, db)
        return dx

    def _accumulate(self, dw: np.ndarray | None, db: np.ndarray | None) -> None:
        if dw is not None:
            self.weight.accumulate(dw)
        if db is not None:
            self.bias.accumulate(db)

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), each (C,), with eval-mode output[:, c] = a[c] * x[:, c] + b[c].

        a = weight / sqrt(running_var + eps), b = bias - running_mean * a (weight 1
        and bias 0 when affine=False): what folding this layer into the
        preceding convolution needs.  Computed and returned in float64 whatever
        the layer's dtype, so folding loses nothing.

        Raises:
            ConfigError: with track_running_stats=False (eval then uses batch
                statistics, which no fixed affine map reproduces).
        """
        if self.running_mean is None:
            raise ConfigError(
                f"{self.where()}: scale_shift() needs running statistics; "
                "received a layer built with track_running_stats=False"
            )
        a = 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)
        if self.weight is not None:
            a = a * self.weight.data
        b = -self.running_mean * a
        if self.bias is not None:
            b = b + self.bias.data
        return a, b

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences, per channel.

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: running-stat update factor; None uses the cumulative average
            (factor 1 / num_batches_tracked).
        affine: learn ``weight`` (init 1) and ``bias`` (init 0).
        track_running_stats: keep ``running_mean``, ``running_var`` and
            ``num_batches_tracked`` for evaluation; if False, batch statistics
            are used in both modes and the buffers are None.
        dtype: parameter and buffer dtype (float32 by default).

    Shape:
        (N, C) -> (N, C) and (N, C, L) -> (N, C, L);
        y = (x - mean) / sqrt(var + eps) * weight + bias.
    """

    def _check_input(self, x: np.ndarray) -> None:
        c = self.num_features
        if x.ndim not in (2, 3) or x.shape[1] != c:
            raise ShapeError(
                f"{self.where()} expects input (N, {c}) or (N, {c}, L); received {tuple(x.shape)}"
            )


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) feature maps, per channel.

    Args:
        as :class:`BatchNorm1d`.

    Shape:
        (N, C, H, W) -> (N, C, H, W); y = (x - mean) / sqrt(var + eps) * weight + bias,
        statistics over N, H and W.
    """

    def _check_input(self, x: np.ndarray) -> None:
        self._check_ndim(x, ("N", self.num_features, "H", "W"))


class LocalResponseNorm(Module):
    """Local response normalisation across channels (AlexNet), with torch's exact formula.

    Args:
        size: number of neighbouring channels in the window (torch pads
            size//2 before and (size-1)//2 after).
        alpha: multiplicative factor (divided by ``size``: the window is averaged).
        beta: exponent.
        k: additive constant.

    Shape:
        (N, C, *) -> (N, C, *) with at least one trailing axis;
        y[:, c] = x[:, c] / (k + alpha/size * sum_{window(c)} x^2)^beta.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ConfigError(f"LocalResponseNorm: size must be a positive int; received {size!r}")
        self.size = int(size)
        self.alpha = _real("LocalResponseNorm", "alpha", alpha)
        self.beta = _real("LocalResponseNorm", "beta", beta)
        self.k = _real("LocalResponseNorm", "k", k)

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        if x.ndim < 3:
            raise ShapeError(
                f"{self.where()} expects input (N, C, *) with 3 or more dimensions; "
                f"received {tuple(x.shape)}"
            )
        y, cache = F.local_response_norm_forward(x, size=self.size, alpha=self.alpha,
                                                 beta=self.beta, k=self.k)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return F.local_response_norm_backward(dy, self._take())

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
