"""Task mix (adaptive token budgets): one LLM, a token count per task, one average budget.

Traffic is a mix of tasks with weights ``w_t`` (``reasoning=0.7,ocr=0.3``), each with its own
fitted law ``Y_t``. One LLM of size ``N`` serves all of them, but the compressor may give each
task its own token count ``V_t``::

    minimise   sum_t w_t Y_t(N, V_t)
    subject to sum_t w_t flops(N, V_t) <= C        (the same average FLOPs per request)
               memory/latency limits for every (N, V_t), N and V_t in their ranges.

The baseline is the best *single* token count for all tasks: the ordinary optimum of the
mixture law ``sum_t w_t Y_t(N, V)`` (:func:`scaling.planner.solvers.numeric`). The gain is the
baseline's expected error minus the mix's.

Solver: on a 64-point log grid of ``N``, the token counts come from the Lagrangian -- each task
independently minimises ``Y_t(N, V) + lambda * flops(N, V) / C`` on a 256-point log grid of
``V``, with ``lambda`` bisected (in log) until the average cost meets the budget; the best
``N`` (or the single-token optimum, if better) then seeds an SLSQP polish in
``(log N, log V_1, ...)`` that is kept only when it stays feasible and improves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.planner.problem import check_law, setting
from scaling.planner.solvers import law_predictor, llm_cap, numeric
from scaling.units import parse_flops


@dataclass(frozen=True)
class MixPlan:
    """The mixed answer and its single-token baseline (sizes in parameters)."""

    budget_flops: float
    weights: dict[str, float]
    llm_params: float
    visual_tokens: dict[str, float]
    predicted_error: dict[str, float]
    expected_error: float
    flops: float                      # average FLOPs per request over the mix
    single_llm_params: float
    single_visual_tokens: float
    single_predicted_error: dict[str, float]
    single_expected_error: float
    cost_model: str
    law_labels: dict[str, str]

    @property
    def gain(self) -> float:
        """Expected error saved by per-task token counts (= accuracy points gained)."""
        return self.single_expected_error - self.expected_error

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_flops": self.budget_flops, "cost_model": self.cost_model,
            "weights": self.weights, "laws": self.law_labels,
            "mix": {"llm_params": self.llm_params, "visual_tokens": self.visual_tokens,
                    "predicted_error": self.predicted_error,
                    "expected_error": self.expected_error, "flops": self.flops},
            "single": {"llm_params": self.single_llm_params,
                       "visual_tokens": self.single_visual_tokens,
                       "predicted_error": self.single_predicted_error,
                       "expected_error": self.single_expected_error},
            "gain": self.gain,
            "relative_gain": self.gain / self.single_expected_error,
        }


def parse_mix(text: str | Mapping[str, float]) -> dict[str, float]:
    """``"reasoning=0.7,ocr=0.3"`` -> weights normalised to sum 1."""
    if isinstance(text, Mapping):
        items = list(text.items())
    else:
        items = []
        for part in (p for p in str(text).split(",") if p.strip()):
            name, eq, value = part.partition("=")
            try:
                items.append((name.strip(), float(value)))
            except ValueError:
                eq = ""
            if not eq or not name.strip():
                raise ScalingError(f"--mix must look like reasoning=0.7,ocr=0.3, got {text!r}")
    weights = dict(items)
    if len(weights) != len(items) or not weights:
        raise ScalingError(f"--mix must name each task once, got {text!r}")
    bad = {k: v for k, v in weights.items() if not np.isfinite(v) or v < 0}
    if bad or sum(weights.values()) <= 0:
        raise ScalingError(f"--mix weights must be >= 0 and not all 0, got {text!r}")
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def plan_mix(laws: Mapping[str, Any], mix: str | Mapping[str, float], *, flops: float | str,
             **options: Any) -> MixPlan:
    """Per-task token counts for one LLM under an average budget (see module doc).

    ``laws``: task -> fitted law (e.g. ``scaling.fit.load_laws`` of a grouped artifact);
    ``mix``: task weights; ``options``: those of :func:`scaling.planner.problem.setting`.
    """
    weights = parse_mix(mix)
    missing = [t for t in weights if t not in laws]
    if missing:
        raise ScalingError(f"--mix names task(s) {', '.join(missing)} that the law file lacks; "
                           f"it has {', '.join(laws) or 'none'}")
    tasks = list(weights)
    task_laws = {t: check_law(laws[t]) for t in tasks}
    C = parse_flops(flops)
    s = setting(task_laws[tasks[0]], **options)
    w = np.array([weights[t] for t in tasks])
    preds = [law_predictor(task_laws[t]) for t in tasks]

    def expected(N, V) -> np.ndarray:   # V: (T, ...) per-task tokens
        with np.errstate(all="ignore"):
            return sum(wt * np.asarray(p(N, V[i]), float) for i, (wt, p) in
                       enumerate(zip(w, preds, strict=True)))

    def mixture(N, V):
        return expected(N, np.broadcast_to(V, (len(tasks),) + np.shape(V)))

    single = numeric(mixture, s.pricer, s.limits, [C])
    if not single.feasible[0]:
        raise ScalingError(f"no configuration fits {C:.4g} FLOPs per request; raise --flops "
                           "or lower the minimum of --llm-range / --token-range")
    N1, V1 = float(single.llm_params[0]), float(single.visual_tokens[0])
    best = (float(single.predicted_error[0]), N1, np.full(len(tasks), V1))
    best = _grid_search(s, preds, w, C, best)
    best = _slsqp_refine(s, expected, w, C, best)
    Y, N, V = best

    def per_task(N, V) -> dict[str, float]:
        return {t: float(np.asarray(p(N, V[i]))) for i, (t, p) in enumerate(zip(tasks, preds,
                                                                             strict=True))}

    return MixPlan(
        budget_flops=C, weights=weights, llm_params=N,
        visual_tokens={t: float(v) for t, v in zip(tasks, V, strict=True)},
        predicted_error=per_task(N, V), expected_error=float(Y),
        flops=float(np.sum(w * s.pricer.flops(N, V))),
        single_llm_params=N1, single_visual_tokens=V1,
        single_predicted_error=per_task(N1, np.full(len(tasks), V1)),
        single_expected_error=float(single.predicted_error[0]),
        cost_model=s.pricer.cost_model,
        law_labels={t: getattr(task_laws[t], "label", "") or task_laws[t].law for t in tasks})


def _resource_ok(s, N, V) -> np.ndarray:
    if not s.limits.has_resource_limits:
        return np.ones(np.broadcast_shapes(np.shape(N), np.shape(V)), bool)
    q = s.pricer.quantities(N, V)
    with np.errstate(invalid="ignore"):
        return ((q["memory_bytes"] <= s.limits.max_memory_bytes * (1 + 1e-12))
                & (q["latency_s"] <= s.limits.max_latency_s * (1 + 1e-12)))


def _grid_search(s, preds, w, C, best):
    """Lagrangian allocation of tokens on a grid of sizes (see module doc)."""
    (n_lo, n_hi), (v_lo, v_hi) = s.limits.llm_range, s.limits.token_range
    n_top = min(n_hi, float(llm_cap(s.pricer, s.limits, v_lo, C)[0]))
    if not n_top >= n_lo:
        return best
    N = np.geomspace(n_lo, n_top, 64)[:, None]                     # (nN, 1)
    V = np.geomspace(v_lo, v_hi, 256)[None]                        # (1, nV)
    cost = np.broadcast_to(s.pricer.flops(N, V) / C, (N.size, V.size))
    ok = _resource_ok(s, N, V)
    with np.errstate(all="ignore"):
        Y = np.stack([np.where(ok, np.asarray(p(N, V), float), np.inf) for p in preds])
    Y = np.where(np.isnan(Y), np.inf, Y)                            # (T, nN, nV)
    rows = np.arange(N.size)

    def allocate(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.argmin(Y + lam[None, :, None] * cost[None], axis=2)         # (T, nN)
        return idx, np.sum(w[:, None] * cost[rows[None], idx], axis=0)

    idx0, avg0 = allocate(np.zeros(N.size))        # lambda = 0: the budget does not bind
    lo, hi = np.full(N.size, -30.0), np.full(N.size, 15.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        over = allocate(np.exp(mid))[1] > 1 + 1e-12
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    idx, avg = allocate(np.exp(hi))
    free = avg0 <= 1 + 1e-12
    idx, avg = np.where(free[None], idx0, idx), np.where(free, avg0, avg)
    err = np.sum(w[:, None] * np.take_along_axis(Y, idx[:, :, None], 2)[:, :, 0], axis=0)
    err = np.where(avg <= 1 + 1e-12, err, np.inf)
    j = int(np.argmin(err))
    if err[j] < best[0]:
        return float(err[j]), float(N[j, 0]), V[0, idx[:, j]].astype(float)
    return best


def _slsqp_refine(s, expected, w, C, best):
    """SLSQP in (log N, log V_t); kept only if feasible and better."""
    from scipy.optimize import minimize

    (n_lo, n_hi), (v_lo, v_hi) = s.limits.llm_range, s.limits.token_range
    Y0, N0, V0 = best
    x0 = np.concatenate([[np.log(N0)], np.log(V0)])
    n_top = min(n_hi, N0 * 1e6)
    bounds = [(np.log(n_lo), np.log(n_top))] + [(np.log(v_lo), np.log(v_hi))] * len(V0)
    scale = abs(Y0) or 1.0

    def unpack(x):
        return np.exp(x[0]), np.exp(x[1:])

    def objective(x):
        N, V = unpack(x)
        return float(expected(N, V)) / scale

    def budget(x):
        N, V = unpack(x)
        return 1.0 - float(np.sum(w * s.pricer.flops(N, V))) / C

    cons = [{"type": "ineq", "fun": budget}]
    if s.limits.has_resource_limits:
        def resources(x):
            N, V = unpack(x)
            q = s.pricer.quantities(N, V)
            return np.concatenate([1 - q["memory_bytes"] / s.limits.max_memory_bytes,
                                   1 - q["latency_s"] / s.limits.max_latency_s])
        cons.append({"type": "ineq", "fun": resources})
    res = minimize(objective, x0, method="SLSQP", bounds=bounds, constraints=cons,
                   options={"ftol": 1e-14, "maxiter": 200})
    x = np.clip(res.x, [b[0] for b in bounds], [b[1] for b in bounds])
    N, V = unpack(x)
    Y = float(expected(N, V))
    feasible = budget(x) >= -1e-10 and bool(np.all(_resource_ok(s, N, V)))
    if feasible and np.isfinite(Y) and Y < Y0:
        return Y, float(N), V
    return best
