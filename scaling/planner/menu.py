"""The discrete menu: the configurations a user can actually deploy, priced and ranked.

A menu is a list of LLM sizes (``--sizes 0.5B,1.8B,...`` or the members of ``--family``) and/or
a list of visual-token counts the compressor supports (``--tokens 1,4,16,...``):

- sizes and tokens: every pair;
- tokens only: each token count with the largest feasible LLM size (continuous, in ``llm_range``);
- sizes only: each size with its best feasible token count (continuous, in ``token_range``).

Each configuration gets its predicted error, FLOPs, KV cache and (with an architecture and a
GPU) memory and latency; it is feasible when FLOPs <= budget, memory <= ``max_memory`` and
latency <= ``max_latency``. Explicit menu entries are not checked against ``llm_range`` /
``token_range`` (those bound the continuous parts only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.planner.pricing import Pricer
from scaling.planner.solvers import Limits, Predict, llm_cap, minimize_log1d


@dataclass(frozen=True)
class Menu:
    """What may be chosen: sizes (parameters, with catalog names or None) and token counts."""

    sizes: np.ndarray | None = None
    names: tuple[str | None, ...] = ()
    tokens: np.ndarray | None = None


@dataclass(frozen=True)
class MenuTable:
    """Every configuration of a menu, flattened: arrays of equal length ``M``."""

    llm_params: np.ndarray
    visual_tokens: np.ndarray
    names: np.ndarray           # catalog name or None, per configuration
    predicted_error: np.ndarray
    quantities: dict[str, np.ndarray]
    violates: np.ndarray        # "" when feasible, else the first limit it breaks

    @property
    def feasible(self) -> np.ndarray:
        return self.violates == ""


def _configurations(predict: Predict, pricer: Pricer, limits: Limits, menu: Menu,
                    budget: float, target_error: float | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (size, tokens, name) of every configuration in the menu.

    The continuous axis (size for a token-only menu, tokens for a size-only menu) is chosen to
    minimise the error, or in inverse mode (``target_error``) the FLOPs among the points that
    reach the target.
    """
    if menu.sizes is not None and menu.tokens is not None:
        N, V = np.meshgrid(menu.sizes, menu.tokens, indexing="ij")
        names = np.repeat(np.asarray(list(menu.names) or [None] * len(menu.sizes), object),
                          len(menu.tokens))
        return N.ravel(), V.ravel(), names
    if menu.tokens is not None and target_error is None:   # largest feasible size per count
        V = np.asarray(menu.tokens, float)
        N = llm_cap(pricer, limits, V, budget)[0]
        N = np.where(N >= limits.llm_range[0], N, limits.llm_range[0])
        return N, V, np.full(V.shape, None, object)

    def objective(N: np.ndarray, V: np.ndarray) -> np.ndarray:
        q = pricer.quantities(N, V)
        with np.errstate(all="ignore"):
            Y = np.asarray(predict(N, V), float)
        ok = _violations(q, limits, budget) == ""
        if target_error is None:
            return np.where(ok, Y, np.inf)
        return np.where(ok & (Y <= target_error), q["flops"], np.inf)

    if menu.tokens is not None:       # inverse mode: cheapest size reaching the target
        V = np.asarray(menu.tokens, float)
        n_lo, n_hi = limits.llm_range
        N, _ = minimize_log1d(lambda N: objective(N, V[:, None]), np.full(V.shape, n_lo),
                              np.full(V.shape, min(n_hi, 1e16)), n_grid=128, iters=48)
        return N, V, np.full(V.shape, None, object)
    sizes = np.asarray(menu.sizes, float)
    v_lo, v_hi = limits.token_range
    V, _ = minimize_log1d(lambda V: objective(sizes[:, None], V), np.full(sizes.shape, v_lo),
                          np.full(sizes.shape, v_hi), n_grid=128, iters=48)
    names = np.asarray(list(menu.names) or [None] * len(sizes), object)
    return sizes, whole_tokens(lambda V: objective(sizes, V), V, v_lo, v_hi), names


def whole_tokens(objective, V: np.ndarray, v_lo: float, v_hi: float) -> np.ndarray:
    """A deployable token count per entry: the better of ``floor(V)`` and ``ceil(V)`` (within
    ``[v_lo, v_hi]``, at least 1) under ``objective``; the continuous ``V`` when neither whole
    count lies in the range."""
    lo = np.clip(np.floor(V), max(np.ceil(v_lo), 1.0), np.floor(v_hi))
    hi = np.clip(np.ceil(V), max(np.ceil(v_lo), 1.0), np.floor(v_hi))
    if np.ceil(v_lo) > np.floor(v_hi):
        return V
    return np.where(objective(hi) < objective(lo), hi, lo)


def _violations(q: dict[str, np.ndarray], limits: Limits, budget: float) -> np.ndarray:
    tol = 1 + 1e-12
    out = np.full(np.shape(q["flops"]), "", dtype=object)
    for name, value, limit in (("latency", q["latency_s"], limits.max_latency_s),
                               ("memory", q["memory_bytes"], limits.max_memory_bytes),
                               ("budget", q["flops"], budget)):
        with np.errstate(invalid="ignore"):
            out = np.where(value > limit * tol, name, out)
    return out


def price_menu(predict: Predict, pricer: Pricer, limits: Limits, menu: Menu, budget: float,
             *, target_error: float | None = None) -> MenuTable:
    """Price and predict every configuration of ``menu`` at ``budget`` FLOPs."""
    N, V, names = _configurations(predict, pricer, limits, menu, budget, target_error)
    q = pricer.quantities(N, V)
    with np.errstate(all="ignore"):
        Y = np.asarray(predict(N, V), float)
    return MenuTable(N, V, names, Y, {k: np.asarray(v) for k, v in q.items()},
                     _violations(q, limits, budget))


def rank(table: MenuTable, *, target_error: float | None = None) -> np.ndarray:
    """Indices of the feasible configurations, best first.

    Best = lowest predicted error (ties: fewer FLOPs); in inverse mode (``target_error``) the
    configurations predicted to reach the target, cheapest first (ties: lower error).
    """
    ok = np.flatnonzero(table.feasible & np.isfinite(table.predicted_error))
    err, flops = table.predicted_error[ok], table.quantities["flops"][ok]
    if target_error is None:
        return ok[np.lexsort((flops, err))]
    reach = err <= target_error
    return ok[reach][np.lexsort((err[reach], flops[reach]))]


def optimal_shares(draws: np.ndarray) -> np.ndarray:
    """How often each column is the best (lowest error) across bootstrap draws.

    ``draws``: predicted errors, shape ``(K, M)`` (draws x configurations). Returns the
    fraction of draws in which each configuration is optimal, shape ``(M,)``.
    """
    K, M = draws.shape
    best = np.argmin(np.where(np.isnan(draws), np.inf, draws), axis=1)
    return np.bincount(best, minlength=M) / K
