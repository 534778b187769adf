"""Which grid points to measure next: expected variance reduction of the answer per unit cost.

The criterion. Let ``theta_b`` (b = 1..K) be the bootstrap draws of the current fit, ``g_b``
the answer under each draw (:mod:`scaling.design.answer`): ``log V*``, ``log N*``, the
optimum's predicted error and the indicator that the draw picks the draws' most frequent menu
entry;
``f_b(x)`` the law's prediction at an unmeasured grid point ``x``. Treating the draws as the
current uncertainty and a measurement as ``y(x) = f(x) + e``, ``e ~ N(0, sigma^2)``, the
linear-Gaussian update (the ensemble Kalman update; Evensen 2003) removes from each answer
component the variance

    dVar_k(x) = Cov(g_k, f(x))^2 / (Var f(x) + sigma^2)
              = Var g_k * corr(g_k, f(x))^2 * Var f(x) / (Var f(x) + sigma^2).

A point is worth measuring when the answer moves with its prediction (``corr``) and the
draws disagree there by more than the noise (the last factor). The score of ``x`` is the
fraction of each component's variance removed, summed over components, per unit
``run_cost`` (relative to the grid's mean run):

    score(x) = sum_k dVar_k(x) / Var g_k  /  (cost(x) / mean cost).

A batch is chosen greedily: after each pick the joint covariance of ``(g, f)`` is conditioned
on that point (``S <- S - S[:, x] S[x, :] / (S[x, x] + sigma^2)``), so the next pick is worth
what it adds to the points already chosen (a sequential D_s/c-type design; Chaloner & Verdinelli
1995). ``sigma`` is the design's ``noise`` or the fit's residual standard deviation
``sqrt(SSE / (n - p))``. Ties go to the cheaper point, then to grid order, so choices are a
deterministic function of the measurements and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.design.answer import draw_answers
from scaling.design.spec import Design

COMPONENTS = ("log V*", "log N*", "predicted error", "menu choice")
TINY = 1e-12


@dataclass(frozen=True)
class Pick:
    """One chosen grid point: its index in the design, its score and why."""

    index: int
    score: float
    why: str


def noise_sd(design: Design, fit) -> float:
    """The measurement noise: the design's ``noise``, else the fit's residual sd."""
    if design.spec.noise is not None:
        return float(design.spec.noise)
    n, p = fit.n_points, design.n_params
    sse = float(fit.validation.get("sse", np.nan))
    if n > p and np.isfinite(sse) and sse > 0:
        return float(np.sqrt(sse / (n - p)))
    return 1e-6  # an exact fit: the prediction spread alone decides


def rank(design: Design, fit, candidates: np.ndarray, k: int) -> list[Pick]:
    """The ``k`` best of ``candidates`` (design indices) for the next round (greedy batch)."""
    candidates = np.asarray(candidates, int)
    k = min(k, candidates.size)
    if k <= 0:
        return []
    d = draw_answers(design, fit)
    answer_choice = np.bincount(d.choice).argmax()
    G = np.stack([np.log(d.v_star), np.log(d.n_star), d.error,
                  (d.choice == answer_choice).astype(float)], axis=1)
    with np.errstate(all="ignore"):
        F = np.asarray(fit.predict_draws(design.llm_params[candidates] / 1e9,
                                         design.visual_tokens[candidates]), float)
    ok = np.all(np.isfinite(F), axis=1) & np.all(np.isfinite(G), axis=1)
    G, F = G[ok], F[ok]
    if G.shape[0] < 3:
        return []  # no usable spread: the caller fills the design space instead
    m = G.shape[1]
    S = np.cov(np.concatenate([G, F], axis=1), rowvar=False)
    var0 = np.diag(S)[:m].copy()
    live = var0 > TINY * np.maximum(1.0, np.abs(G).mean(axis=0) ** 2)
    sigma2 = noise_sd(design, fit) ** 2
    rel_cost = design.cost[candidates] / design.cost.mean()
    picks: list[Pick] = []
    free = np.ones(candidates.size, bool)
    for _ in range(k):
        var_f = np.diag(S)[m:]
        cov = S[:m, m:]                                      # (components, candidates)
        removed = cov ** 2 / (var_f + sigma2)                # dVar_k(x)
        frac = np.where(live[:, None], removed / np.where(live, var0, 1.0)[:, None], 0.0)
        score = frac.sum(axis=0) / rel_cost
        score = np.where(free, score, -np.inf)
        order = np.lexsort((np.arange(candidates.size), rel_cost, -score))
        j = int(order[0])
        picks.append(Pick(int(candidates[j]), float(score[j]),
                          _why(frac[:, j], var_f[j], sigma2, rel_cost[j], G.shape[0])))
        free[j] = False
        col = S[:, m + j].copy()
        S = S - np.outer(col, col) / (col[m + j] + sigma2)
    return picks


def _why(frac: np.ndarray, var_f: float, sigma2: float, rel_cost: float, draws: int) -> str:
    top = np.argsort(-frac)[:2]
    parts = [f"{100 * frac[i]:.0f}% of the variance of {COMPONENTS[i]}" for i in top
             if frac[i] >= 0.005]
    gain = (" and ".join(parts) if parts else "little (the answer is already settled)")
    return (f"expected to remove {gain}; the {draws} bootstrap fits disagree there by "
            f"sd {np.sqrt(max(var_f, 0)):.2g} vs noise {np.sqrt(sigma2):.2g}; costs "
            f"{rel_cost:.2g}x the mean run")
