"""Fitting objectives and their analytic gradients.

Two losses over residuals of a law's prediction ``P`` against the observed error ``Y``,
each weighted by ``w`` (1 per point; counts of repeated configurations or bootstrap draws):

- ``sse``   (the paper's):      ``L = sum_i w_i (P_i - Y_i)^2``
- ``huber`` (Hoffmann et al. 2022 / Besiroglu et al. 2024, Chinchilla fits):
  ``L = sum_i w_i H_delta(ln P_i - ln Y_i)``, ``H_delta(r) = r^2/2`` for ``|r| <= delta``,
  ``delta (|r| - delta/2)`` beyond, with ``delta = 1e-3``.

Gradients follow the chain rule through the law's symbolic Jacobian ``dP/dtheta``
(:meth:`scaling.law.LawForm.jacobian`): ``dL/dtheta = J^T (2 w r)`` for sse and
``J^T (w clip(r, +-delta) / P)`` for huber.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from scaling.law import LawForm

HUBER_DELTA = 1e-3
LOSSES = ("sse", "huber")


def _values(form: LawForm, axes: Mapping[str, np.ndarray], theta: np.ndarray) -> dict:
    return {**axes, **dict(zip(form.params, np.asarray(theta, float), strict=True))}


def predict(form: LawForm, axes: Mapping[str, np.ndarray], theta: np.ndarray) -> np.ndarray:
    """The law at parameter vector ``theta`` (law parameter order)."""
    with np.errstate(all="ignore"):
        return form.evaluate(_values(form, axes, theta))


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
    return np.where(np.all((pred > 0) | (w == 0), axis=-1), out, np.inf)


def value_and_grad(theta: np.ndarray, form: LawForm, loss: str,
                   axes: Mapping[str, np.ndarray], y: np.ndarray,
                   w: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Objective and its analytic gradient at ``theta`` (for L-BFGS-B)."""
    w = np.ones_like(y) if w is None else w
    values = _values(form, axes, theta)
    with np.errstate(all="ignore"):
        pred = form.evaluate(values)
        J = form.jacobian(values)
    if not np.all(np.isfinite(pred[w > 0])):
        return 1e300, np.zeros_like(theta)
    if loss == "sse":
        r = pred - y
        return float(np.sum(w * r * r)), J.T @ (2.0 * w * r)
    if np.any(pred[w > 0] <= 0):
        return 1e300, np.zeros_like(theta)
    with np.errstate(all="ignore"):
        r = np.where(w > 0, np.log(np.where(pred > 0, pred, 1.0)) - np.log(y), 0.0)
        g = J.T @ np.where(w > 0, w * np.clip(r, -HUBER_DELTA, HUBER_DELTA) / pred, 0.0)
    return float(np.sum(w * huber(r))), g
