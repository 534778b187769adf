"""Serving cost: the steady state of continuous batching on ``T`` GPUs (tensor parallel).

A deployed VLM pays for GPU time. Under continuous batching (vLLM, SGLang, TensorRT-LLM) the
GPUs run decode steps over a batch of ``B`` live requests and interleave the prefill of each
new request; the KV cache of every live request stays in GPU memory for its whole
generation, so the KV cache decides ``B``. For an LLM (+ vision encoder) with ``V`` visual,
``Q`` text and ``G`` generated tokens per request (``S = V + Q``, ``D = max(G - 1, 0)``
decode steps; the prefill yields the first token), on ``T`` GPUs of memory ``M``, dense peak
``P`` FLOP/s and HBM bandwidth ``W_bw``, with efficiency factors ``mfu`` and ``mbu``:

- weights per GPU ``w = (N_llm + N_vision) b_w / T`` (tensor parallel shards every matrix);
- activation reserve per GPU ``r = C (4 h + (q + 2 k + (1 + g) I) / T) b_a + 1 GB``: the peak
  activations of one prefill chunk of ``C = 8192`` tokens (hidden states, q/k/v, the MLP's
  gate/up outputs; vLLM profiles this with ``max_num_batched_tokens``) plus 1 GB for CUDA
  graphs and workspace;
- KV pool per GPU ``pool = u M - w - r`` (``u`` = ``gpu_memory_utilization``, 0.9 as vLLM);
- KV per request per GPU at its peak length, in paged blocks of 16 tokens (vLLM's block):
  ``kv = 16 ceil((V + Q + G) / 16) * 2 L k_T d b_kv`` with ``k_T = max(kv_heads / T, 1)``
  KV heads per GPU (vLLM replicates KV heads when ``T > kv_heads``);
- batch ``B = min(floor(pool / kv), max_batch)``;
- one decode step of ``B`` requests at the mean context ``c = S + (D + 1) / 2``:
  ``t_step = max(F_step / (T mfu P), (w_read + B c kv_tok) / (mbu W_bw))`` with
  ``F_step = B F_decode / D`` (the exact decode FLOPs per step, attention included),
  ``w_read`` = the LLM weights per GPU less the input embedding (only ``B`` rows are read;
  the vision encoder is not read in decode)
  and ``kv_tok = 2 L k_T d b_kv`` bytes per cached token per GPU (roofline: Williams et al.
  2009; LLM-Viewer, Yuan et al. 2024);
- prefill is compute-bound (chunked prefill batches thousands of tokens, so weight reads are
  amortised): ``t_pre = (F_prefill + F_vision) / (T mfu P)``, the vision encoder once per
  image crop;
- steady state: per request the GPUs spend ``t_pre`` on its prefill and ``D t_step / B`` on
  its share of decode steps, so the throughput is
  ``X = 1 / (t_pre + D t_step / B)`` requests/s;
- GPU-seconds per request ``T / X``; dollars per 1M requests ``1e6 (T / X) usd_per_gpu_hour /
  3600``;
- time to first token ``TTFT = t_pre`` (no queueing); time per output token, by Little's law
  (a request lives ``B / X``): ``TPOT = (B / X - t_pre) / D = t_step + (B - 1) t_pre / D``.

Not modelled: tensor-parallel all-reduce time, scheduler and sampling overheads, preemption,
prefix caching; every request is sized at its peak length (vLLM allocates blocks as a request
grows, so it fits somewhat more). With ``mfu = mbu = 1`` this is an ideal upper bound on
throughput; :mod:`scaling.cli.calibrate` fits ``mfu`` and ``mbu`` to a measured vLLM run.

Everything is vectorised numpy: the LLM may be an :class:`~scaling.cost.specs.LLMStack`, and
``visual_tokens``, ``text_tokens``, ``gen_tokens`` and ``crops`` arrays broadcast together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling.cost.catalog import as_stack
from scaling.cost.flops import _nonneg, _out, inference_cost
from scaling.cost.hardware import DTYPE_BYTES, GPUSpec, get_gpu, normalise_dtype
from scaling.cost.specs import EncoderSpec, LLMSpec, LLMStack, ProjectorSpec
from scaling.errors import ScalingError

Number = float | np.ndarray

#: vLLM defaults: KV blocks of 16 tokens, 90% of GPU memory, prefill chunks of 8192 tokens.
BLOCK_TOKENS = 16
GPU_MEMORY_UTILIZATION = 0.9
PREFILL_CHUNK_TOKENS = 8192
WORKSPACE_BYTES = 1e9
#: What limits throughput: prefill or decode FLOPs ("compute"); decode weight + KV reads with
#: the batch held down by the KV pool ("kv-memory") or by ``max_batch`` ("max-batch");
#: "memory" where not even one request fits.
BINDING = ("compute", "kv-memory", "max-batch", "memory")


@dataclass(frozen=True)
class ServingCost:
    """Steady state of continuous batching (see the module docstring for every equation).

    Bytes are per GPU (``kv_pool_bytes``, ``kv_bytes_per_request``, ``weight_bytes_per_gpu``);
    times in seconds; ``throughput_rps`` for the whole group of ``gpus`` GPUs."""

    llm: str
    gpu: str
    gpus: int
    dtype: str
    kv_dtype: str
    mfu: float
    mbu: float
    gpu_memory_utilization: float
    weight_bytes_per_gpu: Number
    activation_reserve_bytes: Number
    kv_pool_bytes: Number
    kv_bytes_per_request: Number
    max_batch_memory: Number  # floor(pool / kv)
    max_batch: Number  # min(max_batch_memory, the cap)
    step_s: Number  # one decode step of max_batch requests
    step_compute_s: Number
    step_memory_s: Number
    prefill_s: Number  # per request, vision included
    decode_steps: Number  # D = max(G - 1, 0)
    throughput_rps: Number
    gpu_seconds_per_request: Number
    ttft_s: Number
    tpot_s: Number  # NaN when G <= 1 (no decode step)
    decode_tokens_per_s: Number  # B / t_step
    prefill_share: Number  # t_pre / (t_pre + D t_step / B): share of GPU time in prefill
    binding: Any  # one of BINDING (an array of str for vector inputs)
    usd_per_million: Number | None = None


def tensor_parallel_ok(heads: Any, kv_heads: Any, gpus: int) -> np.ndarray:
    """Whether ``gpus``-way tensor parallel works: ``heads % gpus == 0`` and ``kv_heads``
    divisible by ``gpus`` or dividing it (vLLM's rule; KV heads are replicated then)."""
    heads, kv = np.asarray(heads), np.asarray(kv_heads)
    return (heads % gpus == 0) & ((kv % gpus == 0) | (gpus % kv == 0))


def tensor_parallel_check(llm: LLMSpec | LLMStack | str, gpus: int) -> None:
    """:func:`tensor_parallel_ok` or a :class:`ScalingError` naming the GPU counts that work."""
    if not isinstance(gpus, (int, np.integer)) or isinstance(gpus, bool) or gpus < 1:
        raise ScalingError(f"gpus must be a positive integer, got {gpus!r}")
    s = as_stack(llm)
    heads, kv = np.atleast_1d(s.heads), np.atleast_1d(s.kv_heads)
    bad = ~tensor_parallel_ok(heads, kv, gpus)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        ok = [t for t in range(1, 17) if tensor_parallel_ok(heads[i], kv[i], t)]
        raise ScalingError(f"{s.names[min(i, len(s.names) - 1)]}: {gpus} GPUs do not divide "
                           f"its {heads[i]:g} attention heads / {kv[i]:g} KV heads for tensor "
                           f"parallel; use --gpus in {', '.join(map(str, ok))}")


def step_times(s: LLMStack, *, batch: Any, flops_per_request: Any, context: Any,
               weights_per_gpu: Any, kv_bytes_per_token: Any, gpus: int, peak: float,
               bandwidth: float, weight_bytes: float) -> tuple[np.ndarray, np.ndarray]:
    """``(compute_s, memory_s)`` of one decode step of ``batch`` requests at ``context``
    cached tokens each: ``B F / (T P)`` and ``(w_read + B c kv_tok) / W_bw``, where
    ``w_read`` is ``weights_per_gpu`` (the LLM's) less the untied input embedding (a lookup
    reads only ``B`` rows). The step takes the larger of the two."""
    embed = s.vocab * s.hidden * (1.0 - s.tied_embeddings) * weight_bytes / gpus
    compute = np.asarray(batch) * flops_per_request / gpus / peak
    memory = (np.asarray(weights_per_gpu) - embed
              + np.asarray(batch) * context * kv_bytes_per_token) / bandwidth
    return compute, memory


def serving_cost(
    llm: LLMSpec | LLMStack | str,
    *,
    gpu: GPUSpec | str,
    visual_tokens: Any,
    text_tokens: Any = 0,
    gen_tokens: Any = 1,
    encoder: EncoderSpec | str | None = None,
    projector: ProjectorSpec | str | None = None,
    crops: Any = 1,
    gpus: int = 1,
    dtype: str = "bf16",
    kv_dtype: str | None = None,
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION,
    max_batch: Any = None,
    mfu: float = 1.0,
    mbu: float = 1.0,
    usd_per_gpu_hour: float | None = None,
    strict: bool = True,
    check_tp: bool = True,
) -> ServingCost:
    """Throughput, GPU-seconds, TTFT/TPOT and dollars of serving one request shape.

    ``strict`` raises when a configuration does not fit one request in memory (saying how
    much it needs); ``strict=False`` returns zero throughput and infinite cost there instead,
    for the planner's vectorised search (which also skips the tensor-parallel check with
    ``check_tp=False`` and masks invalid degrees itself)."""
    g_spec = get_gpu(gpu)
    dtype = normalise_dtype(dtype)
    kv_dtype = normalise_dtype(kv_dtype) if kv_dtype is not None else dtype
    for name, value in (("gpu_memory_utilization", gpu_memory_utilization), ("mfu", mfu),
                        ("mbu", mbu)):
        if not (np.isfinite(value) and 0.0 < value <= 1.0):
            raise ScalingError(f"{name} must be in (0, 1], got {value:g}")
    if max_batch is not None:
        cap = np.asarray(max_batch, dtype=float)
        if np.any(~np.isfinite(cap) | (cap < 1) | (cap != np.floor(cap))):
            raise ScalingError(f"max_batch must be an integer >= 1, got {max_batch!r}")
    if usd_per_gpu_hour is not None and not (np.isfinite(usd_per_gpu_hour)
                                             and usd_per_gpu_hour > 0):
        raise ScalingError(f"usd_per_gpu_hour must be > 0, got {usd_per_gpu_hour:g}")
    s = as_stack(llm)
    if check_tp:
        tensor_parallel_check(s, gpus)
    T = float(gpus)
    g = _nonneg(gen_tokens, "gen_tokens")
    cost = inference_cost(s, encoder=encoder, projector=projector, visual_tokens=visual_tokens,
                          text_tokens=text_tokens, gen_tokens=g, crops=crops, dtype=dtype,
                          kv_dtype=kv_dtype)
    wb, kvb = DTYPE_BYTES[dtype], DTYPE_BYTES[kv_dtype]
    peak = g_spec.peak_flops(dtype) * mfu
    bw = g_spec.hbm_bytes_per_s * mbu

    # ---- memory per GPU
    S = np.asarray(cost.prompt_tokens)
    D = np.maximum(g - 1.0, 0.0)
    weights = np.asarray(cost.weight_bytes) / T
    kv_heads_gpu = np.maximum(s.kv_heads / T, 1.0)
    kv_tok = 2.0 * s.layers * kv_heads_gpu * s.head_dim * kvb
    reserve = PREFILL_CHUNK_TOKENS * (4.0 * s.hidden + (s.q_dim + 2.0 * s.kv_dim + (
        1.0 + s.gated_mlp) * s.intermediate) / T) * wb + WORKSPACE_BYTES
    pool = gpu_memory_utilization * g_spec.memory_bytes - weights - reserve
    peak_len = BLOCK_TOKENS * np.ceil((S + g) / BLOCK_TOKENS)
    kv_req = peak_len * kv_tok
    b_mem = np.floor(np.maximum(pool, 0.0) / kv_req)
    if strict and np.any(b_mem < 1):
        i = int(np.flatnonzero(np.broadcast_to(b_mem < 1, np.shape(b_mem)).ravel())[0])
        need = np.broadcast_to(weights + reserve + kv_req, np.shape(b_mem)).ravel()[i]
        raise ScalingError(
            f"{cost.llm} does not fit on {gpus} x {g_spec.name} even at batch 1: it needs "
            f"{need / 1e9:.1f} GB per GPU (weights, activation reserve and one request's KV "
            f"cache) but {gpu_memory_utilization:g} x {g_spec.memory_gb:g} GB = "
            f"{gpu_memory_utilization * g_spec.memory_gb:.1f} GB is usable; use more --gpus, "
            "a larger GPU or a smaller dtype")
    batch = b_mem if max_batch is None else np.minimum(b_mem, cap)

    # ---- one decode step at the batch, and the prefill
    ctx = S + (D + 1.0) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        f_step_req = np.where(D > 0, np.asarray(cost.flops_decode) / np.maximum(D, 1.0), 0.0)
    llm_weights = np.asarray(cost.llm_params) * wb / T  # decode does not read the encoder
    t_comp, t_mem = step_times(s, batch=batch, flops_per_request=f_step_req, context=ctx,
                               weights_per_gpu=llm_weights, kv_bytes_per_token=kv_tok, gpus=gpus,
                               peak=peak, bandwidth=bw, weight_bytes=wb)
    t_step = np.maximum(t_comp, t_mem)
    t_pre = (np.asarray(cost.flops_prefill) + np.asarray(cost.flops_vision)) / T / peak
    with np.errstate(divide="ignore", invalid="ignore"):
        decode_per_req = np.where(D > 0, D * t_step / np.maximum(batch, 1.0), 0.0)
        per_req = t_pre + decode_per_req
        fits = batch >= 1
        rps = np.where(fits, 1.0 / per_req, 0.0)
        gpu_s = np.where(fits, T * per_req, np.inf)
        tpot = np.where((D > 0) & fits, t_step + (batch - 1.0) * t_pre / np.maximum(D, 1.0),
                        np.nan)
        share = np.where(fits, t_pre / per_req, np.nan)
        tok_s = np.where(fits & (D > 0), batch / t_step, 0.0)
    capped = (max_batch is not None) & (batch < b_mem)
    binding = np.where(~fits, "memory", np.where(
        (share >= 0.5) | (t_comp >= t_mem), "compute",
        np.where(capped, "max-batch", "kv-memory")))
    shape = np.broadcast(S, D, batch, t_step, rps).shape
    binding_out: Any = str(binding) if np.ndim(binding) == 0 else np.broadcast_to(binding, shape)
    usd = None
    if usd_per_gpu_hour is not None:
        usd = _out(gpu_s * 1e6 * usd_per_gpu_hour / 3600.0, shape)
    return ServingCost(
        llm=cost.llm, gpu=g_spec.name, gpus=int(gpus), dtype=dtype, kv_dtype=kv_dtype,
        mfu=float(mfu), mbu=float(mbu), gpu_memory_utilization=float(gpu_memory_utilization),
        weight_bytes_per_gpu=_out(weights, shape), activation_reserve_bytes=_out(reserve, shape),
        kv_pool_bytes=_out(pool, shape), kv_bytes_per_request=_out(kv_req, shape),
        max_batch_memory=_out(b_mem, shape), max_batch=_out(batch, shape),
        step_s=_out(t_step, shape), step_compute_s=_out(t_comp, shape),
        step_memory_s=_out(t_mem, shape), prefill_s=_out(t_pre, shape),
        decode_steps=_out(D, shape),
        throughput_rps=_out(rps, shape), gpu_seconds_per_request=_out(gpu_s, shape),
        ttft_s=_out(t_pre, shape), tpot_s=_out(tpot, shape),
        decode_tokens_per_s=_out(tok_s, shape), prefill_share=_out(share, shape),
        binding=binding_out, usd_per_million=usd,
    )


def throughput_at(c: ServingCost, mfu: Any, mbu: Any) -> np.ndarray:
    """Throughput (requests/s) of the configuration ``c`` priced again with other efficiency
    factors (arrays broadcast): compute times scale with ``c.mfu / mfu``, memory times with
    ``c.mbu / mbu``; the batch does not depend on them."""
    fc = c.mfu / np.asarray(mfu, dtype=float)
    fm = c.mbu / np.asarray(mbu, dtype=float)
    step = np.maximum(np.asarray(c.step_compute_s) * fc, np.asarray(c.step_memory_s) * fm)
    batch = np.asarray(c.max_batch)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_req = np.asarray(c.prefill_s) * fc + np.where(
            np.asarray(c.decode_steps) > 0, c.decode_steps * step / np.maximum(batch, 1.0), 0.0)
        return np.where(batch >= 1, 1.0 / per_req, 0.0)
