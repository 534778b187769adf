"""The planner's view of the cost model: price any (LLM size, visual tokens) and invert it.

The planner searches over a *continuous* LLM size ``N`` (in parameters) and visual tokens
``V``; this module says what such a configuration costs and, the other way round, what is the
largest ``N`` that stays under a FLOP budget, a memory limit or a latency limit at a given ``V``.

Cost models (DESIGN.md, "Inference cost"):

- ``paper``: ``flops = 2 * N * (Q + V + G)`` (Li et al. 2025, Sec. 3: ``2 N (Q + V)``; generated
  tokens ``G`` are counted like prompt tokens, so ``G = 0`` is the paper's formula exactly).
- ``exact``: :func:`scaling.cost.inference_cost` (vision encoder + projector + LLM prefill +
  decode) for the members of a model family. A size between two members is priced by
  **interpolating each member's exact cost linearly in log N / log cost** (FLOPs, weights + KV
  memory, KV cache, roofline latency): at a member's size this *is* the exact cost; between
  members it is the straight line on a log-log plot. The continuous search under ``exact`` is
  restricted to the family's hull ``[smallest member, largest member]``; a size outside it
  (``--sizes``) is extrapolated from the end segment, with a warning in the plan.

The size ``N`` used by the law and on the interpolation axis is the member's **nominal** size
(``qwen1.5-7b`` -> 7e9), because the paper's law was fitted on nominal sizes
(``reference/README.md``); ``law_size="actual"`` switches to real parameter counts (use it for a
law fitted on real counts). Either way the *cost* is that of the real architecture, and the
real count is reported next to the nominal one.

Memory is ``weights + KV cache`` at ``batch``; FLOPs are per request (the batch total / batch).
Under ``paper`` the family (default ``qwen1.5``, the paper's setting) is used only for memory,
KV cache and latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaling.cost import (
    get_encoder,
    get_gpu,
    inference_cost,
    llm_family,
    llm_params,
    nominal_params,
    stack_llms,
)
from scaling.errors import ScalingError

COST_MODELS = ("paper", "exact")
DEFAULT_FAMILY = "qwen1.5"
DEFAULT_ENCODER = "clip-vit-l-14-336"
QUANTITIES = ("flops", "flops_prefill", "flops_decode", "flops_vision", "kv_cache_bytes",
              "weight_bytes", "memory_bytes", "latency_s", "llm_params_actual")

def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.asarray(x, float))


def _segments(xn: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index ``j`` of the segment ``[xn[j], xn[j+1]]`` used for ``x`` (ends extrapolate)."""
    return np.clip(np.searchsorted(xn, x, side="right") - 1, 0, len(xn) - 2)


def loglog_interp(xn: np.ndarray, yn: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation of ``log y`` in ``log x`` through the nodes.

    ``xn``: increasing node positions, shape ``(k,)``; ``yn``: values, shape ``(k, *S)``;
    ``x``: broadcastable with ``S``. Linear extrapolation from the end segments; a single node
    extrapolates with slope 1 (cost proportional to size). Zero values stay zero.
    """
    lx, lxn = _log(x), _log(xn)
    yn = np.asarray(yn, float)
    shape = np.broadcast_shapes(lx.shape, yn.shape[1:])
    if len(xn) == 1:
        return np.broadcast_to(yn[0] * np.exp(lx - lxn[0]), shape).copy()
    lyn = _log(yn)
    j = np.broadcast_to(_segments(lxn, lx), shape)
    full = np.broadcast_to(lyn, (len(xn),) + shape)
    y0 = np.take_along_axis(full, j[None], 0)[0]
    y1 = np.take_along_axis(full, j[None] + 1, 0)[0]
    t = (np.broadcast_to(lx, shape) - lxn[j]) / (lxn[j + 1] - lxn[j])
    with np.errstate(invalid="ignore"):
        out = np.exp(y0 + t * (y1 - y0))
    return np.where((y0 == -np.inf) & (y1 == -np.inf), 0.0, out)


def loglog_inverse(xn: np.ndarray, yn: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ``x`` at which :func:`loglog_interp` reaches ``target`` (``y`` increasing in ``x``).

    Same shapes as :func:`loglog_interp`; ``target = inf`` gives ``inf``, ``target <= 0``
    gives 0. Node values are made non-decreasing along the member axis first.
    """
    yn = np.maximum.accumulate(np.asarray(yn, float), axis=0)
    lt, lxn, lyn = _log(target), _log(xn), _log(yn)
    shape = np.broadcast_shapes(lt.shape, yn.shape[1:])
    lt = np.broadcast_to(lt, shape)
    if len(xn) == 1:
        out = np.exp(lxn[0] + lt - np.broadcast_to(lyn[0], shape))
    else:
        full = np.broadcast_to(lyn, (len(xn),) + shape)
        j = np.clip(np.sum(full[1:-1] <= lt, axis=0), 0, len(xn) - 2)
        y0 = np.take_along_axis(full, j[None], 0)[0]
        y1 = np.take_along_axis(full, j[None] + 1, 0)[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (lxn[j + 1] - lxn[j]) / (y1 - y0)
            out = np.exp(lxn[j] + (lt - y0) * np.where(np.isfinite(slope), slope, 0.0))
    out = np.where(np.isposinf(lt), np.inf, out)
    return np.where(lt == -np.inf, 0.0, out)


@dataclass(frozen=True)
class Family:
    """A model family for the exact cost: members sorted by size, their sizes, the encoder."""

    name: str
    members: tuple[Any, ...]
    law_params: np.ndarray      # the size the law sees, per member (nominal or actual)
    actual_params: np.ndarray   # real parameter counts (with embeddings)
    encoder: Any = None
    encoder_name: str = ""

    @property
    def hull(self) -> tuple[float, float]:
        return float(self.law_params[0]), float(self.law_params[-1])

    def member_names(self) -> list[str]:
        return [str(getattr(m, "name", m)) for m in self.members]


def load_family(name: str, *, encoder: str | None = None, law_size: str = "nominal") -> Family:
    """The catalog family ``name`` (``scaling.cost.llm_family``) with its default encoder."""
    if law_size not in ("nominal", "actual"):
        raise ScalingError(f"law_size must be 'nominal' or 'actual', got {law_size!r}")
    members = tuple(llm_family(name))
    if not members:
        raise ScalingError(f"model family {name!r} has no members in the catalog")
    actual = np.array([float(llm_params(m)) for m in members])
    if law_size == "nominal":
        nominal = [nominal_params(m) for m in members]
        sizes = np.array([n if n else a for n, a in zip(nominal, actual, strict=True)])
    else:
        sizes = actual
    order = np.argsort(sizes, kind="stable")
    members = tuple(members[i] for i in order)
    sizes, actual = sizes[order], actual[order]
    if np.any(np.diff(sizes) <= 0):
        raise ScalingError(f"family {name!r} has two members of the same size "
                           f"({', '.join(str(getattr(m, 'name', m)) for m in members)}); "
                           "pass --sizes instead")
    encoder_name = encoder or DEFAULT_ENCODER
    return Family(name=name, members=members, law_params=sizes, actual_params=actual,
                  encoder=get_encoder(encoder_name), encoder_name=encoder_name)


@dataclass(frozen=True)
class Pricer:
    """Prices ``(llm_params, visual_tokens)`` arrays; ``llm_params`` in parameters.

    ``family`` supplies the architecture (exact cost, memory, KV cache, latency); without one,
    only the paper FLOPs are known and the other quantities are NaN.
    """

    cost_model: str = "paper"
    text_tokens: float = 0.0
    gen_tokens: float = 0.0
    batch: int = 1
    dtype: str = "bf16"
    family: Family | None = None
    gpu: Any = None
    gpu_name: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def prompt_tokens(self) -> float:
        """``Q + G``: the paper cost counts generated tokens like prompt tokens."""
        return self.text_tokens + self.gen_tokens

    @property
    def label(self) -> str:
        if self.cost_model == "paper":
            return "paper: FLOPs = 2*N*(Q+V" + ("+G)" if self.gen_tokens else ")")
        return (f"exact: {self.family.name} architectures + {self.family.encoder_name} "
                f"(interpolated in log N between members)")

    def _members(self, visual_tokens: np.ndarray) -> dict[str, np.ndarray]:
        """Exact quantities of every family member at ``visual_tokens``: ``(k, *V.shape)``.

        One vectorised :func:`scaling.cost.inference_cost` call over a stack of the members.
        """
        fam = self.family
        assert fam is not None
        V = np.asarray(visual_tokens, float)
        k = len(fam.members)
        stack = stack_llms(fam.members).take(np.arange(k).reshape((k,) + (1,) * V.ndim))
        c = inference_cost(stack, encoder=fam.encoder, visual_tokens=V,
                           text_tokens=self.text_tokens, gen_tokens=self.gen_tokens,
                           batch=self.batch, dtype=self.dtype, gpu=self.gpu)
        per = 1.0 / self.batch
        values = {
            "flops": np.asarray(c.flops_total, float) * per,
            "flops_prefill": np.asarray(c.flops_prefill, float) * per,
            "flops_decode": np.asarray(c.flops_decode, float) * per,
            "flops_vision": np.asarray(c.flops_vision, float) * per,
            "kv_cache_bytes": np.asarray(c.kv_cache_bytes, float),
            "weight_bytes": np.asarray(c.weight_bytes, float),
            "memory_bytes": np.asarray(c.memory_bytes, float),
            "latency_s": np.asarray(c.latency_s_total, float),
            "llm_params_actual": fam.actual_params.reshape((k,) + (1,) * V.ndim),
        }
        return {q: np.broadcast_to(v, (k,) + V.shape) for q, v in values.items()}

    def quantities(self, llm_params, visual_tokens) -> dict[str, np.ndarray]:
        """FLOPs (per request, and its prefill/decode/vision parts), KV cache, weight and total
        memory bytes, latency (s) and real parameter count at each ``(N, V)``."""
        N = np.asarray(llm_params, float)
        V = np.asarray(visual_tokens, float)
        shape = np.broadcast_shapes(N.shape, V.shape)
        out: dict[str, np.ndarray]
        if self.family is not None:
            table = self._members(V)
            out = {q: loglog_interp(self.family.law_params, table[q], N) for q in QUANTITIES}
        else:
            nan = np.full(shape, np.nan)
            out = {q: nan for q in QUANTITIES}
        if self.cost_model == "paper":
            flops = 2.0 * N * (self.prompt_tokens + V)
            out.update(flops=np.broadcast_to(flops, shape), flops_prefill=np.broadcast_to(
                2.0 * N * (self.text_tokens + V), shape),
                flops_decode=np.broadcast_to(2.0 * N * self.gen_tokens, shape),
                flops_vision=np.zeros(shape))
        return {q: np.broadcast_to(v, shape) for q, v in out.items()}

    def flops(self, llm_params, visual_tokens) -> np.ndarray:
        """FLOPs per request at ``(N, V)``."""
        if self.cost_model == "paper":
            return 2.0 * np.asarray(llm_params, float) * (self.prompt_tokens
                                                          + np.asarray(visual_tokens, float))
        return self.quantities(llm_params, visual_tokens)["flops"]

    def llm_caps(self, visual_tokens, *, flops=np.inf, memory_bytes=np.inf,
                 latency_s=np.inf) -> dict[str, np.ndarray]:
        """The largest ``N`` (parameters) meeting each limit at ``visual_tokens``.

        Keys ``budget``, ``memory``, ``latency``; a limit of ``inf`` gives ``inf``. Every
        quantity grows with ``N``, so the feasible sizes at ``V`` are ``N <= min(caps)``.
        """
        V = np.asarray(visual_tokens, float)
        C = np.asarray(flops, float)
        M = np.asarray(memory_bytes, float)
        L = np.asarray(latency_s, float)
        need_table = (self.cost_model == "exact" or np.any(np.isfinite(M))
                      or np.any(np.isfinite(L)))
        table = self._members(V) if need_table else None
        caps: dict[str, np.ndarray] = {}
        if self.cost_model == "paper":
            caps["budget"] = C / (2.0 * (self.prompt_tokens + V))
        else:
            caps["budget"] = loglog_inverse(self.family.law_params, table["flops"], C)
        for key, limit, q in (("memory", M, "memory_bytes"), ("latency", L, "latency_s")):
            if np.all(np.isposinf(limit)):
                caps[key] = np.full(np.broadcast_shapes(V.shape, limit.shape), np.inf)
            else:
                caps[key] = loglog_inverse(self.family.law_params, table[q], limit)
        return caps


def make_pricer(*, cost: str = "paper", text_tokens: float = 0, gen_tokens: float = 0,
                batch: int = 1, dtype: str = "bf16", family: str | None = None,
                encoder: str | None = None, gpu: str | None = None,
                law_size: str = "nominal", need_architecture: bool = False) -> Pricer:
    """Build the :class:`Pricer` for the planner's options (validates them).

    The family is loaded when the cost is exact, when one is named, or when
    ``need_architecture`` (memory/latency asked for); it defaults to ``qwen1.5`` with
    ``clip-vit-l-14-336``, the paper's setting, and the plan notes that default.
    """
    if cost not in COST_MODELS:
        raise ScalingError(f"cost model must be one of {', '.join(COST_MODELS)}, got {cost!r}")
    for what, value in (("text_tokens", text_tokens), ("gen_tokens", gen_tokens)):
        if not np.isfinite(value) or value < 0:
            raise ScalingError(f"{what} must be >= 0, got {value!r}")
    if int(batch) != batch or batch < 1:
        raise ScalingError(f"batch must be an integer >= 1, got {batch!r}")
    notes: list[str] = []
    gpu_spec = None
    if gpu is not None:
        gpu_spec = get_gpu(gpu)
    fam = None
    if cost == "exact" or family is not None or gpu is not None or need_architecture:
        if family is None:
            notes.append(f"architecture: the {DEFAULT_FAMILY} family with {DEFAULT_ENCODER} "
                         "(the paper's setting); pass --family to change it")
        fam = load_family(family or DEFAULT_FAMILY, encoder=encoder, law_size=law_size)
    elif encoder is not None:
        raise ScalingError("--encoder only matters for the exact cost model: add --cost exact "
                           "(and --family NAME)")
    return Pricer(cost_model=cost, text_tokens=float(text_tokens), gen_tokens=float(gen_tokens),
                  batch=int(batch), dtype=dtype, family=fam, gpu=gpu_spec, gpu_name=gpu,
                  notes=tuple(notes))
