"""Fitting objectives and their analytic gradients.

Two losses over residuals of a law's prediction ``P`` against the observed error ``Y``,
each weighted by ``w`` (1 per point; bootstrap counts when resampling):

- ``sse``   (the paper's):      ``L = sum_i w_i (P_i - Y_i)^2``
- ``huber`` (Hoffmann et al. 2022 / Besiroglu et al. 2024, Chinchilla fits):
  ``L = sum_i w_i H_delta(ln P_i - ln Y_i)``, ``H_delta(r) = r^2/2`` for ``|r| <= delta``,
  ``delta (|r| - delta/2)`` beyond, with ``delta = 1e-3``.

Gradients follow the chain rule through the law's Jacobian ``dP/dtheta``
(:func:`jacobian`): ``dL/dtheta = J^T (2 w r)`` for sse and ``J^T (w clip(r, +-delta) / P)``
for huber.
"""

from __future__ import annotations

import numpy as np

from scaling.law import get_law

HUBER_DELTA = 1e-3
LOSSES = ("sse", "huber")


def jacobian(law: str, N: np.ndarray, V: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``dP/dtheta``, shape ``(n, len(params))`` in the law's parameter order
    (:attr:`scaling.law.LawForm.jacobian`)."""
    return get_law(law).jacobian(N, V, np.asarray(theta, float))


def predict(law: str, N: np.ndarray, V: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The law at parameter vector ``theta`` (law parameter order)."""
    form = get_law(law)
    return form.fn(N, V, **dict(zip(form.params, np.asarray(theta, float), strict=True)))


def huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """``H_delta(r)``: quadratic within ``delta``, linear beyond (scipy.special.huber)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def objective(loss: str, pred: np.ndarray, y: np.ndarray, w: np.ndarray | None = None,
              ) -> np.ndarray:
    """The loss summed over the last axis (broadcasts over leading batch axes)."""
    w = np.ones_like(y) if w is None else w
    if loss == "sse":
        return np.sum(w * (pred - y) ** 2, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(pred) - np.log(y)
    out = np.sum(w * huber(r), axis=-1)
    return np.where(np.all(pred > 0, axis=-1), out, np.inf)


def value_and_grad(theta: np.ndarray, law: str, loss: str, N: np.ndarray, V: np.ndarray,
                   y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Objective and its analytic gradient at ``theta`` (for L-BFGS-B)."""
    w = np.ones_like(y) if w is None else w
    pred = predict(law, N, V, theta)
    J = jacobian(law, N, V, theta)
    if loss == "sse":
        r = pred - y
        return float(np.sum(w * r * r)), J.T @ (2.0 * w * r)
    if np.any(pred <= 0):
        return 1e300, np.zeros_like(theta)
    r = np.log(pred) - np.log(y)
    return float(np.sum(w * huber(r))), J.T @ (w * np.clip(r, -HUBER_DELTA, HUBER_DELTA) / pred)
