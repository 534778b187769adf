"""Inference cost of a VLM: FLOPs, parameters, KV-cache and weight bytes, roofline latency.

Pure, vectorised numpy: every token count, ``batch`` and ``crops`` may be an array, and the
LLM may be one :class:`~scaling.cost.specs.LLMSpec` or an :class:`~scaling.cost.specs.LLMStack`
of many (array-valued dims), all broadcast together; 0-d results come back as floats.

Conventions (1 multiply-add = 2 FLOPs; quantities per batch of ``batch`` requests):

- Counted: matrix products (linear layers, patch convolution, attention scores ``QK^T`` and
  ``AV``). Not counted: norms, activations, softmax, rotary, bias and residual adds,
  pooling (O(tokens x width) each; under 0.5% here). This is exactly what
  ``torch.utils.flop_counter.FlopCounterMode`` counts.
- Prompt of ``S = V + Q`` tokens (V visual, Q text). Prefill attention is causal: query
  ``i`` attends to ``i`` keys, ``S(S+1)/2`` pairs per head.
- Generating ``G`` tokens = the prefill (its last-position logits give token 1) plus ``G-1``
  single-token decode steps; step ``j`` attends over ``S + j`` cached keys, so decode
  attention covers ``sum_j (S + j) = (G-1) S + G(G-1)/2`` pairs (closed form). This is what
  ``generate(max_new_tokens=G)`` executes.
- lm_head is applied only where logits are needed: the last prompt position (always; with
  ``G = 0`` that is the prefill's next-token distribution) and each decode step.
- The vision encoder runs ``encoder.layers_used`` layers (up to ``feature_layer``; LLaVA
  reads layer -2) once per crop; the projector maps the crops' patch tokens (CLS dropped)
  to V visual tokens.
- ``flops_full_attention_total`` is the convention of a plain Hugging Face forward under
  FlopCounterMode: full ``S^2`` attention in the prefill, lm_head at all ``S`` prompt
  positions, all encoder layers; decode steps as above.
- The paper's model (Li et al. 2025): ``flops_paper = 2 N (Q + V)``, N = LLM parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling.cost.catalog import as_stack, get_encoder
from scaling.cost.hardware import DTYPE_BYTES, GPUSpec, get_gpu, normalise_dtype
from scaling.cost.latency import decode_context, roofline_latency
from scaling.cost.specs import (
    EncoderSpec,
    LLMSpec,
    LLMStack,
    ProjectorSpec,
    count_llm_params,
    get_projector,
    layer_matmul_params,
)
from scaling.errors import ScalingError

Array = np.ndarray
Number = float | Array


def _out(x: Any, shape: tuple[int, ...] | None = None) -> Number:
    x = np.asarray(x, dtype=float)
    if shape is not None and x.shape != shape:
        x = np.broadcast_to(x, shape)
    return float(x) if x.ndim == 0 else x


def _nonneg(value: Any, name: str, *, minimum: float = 0.0) -> Array:
    """``value`` as a float array; every entry finite and >= ``minimum`` or ScalingError."""
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | (arr < minimum)
    if np.any(bad):
        first = arr.flat[int(np.flatnonzero(bad)[0])]
        where = "" if arr.ndim == 0 else f" (entry {int(np.flatnonzero(bad)[0])})"
        raise ScalingError(f"{name} must be a finite number >= {minimum:g}, got {first:g}{where}")
    return arr


# --------------------------------------------------------------------------- parameters


def llm_params(llm: LLMSpec | LLMStack | str, *, embeddings: bool = True) -> Number:
    """LLM parameter count of a spec, stack or catalog name (:func:`count_llm_params`)."""
    return _out(count_llm_params(as_stack(llm), embeddings=embeddings))


def encoder_params(encoder: EncoderSpec | str, *, include_head: bool | None = None) -> float:
    """Vision-tower parameters (equals ``numel()`` of ``CLIPVisionModel``/``SiglipVisionModel``).

    Patch conv ``3 p^2 c (+c bias)``, CLS ``c``, positions ``tokens * c``, pre-norm ``2c``,
    per layer ``4(c^2 + c) + 2 c m + m + c + 4c``, post-norm ``2c``; SigLIP's pooling head
    (probe, attention, norm, MLP) when ``include_head`` (default: if the encoder has one).
    """
    e = get_encoder(encoder)
    c, m = float(e.hidden), float(e.intermediate)
    n = e.channels * e.patch_size**2 * c + e.patch_bias * c + e.cls_token * c + e.tokens * c
    n += 2 * c * e.pre_norm
    n += e.layers * (4 * (c * c + c) + 2 * c * m + m + c + 4 * c)
    n += 2 * c  # post_layernorm
    head = e.pooling_head if include_head is None else include_head and e.pooling_head
    if head:
        n += c + 3 * (c * c + c) + (c * c + c) + 2 * c + 2 * c * m + m + c
    return n


def paper_flops(llm_params: Any, visual_tokens: Any, text_tokens: Any = 0) -> Number:
    """The paper's inference cost, ``FLOPs = 2 N (Q + V)`` (Li et al., ICLR 2025, sec. 3).

    ``N`` in parameters (not billions); the vision encoder is ignored.
    """
    n = _nonneg(llm_params, "llm_params")
    v = _nonneg(visual_tokens, "visual_tokens")
    q = _nonneg(text_tokens, "text_tokens")
    return _out(2.0 * n * (q + v))


# --------------------------------------------------------------------------- vision


def encoder_flops(encoder: EncoderSpec | str, *, layers: int | None = None,
                  include_head: bool = False) -> float:
    """FLOPs of one image (crop) through the vision encoder.

    With ``T`` tokens (patches + CLS), width ``c``, MLP ``m``, patch ``p``:
    ``2 P (3 p^2) c`` (patch conv) ``+ layers [2 T (4 c^2 + 2 c m) + 4 T^2 c]`` (q, k, v, o,
    fc1, fc2; full bidirectional attention) ``+`` SigLIP pooling head
    ``4 c^2 + 4 T c^2 + 4 T c + 4 c m`` (one probe query) when ``include_head``.
    ``layers`` defaults to ``encoder.layers_used`` (up to the VLM's feature layer).
    """
    e = get_encoder(encoder)
    c, m, t = float(e.hidden), float(e.intermediate), float(e.tokens)
    n_layers = e.layers_used if layers is None else layers
    flops = 2.0 * e.patches * e.channels * e.patch_size**2 * c
    flops += n_layers * (2.0 * t * (4 * c * c + 2 * c * m) + 4.0 * t * t * c)
    if include_head and e.pooling_head:
        flops += 4 * c * c + 4 * t * c * c + 4 * t * c + 4 * c * m
    return flops


def projector_flops(projector: ProjectorSpec | str | None, *, encoder: EncoderSpec | str,
                    llm_hidden: Any, visual_tokens: Any, crops: Any = 1) -> Number:
    """FLOPs of the projector/compressor turning ``n = crops * patches`` encoder tokens
    (width ``c``) into ``V`` visual tokens of LLM width ``d``.

    - ``linear``: ``2 n' c d``; ``mlp2x_gelu``: ``2 n' (c d + d^2)`` with ``n' = min(V, n)``
      (tokens beyond ``n``, e.g. anyres newline tokens, cost nothing here);
    - ``avgpool``: pooling (no matmul) then ``2 V (c d + d^2)``;
    - ``conv_attn`` (window ``w = n / V``): depthwise conv ``2 V c w``, local attention
      ``2 V c^2 + 4 n c^2 + 4 V w c + 2 V c^2``, then ``2 V (c d + d^2)``;
    - ``queries`` (``k`` layers, FFN ``f c``): ``k [4 V c^2 + 4 n c^2 + 4 V n c + 4 f V c^2]
      + 2 V c d``.

    ``projector=None`` picks ``mlp2x_gelu`` where ``V >= n`` and the paper's ``conv_attn``
    compressor where ``V < n``.
    """
    return _projector(projector, encoder, llm_hidden, visual_tokens, crops)[0]


def _projector(projector: ProjectorSpec | str | None, encoder: EncoderSpec | str,
               llm_hidden: Any, visual_tokens: Any, crops: Any) -> tuple[Number, Number, str]:
    """(FLOPs, parameters, kind label) of the projector, vectorised."""
    e = get_encoder(encoder)
    c = float(e.hidden)
    d = np.asarray(llm_hidden, dtype=float)
    v = _nonneg(visual_tokens, "visual_tokens")
    n = _nonneg(crops, "crops", minimum=1.0) * e.patches
    spec = get_projector(projector) if projector is not None else None
    if spec is not None and spec.compresses and np.any(v > n):
        bad = float(np.max(v))
        raise ScalingError(f"projector {spec.kind!r} compresses: visual_tokens {bad:g} exceeds "
                           f"the {float(np.max(n)):g} patch tokens of {e.name}; use fewer tokens "
                           "or a non-compressing projector (mlp2x_gelu)")
    layers = float(spec.layers) if spec is not None else 1.0
    f = float(spec.ffn_mult) if spec is not None else 4.0
    mlp_p = c * d + d + d * d + d

    def of(kind: str) -> tuple[Array, Array]:
        if kind in ("linear", "mlp2x_gelu"):
            kept = np.minimum(v, n)
            if kind == "linear":
                return 2.0 * kept * c * d, c * d + d
            return 2.0 * kept * (c * d + d * d), mlp_p
        if kind == "avgpool":
            return 2.0 * v * (c * d + d * d), mlp_p
        if kind == "conv_attn":
            w = n / np.maximum(v, 1e-12)  # patches per output token
            flops = (2.0 * v * c * w + 4.0 * v * c * c + 4.0 * n * c * c + 4.0 * v * w * c
                     + 2.0 * v * (c * d + d * d))
            return flops, c * w + c + 4.0 * (c * c + c) + mlp_p
        assert kind == "queries"
        flops = (layers * (4.0 * v * c * c + 4.0 * n * c * c + 4.0 * v * n * c
                           + 4.0 * f * v * c * c) + 2.0 * v * c * d)
        block = 4.0 * (c * c + c) + 2.0 * f * c * c + f * c + c + 4.0 * c
        return flops, v * c + layers * block + c * d + d

    if spec is not None:
        kind = spec.kind
    else:
        full = v >= n
        kind = "mlp2x_gelu" if np.all(full) else "conv_attn" if not np.any(full) else ""
    if kind:
        flops, params = of(kind)
        return _out(flops + 0.0 * v), _out(params + 0.0 * v), kind
    (f_mlp, p_mlp), (f_conv, p_conv) = of("mlp2x_gelu"), of("conv_attn")
    return (_out(np.where(full, f_mlp, f_conv)), _out(np.where(full, p_mlp, p_conv)),
            "auto: mlp2x_gelu where V >= patches, else conv_attn")


# --------------------------------------------------------------------------- the full cost


@dataclass(frozen=True)
class InferenceCost:
    """Cost of serving ``batch`` requests (one image each). Arrays broadcast like the inputs;
    0-d values are floats. FLOPs count 1 multiply-add as 2; bytes at ``dtype``."""

    llm: str
    dtype: str
    gpu: str | None
    projector: str
    llm_params: Number
    llm_params_non_embedding: Number
    vision_params: Number
    prompt_tokens: Number  # S = V + Q
    cached_tokens: Number  # KV-cache length at the end: S + max(G - 1, 0)
    flops_total: Number  # vision + prefill + decode
    flops_prefill: Number  # LLM over the prompt (causal), lm_head at the last position
    flops_decode: Number  # G - 1 single-token steps
    flops_vision: Number  # encoder + projector
    flops_encoder: Number
    flops_projector: Number
    flops_attention: Number  # LLM attention products (QK^T, AV), prefill + decode
    flops_full_attention_total: Number  # FlopCounterMode / plain-forward convention
    flops_paper: Number  # 2 N (Q + V) per request, times batch
    kv_cache_bytes: Number
    weight_bytes: Number  # LLM + encoder + projector weights
    memory_bytes: Number  # weights + KV cache (activations and workspace not included)
    latency_s_prefill: Number  # vision + LLM prefill (time to first token), roofline
    latency_s_decode: Number
    latency_s_total: Number
    fits_memory: Number | None  # 1.0/0.0 (bool for scalars) with a GPU, else None


def _llm_flops(s: LLMStack, S: Array, steps: Array) -> tuple[Array, Array, Array, Array]:
    """``(prefill, decode, full-attention prefill, attention)`` FLOPs of one request (the
    equations of :func:`inference_cost`)."""
    f_tok = 2.0 * s.layers * layer_matmul_params(s)
    f_pair = 4.0 * s.layers * s.q_dim
    f_head = 2.0 * s.hidden * s.vocab
    ctx_sum = decode_context(S, steps)
    prefill = S * f_tok + S * (S + 1.0) / 2.0 * f_pair + f_head
    decode = steps * (f_tok + f_head) + ctx_sum * f_pair
    prefill_full = S * f_tok + S * S * f_pair + S * f_head
    attention = (S * (S + 1.0) / 2.0 + ctx_sum) * f_pair
    return prefill, decode, prefill_full, attention


def _vision_flops(e: EncoderSpec | None, projector: ProjectorSpec | str | None, hidden: Any,
                  v: Array, n_crops: Array) -> tuple[Any, Any, Any, Any, str]:
    """``(encoder, encoder with all layers, projector FLOPs, projector params, projector name)``
    for ``n_crops`` crops; zeros without an encoder."""
    if e is None:
        if projector is not None:
            raise ScalingError("a projector needs an encoder: pass encoder=... as well")
        return 0.0, 0.0, 0.0, 0.0, "none"
    proj_f, proj_p, proj_name = _projector(projector, e, hidden, v, n_crops)
    return (n_crops * encoder_flops(e), n_crops * encoder_flops(e, layers=e.layers), proj_f,
            proj_p, proj_name)


def inference_cost(
    llm: LLMSpec | LLMStack | str,
    *,
    encoder: EncoderSpec | str | None = None,
    projector: ProjectorSpec | str | None = None,
    visual_tokens: Any,
    text_tokens: Any = 0,
    gen_tokens: Any = 0,
    batch: Any = 1,
    crops: Any = 1,
    dtype: str = "bf16",
    kv_dtype: str | None = None,
    gpu: GPUSpec | str | None = None,
) -> InferenceCost:
    """Exact inference cost of ``batch`` requests of ``V`` visual + ``Q`` text prompt tokens
    generating ``G`` tokens (see the module docstring for every convention).

    LLM (``L`` layers, ``h`` hidden, ``q = heads*head_dim``, ``k = kv_heads*head_dim``,
    ``I`` intermediate, ``M`` = 2 or 3 MLP matrices, vocab ``W``), ``S = V + Q``,
    ``G' = max(G - 1, 0)`` decode steps:

    - per token ``F_tok = 2 L (2 h q + 2 h k + M h I)``; per attended pair ``F_pair = 4 L q``;
      lm_head ``F_head = 2 h W`` per position;
    - ``prefill = S F_tok + S(S+1)/2 F_pair + F_head``;
    - ``decode = G' (F_tok + F_head) + (G' S + G'(G'+1)/2) F_pair``;
    - ``full-attention prefill = S F_tok + S^2 F_pair + S F_head``;
    - ``kv_cache_bytes = 2 L k bytes (S + G') batch``; ``weight_bytes = params * bytes``.

    Latency is :func:`scaling.cost.latency.roofline_latency` on ``gpu`` (an ideal lower
    bound), NaN without a GPU.
    """
    s = as_stack(llm)
    dtype = normalise_dtype(dtype)
    kv_dtype = normalise_dtype(kv_dtype) if kv_dtype is not None else dtype
    wb, kvb = DTYPE_BYTES[dtype], DTYPE_BYTES[kv_dtype]
    v = _nonneg(visual_tokens, "visual_tokens")
    q = _nonneg(text_tokens, "text_tokens")
    g = _nonneg(gen_tokens, "gen_tokens")
    b = _nonneg(batch, "batch", minimum=1.0)
    n_crops = _nonneg(crops, "crops", minimum=1.0)
    S = v + q
    if np.any(S <= 0):
        raise ScalingError("the prompt is empty: visual_tokens + text_tokens must be > 0")

    L, kd = s.layers, s.kv_dim
    steps = np.maximum(g - 1.0, 0.0)
    prefill, decode, prefill_full, attention = _llm_flops(s, S, steps)
    n_params = llm_params(s)
    e = None if encoder is None else get_encoder(encoder)
    enc_f, enc_full, proj_f, proj_p, proj_name = _vision_flops(e, projector, s.hidden, v, n_crops)
    vision_p = 0.0 if e is None else encoder_params(e, include_head=False) + proj_p
    vision = enc_f + proj_f

    # ---- memory
    cached = S + steps
    kv_bytes = 2.0 * L * kd * kvb * cached * b
    weight_bytes = (n_params + vision_p) * wb
    memory = weight_bytes + kv_bytes

    # ---- roofline latency
    if gpu is not None:
        gspec = get_gpu(gpu)
        lat_pre, lat_dec = roofline_latency(
            s, gpu=gspec, dtype=dtype, kv_dtype=kv_dtype, batch=b, prompt_tokens=S,
            decode_steps=steps, visual_tokens=v, encoder=e,
            crops=n_crops, projector_flops=proj_f, projector_params=proj_p)
        fits = memory <= gspec.memory_bytes
        gpu_name: str | None = gspec.name
    else:
        lat_pre = lat_dec = np.full(np.broadcast(S, steps, b, L).shape, np.nan)
        fits = None
        gpu_name = None

    total = b * (vision + prefill + decode)
    shape = np.broadcast(S, steps, b, L, n_crops).shape
    distinct = tuple(dict.fromkeys(s.names))
    llm_name = distinct[0] if len(distinct) == 1 else f"{len(distinct)} LLMs"
    fits_out: Number | None
    if fits is None:
        fits_out = None
    else:
        fits_arr = np.asarray(fits)
        fits_out = bool(fits_arr) if fits_arr.ndim == 0 else np.broadcast_to(fits_arr, shape)
    return InferenceCost(
        llm=llm_name,
        dtype=dtype,
        gpu=gpu_name,
        projector=proj_name,
        llm_params=_out(n_params, shape),
        llm_params_non_embedding=_out(llm_params(s, embeddings=False), shape),
        vision_params=_out(vision_p, shape),
        prompt_tokens=_out(S, shape),
        cached_tokens=_out(cached, shape),
        flops_total=_out(total, shape),
        flops_prefill=_out(b * prefill, shape),
        flops_decode=_out(b * decode, shape),
        flops_vision=_out(b * vision, shape),
        flops_encoder=_out(b * enc_f, shape),
        flops_projector=_out(b * np.asarray(proj_f), shape),
        flops_attention=_out(b * attention, shape),
        flops_full_attention_total=_out(b * (enc_full + proj_f + prefill_full + decode), shape),
        flops_paper=_out(b * 2.0 * n_params * S, shape),
        kv_cache_bytes=_out(kv_bytes, shape),
        weight_bytes=_out(weight_bytes, shape),
        memory_bytes=_out(memory, shape),
        latency_s_prefill=_out(lat_pre, shape),
        latency_s_decode=_out(lat_dec, shape),
        latency_s_total=_out(np.asarray(lat_pre) + lat_dec, shape),
        fits_memory=fits_out,
    )
