"""Seeded bootstrap of a law fit: resampling weights, batched refits, intervals.

Resampling schemes (each draw is a vector of counts ``w`` over the rows, so a refit is a
weighted fit and all ``K`` refits run as one batch):

- ``case``:   rows drawn with replacement (Efron 1979);
- ``config``: whole configurations (group and axis values) drawn with replacement, all their
  rows (e.g. repeated seeds) together: the cluster bootstrap for repeated measurements. With
  one row per configuration it equals ``case``;
- ``size``:   whole model sizes (values of ``N``, else of the law's first axis) drawn with
  replacement (the coarsest; with few sizes, many draws are degenerate).

Draws that contain fewer than 2 distinct values of an axis, or fewer distinct points than
the law has parameters, cannot identify it and are dropped (and counted). For ``sse`` every
refit is a batched Levenberg-Marquardt search started from the full-data estimate and, where
the best point of a variable-projection grid search lies in another cell, from that point
too, the better kept
(``tests/test_fit.py`` checks every draw of the paper's 1,000 against an independent
multi-start). For ``huber`` the search is the same iteratively reweighted
Levenberg-Marquardt on log residuals, from the full-data estimate and from each draw's
relative least-squares optimum. Intervals are percentile intervals of the draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scaling.errors import ScalingError
from scaling.fit import varpro
from scaling.fit.polish import Context, assemble, batched_lm
from scaling.fit.table import SweepData
from scaling.law import LawForm, interval, optimal_visual_tokens

SCHEMES = ("case", "config", "size")
#: Grid points per nonlinear parameter of each refit's search (by their number).
BOOT_GRID = {1: 33, 2: 9, 3: 5}
MAX_DRAWS = 100_000
MAX_CELLS = 50_000_000          # draws x rows held in memory at once
MAX_SEED = 2 ** 63 - 1


@dataclass(frozen=True)
class Bootstrap:
    """Parameter draws ``(K, p)`` (law order, context units), dropped and unconverged."""

    draws: np.ndarray
    dropped: int
    unconverged: int
    scheme: str
    seed: int


def check_settings(k: int, n_rows: int, seed: int, scheme: str) -> None:
    """Refuse draw counts, seeds and schemes that cannot work (one clear line each)."""
    if scheme not in SCHEMES:
        raise ScalingError(f"unknown bootstrap scheme {scheme!r}; choose one of "
                           f"{', '.join(SCHEMES)}")
    if isinstance(k, bool) or int(k) != k or k < 0:
        raise ScalingError(f"--bootstrap must be a whole number >= 0, got {k!r}")
    if k > MAX_DRAWS or k * n_rows > MAX_CELLS:
        most = min(MAX_DRAWS, MAX_CELLS // max(n_rows, 1))
        raise ScalingError(f"--bootstrap {int(k)} is too many for {n_rows} rows: at most "
                           f"{most} draws (K x rows <= {MAX_CELLS:.0e} and K <= {MAX_DRAWS}); "
                           "1000 is plenty for 90% intervals")
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed <= MAX_SEED:
        raise ScalingError(f"--seed must be a whole number in [0, 2^63 - 1], got {seed!r}")


def size_labels(data: SweepData, form: LawForm) -> np.ndarray:
    axis = "N" if "N" in form.axes else form.axes[0]
    return np.unique(data.axis(axis), return_inverse=True)[1].ravel()


def resample_weights(data: SweepData, k: int, *, scheme: str = "case", seed: int = 0,
                     form: LawForm | None = None) -> np.ndarray:
    """Counts ``(k, n)``: how often each row enters each bootstrap draw."""
    check_settings(k, data.n_points, seed, scheme)
    rng = np.random.default_rng(seed)
    if scheme == "case":
        labels = np.arange(data.n_points)
    elif scheme == "config":
        labels = data.cluster if data.cluster is not None else np.arange(data.n_points)
    else:
        labels = (size_labels(data, form) if form is not None else
                  np.unique(data.axis("N"), return_inverse=True)[1].ravel())
    n_units = int(labels.max()) + 1
    picks = rng.integers(0, n_units, size=(k, n_units))
    unit_counts = np.zeros((k, n_units))
    np.add.at(unit_counts, (np.arange(k)[:, None], picks), 1.0)
    return unit_counts[:, labels]


def _identifiable(ctx: Context, Wc: np.ndarray) -> np.ndarray:
    present = Wc > 0
    ok = present.sum(axis=1) >= len(ctx.form.params)
    for a in ctx.form.axes:
        ids = np.unique(ctx.axes[a], return_inverse=True)[1].ravel()
        seen = np.zeros((Wc.shape[0], ids.max() + 1))
        np.add.at(seen, (slice(None), ids), present)
        ok &= (seen > 0).sum(axis=1) >= 2
    return ok


def _to_points(ctx: Context, W: np.ndarray, y_rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Row weights ``(K, rows)`` -> point weights and per-draw means ``(K, points)``."""
    n_pts = ctx.y.size
    if ctx.codes.size == n_pts and np.array_equal(ctx.codes, np.arange(n_pts)):
        return W, np.broadcast_to(ctx.y, W.shape)
    M = np.zeros((ctx.codes.size, n_pts))
    M[np.arange(ctx.codes.size), ctx.codes] = 1.0
    Wc = W @ M
    S = (W * y_rows) @ M
    with np.errstate(invalid="ignore", divide="ignore"):
        Yc = np.where(Wc > 0, S / np.where(Wc > 0, Wc, 1.0), ctx.y)
    return Wc, Yc


def run_bootstrap(ctx: Context, data: SweepData, theta_hat: np.ndarray, k: int, *,
                  scheme: str = "case", seed: int = 0) -> Bootstrap:
    """``k`` seeded refits (see the module doc); deterministic for a seed.

    ``theta_hat`` and the returned draws are in the context's (normalised) units.
    """
    form = ctx.form
    W_rows = resample_weights(data, k, scheme=scheme, seed=seed, form=form)
    Wc, Yc = _to_points(ctx, W_rows, data.y)
    keep = _identifiable(ctx, Wc)
    Wc, Yc = Wc[keep], Yc[keep]
    B = Wc.shape[0]
    if B == 0:
        return Bootstrap(np.zeros((0, len(form.params))), int((~keep).sum()), 0, scheme, seed)
    y_min = np.where(Wc > 0, Yc, np.inf).min(axis=1)
    Wp = Wc if ctx.loss == "sse" else Wc / Yc ** 2
    pb = ctx.problem()
    lo_hi = [ctx.lbfgs_bounds(float(m)) for m in y_min]
    lo = np.array([[b[0] if b[0] is not None else -np.inf for b in row] for row in lo_hi])
    hi = np.array([[b[1] if b[1] is not None else np.inf for b in row] for row in lo_hi])
    # 1. every draw: Levenberg-Marquardt from the full-data estimate (its basin)
    draws, obj, ok = batched_lm(ctx, np.broadcast_to(theta_hat, (B, len(form.params))),
                                Wc, Yc, lo, hi)
    # 2. other basins: Levenberg-Marquardt from the grid's best point (exact linear
    #    parameters there) where it lies in another cell than the estimate (sse), or from the
    #    relative least-squares optimum of every draw (huber); the better answer is kept
    if pb.k or ctx.loss == "huber":
        rows = np.arange(B)
        if pb.k:
            points = BOOT_GRID.get(pb.k, 3)
            U = varpro.u_grid(pb, points)
            u_grid, _ = varpro.grid_search(pb, Wp, Yc, y_min, U)
            nu_hat = np.array([theta_hat[form.params.index(p)] for p in form.exponents])
            u_hat = np.sqrt(np.clip(nu_hat - pb.lo, 0.0, None))
            spacing = pb.u_max / max(points - 1, 1)
            if ctx.loss == "sse":
                rows = np.flatnonzero(np.any(np.abs(u_grid - u_hat) > spacing * (1 + 1e-9),
                                             axis=1))
            coef, _ = varpro.project(pb, Wp[rows], Yc[rows], u_grid[rows], y_min[rows])
            other = assemble(form, pb.nu(u_grid[rows]), coef)
        else:
            coef, _ = varpro.project(pb, Wp, Yc, np.zeros((B, 0)), y_min)
            other = assemble(form, np.zeros((B, 0)), coef)
        if rows.size:
            th2, obj2, ok2 = batched_lm(ctx, other, Wc[rows], Yc[rows], lo[rows], hi[rows])
            better = obj2 < obj[rows]
            draws[rows[better]], obj[rows[better]] = th2[better], obj2[better]
            ok[rows[better]] = ok2[better]
    unconverged = int((~ok).sum())
    return Bootstrap(draws, int((~keep).sum()), unconverged, scheme, seed)


def derived_quantities(form: LawForm, params: Mapping[str, float], draws: np.ndarray | None,
                       level: float, *, text_tokens: tuple[int, ...] = (10, 50, 100),
                       ) -> dict[str, dict[str, object]]:
    """Quantities that answer questions, with intervals from the draws.

    - laws over ``N`` and ``V`` with exponents ``alpha``, ``beta``: ``alpha/beta`` and, for
      ``product``/``loglinear``, the compute-optimal token count ``V* = beta Q / (alpha -
      beta)`` at fixed paper FLOPs ``2 N (Q + V)`` (Li et al. 2025, sec. 3.3; ``inf`` when
      ``alpha <= beta``);
    - ``chinchilla``: the exponents of the compute-optimal split, ``N* ~ C^a`` with
      ``a = beta/(alpha+beta)`` and ``D* ~ C^b`` with ``b = alpha/(alpha+beta)``
      (Hoffmann et al. 2022, approach 3).
    """
    col = {p: i for i, p in enumerate(form.params)}
    if not {"alpha", "beta"} <= set(col):
        return {}

    def ratio(alpha, beta):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(beta > 0, alpha / np.where(beta > 0, beta, 1.0), np.inf)

    def share(x, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x + y > 0, x / np.where(x + y > 0, x + y, 1.0), np.nan)

    funcs = {}
    if form.name == "chinchilla":
        funcs["a (N* ~ C^a)"] = lambda a, b: share(b, a)
        funcs["b (D* ~ C^b)"] = lambda a, b: share(a, b)
    elif set(form.axes) == {"N", "V"}:
        funcs["alpha/beta"] = ratio
        if form.name in ("product", "loglinear"):
            for q in text_tokens:
                funcs[f"V*(Q={q})"] = lambda a, b, q=q: optimal_visual_tokens(a, b, q)
    out: dict[str, dict[str, object]] = {}
    for name, fn in funcs.items():
        entry: dict[str, object] = {"value": float(fn(np.float64(params["alpha"]),
                                                      np.float64(params["beta"])))}
        if draws is not None and len(draws):
            entry["ci"] = list(interval(fn(draws[:, col["alpha"]], draws[:, col["beta"]]),
                                        level))
        out[name] = entry
    return out
