"""Variable projection over any number of nonlinear parameters.

A law is ``Y = offset(x; nu) + X(x; nu) @ l``: for fixed nonlinear parameters ``nu`` the
weighted least-squares problem in the linear parameters ``l``,

    min_l  sum_i w_i (Y_i - offset_i - X_i l)^2     subject to  lower <= l <= upper,

is a small convex quadratic programme solved exactly by enumerating active sets (Golub &
Pereyra 1973 for the projection; Lawson & Hanson 1974 for the bounds). The projected
objective ``f(nu)`` is tabulated on a grid in ``u`` with ``nu = lo + u^2`` (dense near the
lower bound, where scaling exponents live); its best point and other local minima are the
starts of the local search (:func:`scaling.fit.polish.batched_lm`).

Weights ``W`` carry repeated configurations (counts) and bootstrap resamples (one row of
``W`` per resample, all in one batch). Every array op is vectorised over leading batch axes;
grid products are chunked to bound memory, so the grid stays linear in the number of rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Basis = Callable[[Mapping[str, np.ndarray]], tuple[np.ndarray, np.ndarray]]
CHUNK_BYTES = 64 * 2 ** 20


@dataclass(frozen=True)
class Problem:
    """A law's structure on one data set, in the form the solvers need.

    ``axes`` (name -> ``(n,)``), the ``basis`` callable (values of axes and nonlinear
    parameters -> ``X (..., n, m)``, ``offset (..., n)``), the nonlinear parameters with their
    lower bounds ``lo`` and search limits ``u_max`` (``nu = lo + u^2``, ``u in [0, u_max]``),
    and the linear parameters' bounds (``"min_y"`` resolved per batch).
    """

    axes: Mapping[str, np.ndarray]
    basis: Basis
    nonlinear: tuple[str, ...]
    linear: tuple[str, ...]
    lo: np.ndarray
    u_max: np.ndarray
    lin_lower: np.ndarray
    lin_upper: tuple[float | str, ...]

    @property
    def k(self) -> int:
        return len(self.nonlinear)

    def nu(self, u: np.ndarray) -> np.ndarray:
        return self.lo + u * u

    def design(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X (..., n, m)`` and ``offset (..., n)`` at ``u (..., k)``."""
        nu = self.nu(u)
        values = dict(self.axes)
        for i, p in enumerate(self.nonlinear):
            values[p] = nu[..., i:i + 1]
        return self.basis(values)

    def bounds(self, y_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the linear parameters, ``(..., m)``."""
        y_min = np.asarray(y_min, float)[..., None]
        lo = np.broadcast_to(self.lin_lower, y_min.shape[:-1] + (len(self.linear),))
        hi = [y_min if h == "min_y" else np.full(y_min.shape, float(h)) for h in self.lin_upper]
        return lo, (np.concatenate(hi, axis=-1) if hi else np.zeros(y_min.shape[:-1] + (0,)))


def _solve_small(A: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``A x = r``: Cramer's rule up to 3x3, LAPACK beyond. Returns ``x, ok``."""
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
    elif m == 3:
        cof = np.stack([np.cross(A[..., 1, :], A[..., 2, :]),
                        np.cross(A[..., 2, :], A[..., 0, :]),
                        np.cross(A[..., 0, :], A[..., 1, :])], axis=-2)
        det = np.sum(A[..., 0, :] * cof[..., 0, :], axis=-1)
        safe = np.where(det == 0, 1.0, det)
        x = np.einsum("...ji,...j->...i", cof, r) / safe[..., None]
    else:
        det = np.linalg.det(A)
        eye = np.eye(m) * (det == 0)[..., None, None]
        x = np.linalg.solve(A + eye, r[..., None])[..., 0]
    scale = np.prod(np.abs(np.diagonal(A, axis1=-2, axis2=-1)), axis=-1)
    return x, np.abs(det) > 1e-12 * scale


def solve_bounded(G: np.ndarray, b: np.ndarray, yy: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``argmin_{lower <= l <= upper} yy - 2 l.b + l.G.l`` over batches.

    The optimum of a convex QP is the unconstrained minimiser on the face of its active set,
    so the best feasible face minimiser over all ``3^m`` faces is the global optimum.
    """
    m = G.shape[-1]
    lower = np.broadcast_to(lower, b.shape)
    upper = np.broadcast_to(upper, b.shape)
    states = [["free"] + (["lo"] if np.isfinite(lower[..., j]).all() else [])
              + (["hi"] if np.isfinite(upper[..., j]).all() else []) for j in range(m)]
    best_q = np.full(b.shape[:-1], np.inf)
    best_l = np.zeros_like(b)
    for pattern in itertools.product(*states):
        free = [j for j, s in enumerate(pattern) if s == "free"]
        fixed = [j for j in range(m) if j not in free]
        l = np.zeros_like(b)
        for j in fixed:
            l[..., j] = (lower if pattern[j] == "lo" else upper)[..., j]
        ok = np.ones(b.shape[:-1], bool)
        if free:
            rhs = b[..., free].copy()
            for a, i in enumerate(free):
                for j in fixed:
                    rhs[..., a] -= G[..., i, j] * l[..., j]
            x, ok = _solve_small(G[..., free, :][..., :, free], rhs)
            l[..., free] = x
            tol = 1e-10 * (1.0 + np.abs(x))
            ok &= np.all((x >= lower[..., free] - tol) & (x <= upper[..., free] + tol), axis=-1)
        q = yy.copy()
        for i in range(m):
            q -= 2.0 * l[..., i] * b[..., i] - l[..., i] * l[..., i] * G[..., i, i]
            for j in range(i + 1, m):
                q += 2.0 * l[..., i] * l[..., j] * G[..., i, j]
        better = ok & (q < best_q)
        best_q = np.where(better, q, best_q)
        best_l = np.where(better[..., None], l, best_l)
    return np.clip(best_l, lower, upper), best_q


def project(pb: Problem, W: np.ndarray, Y: np.ndarray, u: np.ndarray, y_min: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Optimal bounded linear parameters and weighted SSE at ``u (..., k)``.

    ``W``/``Y`` ``(..., n)`` broadcast against the batch. The SSE is recomputed from the
    residuals (not the normal equations) for accuracy.
    """
    X, off = pb.design(u)
    r = Y - off
    m = X.shape[-1]
    cols = [X[..., j] for j in range(m)]
    wx = [W * c for c in cols]
    G = np.empty(np.broadcast_shapes(r.shape, X.shape[:-1])[:-1] + (m, m))
    for i in range(m):
        for j in range(i, m):
            G[..., i, j] = G[..., j, i] = np.sum(wx[i] * cols[j], axis=-1)
    b = np.stack([np.sum(wx[i] * r, axis=-1) for i in range(m)], axis=-1) if m else \
        np.zeros(G.shape[:-1])
    yy = np.sum(W * r * r, axis=-1)
    lower, upper = pb.bounds(y_min)
    coef, _ = solve_bounded(G, b, yy, lower, upper)
    resid = r - sum(coef[..., j, None] * cols[j] for j in range(m))
    return coef, np.sum(W * resid * resid, axis=-1)


def u_grid(pb: Problem, points: int) -> np.ndarray:
    """The search grid, ``(points^k, k)``: ``u`` uniform on ``[0, u_max]`` per parameter."""
    axes = [np.linspace(0.0, m, points) for m in pb.u_max]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, pb.k)


def grid_table(pb: Problem, W: np.ndarray, Y: np.ndarray, y_min: np.ndarray,
               U: np.ndarray) -> np.ndarray:
    """The projected objective at every grid point of ``U (g, k)`` for each row of
    ``W``/``Y`` ``(B, n)``: ``(B, g)``.

    The normal equations of every (resample, grid point) pair come from matrix products
    (``W @ [X_i X_j]``, ``(W Y) @ X``, ...) since ``X`` does not depend on the resample; the
    grid is processed in chunks so that memory stays bounded for large ``n``.
    """
    B, n = W.shape
    WY, WYY = W * Y, np.sum(W * Y * Y, axis=1)
    lower, upper = pb.bounds(y_min)
    X0, _ = pb.design(U[:1])
    m = X0.shape[-1]
    step = max(1, int(CHUNK_BYTES // (8 * n * (m * m + m + 2))))
    table = np.empty((B, len(U)))
    for start in range(0, len(U), step):
        Uc = U[start:start + step]
        g = len(Uc)
        X, off = pb.design(Uc)                        # (g, n, m), (g, n)
        X, off = np.broadcast_to(X, (g, n, m)), np.broadcast_to(off, (g, n))
        P = (X[..., :, None] * X[..., None, :]).transpose(1, 0, 2, 3).reshape(n, -1)
        G = (W @ P).reshape(B, g, m, m)
        b = (WY @ X.transpose(1, 0, 2).reshape(n, -1)).reshape(B, g, m)
        yy = np.broadcast_to(WYY[:, None], (B, g))
        if np.any(off != 0):
            b = b - (W @ (off[..., None] * X).transpose(1, 0, 2).reshape(n, -1)).reshape(
                B, g, m)
            yy = yy - 2.0 * (WY @ off.T) + W @ (off * off).T
        _, table[:, start:start + g] = solve_bounded(G, b, yy, lower[:, None], upper[:, None])
    return table


def grid_search(pb: Problem, W: np.ndarray, Y: np.ndarray, y_min: np.ndarray,
                U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best grid point of ``U (g, k)`` for each row of ``W``/``Y`` ``(B, n)``:
    ``u (B, k)`` and the objective ``(B,)``."""
    q = grid_table(pb, W, Y, y_min, U)
    idx = np.argmin(q, axis=1)
    return U[idx], q[np.arange(len(idx)), idx]


def local_minima(q: np.ndarray, U: np.ndarray, points: int, top: int) -> np.ndarray:
    """Up to ``top`` points of the grid ``U`` that are local minima of its objective table
    ``q (g,)`` (best first): starts for a multi-start search."""
    k = U.shape[1]
    shape = (points,) * k
    Q = q.reshape(shape)
    is_min = np.isfinite(Q)
    for axis in range(k):
        for shift in (-1, 1):
            neighbour = np.roll(Q, shift, axis=axis)
            edge = [slice(None)] * k
            edge[axis] = 0 if shift == 1 else -1
            neighbour[tuple(edge)] = np.inf
            is_min &= Q <= neighbour
    idx = np.flatnonzero(is_min.ravel())
    idx = idx[np.argsort(q[idx], kind="stable")][:top]
    return U[idx]
