"""The budget planner: which LLM size and how many visual tokens for an inference budget.

:func:`plan` answers for one budget (FLOPs per request):

- the **continuous optimum** over LLM size ``N`` and visual tokens ``V`` (closed form for the
  product law under the paper cost, else the numeric solver; :mod:`scaling.planner.solvers`);
- with a menu (``sizes``/``family`` and/or ``tokens``) the **best deployable configuration**
  and the runners-up (:mod:`scaling.planner.menu`);
- the **constraints**: memory (weights + KV cache at ``batch``), roofline latency on ``gpu``, and
  the allowed ranges of ``N`` and ``V``; an impossible request raises :class:`ScalingError`
  naming the smallest feasible budget or the binding limit;
- the **inverse** question (``target_accuracy``): the cheapest configuration predicted to reach
  it (error ``<= 1 - target_accuracy``);
- with a bootstrapped law, the **uncertainty**: an interval (at the level the law was fitted
  with, its ``ci_level``; 90% by default) on the predicted error of each
  answer, the spread of the optimal ``(N, V)`` across draws and how often each menu choice is
  the best (all vectorised over draws).

Sizes are in parameters throughout (``llm_params = 7e9``); the law sees them in billions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.law import DEFAULT_CI_LEVEL, PAPER_LAW, accuracy, interval, optimal_visual_tokens
from scaling.planner.menu import Menu, MenuTable, optimal_shares, price_menu, rank
from scaling.planner.pricing import DEFAULT_FAMILY
from scaling.planner.problem import (  # noqa: F401  (Frontier, frontier: re-exported)
    Frontier,
    Setting,
    cheapest,
    frontier,
    monotone,
    setting,
    smallest_budget,
    solve,
)
from scaling.planner.solvers import DEFAULT_TOKEN_RANGE, Optimum, llm_cap
from scaling.units import format_params, format_quantity, parse_flops, parse_params

__all__ = ["Choice", "Frontier", "Plan", "frontier", "plan"]

INF = float("inf")
#: Sizes and token counts a published law was fitted on (warn when the plan leaves them).
FIT_RANGES = {PAPER_LAW.label: ((0.5e9, 7e9), (1.0, 576.0))}
#: Draws used for the spread of per-draw optima and menu shares (percentiles need no more).
MAX_DRAWS = 4096


class Predicted:
    """What every planner answer with a ``predicted_error`` field shares (a dataclass mixin):
    the accuracy it implies and its fields as a dict (the ``--json`` payload)."""

    @property
    def predicted_accuracy(self) -> float:
        return accuracy(self.predicted_error)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["predicted_accuracy"] = self.predicted_accuracy
        return out


@dataclass(frozen=True)
class Choice(Predicted):
    """One configuration with its prediction and cost (sizes in parameters, NaN = unknown)."""

    llm_params: float
    visual_tokens: float
    predicted_error: float
    flops: float
    llm: str | None = None
    llm_params_actual: float = float("nan")
    flops_prefill: float = float("nan")
    flops_decode: float = float("nan")
    flops_vision: float = float("nan")
    kv_cache_bytes: float = float("nan")
    weight_bytes: float = float("nan")
    memory_bytes: float = float("nan")
    latency_s: float = float("nan")
    binding: str | None = None
    error_ci: tuple[float, float] | None = None
    p_optimal: float | None = None


@dataclass(frozen=True)
class Plan:
    """The planner's answer; ``to_dict()`` is the ``plan --json`` payload."""

    budget_flops: float
    cost_model: str
    cost_label: str
    law: Any
    optimum: Choice
    method: str
    text_tokens: float = 0.0
    gen_tokens: float = 0.0
    batch: int = 1
    gpu: str | None = None
    llm_range: tuple[float, float] = (0.0, INF)
    token_range: tuple[float, float] = DEFAULT_TOKEN_RANGE
    discrete: Choice | None = None
    alternatives: tuple[Choice, ...] = ()
    target_accuracy: float | None = None
    max_flops: float | None = None
    why: str = ""
    warnings: tuple[str, ...] = ()
    uncertainty: dict[str, Any] | None = None
    constraints: dict[str, float | None] = field(default_factory=dict)

    @property
    def law_label(self) -> str:
        return getattr(self.law, "label", "") or self.law.law

    @property
    def ci_level(self) -> float:
        return ci_level(self.law)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_flops": self.budget_flops,
            "cost_model": self.cost_model,
            "cost_label": self.cost_label,
            "law": {"name": self.law.law, "label": self.law_label,
                    "params": {k: float(v) for k, v in self.law.params.items()},
                    "source": getattr(self.law, "source", ""),
                    "draws": 0 if self.law.draws is None else int(len(self.law.draws))},
            "method": self.method,
            "text_tokens": self.text_tokens,
            "gen_tokens": self.gen_tokens,
            "batch": self.batch,
            "gpu": self.gpu,
            "llm_range": list(self.llm_range),
            "token_range": list(self.token_range),
            "constraints": self.constraints,
            "target_accuracy": self.target_accuracy,
            "max_flops": self.max_flops,
            "optimum": self.optimum.to_dict(),
            "discrete": None if self.discrete is None else self.discrete.to_dict(),
            "alternatives": [c.to_dict() for c in self.alternatives],
            "why": self.why,
            "warnings": list(self.warnings),
            "uncertainty": self.uncertainty,
        }


def _choice(s: Setting, N: float, V: float, Y: float, *, llm: str | None = None,
            binding: str | None = None, q: dict[str, np.ndarray] | None = None) -> Choice:
    q = s.pricer.quantities(N, V) if q is None else q
    f = {k: float(np.asarray(v)) for k, v in q.items()}
    return Choice(llm_params=float(N), visual_tokens=float(V), predicted_error=float(Y),
                  flops=f["flops"], llm=llm, llm_params_actual=f["llm_params_actual"],
                  flops_prefill=f["flops_prefill"], flops_decode=f["flops_decode"],
                  flops_vision=f["flops_vision"], kv_cache_bytes=f["kv_cache_bytes"],
                  weight_bytes=f["weight_bytes"], memory_bytes=f["memory_bytes"],
                  latency_s=f["latency_s"], binding=binding)


def ci_level(law) -> float:
    """The interval level the law was fitted with (its artifact's ``ci_level``), else 90%."""
    return float(getattr(law, "ci_level", None) or DEFAULT_CI_LEVEL)


def _with_ci(law, c: Choice) -> Choice:
    if law.draws is None:
        return c
    draws = law.predict_draws(c.llm_params / 1e9, c.visual_tokens)
    return replace(c, error_ci=interval(draws, ci_level(law)))


def _optimum_across_draws(s: Setting, budget: float) -> dict[str, Any] | None:
    """The optimal (N, V) under each bootstrap draw (log grid of 2048 token counts)."""
    if s.law.draws is None or not monotone(s):
        return None
    V = np.geomspace(*s.limits.token_range, 2048)
    N = llm_cap(s.pricer, s.limits, V, budget)[0]
    ok = N >= s.limits.llm_range[0] * (1 - 1e-12)
    if not ok.any():
        return None
    V, N = V[ok], N[ok]
    with np.errstate(all="ignore"):
        Y = np.asarray(s.law.thinned(MAX_DRAWS).predict_draws(N / 1e9, V), float)
    best = np.argmin(np.where(np.isnan(Y), np.inf, Y), axis=1)
    return {"n_draws": int(len(best)), "level": ci_level(s.law),
            "visual_tokens": {"median": float(np.median(V[best])),
                              "interval": list(interval(V[best], ci_level(s.law)))},
            "llm_params": {"median": float(np.median(N[best])),
                           "interval": list(interval(N[best], ci_level(s.law)))}}


def _menu(s: Setting, *, sizes, tokens, family: str | None) -> tuple[Menu | None, list[str]]:
    warnings: list[str] = []
    names: tuple[str | None, ...] = ()
    size_arr = None
    if sizes is not None:
        if isinstance(sizes, str):
            sizes = [x for x in sizes.split(",") if x.strip()]
        size_arr = np.unique([parse_params(x, what="--sizes") for x in sizes])  # merged, sorted
        fam = s.pricer.family
        if s.pricer.cost_model == "exact" and fam is not None:
            lo, hi = fam.hull
            out = [x for x in size_arr if x < lo * (1 - 1e-9) or x > hi * (1 + 1e-9)]
            if out:
                warnings.append(
                    f"sizes {', '.join(format_params(x) for x in out)} lie outside the "
                    f"{fam.name} family ({format_params(lo)}-{format_params(hi)}): their "
                    "exact cost is extrapolated from the nearest members")
    elif family is not None:
        fam = s.pricer.family
        size_arr, names = fam.law_params.copy(), tuple(fam.member_names())
    tok_arr = None
    if tokens is not None:
        if isinstance(tokens, str):
            tokens = [x for x in tokens.split(",") if x.strip()]
        try:
            tok_arr = np.unique(np.array([float(t) for t in tokens], float))
        except ValueError:
            raise ScalingError(f"--tokens must be numbers like 1,4,16,64, got {tokens!r}") from None
        if tok_arr.size == 0 or np.any(~np.isfinite(tok_arr) | (tok_arr < 1)):
            raise ScalingError(f"--tokens must be visual-token counts >= 1, got {tokens!r}")
    if size_arr is None and tok_arr is None:
        return None, warnings
    if size_arr is not None and size_arr.size == 0:
        raise ScalingError("--sizes is empty; give sizes like 0.5B,1.8B,4B,7B")
    return Menu(size_arr, names, tok_arr), warnings


def _why(s: Setting, opt: Choice, *, inverse: bool, discrete: Choice | None = None) -> str:
    law, p = s.law, s.law.params
    Q = s.pricer.prompt_tokens
    parts: list[str] = []
    if law.law in ("product", "loglinear"):
        alpha, beta = float(p["alpha"]), float(p["beta"])
        if alpha > beta:
            parts.append(f"alpha {alpha:.3g} > beta {beta:.3g}: parameters buy more accuracy per "
                         "FLOP than visual tokens, so the budget goes to the LLM")
            if s.pricer.cost_model == "paper":
                if Q == 0:
                    parts.append("with no text tokens every FLOP spent on tokens is taken from "
                                 "the LLM, so the fewest visual tokens win")
                else:
                    v_star = optimal_visual_tokens(alpha, beta, Q)
                    parts.append(f"the {Q:g} text tokens are paid for anyway, so tokens are "
                                 f"cheap up to V* = beta*Q/(alpha-beta) = {v_star:.3g}")
        else:
            parts.append(f"alpha {alpha:.3g} <= beta {beta:.3g}: visual tokens buy more "
                         "accuracy per FLOP than parameters, so the most visual tokens win")
    else:
        parts.append(f"the {law.law} law, optimised numerically: at the optimum, moving FLOPs "
                     "between the LLM and the visual tokens does not lower the predicted error")
    (n_lo, n_hi), (v_lo, v_hi) = s.limits.llm_range, s.limits.token_range
    if s.pricer.cost_model == "exact":
        parts.append(f"the exact cost also counts the vision encoder "
                     f"({format_quantity(opt.flops_vision, unit='FLOPs')} per image, paid "
                     "whatever V is) and attention, which moves the balance away from the "
                     "paper formula")
    held = set((opt.binding or "").split("+"))
    if "llm_range" in held or np.isclose(opt.llm_params, n_hi, rtol=1e-6):
        top = (f"the largest {s.pricer.family.name} member" if s.pricer.cost_model == "exact"
               else "the largest size allowed: the top of the menu or of --llm-range")
        parts.append(f"the LLM size is capped at {format_params(n_hi)} ({top}); the rest of the "
                     "budget goes to visual tokens")
    if "memory" in held:
        parts.append(f"the memory limit ({s.limits.max_memory_bytes / 1e9:g} GB) caps the LLM "
                     "size")
    if "latency" in held:
        parts.append(f"the latency limit ({s.limits.max_latency_s * 1e3:g} ms) caps the LLM size")
    if np.isclose(opt.visual_tokens, v_lo, rtol=1e-6):
        parts.append(f"visual tokens at the fewest allowed ({v_lo:g})")
    elif np.isclose(opt.visual_tokens, v_hi, rtol=1e-6):
        parts.append(f"visual tokens at the most allowed ({v_hi:g})")
    if np.isclose(opt.llm_params, n_lo, rtol=1e-6):
        parts.append(f"the LLM size is at the bottom of the allowed range "
                     f"({format_params(n_lo)})")
    if inverse:
        parts.append("this is the cheapest point of the optimal frontier that reaches the target")
    if discrete is not None:
        rel = ("smaller than" if discrete.llm_params < opt.llm_params * (1 - 1e-6) else
               "larger than" if discrete.llm_params > opt.llm_params * (1 + 1e-6) else "equal to")
        parts.append(f"from the menu, the best pick's LLM ({format_params(discrete.llm_params)})"
                     f" is {rel} the continuous optimum's ({format_params(opt.llm_params)}) and it "
                     f"uses {discrete.visual_tokens:.3g} visual tokens (optimum "
                     f"{opt.visual_tokens:.3g})")
    return "; ".join(parts) + "."


def _warnings(s: Setting, choices: Sequence[Choice]) -> list[str]:
    out: list[str] = []
    ranges = dict(getattr(s.law, "axis_ranges", None) or {})   # law units: N in billions
    fit = FIT_RANGES.get(getattr(s.law, "label", ""))
    if fit is not None and "N" not in ranges:
        ranges = {"N": tuple(x / 1e9 for x in fit[0]), "V": fit[1]}
    for axis, what in (("N", "sizes"), ("V", "token counts")):
        if axis not in ranges:
            continue
        lo, hi = ranges[axis]
        for c in choices:
            value = c.llm_params / 1e9 if axis == "N" else c.visual_tokens
            if value > hi * (1 + 1e-9) or value < lo * (1 - 1e-9):
                shown = (format_params(c.llm_params) + " params" if axis == "N"
                         else f"{c.visual_tokens:.3g} visual tokens")
                span = (f"{format_params(lo * 1e9)}-{format_params(hi * 1e9)}" if axis == "N"
                        else f"{lo:g}-{hi:g}")
                out.append(f"{shown} is outside the {what} the law was fitted on ({span}): "
                           "an extrapolation")
                break
    for c in choices:
        if not 0.0 <= c.predicted_error <= 1.0:
            out.append(f"the law predicts an error of {c.predicted_error:.4g} at "
                       f"{format_params(c.llm_params)} params and {c.visual_tokens:.3g} tokens, "
                       "outside [0, 1]: an extrapolation beyond what the law can say; the "
                       "accuracy shown is clipped to [0, 1]")
            break
    gpu = s.pricer.gpu
    if gpu is not None and not np.isfinite(s.limits.max_memory_bytes):
        cap = float(getattr(gpu, "memory_bytes", np.inf))
        for c in choices:
            if c.memory_bytes > cap:
                out.append(f"{c.llm or format_params(c.llm_params) + ' params'} needs "
                           f"{c.memory_bytes / 1e9:.3g} GB (weights + KV cache), more than one "
                           f"{s.pricer.gpu_name} ({cap / 1e9:.3g} GB); add --max-memory-gb "
                           f"{cap / 1e9:.3g} to require a fit")
                break
    return out


def _menu_infeasible(table: MenuTable, budget: float) -> str:
    cheapest_i = int(np.nanargmin(table.quantities["flops"]))
    c = table
    what = c.names[cheapest_i] or f"{format_params(c.llm_params[cheapest_i])} params"
    reasons = sorted({v for v in table.violates if v})
    return (f"no configuration of the menu is feasible at {budget:.4g} FLOPs (limits broken: "
            f"{', '.join(reasons)}); the cheapest is {what} with "
            f"{c.visual_tokens[cheapest_i]:g} tokens at {c.quantities['flops'][cheapest_i]:.4g} "
            "FLOPs: raise the budget or relax the limits")


def _discrete(s: Setting, menu: Menu, budget: float, target_error: float | None,
              target_accuracy: float | None, top: int) -> tuple[Choice, tuple[Choice, ...]]:
    """The best menu configuration and up to ``top`` runners-up, with CIs and P(optimal)."""
    table = price_menu(s.predict, s.pricer, s.limits, menu, budget, target_error=target_error)
    order = rank(table, target_error=target_error)
    if order.size == 0:
        if target_error is not None and table.feasible.any():
            best = float(np.nanmin(np.where(table.feasible, table.predicted_error, np.nan)))
            raise ScalingError(f"no configuration of the menu reaches accuracy "
                               f"{target_accuracy:g}; the best feasible one reaches "
                               f"{1 - best:.4g}")
        raise ScalingError(_menu_infeasible(table, budget))
    shares = None
    if s.law.draws is not None and target_error is None:
        ok = np.flatnonzero(table.feasible)
        with np.errstate(all="ignore"):
            d = np.asarray(s.law.thinned(MAX_DRAWS).predict_draws(
                table.llm_params[ok] / 1e9, table.visual_tokens[ok]), float)
        shares = dict(zip(ok.tolist(), optimal_shares(d).tolist(), strict=True))
    picked = []
    for i in order[:max(1, top + 1)]:
        c = _with_ci(s.law, _choice(s, table.llm_params[i], table.visual_tokens[i],
                                    table.predicted_error[i], llm=table.names[i],
                                    q={k: v[i] for k, v in table.quantities.items()}))
        if shares is not None:
            c = replace(c, p_optimal=shares.get(int(i), 0.0))
        picked.append(c)
    return picked[0], tuple(picked[1:])


def _uncertainty(s: Setting, optimum: Choice, discrete: Choice | None,
                 alternatives: Sequence[Choice], budget: float, inverse: bool
                 ) -> dict[str, Any] | None:
    """CIs and the optimum's spread across a bootstrapped law's draws (None without draws)."""
    if s.law.draws is None:
        return None
    out: dict[str, Any] = {
        "n_draws": int(len(s.law.draws)), "level": ci_level(s.law),
        "optimum_error_ci": list(optimum.error_ci or ()),
        "optimum_across_draws": None if inverse else _optimum_across_draws(s, budget)}
    if discrete is not None and not inverse:
        out["menu_p_optimal"] = [
            {"llm": c.llm, "llm_params": c.llm_params, "visual_tokens": c.visual_tokens,
             "p_optimal": c.p_optimal} for c in (discrete, *alternatives)]
    return out


def plan(law=None, *, flops: float | str | None = None, text_tokens: float = 0,
         gen_tokens: float = 0, cost: str = "paper", family: str | None = None,
         sizes: Sequence[float | str] | str | None = None,
         tokens: Sequence[float] | str | None = None, encoder: str | None = None,
         gpu: str | None = None, batch: int = 1, dtype: str = "bf16",
         max_memory_gb: float | None = None, max_latency_ms: float | None = None,
         llm_range=None, token_range=None, target_accuracy: float | None = None,
         law_size: str = "nominal", top: int = 5, method: str = "auto",
         catalog_menu: bool = False) -> Plan:
    """Plan one budget: see the module docstring. ``law=None`` is the paper's published law.

    ``flops`` is the budget per request (``1e13``, ``"2T"``); with ``target_accuracy`` it is an
    optional cap. With ``catalog_menu`` and no other menu or size range, the menu is the
    default catalog family (so the headline is a model one can deploy). A menu of sizes also
    bounds the continuous optimum (``llm_range`` defaults to the menu's smallest-largest).
    Returns a :class:`Plan`; raises :class:`ScalingError` when nothing is feasible.
    """
    if flops is None and target_accuracy is None:
        raise ScalingError("give a budget with --flops (e.g. 1e13 or 2T), or --target-accuracy")
    budget = INF if flops is None else parse_flops(flops)
    target_error = None
    if target_accuracy is not None:
        if not 0 < target_accuracy < 1:
            raise ScalingError(f"--target-accuracy must be between 0 and 1 (a fraction, e.g. "
                               f"0.6), got {target_accuracy!r}")
        target_error = 1.0 - float(target_accuracy)
    if catalog_menu and sizes is None and tokens is None and family is None and llm_range is None:
        family = DEFAULT_FAMILY
    options = dict(text_tokens=text_tokens, gen_tokens=gen_tokens, cost=cost, family=family,
                   encoder=encoder, gpu=gpu, batch=batch, dtype=dtype,
                   max_memory_gb=max_memory_gb, max_latency_ms=max_latency_ms,
                   token_range=token_range, law_size=law_size)
    s = setting(law, llm_range=llm_range, **options)
    menu, warnings = _menu(s, sizes=sizes, tokens=tokens, family=family)
    if llm_range is None and menu is not None and menu.sizes is not None:
        s = setting(law, llm_range=(float(menu.sizes.min()), float(menu.sizes.max())),
                    **options)
    warnings = list(s.notes) + warnings
    if dtype != "bf16" and cost != "exact" and gpu is None and max_memory_gb is None:
        warnings.append(f"--dtype {dtype} has no effect here: the paper cost counts FLOPs only; "
                        "it prices memory and latency with --cost exact or --gpu")

    if target_error is None:
        opt: Optimum = solve(s, [budget], method=method)
        if not opt.feasible[0]:
            c_min, why = smallest_budget(s)
            raise ScalingError(f"no configuration fits {budget:.4g} FLOPs per request: {why}")
    else:
        opt = cheapest(s, target_error, max_flops=budget, method=method)
    optimum = _with_ci(s.law, _choice(s, opt.llm_params[0], opt.visual_tokens[0],
                                      opt.predicted_error[0], binding=str(opt.binding[0])))
    plan_budget = budget if target_error is None else float(opt.budget_flops[0])
    discrete, alternatives = None, ()
    if menu is not None:
        discrete, alternatives = _discrete(s, menu, budget, target_error, target_accuracy, top)
    shown = [optimum] + ([discrete] if discrete is not None else [])
    return Plan(
        budget_flops=plan_budget, cost_model=s.pricer.cost_model, cost_label=s.pricer.label,
        law=s.law, optimum=optimum, method=opt.method, text_tokens=float(text_tokens),
        gen_tokens=float(gen_tokens), batch=int(batch), gpu=gpu,
        llm_range=s.limits.llm_range, token_range=s.limits.token_range, discrete=discrete,
        alternatives=alternatives, target_accuracy=target_accuracy,
        max_flops=None if flops is None or target_error is None else budget,
        why=_why(s, optimum, inverse=target_error is not None, discrete=discrete),
        warnings=tuple(warnings + _warnings(s, shown)),
        uncertainty=_uncertainty(s, optimum, discrete, alternatives, plan_budget,
                                 target_error is not None),
        constraints={"max_memory_gb": max_memory_gb, "max_latency_ms": max_latency_ms})
