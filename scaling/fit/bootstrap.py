"""Seeded bootstrap of a law fit: resampling weights, batched refits, intervals.

Resampling schemes (each draw is a vector of counts ``w`` over the rows, so a refit is a
weighted fit and all ``K`` refits run as one batch):

- ``case``:   rows drawn with replacement (Efron 1979);
- ``config``: whole configurations ``(group, llm_params, visual_tokens)`` drawn with
  replacement, all their rows (e.g. repeated seeds) together: the cluster bootstrap for
  repeated measurements. With one row per configuration it equals ``case``;
- ``size``:   whole LLM sizes drawn with replacement (the coarsest; with few sizes, many
  draws are degenerate).

Draws that contain fewer than 2 distinct sizes or token counts cannot identify a law and
are dropped (and counted). For ``sse`` every refit is the exact variable-projection optimum
(grid + stencil-Newton search, batched, started from the better of the grid's best point
and the full-data estimate). For ``huber`` that search (relative least squares) only gives
starting points; each draw is then polished by L-BFGS-B on the true objective.
Intervals are percentile intervals of the draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.errors import ScalingError
from scaling.fit import varpro
from scaling.fit.polish import MAX_EXPONENT, assemble, param_bounds, polish
from scaling.fit.table import SweepData
from scaling.law import get_law, interval, optimal_visual_tokens

SCHEMES = ("case", "config", "size")
BOOT_GRID = 9


@dataclass(frozen=True)
class Bootstrap:
    """Parameter draws ``(K, p)`` (law order), the number dropped and unconverged."""

    draws: np.ndarray
    dropped: int
    unconverged: int
    scheme: str
    seed: int


def resample_weights(data: SweepData, k: int, *, scheme: str = "case",
                     seed: int = 0) -> np.ndarray:
    """Counts ``(k, n)``: how often each row enters each bootstrap draw."""
    if scheme not in SCHEMES:
        raise ScalingError(f"unknown bootstrap scheme {scheme!r}; choose one of "
                           f"{', '.join(SCHEMES)}")
    rng = np.random.default_rng(seed)
    if scheme == "case":
        labels = np.arange(data.n_points)
    elif scheme == "config":
        labels = data.cluster if data.cluster is not None else np.arange(data.n_points)
    else:
        labels = np.unique(data.llm_params, return_inverse=True)[1]
    n_units = int(labels.max()) + 1
    picks = rng.integers(0, n_units, size=(k, n_units))
    unit_counts = np.zeros((k, n_units))
    np.add.at(unit_counts, (np.arange(k)[:, None], picks), 1.0)
    return unit_counts[:, labels]


def _identifiable(data: SweepData, W: np.ndarray) -> np.ndarray:
    ok = np.ones(W.shape[0], bool)
    for values in (data.llm_params, data.visual_tokens):
        ids = np.unique(values, return_inverse=True)[1]
        present = np.zeros((W.shape[0], ids.max() + 1))
        np.add.at(present, (slice(None), ids), W)
        ok &= (present > 0).sum(axis=1) >= 2
    return ok


def run_bootstrap(data: SweepData, law: str, theta_hat: np.ndarray, k: int, *,
                  loss: str = "sse", scheme: str = "case", seed: int = 0,
                  max_exponent: float = MAX_EXPONENT) -> Bootstrap:
    """``k`` seeded refits of ``law`` (see the module doc); deterministic for a seed."""
    form = get_law(law)
    W = resample_weights(data, k, scheme=scheme, seed=seed)
    keep = _identifiable(data, W)
    W = W[keep]
    N, T, y = data.llm_params_b, data.visual_tokens, data.y
    lnN, lnT = np.log(N), np.log(T)
    y_min = np.where(W > 0, y, np.inf).min(axis=1)
    Wp = W if loss == "sse" else W / y ** 2
    unconverged = 0
    if form.exponents:
        u_max = float(np.sqrt(max_exponent))
        axis = np.linspace(0.0, u_max, BOOT_GRID)
        u_grid, q_grid, _ = varpro.grid_search(form, lnN, lnT, y, Wp, y_min, axis)
        u_hat = np.sqrt([theta_hat[form.params.index(p)] for p in form.exponents])
        _, q_hat = varpro.project(form, lnN, lnT, y, Wp, np.broadcast_to(u_hat ** 2,
                                                                        u_grid.shape), y_min)
        use_hat = q_hat <= q_grid
        start = np.where(use_hat[:, None], u_hat, u_grid)
        u, coef, _, ok = varpro.local_search(form, lnN, lnT, y, Wp, y_min, start,
                                             axis[1] / 4, u_max=u_max, max_iter=60)
        draws = assemble(form, u ** 2, coef)
        unconverged = int((~ok).sum())
    else:
        coef, _ = varpro.project(form, lnN, lnT, y, Wp, np.zeros((W.shape[0], 0)), y_min)
        draws = assemble(form, np.zeros((W.shape[0], 0)), coef)
    if loss == "huber":
        for i in range(W.shape[0]):
            bounds = param_bounds(form, float(y_min[i]), max_exponent)
            lo = [b[0] if b[0] is not None else -np.inf for b in bounds]
            hi = [b[1] if b[1] is not None else np.inf for b in bounds]
            best, best_obj = None, np.inf
            for start in (draws[i], theta_hat):
                theta, obj = polish(law, loss, np.clip(start, lo, hi), N, T, y, W[i], bounds)
                if obj < best_obj:
                    best, best_obj = theta, obj
            draws[i] = best
    return Bootstrap(draws, int((~keep).sum()), unconverged, scheme, seed)


def derived_quantities(law: str, params: dict[str, float], draws: np.ndarray | None,
                       level: float, *, text_tokens: tuple[int, ...] = (10, 50, 100),
                       ) -> dict[str, dict[str, object]]:
    """``alpha/beta`` and, for ``product``/``loglinear``, the compute-optimal token count.

    Minimising ``Y`` at fixed paper FLOPs ``2 N (Q + V)`` gives
    ``V* = beta Q / (alpha - beta)`` for both forms (Li et al. 2025, sec. 3.3); ``inf``
    (use the most tokens) when ``alpha <= beta``.
    """
    form = get_law(law)
    col = {p: i for i, p in enumerate(form.params)}

    def ratio(alpha, beta):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(beta > 0, alpha / np.where(beta > 0, beta, 1.0), np.inf)

    funcs = {"alpha/beta": ratio}
    if law in ("product", "loglinear"):
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
