"""Serving budgets: the most accurate (LLM, visual tokens) whose *serving* cost fits.

The FLOP planner prices one request at batch 1. A deployment pays GPU time under continuous
batching (:mod:`scaling.cost.serving`), where the KV cache of every live request decides the
batch. :func:`plan_serving` prices a menu of catalog LLMs (a family) x visual-token counts on a
GPU type and picks the configuration with the lowest predicted error among those that meet

- a per-request budget: ``gpu_seconds`` per request, or ``usd_per_million`` requests (with
  ``usd_per_gpu_hour``), or
- a capacity target: ``throughput`` requests/s on ``gpus`` GPUs (``floor(gpus / T)`` replicas
  of a ``T``-way tensor-parallel server),

and, optionally, latency objectives ``max_ttft_ms`` / ``max_tpot_ms``. Each configuration may
run on ``T`` in {1, 2, 4, 8} GPUs (tensor parallel, where the heads divide) and with its batch
capped (vLLM ``max_num_seqs``) on a log grid up to what the KV pool holds: a TPOT objective is
met by running a smaller batch (TPOT grows with the batch). Per configuration the cheapest
(``T``, cap) that meets the objectives is kept.

The answer's "why" names what binds at the chosen configuration (compute, KV memory, the
batch cap, or an objective) and compares it with the FLOP optimum *at the same spend*: the most
accurate menu entry whose exact FLOPs per request fit the same budget bought as FLOPs at the
GPU's peak (``spend_s x P x mfu``; ``spend_s`` = the budget in GPU-seconds per request). For a
prefill-only workload (``G = 1``) the two planners agree; as ``G`` grows, decode steps bound by
weight and KV-cache reads cost more GPU time than their FLOPs, and the answers part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaling.cost.catalog import as_stack, get_encoder, llm_family, nominal_params
from scaling.cost.flops import inference_cost, llm_params
from scaling.cost.hardware import get_gpu
from scaling.cost.serving import serving_cost, tensor_parallel_ok
from scaling.errors import ScalingError
from scaling.planner.answer import FIT_RANGES, Predicted
from scaling.planner.problem import check_law
from scaling.units import format_params

DEFAULT_TOKENS = (1, 4, 16, 36, 64, 144, 256, 576)
TP_DEGREES = (1, 2, 4, 8)
_CAPS = 40  # batch caps per configuration (log grid)


@dataclass(frozen=True)
class ServingChoice(Predicted):
    """One (LLM, V) with its predicted error and its cheapest serving set-up."""

    llm: str
    llm_params: float  # the size the law sees (nominal)
    llm_params_actual: float
    visual_tokens: float
    predicted_error: float
    flops: float  # exact FLOPs per request
    gpus_per_replica: int
    max_batch: float
    throughput_rps: float  # per replica
    gpu_seconds_per_request: float
    ttft_s: float
    tpot_s: float
    binding: str
    usd_per_million: float | None = None
    capacity_rps: float | None = None  # with --throughput: replicas x throughput


@dataclass(frozen=True)
class ServingPlan:
    """The serving planner's answer; ``to_dict()`` is the ``plan --cost serving --json``."""

    gpu: str
    budget: dict[str, float | None]
    choice: ServingChoice
    flop_optimum: ServingChoice  # the FLOP planner's pick at the same spend (FLOPs at peak)
    alternatives: tuple[ServingChoice, ...]
    why: str
    text_tokens: float
    gen_tokens: float
    family: str
    budget_flops: float  # the spend as FLOPs at the GPU's peak (what the FLOP planner gets)
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"cost_model": "serving", "gpu": self.gpu, "budget": self.budget,
                "budget_flops": self.budget_flops,
                "text_tokens": self.text_tokens, "gen_tokens": self.gen_tokens,
                "family": self.family, "discrete": self.choice.to_dict(),
                "optimum": self.choice.to_dict(), "flop_optimum": self.flop_optimum.to_dict(),
                "alternatives": [c.to_dict() for c in self.alternatives], "why": self.why,
                "warnings": list(self.warnings)}


def _tokens(tokens: Sequence[float] | str | None) -> np.ndarray:
    if tokens is None:
        return np.array(DEFAULT_TOKENS, float)
    if isinstance(tokens, str):
        tokens = [t for t in tokens.split(",") if t.strip()]
    try:
        arr = np.array([float(t) for t in tokens], float)
    except ValueError:
        raise ScalingError(f"--tokens must be numbers like 1,16,64,576, got {tokens!r}") from None
    if arr.size == 0 or np.any(~np.isfinite(arr) | (arr < 1)):
        raise ScalingError(f"--tokens must be visual-token counts >= 1, got {tokens!r}")
    return np.unique(arr)


def price_menu(family: str, tokens: np.ndarray, *, gpu: str, text_tokens: float,
               gen_tokens: float, encoder: str | None, dtype: str = "bf16",
               gpus: int | None = None, gpu_memory_utilization: float = 0.9, mfu: float = 1.0,
               mbu: float = 1.0) -> dict[str, np.ndarray]:
    """Serving cost of every (member, V, T, batch cap): arrays ``(k, m, t, c)``.

    ``T`` runs over :data:`TP_DEGREES` (at most ``gpus``); entries where ``T`` is not a valid
    tensor-parallel degree for a member, or nothing fits, have zero throughput."""
    members = tuple(llm_family(family))
    enc = get_encoder(encoder) if encoder is not None else None
    k, m = len(members), len(tokens)
    degrees = [t for t in TP_DEGREES if gpus is None or t <= gpus]
    stack = as_stack(members).take(np.arange(k).reshape(k, 1, 1, 1))
    V = np.asarray(tokens, float).reshape(1, m, 1, 1)
    caps = np.unique(np.round(np.geomspace(1, 65536, _CAPS))).reshape(1, 1, 1, -1)
    out: dict[str, list[np.ndarray]] = {}
    for T in degrees:
        ok = tensor_parallel_ok(stack.heads, stack.kv_heads, T)
        c = serving_cost(stack, gpu=gpu, gpus=T, visual_tokens=V, text_tokens=text_tokens,
                         gen_tokens=gen_tokens, encoder=enc, dtype=dtype,
                         gpu_memory_utilization=gpu_memory_utilization, max_batch=caps,
                         mfu=mfu, mbu=mbu, strict=False, check_tp=False)
        rps = np.where(ok, c.throughput_rps, 0.0)
        # caps past the batch the pool holds repeat it: keep only the first of them
        prev = np.concatenate([[0.0], caps.ravel()[:-1]]).reshape(caps.shape)
        rps = np.where(prev < np.asarray(c.max_batch_memory), rps, 0.0)
        for key, value in (("throughput_rps", rps), ("ttft_s", c.ttft_s), ("tpot_s", c.tpot_s),
                           ("batch", c.max_batch), ("binding", c.binding)):
            out.setdefault(key, []).append(np.broadcast_to(value, (k, m, 1, caps.size)))
        out.setdefault("gpus", []).append(np.full((k, m, 1, caps.size), float(T)))
    priced = {key: np.concatenate(v, axis=2) for key, v in out.items()}
    with np.errstate(divide="ignore"):
        priced["gpu_seconds"] = np.where(priced["throughput_rps"] > 0,
                                         priced["gpus"] / priced["throughput_rps"], np.inf)
    flops = inference_cost(as_stack(members).take(np.arange(k).reshape(k, 1)), encoder=enc,
                           visual_tokens=V.reshape(1, m), text_tokens=text_tokens,
                           gen_tokens=gen_tokens, dtype=dtype).flops_total
    priced["flops"] = np.broadcast_to(np.asarray(flops, float), (k, m))
    priced["names"] = np.array([s.name for s in members])
    priced["law_params"] = np.array([nominal_params(s) or float(llm_params(s)) for s in members])
    priced["actual_params"] = np.array([float(llm_params(s)) for s in members])
    return priced


def plan_serving(law=None, *, gpu: str, family: str = "qwen2.5", text_tokens: float = 0,
                 gen_tokens: float = 1, tokens: Sequence[float] | str | None = None,
                 encoder: str | None = "clip-vit-l-14-336", dtype: str = "bf16",
                 gpu_seconds: float | None = None, usd_per_million: float | None = None,
                 usd_per_gpu_hour: float | None = None, throughput: float | None = None,
                 gpus: int | None = None, max_ttft_ms: float | None = None,
                 max_tpot_ms: float | None = None, gpu_memory_utilization: float = 0.9,
                 mfu: float = 1.0, mbu: float = 1.0, top: int = 5) -> ServingPlan:
    """The most accurate menu entry whose serving cost meets the budget (module docstring)."""
    law = check_law(law)
    g_spec = get_gpu(gpu)
    budgets = [b for b in (gpu_seconds, usd_per_million, throughput) if b is not None]
    if len(budgets) != 1:
        raise ScalingError("give one serving budget: --gpu-seconds S (per request), "
                           "--usd-per-million USD (with --gpu-hour-usd), or --throughput RPS "
                           "--gpus K")
    for name, value in (("--gpu-seconds", gpu_seconds), ("--usd-per-million", usd_per_million),
                        ("--throughput", throughput), ("--max-ttft-ms", max_ttft_ms),
                        ("--max-tpot-ms", max_tpot_ms), ("--gpu-hour-usd", usd_per_gpu_hour)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ScalingError(f"{name} must be a positive number, got {value!r}")
    if usd_per_million is not None and usd_per_gpu_hour is None:
        raise ScalingError("--usd-per-million needs --gpu-hour-usd (the price of one GPU-hour)")
    if throughput is not None and gpus is None:
        raise ScalingError("--throughput needs --gpus K (the GPUs that must carry it)")
    if gpus is not None and (int(gpus) != gpus or gpus < 1):
        raise ScalingError(f"--gpus must be an integer >= 1, got {gpus!r}")
    if not gen_tokens >= 0:
        raise ScalingError(f"--gen-tokens must be >= 0, got {gen_tokens!r}")
    gen_tokens = max(float(gen_tokens), 1.0)  # the prefill yields the first token anyway
    V = _tokens(tokens)
    p = price_menu(family, V, gpu=g_spec.name, text_tokens=text_tokens, gen_tokens=gen_tokens,
                   encoder=encoder, dtype=dtype, gpus=gpus,
                   gpu_memory_utilization=gpu_memory_utilization, mfu=mfu, mbu=mbu)
    runs = p["throughput_rps"] > 0
    slo = runs.copy()
    if max_ttft_ms is not None:
        slo &= p["ttft_s"] * 1e3 <= max_ttft_ms
    if max_tpot_ms is not None:
        slo &= np.nan_to_num(p["tpot_s"], nan=0.0) * 1e3 <= max_tpot_ms
    if throughput is not None:
        replicas = np.floor(gpus / p["gpus"])
        score = np.where(slo, replicas * p["throughput_rps"], -np.inf)  # capacity: higher wins
    else:
        # GPU time: lower wins. Tensor-parallel all-reduce is not modelled, so a 2% penalty per
        # doubling of T prefers fewer GPUs among near-equal set-ups (selection only).
        score = np.where(slo, -p["gpu_seconds"] * (1.0 + 0.02 * np.log2(p["gpus"])), -np.inf)
    flat = score.reshape(score.shape[0], score.shape[1], -1)
    best = np.argmax(flat, axis=2)  # per (member, V): the best (T, cap)

    def pick(key: str) -> np.ndarray:
        arr = np.broadcast_to(p[key], score.shape).reshape(flat.shape)
        return np.take_along_axis(arr, best[..., None], 2)[..., 0]

    best_score = np.take_along_axis(flat, best[..., None], 2)[..., 0]
    gpu_s = pick("gpu_seconds")
    usd = gpu_s * 1e6 * usd_per_gpu_hour / 3600.0 if usd_per_gpu_hour is not None else None
    if throughput is not None:
        feasible = best_score >= throughput
        budget_text = f"{throughput:g} req/s on {gpus} x {g_spec.name}"
    elif gpu_seconds is not None:
        feasible = np.isfinite(best_score) & (gpu_s <= gpu_seconds)
        budget_text = f"{gpu_seconds:g} GPU-seconds per request on {g_spec.name}"
    else:
        feasible = np.isfinite(best_score) & (usd <= usd_per_million)
        budget_text = (f"${usd_per_million:g} per 1M requests at ${usd_per_gpu_hour:g}/GPU-hour "
                       f"on {g_spec.name}")
    N = p["law_params"][:, None]
    with np.errstate(all="ignore"):
        err = np.broadcast_to(np.asarray(law.predict(N / 1e9, V[None, :]), float), feasible.shape)

    def choice(i: int, j: int) -> ServingChoice:
        cap_rps = None
        if throughput is not None:
            cap_rps = float(np.floor(gpus / pick("gpus")[i, j]) * pick("throughput_rps")[i, j])
        return ServingChoice(
            llm=str(p["names"][i]), llm_params=float(p["law_params"][i]),
            llm_params_actual=float(p["actual_params"][i]), visual_tokens=float(V[j]),
            predicted_error=float(err[i, j]), flops=float(p["flops"][i, j]),
            gpus_per_replica=int(pick("gpus")[i, j]), max_batch=float(pick("batch")[i, j]),
            throughput_rps=float(pick("throughput_rps")[i, j]),
            gpu_seconds_per_request=float(gpu_s[i, j]), ttft_s=float(pick("ttft_s")[i, j]),
            tpot_s=float(pick("tpot_s")[i, j]), binding=str(pick("binding")[i, j]),
            usd_per_million=None if usd is None else float(usd[i, j]), capacity_rps=cap_rps)

    if not feasible.any():
        runnable = np.isfinite(best_score)
        if not runnable.any():
            raise ScalingError(f"no {family} model serves on {g_spec.name} within the latency "
                               "objectives at any batch; relax --max-ttft-ms / --max-tpot-ms or "
                               "use a faster GPU")
        key = -best_score if throughput is None else best_score
        i, j = np.unravel_index(np.argmin(np.where(runnable, key, np.inf)) if throughput is None
                                else np.argmax(np.where(runnable, key, -np.inf)), key.shape)
        c = choice(int(i), int(j))
        need = (f"{c.capacity_rps:.4g} req/s at most" if throughput is not None else
                f"{c.gpu_seconds_per_request:.4g} GPU-seconds per request" if usd is None else
                f"${c.usd_per_million:.4g} per 1M requests")
        raise ScalingError(f"no (model, visual tokens) fits {budget_text}; the cheapest "
                           f"feasible is {c.llm} with {c.visual_tokens:g} visual token"
                           f"{'' if c.visual_tokens == 1 else 's'} at "
                           f"{need}: raise the budget")
    order = np.lexsort((np.where(feasible, gpu_s, np.inf).ravel(),
                        np.where(feasible, err, np.inf).ravel()))
    order = [o for o in order if feasible.ravel()[o]]
    ij = [np.unravel_index(o, feasible.shape) for o in order[:top + 1]]
    picked = [choice(int(i), int(j)) for i, j in ij]
    ans = picked[0]
    # the FLOP planner at the same spend: the budget in GPU-seconds per request bought as
    # FLOPs at the GPU's peak (times mfu); the most accurate entry whose exact FLOPs fit
    spend_s = (gpu_seconds if gpu_seconds is not None else
               usd_per_million / 1e6 * 3600.0 / usd_per_gpu_hour if usd_per_million is not None
               else gpus / throughput)
    spend_flops = spend_s * g_spec.peak_flops(dtype) * mfu
    at_spend = p["flops"] <= spend_flops
    fi, fj = np.unravel_index(np.argmin(np.where(at_spend, err, np.inf)), err.shape)
    flop_opt = choice(int(fi), int(fj))
    why = _why(ans, flop_opt, budget_text=budget_text, feasible=bool(feasible[fi, fj]),
               spend_flops=spend_flops, max_ttft_ms=max_ttft_ms, max_tpot_ms=max_tpot_ms,
               gen_tokens=gen_tokens)
    warnings = []
    fit = FIT_RANGES.get(getattr(law, "label", ""))
    if fit is not None and not fit[0][0] / 2 <= ans.llm_params <= 2 * fit[0][1]:
        warnings.append(f"{format_params(ans.llm_params)} params is outside the sizes the law "
                        f"was fitted on ({format_params(fit[0][0])}-{format_params(fit[0][1])}): "
                        "an extrapolation")
    return ServingPlan(gpu=g_spec.name, budget={
        "gpu_seconds": gpu_seconds, "usd_per_million": usd_per_million,
        "usd_per_gpu_hour": usd_per_gpu_hour, "throughput_rps": throughput, "gpus": gpus,
        "max_ttft_ms": max_ttft_ms, "max_tpot_ms": max_tpot_ms},
        choice=ans, flop_optimum=flop_opt, alternatives=tuple(picked[1:]), why=why,
        text_tokens=float(text_tokens), gen_tokens=float(gen_tokens), family=family,
        budget_flops=float(spend_flops), warnings=tuple(warnings))


def _why(ans: ServingChoice, flop_opt: ServingChoice, *, budget_text: str, feasible: bool,
         spend_flops: float, max_ttft_ms: float | None, max_tpot_ms: float | None,
         gen_tokens: float) -> str:
    resource = {"compute": "compute (prefill and decode FLOPs)",
                "kv-memory": "KV-cache memory (it caps the batch, so each decode step re-reads "
                             "the weights for few requests)",
                "max-batch": "a batch cap below what the KV pool holds (to meet the latency "
                             "objectives)",
                "memory": "memory"}.get(ans.binding, ans.binding)
    parts = [f"{ans.llm} with {ans.visual_tokens:g} visual tokens is the most accurate entry "
             f"within {budget_text}: {ans.gpu_seconds_per_request:.3g} GPU-s per request on "
             f"{ans.gpus_per_replica} GPU(s) at batch {ans.max_batch:g}, bound by {resource}"]
    if max_tpot_ms is not None and ans.tpot_s * 1e3 > 0.9 * max_tpot_ms:
        parts.append(f"the TPOT objective ({max_tpot_ms:g} ms) binds: TPOT {ans.tpot_s * 1e3:.3g} "
                     "ms")
    if max_ttft_ms is not None and ans.ttft_s * 1e3 > 0.9 * max_ttft_ms:
        parts.append(f"the TTFT objective ({max_ttft_ms:g} ms) binds")
    same = flop_opt.llm == ans.llm and flop_opt.visual_tokens == ans.visual_tokens
    head = (f"the FLOP planner, given the same spend as FLOPs at peak ({spend_flops:.3g} FLOPs "
            "per request)")
    if same:
        parts.append(f"{head}, picks the same configuration")
    else:
        verdict = ("it also fits the serving budget (a tie on predicted accuracy)" if feasible
                   else f"under serving it needs {flop_opt.gpu_seconds_per_request:.3g} GPU-s "
                   f"per request (bound by {flop_opt.binding}), over the budget")
        parts.append(f"{head}, would pick {flop_opt.llm} with {flop_opt.visual_tokens:g} visual "
                     f"tokens ({flop_opt.predicted_accuracy:.1%} predicted vs "
                     f"{ans.predicted_accuracy:.1%}): {verdict}")
    if gen_tokens > 1 and "kv-memory" in (ans.binding, flop_opt.binding):
        parts.append(f"every visual token stays in the KV cache for all {gen_tokens:g} generated "
                     "tokens, so under serving visual tokens cost memory and decode bandwidth, "
                     "not only prefill FLOPs")
    return "; ".join(parts) + "."
