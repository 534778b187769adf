"""``scaling plan`` for one model (how many visual tokens) and for training compute.

Called by :mod:`scaling.cli.plan` when ``--llm``/``--min-gain`` (token planning) or
``--train-flops`` (training planning) is given. Parses nothing itself: prints and returns
the JSON of :mod:`scaling.planner.tokens_only` and :mod:`scaling.planner.training`.
"""

from __future__ import annotations

import math
from typing import Any

from scaling.cli._common import console, print_json, si
from scaling.errors import ScalingError
from scaling.law import PAPER_LAW


def _point(p: Any) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"visual_tokens": p.visual_tokens, "predicted_error": p.predicted_error,
            "predicted_accuracy": p.predicted_accuracy, "flops": p.flops,
            "latency_s": p.latency_s, "error_ci": list(p.error_ci) if p.error_ci else None}


def plan_tokens_cli(law: Any, *, llm: str, flops: float | None, max_latency_ms: float | None,
                    gpu: str | None, target_accuracy: float | None, min_gain: float | None,
                    text_tokens: float, gen_tokens: float, encoder: str | None,
                    token_range: str | None, as_json: bool) -> None:
    from scaling.planner.problem import tokens_value
    from scaling.planner.tokens_only import TOKEN_RANGE, plan_tokens
    from scaling.units import parse_range

    lo, hi = parse_range(token_range, TOKEN_RANGE, what="--token-range", parse=tokens_value)
    rng = (int(lo), int(hi))
    law = PAPER_LAW if law is None else law
    p = plan_tokens(law, llm=llm, flops=flops, max_latency_ms=max_latency_ms, gpu=gpu,
                    target_accuracy=target_accuracy, min_gain=min_gain,
                    text_tokens=text_tokens, gen_tokens=gen_tokens, encoder=encoder,
                    token_range=rng)
    head = p.headline
    if as_json:
        print_json({"mode": "tokens", "llm": p.llm, "llm_params": p.llm_params,
                    "encoder": p.encoder,
                    "budget_flops": p.budget_flops, "max_latency_ms": p.max_latency_ms,
                    "target_accuracy": p.target_accuracy, "min_gain": p.min_gain,
                    "text_tokens": p.text_tokens, "gen_tokens": p.gen_tokens,
                    "law": {"name": law.law, "label": p.law_label},
                    "optimum": {**(_point(head) or {}), "llm": p.llm, "llm_params": p.llm_params},
                    "best_within_budget": _point(p.best),
                    "cheapest_reaching_target": _point(p.cheapest), "knee": _point(p.knee),
                    "curve": p.curve, "cost_model": "exact (the model's architecture)",
                    "warnings": list(p.warnings)})
        return
    from scaling.planner.answer import ci_level
    from scaling.units import format_params

    console.print(f"{p.llm} ({format_params(p.llm_params)} params) + {p.encoder}, law "
                  f"{p.law_label}; {p.text_tokens:g} text tokens, {p.gen_tokens:g} generated, "
                  f"tokens {p.token_range[0]}-{p.token_range[1]}", style="bold")
    rows = (("most accurate within budget", p.best), ("cheapest reaching target", p.cheapest),
            (f"knee (next doubling gains < {p.min_gain:g})" if p.min_gain else "knee", p.knee))
    for name, pt in rows:
        if pt is None:
            continue
        ci = ""
        if pt.error_ci:
            ci = (f", {ci_level(law):.0%} CI {1 - pt.error_ci[1]:.1%}-"
                  f"{1 - pt.error_ci[0]:.1%}")
        lat = "" if not math.isfinite(pt.latency_s) else f", {pt.latency_s * 1e3:.3g} ms"
        console.print(f"{name}: {pt.visual_tokens} visual tokens -> "
                      f"{pt.predicted_accuracy:.2%} predicted{ci}; {si(pt.flops, 'FLOPs')}"
                      f"{lat}")
    for w in p.warnings:
        console.print(f"note: {w}", style="yellow")


def plan_training_cli(law: Any, *, train_flops: float, requests: float | None,
                      request_tokens: float | None, as_json: bool) -> None:
    from scaling.planner.training import lifetime_sweep, optimum

    if law is None:
        raise ScalingError("--train-flops needs a law over N and D: --law FILE.law.json "
                           "(e.g. from `scaling fit ... --law chinchilla --axis D=train_tokens`)")
    if (requests is None) != (request_tokens is None):
        raise ScalingError("give --requests R and --request-tokens Q together")
    R, Q = requests or 0.0, request_tokens or 0.0
    best = optimum(law, train_flops, requests=R, request_tokens=Q)
    sweep = lifetime_sweep(law, train_flops, requests=R, request_tokens=Q) if R > 0 else []
    warnings = _range_warnings(law, best)
    if as_json:
        def row(o: Any) -> dict[str, Any]:
            return {"llm_params": o.llm_params, "train_tokens": o.train_tokens,
                    "predicted_loss": o.predicted_loss, "train_flops": o.train_flops,
                    "inference_flops": o.inference_flops, "requests": o.requests,
                    "tokens_per_param": o.tokens_per_param, "method": o.method}
        print_json({"mode": "training", "budget_flops": train_flops, "requests": R,
                    "request_tokens": Q, "law": {"name": law.law, "label": law.label},
                    "optimum": row(best), "lifetime_sweep": [row(o) for o in sweep],
                    "warnings": warnings})
        return
    from scaling.units import format_params

    what = "lifetime (training + inference)" if R else "training"
    console.print(f"{what} compute {train_flops:.3g} FLOPs, law {law.label or law.law} "
                  f"({best.method})", style="bold")
    console.print(f"optimum: {format_params(best.llm_params)} parameters trained on "
                  f"{si(best.train_tokens)} tokens ({best.tokens_per_param:.3g} tokens "
                  f"per parameter), predicted loss {best.predicted_loss:.4f}")
    if sweep:
        from rich.table import Table

        t = Table("requests R", "N (params)", "D (tokens)", "D/N", "training FLOPs",
                  "inference FLOPs", "loss", title=f"Sardana et al. 2023: {Q:g} tokens per "
                  "request, same lifetime compute", title_justify="left")
        for o in sweep:
            t.add_row(f"{o.requests:.3g}", format_params(o.llm_params), si(o.train_tokens),
                      f"{o.tokens_per_param:.3g}", f"{o.train_flops:.3g}",
                      f"{o.inference_flops:.3g}", f"{o.predicted_loss:.4f}")
        console.print(t)
    for w in warnings:
        console.print(f"note: {w}", style="yellow")


def _range_warnings(law: Any, best: Any) -> list[str]:
    out = []
    ranges = getattr(law, "axis_ranges", {}) or {}
    for axis, value in (("N", best.llm_params), ("D", best.train_tokens)):
        if axis in ranges:
            lo, hi = ranges[axis]
            v = value / law.axis_unit(axis)
            if not lo <= v <= hi:
                out.append(f"{axis} = {value:.3g} is outside the range the law was fitted on "
                           f"({lo * law.axis_unit(axis):.3g} to {hi * law.axis_unit(axis):.3g}):"
                           " extrapolation")
    return out
