"""Variable projection: exact bounded least squares for the linear parameters, batched.

For fixed exponents ``(alpha, beta)`` every law is linear in its other parameters,
``P = X(alpha, beta) @ l`` (``LawForm.basis``), so the weighted least-squares problem

    min_l  sum_i w_i (Y_i - X_i l)^2     subject to  lower <= l <= upper

is a tiny convex quadratic programme (2-3 unknowns; ``a, A, B >= 0``, ``D in [0, min Y]``).
It is solved exactly by enumerating active sets (Golub & Pereyra 1973 for the projection;
Lawson & Hanson 1974 for the bounds): the optimum is the unconstrained minimiser on the face
of its active set, so the best feasible face minimiser over all faces is the global optimum.
Everything is vectorised over leading batch axes (exponent grids x bootstrap resamples).

The exponents are then searched on a dense grid in ``u = sqrt(exponent)`` (dense near 0,
where VLM exponents live) and refined by a batched compass search (move to the best of the
8 neighbours, halve the step when the centre is best) to ~1e-13 in ``u``.
"""

from __future__ import annotations

import itertools

import numpy as np

from scaling.law import LawForm

OFFSETS = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], float)  # centre = 4


def linear_bounds(form: LawForm, y_min: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the linear parameters, ``(..., k)``; ``"min_y"`` -> ``y_min``."""
    y_min = np.asarray(y_min, float)[..., None]
    lo, hi = [], []
    for p in form.linear:
        low, high = form.bounds[p]
        lo.append(np.full(y_min.shape, float(low)))
        hi.append(y_min if high == "min_y" else np.full(y_min.shape, float(high)))
    return np.concatenate(lo, axis=-1), np.concatenate(hi, axis=-1)


def _solve_small(A: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``A x = r`` for batches of 1x1, 2x2 or 3x3 systems by Cramer's rule.

    Returns ``x`` and a mask of (numerically) non-singular systems.
    """
    m = A.shape[-1]
    if m == 1:
        det = A[..., 0, 0]
        x = r / np.where(det == 0, 1.0, det)[..., None]
    elif m == 2:
        a, b, c, d = A[..., 0, 0], A[..., 0, 1], A[..., 1, 0], A[..., 1, 1]
        det = a * d - b * c
        safe = np.where(det == 0, 1.0, det)
        x = np.stack([(d * r[..., 0] - b * r[..., 1]) / safe,
                      (a * r[..., 1] - c * r[..., 0]) / safe], axis=-1)
    else:
        cof = np.stack([np.cross(A[..., 1, :], A[..., 2, :]),
                        np.cross(A[..., 2, :], A[..., 0, :]),
                        np.cross(A[..., 0, :], A[..., 1, :])], axis=-2)  # rows of adj^T
        det = np.sum(A[..., 0, :] * cof[..., 0, :], axis=-1)
        safe = np.where(det == 0, 1.0, det)
        x = np.einsum("...ji,...j->...i", cof, r) / safe[..., None]
    scale = np.prod(np.abs(np.diagonal(A, axis1=-2, axis2=-1)), axis=-1)
    return x, np.abs(det) > 1e-12 * scale


def solve_bounded(G: np.ndarray, b: np.ndarray, yy: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``argmin_{lower <= l <= upper} yy - 2 l.b + l.G.l`` over batches.

    ``G`` ``(..., k, k)`` is ``X^T W X``, ``b`` ``(..., k)`` is ``X^T W Y``, ``yy`` is
    ``Y^T W Y``. Returns the coefficients and the objective (the weighted SSE).
    """
    k = G.shape[-1]
    lower = np.broadcast_to(lower, b.shape)
    upper = np.broadcast_to(upper, b.shape)
    states = [["free"] + (["lo"] if np.isfinite(lower[..., j]).all() else [])
              + (["hi"] if np.isfinite(upper[..., j]).all() else []) for j in range(k)]
    best_q = np.full(b.shape[:-1], np.inf)
    best_l = np.zeros_like(b)
    for pattern in itertools.product(*states):
        free = [j for j, s in enumerate(pattern) if s == "free"]
        l = np.zeros_like(b)
        for j, s in enumerate(pattern):
            if s != "free":
                l[..., j] = (lower if s == "lo" else upper)[..., j]
        ok = np.ones(b.shape[:-1], bool)
        if free:
            rhs = b[..., free] - np.einsum("...ij,...j->...i", G[..., free, :], l)
            x, ok = _solve_small(G[..., free, :][..., :, free], rhs)
            l[..., free] = x
            tol = 1e-10 * (1.0 + np.abs(x))
            ok &= np.all((x >= lower[..., free] - tol) & (x <= upper[..., free] + tol), axis=-1)
        q = yy - 2.0 * np.sum(l * b, axis=-1) + np.einsum("...i,...ij,...j->...", l, G, l)
        better = ok & (q < best_q)
        best_q = np.where(better, q, best_q)
        best_l = np.where(better[..., None], l, best_l)
    return np.clip(best_l, lower, upper), best_q


def project(form: LawForm, lnN: np.ndarray, lnV: np.ndarray, y: np.ndarray, w: np.ndarray,
            exps: np.ndarray, y_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal bounded linear parameters and weighted SSE at exponents ``exps`` ``(..., E)``.

    ``w`` ``(..., n)`` broadcasts against the batch; ``y_min`` is the bound for ``D``.
    The SSE is recomputed from the residuals (not the normal equations) for accuracy.
    """
    X = form.design(lnN, lnV, exps)
    Xw = X * w[..., None]
    G = np.swapaxes(Xw, -1, -2) @ X
    b = np.sum(Xw * y[..., None], axis=-2)
    yy = np.sum(w * y * y, axis=-1)
    lower, upper = linear_bounds(form, y_min)
    coef, _ = solve_bounded(G, b, yy, lower, upper)
    resid = y - np.einsum("...nk,...k->...n", X, coef)
    return coef, np.sum(w * resid * resid, axis=-1)


def grid_search(form: LawForm, lnN: np.ndarray, lnV: np.ndarray, y: np.ndarray,
                W: np.ndarray, y_min: np.ndarray, u_axis: np.ndarray,
                chunk: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Best grid point per row of ``W`` ``(B, n)`` over all exponent pairs of ``u_axis``.

    The normal equations of every (resample, grid point) pair come from two matrix products
    (``W @ [X_i X_j]`` and ``(W Y) @ X``) since ``X`` does not depend on the resample.
    Returns ``u`` ``(B, 2)`` and the objective ``(B,)``, plus the full objective table.
    """
    U = np.stack(np.meshgrid(u_axis, u_axis, indexing="ij"), axis=-1).reshape(-1, 2)
    X = form.design(lnN, lnV, U ** 2)                       # (G, n, k)
    g, n, k = X.shape
    P = (X[..., :, None] * X[..., None, :]).transpose(1, 0, 2, 3).reshape(n, -1)
    Xt = X.transpose(1, 0, 2).reshape(n, -1)
    lower, upper = linear_bounds(form, y_min)
    best_u, best_q, table = [], [], []
    for start in range(0, W.shape[0], chunk):
        Wc = W[start:start + chunk]
        G = (Wc @ P).reshape(-1, g, k, k)
        b = ((Wc * y) @ Xt).reshape(-1, g, k)
        yy = (Wc @ (y * y))[:, None]
        _, q = solve_bounded(G, b, yy, lower[start:start + chunk, None],
                             upper[start:start + chunk, None])
        idx = np.argmin(q, axis=1)
        best_u.append(U[idx])
        best_q.append(q[np.arange(q.shape[0]), idx])
        table.append(q)
    return np.concatenate(best_u), np.concatenate(best_q), np.concatenate(table)


def local_search(form: LawForm, lnN: np.ndarray, lnV: np.ndarray, y: np.ndarray,
                 W: np.ndarray, y_min: np.ndarray, u0: np.ndarray, step: float, *,
                 u_max: float, tol: float = 1e-10, max_iter: int = 100,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Refine ``u`` ``(B, 2)`` on the projected SSE ``f(u)``, batched over resamples.

    Each iteration evaluates ``f`` on the 3x3 stencil of spacing ``h`` around ``u``; central
    differences of the stencil give the gradient and Hessian, hence a Newton point (used
    when the Hessian is positive definite, trust radius ``8h``). The best of stencil and
    Newton point becomes the centre; ``h`` shrinks to the Newton step (fast local
    convergence) or halves when the centre stays best (compass search, always safe).
    Returns ``u``, the linear coefficients, the SSE and a per-row ``converged`` flag.
    """
    u = u0.copy()
    h = np.full(u.shape[0], step)
    active = np.ones(u.shape[0], bool)
    last = np.full(u.shape[0], np.inf)
    for _ in range(max_iter):
        if not active.any():
            break
        ia = np.flatnonzero(active)
        hs = h[ia]
        cand = np.clip(u[ia, None, :] + hs[:, None, None] * OFFSETS, -u_max, u_max)
        _, q = project(form, lnN, lnV, y, W[ia, None, :], cand ** 2, y_min[ia, None])
        g = np.stack([q[:, 7] - q[:, 1], q[:, 5] - q[:, 3]], axis=-1) / (2 * hs[:, None])
        hxx = (q[:, 7] - 2 * q[:, 4] + q[:, 1]) / hs ** 2
        hyy = (q[:, 5] - 2 * q[:, 4] + q[:, 3]) / hs ** 2
        hxy = (q[:, 8] - q[:, 6] - q[:, 2] + q[:, 0]) / (4 * hs ** 2)
        det = hxx * hyy - hxy ** 2
        pd = (hxx > 0) & (det > 0)
        safe = np.where(pd, det, 1.0)
        delta = -np.stack([hyy * g[:, 0] - hxy * g[:, 1], hxx * g[:, 1] - hxy * g[:, 0]],
                          axis=-1) / safe[:, None]
        delta = np.clip(np.where(pd[:, None], delta, 0.0), -8 * hs[:, None], 8 * hs[:, None])
        newton = np.clip(u[ia] + delta, -u_max, u_max)
        _, qn = project(form, lnN, lnV, y, W[ia], newton ** 2, y_min[ia])
        qn = np.where(pd, qn, np.inf)
        best = np.argmin(q, axis=1)
        qb = q[np.arange(ia.size), best]
        centre = q[:, 4]
        use_newton = qn <= np.minimum(qb, centre)
        move = ~use_newton & (qb < centre - 1e-15 * np.abs(centre))
        u[ia[use_newton]] = newton[use_newton]
        u[ia[move]] = cand[move, best[move]]
        step_n = np.max(np.abs(delta), axis=1)
        h[ia] = np.where(use_newton, np.clip(0.5 * step_n, 0.01 * hs, 4 * hs),
                         np.where(move, 2 * hs, 0.5 * hs))
        now = np.minimum(centre, np.minimum(qb, qn))
        stalled = (last[ia] - now <= 1e-13 * np.abs(now)) & (h[ia] < 1e-6)
        last[ia] = now
        active[ia] = (h[ia] > tol) & ~stalled
    coef, q = project(form, lnN, lnV, y, W, u ** 2, y_min)
    return u, coef, q, ~active
