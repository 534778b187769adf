"""One model, how many visual tokens? Token planning with a law over ``V`` (N fixed).

For a law with no ``N`` axis (``tokens``: ``Y = B V^-beta + E``, ``tokens-loglinear``, a
formula over ``V``), or a two-axis law with ``N`` fixed by the chosen model, the error is a
curve ``Y(V)`` over whole token counts ``V`` in the token range. Each ``V`` is priced with the
model's real architecture (:func:`scaling.cost.flops.inference_cost`: vision encoder (default
CLIP ViT-L/14-336, the paper's) + LLM prefill + decode, exact attention pairs; roofline
latency on a GPU). Three answers:

- **best within a budget**: the most accurate ``V`` whose FLOPs per request fit ``--flops``
  and whose latency fits ``--max-latency-ms``;
- **cheapest reaching a target**: the smallest ``V`` with predicted accuracy
  ``>= --target-accuracy`` (FLOPs grow with ``V``, so the smallest is the cheapest);
- **the knee** (``--min-gain g``): the smallest ``V`` whose next doubling gains less than
  ``g`` accuracy, ``Y(V) - Y(2V) < g``.

Predictions outside the metric's range (an error below 0 or, for accuracies, above 1) are
extrapolations: such ``V`` are never given as answers, and the plan says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.law import interval
from scaling.planner.answer import Predicted

TOKEN_RANGE = (1, 2880)
DEFAULT_MIN_GAIN = 0.005


@dataclass(frozen=True)
class TokenPoint(Predicted):
    """One token count with its prediction and cost (NaN when unknown)."""

    visual_tokens: int
    predicted_error: float
    flops: float
    latency_s: float
    error_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class TokenPlan:
    """The answers of :func:`plan_tokens` (``None`` where a question was not asked)."""

    llm: str
    llm_params: float
    encoder: str
    law_label: str
    text_tokens: float
    gen_tokens: float
    gpu: str | None
    token_range: tuple[int, int]
    budget_flops: float | None
    max_latency_ms: float | None
    target_accuracy: float | None
    min_gain: float | None
    best: TokenPoint | None
    cheapest: TokenPoint | None
    knee: TokenPoint | None
    curve: dict[str, list[float]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def headline(self) -> TokenPoint | None:
        """The answer to show first: budget, then target, then knee."""
        return self.best or self.cheapest or self.knee


def _metric_range(law: Any) -> tuple[float, float]:
    metric = str(getattr(law, "metric", "") or "")
    return (0.0, 1.0) if metric.startswith("1 - ") or not metric else (0.0, math.inf)


def _law_values(law: Any, V: np.ndarray, n_params: float) -> dict[str, np.ndarray]:
    axes = tuple(law.axis_names)
    extra = set(axes) - {"N", "V"}
    if "V" not in axes or extra:
        raise ScalingError(f"token planning needs a law over V (visual tokens), optionally N; "
                           f"law {law.label or law.law!r} has axes {', '.join(axes)}")
    values = {"V": V / law.axis_unit("V")}
    if "N" in axes:
        values["N"] = np.full_like(V, n_params / law.axis_unit("N"))
    return values


def plan_tokens(law: Any, *, llm: str, flops: float | None = None,
                max_latency_ms: float | None = None, gpu: str | None = None,
                target_accuracy: float | None = None, min_gain: float | None = None,
                text_tokens: float = 50, gen_tokens: float = 0, encoder: str | None = None,
                token_range: tuple[int, int] = TOKEN_RANGE, level: float | None = None,
                ) -> TokenPlan:
    """Answer the token questions for model ``llm`` (see the module doc). Intervals are at
    ``level``, by default the law's own ``ci_level`` (as in :func:`scaling.plan`)."""
    from scaling.cost.catalog import get_llm, nominal_params
    from scaling.cost.flops import inference_cost
    from scaling.planner.answer import ci_level
    from scaling.planner.pricing import DEFAULT_ENCODER

    lo, hi = (int(token_range[0]), int(token_range[1]))
    if not 1 <= lo < hi or hi > 1_000_000:
        raise ScalingError(f"token range must satisfy 1 <= low < high <= 1e6, got {lo}:{hi}")
    if target_accuracy is not None and not 0 < target_accuracy < 1:
        raise ScalingError(f"--target-accuracy must be a fraction in (0, 1), got "
                           f"{target_accuracy!r}")
    if min_gain is not None and not (math.isfinite(min_gain) and min_gain > 0):
        raise ScalingError(f"--min-gain must be > 0 (an accuracy difference such as 0.005), "
                           f"got {min_gain!r}")
    if max_latency_ms is not None and gpu is None:
        raise ScalingError("--max-latency-ms needs --gpu NAME to price latency")
    if flops is None and max_latency_ms is None and target_accuracy is None and min_gain is None:
        min_gain = DEFAULT_MIN_GAIN
    spec = get_llm(llm)
    n_params = float(nominal_params(spec) or spec.params)
    V = np.arange(lo, hi + 1, dtype=float)
    with np.errstate(all="ignore"):
        Y = np.asarray(law.evaluate(_law_values(law, V, n_params)), float)
    encoder = encoder or DEFAULT_ENCODER
    cost = inference_cost(spec, encoder=encoder, visual_tokens=V, text_tokens=text_tokens,
                          gen_tokens=gen_tokens, gpu=gpu)
    F = np.asarray(cost.flops_total, float)
    lat = np.asarray(cost.latency_s_total, float) if gpu is not None else np.full_like(V, np.nan)
    y_lo, y_hi = _metric_range(law)
    valid = np.isfinite(Y) & (Y >= y_lo) & (Y <= y_hi)
    warnings: list[str] = []
    if not valid.all():
        bad = V[~valid]
        warnings.append(f"the law predicts an error outside [{y_lo:g}, {y_hi:g}] for "
                        f"{bad.size} token counts ({bad.min():g} to {bad.max():g}): "
                        "extrapolation; those counts are never given as answers")
    draws = None
    if getattr(law, "draws", None) is not None:
        with np.errstate(all="ignore"):
            draws = np.asarray(law.evaluate_draws(_law_values(law, V, n_params)), float)

    def point(i: int | None) -> TokenPoint | None:
        if i is None:
            return None
        ci = None
        if draws is not None:
            lo_hi = interval(draws[:, i][np.isfinite(draws[:, i])],
                             ci_level(law) if level is None else level)
            ci = None if math.isnan(lo_hi[0]) else lo_hi
        return TokenPoint(int(V[i]), float(Y[i]), float(F[i]), float(lat[i]), ci)

    best = cheapest = knee = None
    budget = None if flops is None else float(flops)
    if budget is not None or max_latency_ms is not None:
        ok = valid & (F <= (budget if budget is not None else np.inf))
        if max_latency_ms is not None:
            ok &= lat * 1e3 <= max_latency_ms
        if not ok.any():
            what = []
            if budget is not None:
                what.append(f"{budget:.3g} FLOPs (V={lo} costs {F[0]:.3g})")
            if max_latency_ms is not None:
                what.append(f"{max_latency_ms:g} ms (V={lo} takes {lat[0] * 1e3:.3g} ms)")
            raise ScalingError(f"no token count in {lo}:{hi} fits {' and '.join(what)} with "
                               f"{llm}; raise the budget or pick a smaller model")
        idx = np.flatnonzero(ok)
        best = point(int(idx[np.argmin(Y[idx])]))
    if target_accuracy is not None:
        reach = valid & (1.0 - Y >= target_accuracy)
        if budget is not None:
            reach &= F <= budget
        if reach.any():
            cheapest = point(int(np.flatnonzero(reach)[0]))
        else:
            top = float(np.nanmax(np.where(valid, 1.0 - Y, np.nan))) if valid.any() else math.nan
            raise ScalingError(f"no token count in {lo}:{hi} reaches accuracy "
                               f"{target_accuracy:g} with {llm}; the law's best there is "
                               f"{top:.4g}")
    if min_gain is not None:
        doubled = np.minimum(2 * V, hi) - lo
        gain = Y - Y[doubled.astype(int)]
        flat = valid & (gain < min_gain) & (2 * V <= hi)
        knee = point(int(np.flatnonzero(flat)[0])) if flat.any() else None
        if knee is None:
            warnings.append(f"every doubling up to {hi} tokens still gains >= {min_gain:g} "
                            "accuracy: no knee inside the token range")
    ranges = getattr(law, "axis_ranges", {}) or {}
    for p in (best, cheapest, knee):
        if p is not None and "V" in ranges:
            v_lo, v_hi = ranges["V"]
            v = p.visual_tokens / law.axis_unit("V")
            if not v_lo <= v <= v_hi:
                warnings.append(f"V = {p.visual_tokens} is outside the token counts the law "
                                f"was fitted on ({v_lo:g} to {v_hi:g}): extrapolation")
    if "N" in law.axis_names and "N" in ranges:
        n_lo, n_hi = ranges["N"]
        n = n_params / law.axis_unit("N")
        if not n_lo <= n <= n_hi:
            warnings.append(f"{llm} ({n_params:.3g} parameters) is outside the sizes the law "
                            "was fitted on: extrapolation")
    marks = np.unique(np.clip(2 ** np.arange(0, int(math.log2(hi)) + 1), lo, hi)).astype(int)
    curve = {"visual_tokens": marks.tolist(), "predicted_error": Y[marks - lo].tolist(),
             "flops": F[marks - lo].tolist(), "latency_s": lat[marks - lo].tolist()}
    return TokenPlan(llm=spec.name, llm_params=n_params, encoder=encoder,
                     law_label=law.label or law.law,
                     text_tokens=float(text_tokens), gen_tokens=float(gen_tokens), gpu=gpu,
                     token_range=(lo, hi), budget_flops=budget, max_latency_ms=max_latency_ms,
                     target_accuracy=target_accuracy, min_gain=min_gain, best=best,
                     cheapest=cheapest, knee=knee, curve=curve,
                     warnings=tuple(dict.fromkeys(warnings)))
