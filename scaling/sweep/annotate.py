"""Cost annotation of sweep rows, so a finished table goes straight into ``scaling fit``.

For each row (``N`` = ``llm_params`` in parameters, ``V`` = ``visual_tokens``, ``Q`` =
``text_tokens``, ``G`` = ``gen_tokens``):

- ``flops_paper = 2 * N * (Q + V)``  (Li et al. 2025; :func:`scaling.cost.paper_flops`);
- when the LLM resolves to an architecture (a catalog name, an entry's ``arch``, or an
  ``llm_spec`` returned by the evaluator), the exact cost of :func:`scaling.cost.inference_cost`:
  ``flops`` (causal attention, encoder included when the spec names one),
  ``flops_full_attention`` (the FlopCounterMode convention) and ``kv_cache_bytes``. A
  ``compressor`` value that names a projector kind (``mlp2x_gelu``, ``avgpool``,
  ``conv_attn``, ``queries``, ``linear``) prices that projector; otherwise the cost model's
  default (``mlp2x_gelu`` without compression, the paper's ``conv_attn`` with it).

``llm_params`` comes from, in order: the evaluator's ``llm_params``, the entry's ``params``,
the architecture's **nominal** size (``qwen1.5-7b`` -> 7e9, as the paper's law and the
planner's default use it; :func:`scaling.cost.catalog.nominal_params`) or, for a custom
architecture without one, its real count, or the llm name read as a size (``0.5B``). It stays
empty when none applies. ``llm_params_actual`` is the architecture's real parameter count
(embeddings included) whenever an architecture is known.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from scaling.errors import ScalingError
from scaling.units import parse_params


@functools.lru_cache(maxsize=256)
def resolve_arch(name: str | None) -> Any:
    """The LLMSpec for a catalog name or an HF ``config.json`` path, else None."""
    if not name:
        return None
    from scaling import cost

    if name.endswith(".json") or Path(name).is_dir():
        spec = cost.from_hf_config(name)
        spec = getattr(spec, "llm", spec)  # a LLaVA-style config: its language model
        if not isinstance(spec, cost.LLMSpec):
            raise ScalingError(f"{name}: not an LLM config (got {type(spec).__name__})")
        return spec
    try:
        return cost.get_llm(name)
    except (ScalingError, KeyError):
        return None


@functools.lru_cache(maxsize=16)
def resolve_encoder(name: str | None) -> Any:
    if not name:
        return None
    from scaling.cost import get_encoder

    return get_encoder(name)


def llm_from_spec(fields: dict[str, Any]) -> Any:
    """An LLMSpec built from the field dict an evaluator returned as ``llm_spec``."""
    from scaling.cost import LLMSpec

    try:
        return LLMSpec(**fields)
    except TypeError as exc:
        raise ScalingError(f"evaluator returned an llm_spec that is not an LLMSpec: {exc}") \
            from None


def annotate(row: dict[str, Any], *, entry: Any, llm_spec: dict[str, Any] | None,
             encoder: str | None) -> dict[str, Any]:
    """Add ``llm_params`` and the cost columns to ``row`` (a new dict)."""
    from scaling import cost

    row = dict(row)
    spec = llm_from_spec(llm_spec) if llm_spec else resolve_arch(entry.arch or entry.name)
    if entry.arch and spec is None and not llm_spec:
        raise ScalingError(f"llm {entry.name!r}: arch {entry.arch!r} is neither a catalog name "
                           "nor an HF config.json")
    if row.get("llm_params") is not None:
        n = parse_params(row["llm_params"], what="llm_params returned by the evaluator")
    elif entry.params is not None:
        n = entry.params
    elif spec is not None:
        n = cost.nominal_params(spec) or float(cost.llm_params(spec))
    else:
        n = _as_size(entry.name)
    row["llm_params"] = n
    if spec is not None:
        row["llm_params_actual"] = float(cost.llm_params(spec))
    v, q, g = int(row["visual_tokens"]), int(row["text_tokens"]), int(row["gen_tokens"])
    if n is not None:
        row["flops_paper"] = float(cost.paper_flops(n, v, q))
    if spec is not None:
        enc = resolve_encoder(encoder)
        projector = row.get("compressor") if enc is not None else None
        projector = projector if projector in cost.PROJECTOR_KINDS else None
        c = cost.inference_cost(spec, encoder=enc, projector=projector, visual_tokens=v,
                                text_tokens=q, gen_tokens=g)
        row["flops"] = float(c.flops_total)
        row["flops_full_attention"] = float(c.flops_full_attention_total)
        row["kv_cache_bytes"] = float(c.kv_cache_bytes)
    return row


def _as_size(name: str) -> float | None:
    try:
        return parse_params(name)
    except ScalingError:
        return None
