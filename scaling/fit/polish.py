"""The point fit: global exponent search by variable projection, then a gradient polish.

``sse``: the projected objective ``f(alpha, beta) = min_l SSE`` (:mod:`scaling.fit.varpro`) is
minimised over a dense grid of exponent pairs (65 x 65 by default, ``u = sqrt(exponent)``
uniform on ``[0, sqrt(max_exponent)]``), refined by the batched stencil-Newton search, and
then all parameters are polished together by L-BFGS-B with the analytic gradient
(:mod:`scaling.fit.losses`); the better of the two is kept.

``huber`` on log residuals is not linear in ``a``/``D``, so the projection uses relative
least squares (weights ``1 / Y^2``, i.e. ``(P - Y)/Y ~ ln P - ln Y``): the grid's best
pairs under the true Huber objective, plus the relative-least-squares optimum, start
L-BFGS-B polishes of the true objective; the best is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from scaling.fit import losses, varpro
from scaling.law import LawForm, get_law

GRID = 65
MAX_EXPONENT = 4.0


@dataclass(frozen=True)
class PointFit:
    """Parameters (law order), objective and whether the optimiser converged."""

    theta: np.ndarray
    objective: float
    converged: bool
    gradient: np.ndarray


def assemble(form: LawForm, exps: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Parameter vectors ``(..., p)`` in law order from exponents and linear coefficients."""
    cols = {**{p: exps[..., i] for i, p in enumerate(form.exponents)},
            **{p: coef[..., i] for i, p in enumerate(form.linear)}}
    return np.stack([cols[p] for p in form.params], axis=-1)


def param_bounds(form: LawForm, y_min: float, max_exponent: float) -> list[tuple]:
    """Box bounds for L-BFGS-B: ``"min_y"`` -> ``y_min``, exponents capped at the search."""
    out = []
    for p in form.params:
        lo, hi = form.bounds[p]
        hi = y_min if hi == "min_y" else (max_exponent if p in form.exponents else hi)
        out.append((None if lo == -np.inf else lo, None if hi == np.inf else hi))
    return out


def projected_gradient(grad: np.ndarray, theta: np.ndarray, bounds: list[tuple]) -> np.ndarray:
    """The gradient with components that push into an active bound set to zero."""
    g = grad.copy()
    for i, (lo, hi) in enumerate(bounds):
        if lo is not None and theta[i] <= lo and g[i] > 0:
            g[i] = 0.0
        if hi is not None and theta[i] >= hi and g[i] < 0:
            g[i] = 0.0
    return g


def is_stationary(law: str, loss: str, theta: np.ndarray, N, T, y, w, bounds) -> tuple:
    """First-order check: no parameter can lower the objective noticeably by a 1% move."""
    obj, grad = losses.value_and_grad(theta, law, loss, N, T, y, w)
    g = projected_gradient(grad, theta, bounds)
    decrease = np.abs(g) * 0.01 * np.maximum(np.abs(theta), 1e-2)
    floor = 1e-4 * obj + 1e-12 * float(np.sum(w * y * y))
    return bool(np.all(decrease <= floor)), g


def polish(law: str, loss: str, theta0: np.ndarray, N, T, y, w, bounds) -> tuple:
    """L-BFGS-B on all parameters with the analytic gradient, from ``theta0``."""
    res = minimize(losses.value_and_grad, np.asarray(theta0, float), jac=True,
                   args=(law, loss, N, T, y, w), method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-14})
    return np.asarray(res.x, float), float(res.fun)


def fit_point(law: str, N: np.ndarray, T: np.ndarray, y: np.ndarray, *, loss: str = "sse",
              w: np.ndarray | None = None, grid: int = GRID,
              max_exponent: float = MAX_EXPONENT) -> PointFit:
    """Best parameters of ``law`` on ``(N billions, T, Y)`` under ``loss`` (see module doc)."""
    form = get_law(law)
    N, T, y = (np.asarray(v, float) for v in (N, T, y))
    w = np.ones_like(y) if w is None else np.asarray(w, float)
    lnN, lnT = np.log(N), np.log(T)
    y_min = float(np.min(y[w > 0]))
    bounds = param_bounds(form, y_min, max_exponent)
    u_max = float(np.sqrt(max_exponent))
    wp = w if loss == "sse" else w / y ** 2      # projection weights (relative LS for huber)
    W, ymin = wp[None], np.array([y_min])
    starts = []
    if form.exponents:
        axis = np.linspace(0.0, u_max, grid)
        u, _, table = varpro.grid_search(form, lnN, lnT, y, W, ymin, axis)
        u, coef, _, ok = varpro.local_search(form, lnN, lnT, y, W, ymin, u, axis[1],
                                             u_max=u_max)
        starts.append(assemble(form, u[0] ** 2, coef[0]))
        if loss == "huber":  # the grid's best pairs under the true objective
            U = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
            gc, _ = varpro.project(form, lnN, lnT, y, wp, U ** 2, y_min)
            cand = assemble(form, U ** 2, gc)
            pred = np.stack([losses.predict(law, N, T, c) for c in cand])
            order = np.argsort(losses.objective("huber", pred, y, w))[:4]
            starts += list(cand[order])
    else:
        coef, _ = varpro.project(form, lnN, lnT, y, wp, np.zeros(0), y_min)
        starts.append(assemble(form, np.zeros(0), coef))
    best_theta, best_obj = None, np.inf
    for start in starts:
        start = np.clip(start, [b[0] if b[0] is not None else -np.inf for b in bounds],
                        [b[1] if b[1] is not None else np.inf for b in bounds])
        obj0 = losses.value_and_grad(start, law, loss, N, T, y, w)[0]
        theta, obj = polish(law, loss, start, N, T, y, w, bounds)
        for th, ob in ((start, obj0), (theta, obj)):
            if ob < best_obj:
                best_theta, best_obj = th, ob
    converged, grad = is_stationary(law, loss, best_theta, N, T, y, w, bounds)
    return PointFit(best_theta, float(best_obj), converged, grad)
