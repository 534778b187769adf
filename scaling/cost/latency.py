"""Roofline latency of a VLM request on one GPU: an ideal lower bound.

Every matrix product and attention op takes ``max(FLOPs / peak FLOP/s, bytes / bandwidth)``
(Williams et al. 2009, "Roofline"; LLM-Viewer, Yuan et al. 2024, applies it per op):
weights are read once per op and step, activations at the compute dtype, and decode
attention reads the whole KV cache of its step. Prefill covers the vision encoder, the
projector and the LLM over the prompt (time to first token); decode the ``G - 1`` steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaling.cost.hardware import DTYPE_BYTES, GPUSpec
from scaling.cost.specs import EncoderSpec, LLMStack


def roofline(flops: Any, bytes_: Any, peak: float, bw: float) -> np.ndarray:
    """Ideal time of one op: ``max(FLOPs / peak FLOP/s, bytes / HBM bandwidth)``."""
    return np.maximum(np.asarray(flops) / peak, np.asarray(bytes_) / bw)


def decode_context(prompt_tokens: Any, decode_steps: Any) -> np.ndarray:
    """Keys attended over all decode steps: ``sum_{j=1..G'} (S + j) = G' S + G'(G'+1)/2``."""
    return decode_steps * prompt_tokens + decode_steps * (decode_steps + 1.0) / 2.0


def roofline_latency(s: LLMStack, *, gpu: GPUSpec, dtype: str, kv_dtype: str, batch: Any,
                     prompt_tokens: Any, decode_steps: Any, visual_tokens: Any,
                     encoder: EncoderSpec | None, crops: Any, projector_flops: Any,
                     projector_params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(prefill_s, decode_s)`` for ``batch`` requests of ``S`` prompt tokens and ``G'``
    decode steps. ``lin(n, k, m)`` is an ``n x k @ k x m`` product: ``2 n k m`` FLOPs,
    ``k m`` weight + ``n (k + m)`` activation elements moved."""
    peak, bw = gpu.peak_flops(dtype), gpu.hbm_bytes_per_s
    wb = ab = DTYPE_BYTES[dtype]
    kvb = DTYPE_BYTES[kv_dtype]
    b, S, steps, v = batch, prompt_tokens, decode_steps, visual_tokens
    L, h, qd, kd, W = s.layers, s.hidden, s.q_dim, s.kv_dim, s.vocab

    def lin(n: Any, k: Any, m: Any) -> np.ndarray:
        return roofline(2.0 * n * k * m, k * m * wb + n * (k + m) * ab, peak, bw)

    def layer_linears(n: Any) -> np.ndarray:
        mlp = s.gated_mlp * lin(n, h, s.intermediate) + lin(n, h, s.intermediate) \
            + lin(n, s.intermediate, h)
        return lin(n, h, qd) + 2.0 * lin(n, h, kd) + lin(n, qd, h) + mlp

    n_pre = b * S
    t_attn_pre = roofline(b * S * (S + 1.0) / 2.0 * 4.0 * qd,
                          n_pre * (2.0 * qd + 2.0 * kd) * ab, peak, bw)
    t_prefill = L * (layer_linears(n_pre) + t_attn_pre) + lin(b, h, W)
    t_step = L * layer_linears(b) + lin(b, h, W)
    t_attn_dec = L * decode_context(S, steps) * np.maximum(4.0 * b * qd / peak,
                                                           2.0 * b * kd * kvb / bw)
    t_decode = steps * t_step + t_attn_dec
    t_vision: Any = 0.0
    if encoder is not None:
        e = encoder
        c, m = float(e.hidden), float(e.intermediate)
        imgs = b * crops
        nt = imgs * e.tokens
        t_layer = 4.0 * lin(nt, c, c) + lin(nt, c, m) + lin(nt, m, c) + roofline(
            4.0 * imgs * e.tokens**2 * c, nt * 4.0 * c * ab, peak, bw)
        t_vision = e.layers_used * t_layer + lin(imgs * e.patches,
                                                e.channels * e.patch_size**2, c)
        t_vision = t_vision + roofline(b * projector_flops, projector_params * wb + b * (
            crops * e.patches * c + v * h) * ab, peak, bw)
    return t_vision + t_prefill, t_decode
