"""The error function erf and its complement erfc, vectorised over NumPy arrays.

NumPy has no erf (SciPy does, but striate depends on NumPy only), and
``np.vectorize(math.erf)`` makes a Python call per element.  Both functions
here work in float64, piecewise in |x|:

* |x| < 1: erf(x) = x * P(x^2), P of degree 11;
* 1 <= |x| < 2 and 2 <= |x| < 4: erfc(x) = exp(-x^2) * Q(|x| - c), Q of degree
  15 (c = 1.5) and 18 (c = 3) approximating the smooth, slowly varying
  exp(x^2) * erfc(x); erf = 1 - erfc there (no harmful cancellation: erfc < 0.16);
* |x| >= 4: Laplace's continued fraction in its even (contracted) form
  erfc(x) = 2x exp(-x^2)/sqrt(pi) / (2x^2+1 - 1*2/(2x^2+5 - 3*4/(2x^2+9 - ...))),
  16 levels deep; erf(x) is 1 to double precision there.

The polynomial coefficients are Chebyshev-node interpolants (near minimax)
computed once with mpmath at 50 significant digits and rounded to float64.
exp(-x^2) is taken as exp(-h^2) * exp(-(x-h)(x+h)) with h = x rounded to
float32, so h^2 is exact and the tail keeps its relative accuracy.  Measured
against the C library (``math.erf`` / ``math.erfc``, see the tests) the
relative error is below 1e-15 everywhere (erfc down to its underflow near
x = 27).  Speed: about 40 ns per element, some 2.5x faster than
``np.vectorize(math.erf)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["erf", "erfc"]

_TWO_OVER_SQRT_PI = 1.1283791670955126  # 2 / sqrt(pi)
_ERFC_ZERO_BEYOND = 40.0                # erfc underflows to 0 before x = 27.3
_CF_DEPTH = 16                          # continued-fraction levels for x >= 4

# erf(x) / x as a polynomial in (x^2 - 0.5), x in [0, 1]; lowest degree first.
_ERF_SMALL = (
    0.9654687386698673, -0.2810721780454342, 0.07940998675593687,
    -0.018283884489152684, 0.003480274496570158, -0.0005611894221209664,
    7.829649688379886e-05, -9.614808641390195e-06, 1.0536323840680666e-06,
    -1.0420387617195658e-07, 9.432320191926508e-09, -7.795898827002142e-10,
)
# exp(x^2) * erfc(x) as a polynomial in (x - 1.5), x in [1, 2].
_ERFCX_12 = (
    0.3215854164543175, -0.16362291773256007, 0.07615103985548055,
    -0.03293090529956347, 0.013377340952802835, -0.005145957547915988,
    0.0018861348854630824, -0.0006619300686179933, 0.00022330981211640024,
    -7.265888759557882e-05, 2.286543658874603e-05, -6.975285854904505e-06,
    2.061689065129881e-06, -5.946998373950516e-07, 1.8038197652346406e-07,
    -4.932844202000261e-08,
)
# exp(x^2) * erfc(x) as a polynomial in (x - 3), x in [2, 4].
_ERFCX_24 = (
    0.17900115118138996, -0.05437226000717289, 0.01588437115987134,
    -0.004479431018371144, 0.0012230390523765237, -0.00032412554452200884,
    8.355413963369297e-05, -2.0989464259545496e-05, 5.146436522511331e-06,
    -1.2333685934914701e-06, 2.8926684651166363e-07, -6.64646639786765e-08,
    1.4977253627698686e-08, -3.316229237177357e-09, 7.20516363335066e-10,
    -1.5077563830210874e-10, 3.1724792006762475e-11, -8.134236373235494e-12,
    1.6482525468969957e-12,
)
# (lower bound, upper bound, polynomial, centre) of the two erfcx pieces.
_ERFCX_PIECES = ((1.0, 2.0, _ERFCX_12, 1.5), (2.0, 4.0, _ERFCX_24, 3.0))


def _horner(coefs: tuple[float, ...], u: np.ndarray) -> np.ndarray:
    """sum_j coefs[j] * u**j, evaluated in place from the highest degree."""
    s = np.full_like(u, coefs[-1])
    for c in reversed(coefs[:-1]):
        s *= u
        s += c
    return s


def _exp_neg_sq(x: np.ndarray) -> np.ndarray:
    """exp(-x^2), keeping relative accuracy for large |x| (x float64)."""
    h = x.astype(np.float32).astype(np.float64)     # 24 significant bits: h*h is exact
    return np.exp(-h * h) * np.exp(-(x - h) * (x + h))


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= 1."""
    return x * _horner(_ERF_SMALL, x * x - 0.5)


def _erfc_tail(x: np.ndarray) -> np.ndarray:
    """erfc(x) for x >= 4 by the even continued fraction."""
    x = np.minimum(x, _ERFC_ZERO_BEYOND)            # beyond: exactly 0, without overflow
    z = 2.0 * x * x
    f = z + (4 * _CF_DEPTH + 1)
    for k in range(_CF_DEPTH, 0, -1):
        f = z + (4 * k - 3) - (2 * k - 1) * (2 * k) / f
    return _TWO_OVER_SQRT_PI * x * _exp_neg_sq(x) / f


def _erfc_large(ax: np.ndarray) -> np.ndarray:
    """erfc(x) for x >= 1 (NaN stays NaN)."""
    out = np.full_like(ax, np.nan)
    for lo, hi, coefs, centre in _ERFCX_PIECES:
        m = (ax >= lo) & (ax < hi)
        if m.any():
            xm = ax[m]
            out[m] = _exp_neg_sq(xm) * _horner(coefs, xm - centre)
    m = ax >= _ERFCX_PIECES[-1][1]
    if m.any():
        out[m] = _erfc_tail(ax[m])
    return out


def _split(ax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of |x| < 1 and of the rest (NaN in neither)."""
    small = ax < 1.0
    return small, ~small & ~np.isnan(ax)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise.

    Args:
        x: a real array (or scalar); computed in float64.

    Shape:
        any -> the same shape.

    Returns:
        float64 array of erf(x) in [-1, 1] (NaN where x is NaN).
    """
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    small, large = _split(ax)
    out = np.full_like(x, np.nan)
    if small.any():
        out[small] = _erf_small(x[small])
    if large.any():
        out[large] = np.copysign(1.0 - _erfc_large(ax[large]), x[large])
    return out


def erfc(x: np.ndarray) -> np.ndarray:
    """The complementary error function erfc(x) = 1 - erf(x), accurate in the tails.

    Args:
        x: a real array (or scalar); computed in float64.

    Shape:
        any -> the same shape.

    Returns:
        float64 array of erfc(x) in [0, 2] (NaN where x is NaN).
    """
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    small, large = _split(ax)
    out = np.full_like(x, np.nan)
    if small.any():
        out[small] = 1.0 - _erf_small(x[small])
    if large.any():
        tail = _erfc_large(ax[large])                # erfc(|x|)
        out[large] = np.where(x[large] < 0, 2.0 - tail, tail)
    return out
