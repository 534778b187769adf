"""The continuous optimum: LLM size ``N`` and visual tokens ``V`` minimising predicted error.

Problem (for each budget ``C``)::

    minimise   Y(N, V)                       (the law; N in parameters here, billions in the law)
    subject to flops(N, V) <= C,  memory(N, V) <= M,  latency(N, V) <= L,
               N in llm_range,  V in token_range.

**Closed form** (product law ``Y = a N^-alpha V^-beta + D`` with ``a, alpha >= 0``, paper cost
``2 N (Q + V)``, no memory/latency limit). On the budget line ``N = C / (2 (Q + V))``::

    Y = a (C/2)^-alpha (Q + V)^alpha V^-beta + D,
    d ln(Y - D) / d ln V = alpha V / (Q + V) - beta,

which is increasing in ``V``, so ``Y`` falls then rises with its minimum at
``V* = beta Q / (alpha - beta)`` when ``alpha > beta`` (Li et al. 2025, Sec. 3; ``Q = 0`` gives
the fewest tokens) and keeps falling when ``alpha <= beta`` (the most tokens). Range limits
clamp it: where the budget line would exceed the largest allowed ``N`` (``V < C/(2 N_hi) - Q``)
``N`` is pinned at ``N_hi`` and ``Y`` falls with ``V`` up to that edge, so
``V = clip(max(V*, C/(2 N_hi) - Q), V_lo, V_hi)``, then at most ``C/(2 N_lo) - Q`` so that ``N``
stays ``>= N_lo``; ``N`` follows from the budget (at most ``N_hi``).

**Numeric solver** (any law, either cost model, any limits). Every cost grows with ``N``, so at
a given ``V`` the feasible sizes are ``N <= N_max(V) = min(N_hi, caps from C, M, L)``. When the
law's error does not increase with ``N`` (true of every registered form with non-negative
``a/A`` and ``alpha``; checked numerically on the search box) the best size at ``V`` is
``N_max(V)`` and the problem is one-dimensional: ``f(V) = Y(N_max(V), V)``, searched on a
256-point log grid of ``V`` and refined by golden-section search in ``log V`` in the bracket
around the best grid point (64 steps, vectorised over budgets; the best point evaluated is
kept, so kinks and feasibility edges are handled). For a law whose error *rises* with ``N``
somewhere, the inner best size at each ``V`` is searched the same way over
``[N_lo, N_max(V)]`` (slower, still exact to the solver's tolerance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scaling.law import optimal_visual_tokens
from scaling.planner.pricing import Pricer

Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``predict(llm_params, visual_tokens) -> error`` with ``llm_params`` in parameters."""

INF = float("inf")
#: Visual tokens the planner may choose by default: the range of the paper's grid (1-576).
DEFAULT_TOKEN_RANGE = (1.0, 576.0)
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class Limits:
    """Everything that bounds the search apart from the FLOP budget (sizes in parameters)."""

    llm_range: tuple[float, float] = (1e8, INF)
    token_range: tuple[float, float] = DEFAULT_TOKEN_RANGE
    max_memory_bytes: float = INF
    max_latency_s: float = INF

    @property
    def has_resource_limits(self) -> bool:
        return np.isfinite(self.max_memory_bytes) or np.isfinite(self.max_latency_s)


@dataclass(frozen=True)
class Optimum:
    """Continuous optima for an array of budgets (NaN where a budget is infeasible)."""

    budget_flops: np.ndarray
    llm_params: np.ndarray
    visual_tokens: np.ndarray
    predicted_error: np.ndarray
    feasible: np.ndarray
    binding: np.ndarray  # per budget: what caps N ("budget", "llm_range", "memory", "latency")
    method: str


def law_predictor(law) -> Predict:
    """``predict(llm_params, V)`` for a FittedLaw/FitResult (whose ``N`` is in billions)."""
    return lambda N, V: law.predict(np.asarray(N, float) / 1e9, V)


def llm_cap(pricer: Pricer, limits: Limits, visual_tokens, budget) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """``N_max(V)``: the largest feasible size at ``V`` under budget ``C`` and the limits, and
    the name of the limit that sets it."""
    caps = pricer.llm_caps(visual_tokens, flops=budget, memory_bytes=limits.max_memory_bytes,
                           latency_s=limits.max_latency_s)
    names = ["llm_range", *caps]
    stack = np.stack(np.broadcast_arrays(np.asarray(limits.llm_range[1], float), *caps.values()))
    which = np.argmin(stack, axis=0)
    return np.min(stack, axis=0), np.asarray(names, dtype=object)[which]


def binding(pricer: Pricer, limits: Limits, llm_params, visual_tokens, budget,
            *, rtol: float = 1e-6) -> np.ndarray:
    """The limits that hold ``N`` where it is ("budget+memory", ...; "none" if none does)."""
    caps = pricer.llm_caps(visual_tokens, flops=budget, memory_bytes=limits.max_memory_bytes,
                           latency_s=limits.max_latency_s)
    caps = {"llm_range": np.asarray(limits.llm_range[1], float), **caps}
    N = np.asarray(llm_params, float)
    names = list(caps)
    code = sum((np.broadcast_to(c, N.shape) <= N * (1 + rtol)).astype(int) << i
               for i, c in enumerate(caps.values()))
    table = np.array(["+".join(n for i, n in enumerate(names) if k >> i & 1) or "none"
                      for k in range(1 << len(names))], dtype=object)
    return table[code]


def minimize_log1d(f: Callable[[np.ndarray], np.ndarray], lo, hi, *, n_grid: int = 256,
                   iters: int = 64, polish: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``f`` over ``x in [lo, hi]`` (positive) for a batch of problems.

    ``f`` maps ``x`` of shape ``(B, n)`` to values of the same shape (NaN counts as +inf; the
    ``b``-th row belongs to problem ``b``). Log grid, then golden-section search in ``log x``
    on the bracket around the best grid point; returns the best point evaluated and its value.
    """
    llo, lhi = np.log(np.asarray(lo, float)), np.log(np.asarray(hi, float))
    llo, lhi = np.broadcast_arrays(llo, lhi)
    B = llo.shape[0]

    x_lo, x_hi = np.exp(llo)[:, None], np.exp(lhi)[:, None]

    def F(lx: np.ndarray) -> np.ndarray:
        y = np.asarray(f(np.clip(np.exp(lx), x_lo, x_hi)), float)
        return np.where(np.isnan(y), np.inf, y)

    t = np.linspace(0.0, 1.0, n_grid)
    shared = bool(np.all(llo == llo[0]) and np.all(lhi == lhi[0]))
    rows_g = slice(0, 1) if shared else slice(None)   # one grid for all rows when they agree
    grid = llo[rows_g, None] + t[None] * (lhi - llo)[rows_g, None]
    x_grid = np.exp(grid)
    x_grid[:, 0], x_grid[:, -1] = np.asarray(lo, float).reshape(-1)[rows_g], np.asarray(
        hi, float).reshape(-1)[rows_g]
    with np.errstate(invalid="ignore"):
        fg = np.asarray(f(x_grid), float)
    fg = np.broadcast_to(np.where(np.isnan(fg), np.inf, fg), (B, n_grid))
    grid = np.broadcast_to(grid, (B, n_grid))
    i = np.argmin(fg, axis=1)
    rows = np.arange(B)
    best_x, best_f = grid[rows, i], fg[rows, i]
    a = grid[rows, np.maximum(i - 1, 0)]
    b = grid[rows, np.minimum(i + 1, n_grid - 1)]
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = F(c[:, None])[:, 0], F(d[:, None])[:, 0]
    for _ in range(iters):
        left = fc <= fd
        a, b = np.where(left, a, c), np.where(left, d, b)
        x_new = np.where(left, b - GOLDEN * (b - a), a + GOLDEN * (b - a))
        f_new = F(x_new[:, None])[:, 0]
        c, d, fc, fd = (np.where(left, x_new, d), np.where(left, c, x_new),
                        np.where(left, f_new, fd), np.where(left, fc, f_new))
        for x_, f_ in ((c, fc), (d, fd)):
            better = f_ < best_f
            best_x, best_f = np.where(better, x_, best_x), np.where(better, f_, best_f)
    if polish:
        best_x, best_f = _bisect_slope(F, best_x, best_f, np.exp(llo), np.exp(lhi))
    return np.clip(np.exp(best_x), lo, hi), best_f  # exp(log(x)) may overshoot x by 1 ulp


def _bisect_slope(F, x, fx, lo, hi, *, h: float = 1e-5, width: float = 3e-4, steps: int = 40):
    """Bisection on the sign of the central difference ``F(x+h) - F(x-h)`` near ``x``.

    At a smooth minimum this locates ``x`` to ~1e-9 (golden section stops at ~sqrt(eps) of
    the function's flatness); the result is kept only where it is not worse than ``x``, so
    kinks and edges keep the golden-section answer.
    """
    a, b = np.maximum(x - width, np.log(lo)), np.minimum(x + width, np.log(hi))
    for _ in range(steps):
        m = 0.5 * (a + b)
        with np.errstate(invalid="ignore"):
            up = F((m + h)[:, None])[:, 0] - F((m - h)[:, None])[:, 0]
        a, b = np.where(up < 0, m, a), np.where(up < 0, b, m)
    m = 0.5 * (a + b)
    fm = F(m[:, None])[:, 0]
    keep = fm <= fx + 8 * np.finfo(float).eps * np.abs(fx)
    return np.where(keep, m, x), np.where(keep, np.minimum(fm, fx), fx)


def decreasing_in_llm(predict: Predict, limits: Limits) -> bool:
    """Does the error never rise with ``N`` on the search box? (Checked on a 64 x 32 grid.)"""
    n_lo, n_hi = limits.llm_range
    n_hi = min(n_hi, 1e16)
    N = np.geomspace(max(n_lo, 1.0), max(n_hi, max(n_lo, 1.0)), 64)[:, None]
    V = np.geomspace(*limits.token_range, 32)[None]
    with np.errstate(all="ignore"):
        Y = np.asarray(predict(N, V), float)
    step = np.diff(Y, axis=0)
    return bool(np.all(~np.isfinite(step) | (step <= 1e-12 * np.abs(Y[:-1]) + 1e-300)))


def closed_form_applies(law, pricer: Pricer, limits: Limits) -> bool:
    """Product law with ``a, alpha >= 0`` under the paper cost and no memory/latency limit."""
    p = law.params
    return (law.law == "product" and pricer.cost_model == "paper"
            and not limits.has_resource_limits and p["a"] >= 0 and p["alpha"] >= 0)


def closed_form(law, pricer: Pricer, limits: Limits, budgets) -> Optimum:
    """The product-law / paper-cost optimum, vectorised over ``budgets`` (see module doc)."""
    C = np.atleast_1d(np.asarray(budgets, float))
    p = law.params
    alpha, beta = float(p["alpha"]), float(p["beta"])
    Q = pricer.prompt_tokens
    (n_lo, n_hi), (v_lo, v_hi) = limits.llm_range, limits.token_range
    v_star = optimal_visual_tokens(alpha, beta, Q)
    with np.errstate(divide="ignore"):
        v_cap = C / (2.0 * n_hi) - Q           # below it the budget line has N > N_hi
        v_floor = C / (2.0 * n_lo) - Q         # above it the budget line has N < N_lo
    V = np.minimum(np.clip(np.maximum(v_star, v_cap), v_lo, v_hi), v_floor)
    feasible = v_floor >= v_lo * (1 - 1e-12)
    N = np.minimum(n_hi, C / (2.0 * (Q + V)))
    held = binding(pricer, limits, N, V, C)
    with np.errstate(all="ignore"):
        Y = law_predictor(law)(N, V)
    nan = np.where(feasible, 1.0, np.nan)
    return Optimum(C, N * nan, V * nan, Y * nan, feasible,
                   np.where(feasible, held, "infeasible").astype(object), "closed-form")


def numeric(predict: Predict, pricer: Pricer, limits: Limits, budgets, *, n_grid: int = 256,
            iters: int = 64, monotone: bool | None = None) -> Optimum:
    """The optimum for any law and cost model, vectorised over ``budgets`` (see module doc)."""
    C = np.atleast_1d(np.asarray(budgets, float))
    n_lo = limits.llm_range[0]
    v_lo, v_hi = limits.token_range
    if monotone is None:
        monotone = decreasing_in_llm(predict, limits)
    lo, hi = np.full(C.shape, v_lo), np.full(C.shape, v_hi)

    def cap(V: np.ndarray) -> np.ndarray:
        return llm_cap(pricer, limits, V, C.reshape((-1,) + (1,) * (V.ndim - 1)))[0]

    if monotone:
        def f(V: np.ndarray) -> np.ndarray:
            N = cap(V)
            with np.errstate(all="ignore"):
                Y = np.asarray(predict(N, V), float)
            return np.where(N >= n_lo * (1 - 1e-12), Y, np.inf)

        V, Y = minimize_log1d(f, lo, hi, n_grid=n_grid, iters=iters)
        N = cap(V[:, None])[:, 0]
    else:
        V, Y, N = _numeric_nested(predict, cap, n_lo, lo, hi, n_grid, iters)
    feasible = np.isfinite(Y)
    held = binding(pricer, limits, N, V, C)
    nan = np.where(feasible, 1.0, np.nan)
    return Optimum(C, N * nan, V * nan, np.where(feasible, Y, np.nan), feasible,
                   np.where(feasible, held, "infeasible").astype(object),
                   "numeric" if monotone else "numeric (2-D)")


def _numeric_nested(predict, cap, n_lo, lo, hi, n_grid, iters):
    """Best size at each ``V`` searched too (for laws whose error can rise with ``N``)."""

    def inner(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = V.shape
        v, n_max = V.reshape(-1), cap(V).reshape(-1)
        ok = n_max >= n_lo * (1 - 1e-12)
        top = np.where(ok, np.maximum(n_max, n_lo), n_lo)

        def g(N: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                return np.asarray(predict(N, v[:, None]), float)

        N, Y = minimize_log1d(g, np.full(v.shape, n_lo), top, n_grid=48, iters=40,
                              polish=False)
        return N.reshape(shape), np.where(ok, Y, np.inf).reshape(shape)

    V, Y = minimize_log1d(lambda V: inner(V)[1], lo, hi, n_grid=min(n_grid, 96), iters=iters)
    N = inner(V[:, None])[0][:, 0]
    return V, Y, N
