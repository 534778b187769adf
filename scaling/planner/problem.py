"""Optimal (N, V, error) over many budgets, and the planner's option handling.

:func:`frontier` is the continuous optimum of :mod:`scaling.planner.solvers` for an array of budgets
(vectorised: closed form where it applies, else the numeric solver over all budgets at once);
the plots draw it. :func:`setting` turns the user's options (cost model, family, GPU, limits)
into the objects the solvers take, and :func:`cheapest` answers the inverse question: the
smallest budget whose optimum reaches a target error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.law import PAPER_LAW
from scaling.planner.pricing import Pricer, make_pricer
from scaling.planner.solvers import (
    DEFAULT_TOKEN_RANGE,
    Limits,
    Optimum,
    Predict,
    closed_form,
    closed_form_applies,
    decreasing_in_llm,
    law_predictor,
    numeric,
)
from scaling.units import format_params, parse_params, parse_range

INF = float("inf")
DEFAULT_LLM_RANGE = (1e8, INF)
METHODS = ("auto", "closed-form", "numeric")


@dataclass(frozen=True)
class Setting:
    """A law with its predictor, the pricer and the limits: what every solver needs."""

    law: Any
    predict: Predict
    pricer: Pricer
    limits: Limits
    notes: tuple[str, ...] = ()


def tokens_value(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ScalingError(f"visual tokens must be a number >= 1, got {value!r}") from None
    if not np.isfinite(v) or v < 1:
        raise ScalingError(f"visual tokens must be >= 1, got {value!r}")
    return v


def check_law(law) -> Any:
    """``law`` or the paper's published law; anything with ``law``, ``params``, ``predict``."""
    law = PAPER_LAW if law is None else law
    if not hasattr(law, "predict") or not hasattr(law, "form"):
        raise ScalingError(f"expected a fitted law (FittedLaw or FitResult), got "
                           f"{type(law).__name__}")
    form = law.form
    missing = [p for p in form.params if p not in law.params]
    if missing:
        raise ScalingError(f"law {law.law!r} is missing parameter(s) {', '.join(missing)}")
    if set(form.axes) != {"N", "V"}:
        hint = ("--train-flops C" if set(form.axes) == {"N", "D"} else "--llm MODEL")
        raise ScalingError(f"law {getattr(law, 'label', '') or law.law!r} is over "
                           f"{', '.join(form.axes)}; the (LLM size, visual tokens) planner "
                           f"needs a law over N and V: plan it with {hint}")
    return law


def setting(law=None, *, text_tokens: float = 0, gen_tokens: float = 0, cost: str = "paper",
            family: str | None = None, encoder: str | None = None, gpu: str | None = None,
            batch: int = 1, dtype: str = "bf16", max_memory_gb: float | None = None,
            max_latency_ms: float | None = None, llm_range=None, token_range=None,
            law_size: str = "nominal") -> Setting:
    """Validate the planner's options and build the :class:`Setting`.

    ``llm_range`` (parameters, numbers or ``"0.5B"``; ``"0.5B:72B"`` as one string) defaults to
    ``[1e8, inf)`` under the paper cost and to the family's hull under the exact cost (which is
    also the most it may span there). ``token_range`` defaults to ``[1, 576]``. Memory limits
    are in GB of 1e9 bytes, latency in milliseconds (roofline on ``gpu``).
    """
    law = check_law(law)
    for what, value in (("max_memory_gb", max_memory_gb), ("max_latency_ms", max_latency_ms)):
        if value is not None and (not np.isfinite(value) or value <= 0):
            raise ScalingError(f"{what} must be a positive number, got {value!r}")
    if max_latency_ms is not None and gpu is None:
        raise ScalingError("--max-latency-ms needs --gpu NAME (latency is the roofline time "
                           "on that GPU)")
    pricer = make_pricer(cost=cost, text_tokens=text_tokens, gen_tokens=gen_tokens, batch=batch,
                         dtype=dtype, family=family, encoder=encoder, gpu=gpu, law_size=law_size,
                         need_architecture=max_memory_gb is not None)
    notes = list(pricer.notes)
    llm = parse_range(llm_range, DEFAULT_LLM_RANGE, what="llm_range", parse=parse_params)
    if cost == "exact":
        h_lo, h_hi = pricer.family.hull
        if llm_range is None:
            llm = (h_lo, h_hi)
        elif llm[1] < h_lo or llm[0] > h_hi:
            raise ScalingError(
                f"llm_range {format_params(llm[0])}-{format_params(llm[1])} does not meet "
                f"the {pricer.family.name} family ({format_params(h_lo)}-"
                f"{format_params(h_hi)}), which the exact cost model needs")
        else:
            llm = (max(llm[0], h_lo), min(llm[1], h_hi))
    if llm[0] <= 0:
        raise ScalingError(f"llm_range must start above 0, got {llm[0]:g}")
    toks = parse_range(token_range, DEFAULT_TOKEN_RANGE, what="token_range", parse=tokens_value)
    limits = Limits(llm_range=llm, token_range=toks,
                    max_memory_bytes=INF if max_memory_gb is None else max_memory_gb * 1e9,
                    max_latency_s=INF if max_latency_ms is None else max_latency_ms / 1e3)
    return Setting(law, law_predictor(law), pricer, limits, tuple(notes))


def solve(s: Setting, budgets, *, method: str = "auto") -> Optimum:
    """Continuous optima at ``budgets`` (closed form when it applies and ``method`` allows)."""
    if method not in METHODS:
        raise ScalingError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    applies = closed_form_applies(s.law, s.pricer, s.limits)
    if method == "closed-form" and not applies:
        raise ScalingError("the closed form needs the product law, the paper cost and no "
                           "memory/latency limit; use method='numeric'")
    if applies and method != "numeric":
        return closed_form(s.law, s.pricer, s.limits, budgets)
    return numeric(s.predict, s.pricer, s.limits, budgets)


def smallest_budget(s: Setting) -> tuple[float, str]:
    """The smallest feasible budget and a sentence on why nothing smaller works.

    Every cost grows with ``N`` and ``V``, so it is the cost of (smallest size, fewest tokens),
    provided that point meets the memory and latency limits; otherwise no budget helps and the
    sentence names the limit.
    """
    (n_lo, _), (v_lo, _) = s.limits.llm_range, s.limits.token_range
    q = s.pricer.quantities(n_lo, v_lo)
    where = f"N = {format_params(n_lo)}, V = {v_lo:g}"
    for name, value, limit, unit, scale, flag in (
            ("memory", q["memory_bytes"], s.limits.max_memory_bytes, "GB", 1e9, "--max-memory-gb"),
            ("latency", q["latency_s"], s.limits.max_latency_s, "ms", 1e-3, "--max-latency-ms")):
        if float(value) > limit:
            return INF, (f"{flag} {limit / scale:g} is below the smallest configuration's "
                         f"{name} ({float(value) / scale:.3g} {unit} at {where}); raise it or "
                         "lower the minimum of --llm-range / --token-range")
    c_min = float(q["flops"])
    return c_min, (f"the smallest feasible budget is {c_min:.4g} FLOPs ({where}, the minimum "
                   "of --llm-range / --token-range)")


def cheapest(s: Setting, target_error: float, *, max_flops: float = INF,
             method: str = "auto") -> Optimum:
    """The smallest budget whose optimum is predicted to reach ``target_error``, and that optimum.

    The optimal error never rises with the budget, so the budget is bracketed on a log grid of
    64 budgets and the bracket narrowed three more times (4 vectorised solves, ~1e-7 relative).
    """
    c_min, why = smallest_budget(s)
    if not np.isfinite(c_min):
        raise ScalingError(f"no configuration is feasible: {why}")
    (_, n_hi), (_, v_hi) = s.limits.llm_range, s.limits.token_range
    c_top = float(s.pricer.flops(n_hi, v_hi)) if np.isfinite(n_hi) else c_min * 1e12
    c_top = min(max(c_top, c_min), max_flops)
    while True:
        grid = np.geomspace(c_min, c_top, 64)
        opt = solve(s, grid, method=method)
        reach = opt.feasible & (opt.predicted_error <= target_error)
        if reach.any() or c_top >= min(max_flops, 1e40) or np.isfinite(n_hi):
            break
        c_top = min(c_top * 1e12, max_flops, 1e40)
    if not reach.any():
        best = int(np.nanargmin(np.where(opt.feasible, opt.predicted_error, np.nan)))
        cap = (f" within --flops {max_flops:.4g}" if np.isfinite(max_flops)
               and c_top >= max_flops else "")
        raise ScalingError(
            f"target accuracy {1 - target_error:.4g} is out of reach{cap}: the best predicted "
            f"accuracy is {1 - opt.predicted_error[best]:.4g} (N = "
            f"{format_params(opt.llm_params[best])}, V = "
            f"{opt.visual_tokens[best]:.3g}); lower --target-accuracy"
            + ("" if cap else " or widen --llm-range / --token-range"))
    for _ in range(3):
        i = int(np.argmax(reach))
        if i == 0:
            break
        grid = np.geomspace(grid[i - 1], grid[i], 64)
        opt = solve(s, grid, method=method)
        reach = opt.feasible & (opt.predicted_error <= target_error)
        reach[-1] = True   # the bracket's top reached the target before
    i = int(np.argmax(reach))
    return solve(s, grid[i:i + 1], method=method)


@dataclass(frozen=True)
class Frontier(Optimum):
    """The optimum per budget (arrays aligned with ``budget_flops``; NaN = infeasible),
    labelled with its cost model and law."""

    cost_model: str = ""
    law_label: str = ""


def frontier(law=None, budgets: Sequence[float] | np.ndarray = (), *, text_tokens: float = 0,
             cost: str = "paper", method: str = "auto", **options: Any) -> Frontier:
    """The optimal ``(llm_params, visual_tokens, predicted_error)`` at each budget (vectorised).

    ``options`` are those of :func:`setting` (``gen_tokens``, ``family``, ``gpu``,
    ``max_memory_gb``, ``llm_range``, ...). Infeasible budgets give NaN, not an error.
    """
    C = np.asarray(budgets, float).reshape(-1)
    if C.size == 0 or np.any(~np.isfinite(C) | (C <= 0)):
        raise ScalingError("budgets must be a non-empty array of positive finite FLOPs")
    s = setting(law, text_tokens=text_tokens, cost=cost, **options)
    opt = solve(s, C, method=method)
    return Frontier(**vars(opt), cost_model=cost,
                    law_label=getattr(s.law, "label", "") or s.law.law)


def monotone(s: Setting) -> bool:
    """Whether the numeric solver may take the largest feasible size (see optimum module)."""
    return decreasing_in_llm(s.predict, s.limits)
