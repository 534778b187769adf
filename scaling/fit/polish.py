"""The point fit: global search by variable projection, then a gradient polish.

The data are first put in a well-conditioned form (:func:`make_context`):

- **units**: each axis on which every basis column is homogeneous (``X_j(x/s) = c_j X_j(x)``,
  true of every power law) is divided by its geometric mean, so the fit does not depend on
  the units of the table (parameters vs billions, tokens vs millions); linear coefficients
  are converted back exactly afterwards (``l_raw = l X_j(1) / X_j(s)``). Log terms
  (``ln N``) are left as they are: a constant column absorbs their unit change.
- **repeats**: for ``sse``, rows with the same axis values (seeds, duplicates) collapse into
  one point with weight = count and ``Y`` = mean; the within-point scatter is a constant
  added to the objective, so a table of ``10^6`` rows is fitted on its distinct points.

``sse``: the projected objective ``f(nu) = min_l SSE`` (:mod:`scaling.fit.varpro`) is
evaluated over a grid of the nonlinear parameters (65 x 65 for two; ``u = sqrt(nu - lo)``
uniform); its best point and best other local minima (with their exact linear parameters)
start a batched projected Levenberg-Marquardt search on all parameters (:func:`batched_lm`),
the two best results are polished by L-BFGS-B with the analytic gradient
(:mod:`scaling.fit.losses`); the best is kept.

``huber`` on log residuals is not linear in the coefficients, so the projection uses relative
least squares (weights ``1 / Y^2``, i.e. ``(P - Y)/Y ~ ln P - ln Y``): the grid's best
points under the true Huber objective, plus the relative-least-squares optimum, start
L-BFGS-B polishes of the true objective; the best is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from scaling.fit import losses, varpro
from scaling.law import LawForm

GRID = 65
MAX_EXPONENT = 4.0
MAX_GRID_WORK = 3e7      # grid points x data points of the point fit's exhaustive search
STARTS = 4               # local minima of the grid refined besides its best point


@dataclass(frozen=True)
class PointFit:
    """Parameters (law order, context units), objective and whether it converged."""

    theta: np.ndarray
    objective: float
    converged: bool
    gradient: np.ndarray


def axis_values(axes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Axis arrays plus their logs (``"ln:N"``), which make powers ``exp(e ln x)``."""
    out = {a: np.asarray(v, float) for a, v in axes.items()}
    out.update({f"ln:{a}": np.log(v) for a, v in out.items()})
    return out


@dataclass(frozen=True)
class Context:
    """One fitting problem, normalised (see the module doc); ``theta`` in its units."""

    form: LawForm
    loss: str
    axes: Mapping[str, np.ndarray]        # normalised axis values (+ logs), one per point
    y: np.ndarray
    w: np.ndarray
    within: float
    scales: Mapping[str, float]           # law value = normalised value * scale
    max_exponent: float
    codes: np.ndarray                     # point of each original row

    @property
    def y_min(self) -> float:
        return float(np.min(self.y[self.w > 0]))

    def lbfgs_bounds(self, y_min: float | None = None) -> list[tuple]:
        """Box bounds for L-BFGS-B: ``"min_y"`` -> ``y_min``, nonlinear capped at the search."""
        y_min = self.y_min if y_min is None else y_min
        out = []
        for p in self.form.params:
            lo, hi = self.form.bounds[p]
            hi = y_min if hi == "min_y" else float(hi)
            if p in self.form.exponents:
                hi = min(hi, _lower(lo, self.max_exponent) + self.max_exponent)
            out.append((None if lo == -np.inf else lo, None if hi == np.inf else hi))
        return out

    def problem(self) -> varpro.Problem:
        form = self.form
        lo = np.array([_lower(form.bounds[p][0], self.max_exponent) for p in form.exponents])
        hi = np.array([min(float(form.bounds[p][1]), lo[i] + self.max_exponent)
                       for i, p in enumerate(form.exponents)])
        return varpro.Problem(
            axes=self.axes, basis=form.design, nonlinear=form.exponents, linear=form.linear,
            lo=lo, u_max=np.sqrt(np.maximum(hi - lo, 0.0)),
            lin_lower=np.array([form.bounds[p][0] for p in form.linear], float),
            lin_upper=tuple(form.bounds[p][1] for p in form.linear))

    def ratios(self, theta: np.ndarray) -> np.ndarray:
        """``X_j(1) / X_j(s)`` per linear parameter at ``theta (..., p)``: the factor from
        normalised to law units."""
        if all(s == 1.0 for s in self.scales.values()) or not self.form.linear:
            return np.ones(theta.shape[:-1] + (len(self.form.linear),))
        nu = {p: theta[..., self.form.params.index(p), None] for p in self.form.exponents}
        one = axis_values({a: np.ones(1) for a in self.scales})
        raw = axis_values({a: np.full(1, s) for a, s in self.scales.items()})
        X1, _ = self.form.design({**one, **nu})
        Xs, _ = self.form.design({**raw, **nu})
        X1, Xs = X1[..., 0, :], Xs[..., 0, :]
        with np.errstate(all="ignore"):
            r = np.where(Xs != 0, X1 / np.where(Xs != 0, Xs, 1.0), 1.0)
        return np.broadcast_to(r, theta.shape[:-1] + (len(self.form.linear),))

    def to_law_units(self, theta: np.ndarray) -> np.ndarray:
        """Parameters in the law's units (axes as bound), from normalised ones."""
        theta = np.array(theta, float)
        idx = [self.form.params.index(p) for p in self.form.linear]
        theta[..., idx] = theta[..., idx] * self.ratios(theta)
        return theta

    def to_context_units(self, theta: np.ndarray) -> np.ndarray:
        theta = np.array(theta, float)
        idx = [self.form.params.index(p) for p in self.form.linear]
        theta[..., idx] = theta[..., idx] / self.ratios(theta)
        return theta


def _lower(lo: float, max_exponent: float) -> float:
    return -max_exponent if lo == -np.inf else float(lo)


def _homogeneous(form: LawForm, axes: Mapping[str, np.ndarray], axis: str) -> bool:
    """Does dividing ``axis`` by a constant only rescale each basis column?"""
    nu = {p: 0.31 + 0.17 * i for i, p in enumerate(form.exponents)}
    base = axis_values(axes)
    moved = axis_values({**axes, axis: axes[axis] / np.e ** 1.3})
    with np.errstate(all="ignore"):
        X0, off0 = form.design({**base, **nu})
        X1, off1 = form.design({**moved, **nu})
        ratio = X1 / X0
    if not (np.all(np.isfinite(ratio)) and np.allclose(off0, off1, rtol=1e-12, atol=0)):
        return False
    return bool(np.allclose(ratio, ratio[:1], rtol=1e-9, atol=0))


def make_context(form: LawForm, axes: Mapping[str, np.ndarray], y: np.ndarray, *,
                 loss: str = "sse", max_exponent: float = MAX_EXPONENT,
                 normalise: bool = True) -> Context:
    """Normalise units and (for sse) collapse repeated configurations; see the module doc."""
    raw = {a: np.asarray(axes[a], float) for a in form.axes}
    y = np.asarray(y, float)
    scales = {}
    for a, v in raw.items():
        s = float(np.exp(np.mean(np.log(v))))
        scales[a] = s if normalise and _homogeneous(form, raw, a) else 1.0
    norm = {a: v / scales[a] if scales[a] != 1.0 else v for a, v in raw.items()}
    n = y.size
    codes = np.arange(n)
    w = np.ones(n)
    within = 0.0
    if loss == "sse" and n > 1 and form.axes:
        stacked = np.stack([norm[a] for a in form.axes], axis=1)
        uniq, codes = np.unique(stacked, axis=0, return_inverse=True)
        codes = codes.ravel()
        if len(uniq) < n:
            w = np.bincount(codes).astype(float)
            mean = np.bincount(codes, weights=y) / w
            within = float(np.sum((y - mean[codes]) ** 2))
            y = mean
            norm = {a: uniq[:, i] for i, a in enumerate(form.axes)}
        else:
            codes = np.arange(n)
    return Context(form, loss, axis_values(norm), y, w, within, scales, max_exponent, codes)


def assemble(form: LawForm, nu: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Parameter vectors ``(..., p)`` in law order from nonlinear and linear values."""
    cols = {**{p: nu[..., i] for i, p in enumerate(form.exponents)},
            **{p: coef[..., i] for i, p in enumerate(form.linear)}}
    return np.stack([cols[p] for p in form.params], axis=-1)


def projected_gradient(grad: np.ndarray, theta: np.ndarray, bounds: list[tuple]) -> np.ndarray:
    """The gradient with components that push into an active bound set to zero."""
    g = grad.copy()
    for i, (lo, hi) in enumerate(bounds):
        if lo is not None and theta[i] <= lo and g[i] > 0:
            g[i] = 0.0
        if hi is not None and theta[i] >= hi and g[i] < 0:
            g[i] = 0.0
    return g


def is_stationary(ctx: Context, theta: np.ndarray, bounds: list[tuple]) -> tuple:
    """First-order check: no parameter can lower the objective noticeably by a 1% move."""
    obj, grad = losses.value_and_grad(theta, ctx.form, ctx.loss, ctx.axes, ctx.y, ctx.w)
    g = projected_gradient(grad, theta, bounds)
    decrease = np.abs(g) * 0.01 * np.maximum(np.abs(theta), 1e-2)
    floor = 1e-4 * (obj + ctx.within) + 1e-12 * float(np.sum(ctx.w * ctx.y * ctx.y))
    return bool(np.all(decrease <= floor)), g


def polish(ctx: Context, theta0: np.ndarray, bounds: list[tuple],
           w: np.ndarray | None = None, y: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """L-BFGS-B on all parameters with the analytic gradient, from ``theta0``."""
    w = ctx.w if w is None else w
    y = ctx.y if y is None else y
    lo = [b[0] if b[0] is not None else -np.inf for b in bounds]
    hi = [b[1] if b[1] is not None else np.inf for b in bounds]
    res = minimize(losses.value_and_grad, np.clip(np.asarray(theta0, float), lo, hi),
                   jac=True, args=(ctx.form, ctx.loss, ctx.axes, y, w), method="L-BFGS-B",
                   bounds=bounds, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-14})
    return np.asarray(res.x, float), float(res.fun)


def grid_points(k: int, n: int, grid: int = GRID) -> int:
    """Points per nonlinear parameter: ``grid`` for two, about as many in total for other
    counts, fewer when the data are large (the search stays linear in ``n``)."""
    if k == 0:
        return 1
    per = int(min(257, max(5, round(grid ** (2.0 / k)))))
    while per > 5 and per ** k * n > MAX_GRID_WORK:
        per -= 1 if per < 9 else max(1, per // 8)
    return per


def fit_point(ctx: Context, *, grid: int = GRID) -> PointFit:
    """Best parameters of the context's law under its loss (see the module doc)."""
    form = ctx.form
    pb = ctx.problem()
    y_min = ctx.y_min
    bounds = ctx.lbfgs_bounds(y_min)
    wp = ctx.w if ctx.loss == "sse" else ctx.w / ctx.y ** 2   # relative LS for huber
    W, Y, ymin = wp[None], ctx.y[None], np.array([y_min])
    starts = []
    if pb.k:
        points = grid_points(pb.k, ctx.y.size, grid)
        U = varpro.u_grid(pb, points)
        table = varpro.grid_table(pb, W, Y, ymin, U)[0]
        u0 = varpro.local_minima(table, U, points, STARTS + 1)
        coef, _ = varpro.project(pb, wp, ctx.y, u0, np.array(y_min))
        lo = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
        hi = np.array([b[1] if b[1] is not None else np.inf for b in bounds])
        B = len(u0)
        theta, q, _ = batched_lm(ctx, assemble(form, pb.nu(u0), coef),
                                 np.broadcast_to(ctx.w, (B, ctx.w.size)),
                                 np.broadcast_to(ctx.y, (B, ctx.y.size)),
                                 np.broadcast_to(lo, (B, lo.size)),
                                 np.broadcast_to(hi, (B, hi.size)))
        starts += list(theta[np.argsort(q)][:2])
        if ctx.loss == "huber":   # the grid's best points under the true objective
            best = U[np.argsort(table)[:64]]
            gc, _ = varpro.project(pb, wp, ctx.y, best, np.array(y_min))
            cand = assemble(form, pb.nu(best), gc)
            pred = np.stack([losses.predict(form, ctx.axes, c) for c in cand])
            obj = losses.objective("huber", pred, ctx.y, ctx.w)
            starts += list(cand[np.argsort(obj)[:STARTS]])
    else:
        coef, _ = varpro.project(pb, wp, ctx.y, np.zeros(0), np.array(y_min))
        starts.append(assemble(form, np.zeros(0), coef))
    lo = [b[0] if b[0] is not None else -np.inf for b in bounds]
    hi = [b[1] if b[1] is not None else np.inf for b in bounds]
    best_theta, best_obj = None, np.inf
    for start in starts:
        start = np.clip(start, lo, hi)
        obj0 = losses.value_and_grad(start, form, ctx.loss, ctx.axes, ctx.y, ctx.w)[0]
        theta, obj = polish(ctx, start, bounds)
        for th, ob in ((start, obj0), (theta, obj)):
            if ob < best_obj:
                best_theta, best_obj = th, ob
    converged, grad = is_stationary(ctx, best_theta, bounds)
    return PointFit(best_theta, float(best_obj + ctx.within), converged, grad)


def batched_lm(ctx: Context, theta0: np.ndarray, W: np.ndarray, Y: np.ndarray,
               lo: np.ndarray, hi: np.ndarray, *, max_iter: int = 200,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected Levenberg-Marquardt on all parameters, batched over rows of ``W``/``Y``.

    ``sse``: Gauss-Newton on ``P - Y``; ``huber``: iteratively reweighted Gauss-Newton on
    ``ln P - ln Y`` with weights ``w min(1, delta/|r|)`` (so ``J^T (w r)`` is the exact Huber
    gradient). A parameter at a bound whose gradient pushes outward is held; a step is kept
    only if it lowers the true objective (else the damping grows tenfold). Returns
    ``theta (B, p)``, the objective ``(B,)`` and a per-row ``converged`` flag.
    """
    form = ctx.form
    p = len(form.params)
    theta = np.clip(np.array(theta0, float), lo, hi)
    B = theta.shape[0]
    eye = np.eye(p)

    def evaluate(th: np.ndarray, W: np.ndarray, Y: np.ndarray, jac: bool):
        values = {**ctx.axes, **{q: th[:, i, None] for i, q in enumerate(form.params)}}
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(form.evaluate(values), W.shape)
            obj = losses.objective(ctx.loss, pred, Y, W)
            obj = np.where(np.isfinite(obj), obj, np.inf)
            if not jac:
                return obj, None, None
            J = np.broadcast_to(form.jacobian(values), W.shape + (p,))
            if ctx.loss == "sse":
                r, omega = pred - Y, W
            else:
                r = np.log(np.where(pred > 0, pred, 1.0)) - np.log(Y)
                omega = W * np.minimum(1.0, losses.HUBER_DELTA / np.maximum(np.abs(r), 1e-300))
                J = J / np.where(pred > 0, pred, 1.0)[..., None]
            Jw = J * omega[..., None]
            g = np.einsum("bnp,bn->bp", Jw, r)
            H = np.einsum("bnp,bnq->bpq", Jw, J)
        return obj, g, H

    obj, g, H = evaluate(theta, W, Y, True)
    lam = np.full(B, 1e-3)
    active = np.isfinite(obj)
    for _ in range(max_iter):
        if not active.any():
            break
        ia = np.flatnonzero(active)
        th, gi, Hi = theta[ia], g[ia], H[ia]
        held = ((th <= lo[ia]) & (gi > 0)) | ((th >= hi[ia]) & (gi < 0))
        free = ~held
        Hf = Hi * (free[:, :, None] & free[:, None, :]) + eye * held[:, :, None]
        diag = np.einsum("bii->bi", Hf)
        A = Hf + eye * (lam[ia, None] * np.maximum(diag, 1e-300))[:, :, None]
        with np.errstate(all="ignore"):
            step = -np.linalg.solve(A, np.where(free, gi, 0.0)[..., None])[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        new = np.clip(th + step, lo[ia], hi[ia])
        new_obj, _, _ = evaluate(new, W[ia], Y[ia], False)
        better = new_obj < obj[ia]
        if better.any():
            ib = ia[better]
            theta[ib] = new[better]
            o2, g2, H2 = evaluate(theta[ib], W[ib], Y[ib], True)
            small = obj[ib] - o2 <= 1e-13 * np.abs(obj[ib]) + 1e-300
            obj[ib], g[ib], H[ib] = o2, g2, H2
            lam[ib] = np.maximum(lam[ib] / 10, 1e-12)
            active[ib[small]] = False
        worse = ia[~better]
        lam[worse] *= 10
        active[worse[lam[worse] > 1e8]] = False
    return theta, obj, ~active
