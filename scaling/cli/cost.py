"""``scaling cost``: price one VLM request (FLOPs, memory, roofline latency)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from scaling.cli import app
from scaling.cli._common import console, guarded, print_json


def _resolve(llm: str | None, hf_config: Path | None, encoder: str | None,
             projector: str | None, visual_tokens: int | None, image_size: str | None,
             tiling: str = "auto", frames: int = 1):
    """Turn the options into (LLMSpec, EncoderSpec | None, projector, V, crops): V and crops
    for all ``frames`` of the request."""
    from scaling.cost.catalog import get_encoder, get_llm
    from scaling.cost.specs import EncoderSpec, VLMSpec, from_hf_config
    from scaling.cost.tokens import image_tokens
    from scaling.errors import ScalingError

    if (llm is None) == (hf_config is None):
        raise ScalingError("give exactly one of --llm NAME or --hf-config PATH")
    enc = get_encoder(encoder) if encoder is not None else None
    if hf_config is not None:
        spec = from_hf_config(hf_config)
        if isinstance(spec, EncoderSpec):
            raise ScalingError(f"{hf_config} is a vision-encoder config; pass it as the "
                               "LLM's config (a causal LM or LLaVA-style VLM config.json)")
        if isinstance(spec, VLMSpec):
            enc = enc or spec.encoder
            spec = spec.llm
    else:
        spec = get_llm(llm)
    if visual_tokens is not None and image_size is not None:
        raise ScalingError("give --visual-tokens or --image-size, not both")
    if frames < 1:
        raise ScalingError(f"--frames must be >= 1, got {frames}")
    if image_size is not None:
        if enc is None:
            raise ScalingError("--image-size needs --encoder (the patch size comes from it)")
        counted = image_tokens(enc, image_size, tiling=tiling, frames=frames)
        enc = dataclasses.replace(enc, image_size=counted.encoder_image_size)
        return spec, enc, projector, counted.visual_tokens, counted.crops
    if visual_tokens is None:
        if enc is None:
            raise ScalingError("give --visual-tokens V (or --encoder NAME to use its patches)")
        visual_tokens = enc.patches
    if visual_tokens < 1:
        raise ScalingError(f"--visual-tokens must be >= 1, got {visual_tokens}")
    return spec, enc, projector, visual_tokens * frames, frames


def _payload(c: Any, *, encoder: Any, visual: int, text: int, gen: int, batch: int,
             crops: int = 1, frames: int = 1) -> dict:
    out: dict[str, Any] = {
        "llm": c.llm,
        "encoder": encoder.name if encoder is not None else None,
        "projector": c.projector,
        "cost_model": "exact",
        "visual_tokens": visual,
        "crops": crops,
        "frames": frames,
        "text_tokens": text,
        "gen_tokens": gen,
        "batch": batch,
        "dtype": c.dtype,
        "gpu": c.gpu,
        "params": {"llm": c.llm_params, "llm_non_embedding": c.llm_params_non_embedding,
                   "vision": c.vision_params},
        "flops": {"total": c.flops_total, "prefill": c.flops_prefill, "decode": c.flops_decode,
                  "vision": c.flops_vision, "encoder": c.flops_encoder,
                  "projector": c.flops_projector, "llm_attention": c.flops_attention},
        "flops_full_attention": {"total": c.flops_full_attention_total},
        "flops_paper": {"total": c.flops_paper, "formula": "2*N*(Q+V)",
                        "llm_params": c.llm_params},
        "prompt_tokens": c.prompt_tokens,
        "cached_tokens": c.cached_tokens,
        "kv_cache_bytes": c.kv_cache_bytes,
        "weight_bytes": c.weight_bytes,
        "memory_bytes": c.memory_bytes,
    }
    if c.gpu is not None:
        out["latency_s"] = {"prefill": c.latency_s_prefill, "decode": c.latency_s_decode,
                            "total": c.latency_s_total}
        out["fits_memory"] = c.fits_memory
    return out


def _serving_payload(c: Any) -> dict:
    """The ``serving`` JSON object (DESIGN.md keys first)."""
    out = {"max_batch": c.max_batch, "kv_pool_bytes": c.kv_pool_bytes,
           "kv_bytes_per_request": c.kv_bytes_per_request, "throughput_rps": c.throughput_rps,
           "gpu_seconds_per_request": c.gpu_seconds_per_request, "ttft_s": c.ttft_s,
           "tpot_s": c.tpot_s, "gpus": c.gpus}
    if c.usd_per_million is not None:
        out["usd_per_million"] = c.usd_per_million
    out.update(gpu=c.gpu, dtype=c.dtype, kv_dtype=c.kv_dtype, mfu=c.mfu, mbu=c.mbu,
               gpu_memory_utilization=c.gpu_memory_utilization,
               weight_bytes_per_gpu=c.weight_bytes_per_gpu,
               activation_reserve_bytes=c.activation_reserve_bytes,
               max_batch_memory=c.max_batch_memory, step_s=c.step_s,
               step_compute_s=c.step_compute_s, step_memory_s=c.step_memory_s,
               prefill_s=c.prefill_s, decode_tokens_per_s=c.decode_tokens_per_s,
               prefill_share=c.prefill_share, binding=c.binding,
               bytes="per GPU", cost_model="serving (continuous batching, roofline)")
    return out


def _serving_table(p: dict) -> None:
    from rich.table import Table

    from scaling.units import format_quantity as fq

    sv = p["serving"]
    t = Table(title=f"Serving: {p['llm']} on {sv['gpus']} x {sv['gpu']} "
              f"(V={p['visual_tokens']} Q={p['text_tokens']} G={p['gen_tokens']})",
              title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("note", style="dim")
    t.add_row("weights per GPU", fq(sv["weight_bytes_per_gpu"], unit="B"), sv["dtype"])
    t.add_row("activation reserve", fq(sv["activation_reserve_bytes"], unit="B"),
              "one 8192-token prefill chunk + 1 GB")
    t.add_row("KV pool per GPU", fq(sv["kv_pool_bytes"], unit="B"),
              f"{sv['gpu_memory_utilization']:g} x memory - weights - reserve")
    t.add_row("KV per request", fq(sv["kv_bytes_per_request"], unit="B"),
              f"per GPU, V+Q+G in 16-token blocks, {sv['kv_dtype']}")
    t.add_row("batch", f"{sv['max_batch']:g}",
              f"KV pool holds {sv['max_batch_memory']:g}")
    t.add_row("decode step", f"{sv['step_s'] * 1e3:.2f} ms",
              f"compute {sv['step_compute_s'] * 1e3:.2f} ms, memory "
              f"{sv['step_memory_s'] * 1e3:.2f} ms")
    t.add_row("prefill per request", f"{sv['prefill_s'] * 1e3:.2f} ms",
              f"vision + LLM, compute-bound; {sv['prefill_share']:.0%} of GPU time")
    t.add_row("throughput", f"{sv['throughput_rps']:.2f} req/s",
              f"{sv['decode_tokens_per_s']:.0f} decode tok/s; binding: {sv['binding']}")
    t.add_row("GPU-seconds / request", f"{sv['gpu_seconds_per_request']:.4g} s",
              f"mfu {sv['mfu']:.3g}, mbu {sv['mbu']:.3g}")
    t.add_row("TTFT", f"{sv['ttft_s'] * 1e3:.2f} ms", "no queueing")
    tpot = sv["tpot_s"]
    t.add_row("TPOT", "-" if tpot is None or tpot != tpot else f"{tpot * 1e3:.2f} ms",
              "decode step + interleaved prefills")
    if "usd_per_million" in sv:
        t.add_row("$ per 1M requests", f"{sv['usd_per_million']:.2f}", "")
    console.print(t)


def _table(p: dict, gpu_memory_gb: float | None) -> None:
    from rich.table import Table

    from scaling.units import format_quantity as fq

    t = Table(title=f"Inference cost: {p['llm']}"
              + (f" + {p['encoder']}" if p["encoder"] else ""), title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("note", style="dim")
    params = p["params"]
    t.add_row("LLM parameters", fq(params["llm"]),
              f"{fq(params['llm_non_embedding'])} non-embedding")
    if p["encoder"]:
        t.add_row("vision parameters", fq(params["vision"]), f"projector: {p['projector']}")
    t.add_row("tokens", f"V={p['visual_tokens']} Q={p['text_tokens']} G={p['gen_tokens']}",
              f"batch {p['batch']}, prompt S={p['prompt_tokens']:g}")
    f = p["flops"]
    t.add_row("FLOPs total (exact)", fq(f["total"], unit="FLOP"),
              "vision + prefill + decode; causal attention")
    t.add_row("  vision", fq(f["vision"], unit="FLOP"),
              f"encoder {fq(f['encoder'])} + projector {fq(f['projector'])}")
    t.add_row("  prefill", fq(f["prefill"], unit="FLOP"), "lm_head at the last position")
    t.add_row("  decode", fq(f["decode"], unit="FLOP"), "G-1 steps over a growing cache")
    t.add_row("FLOPs full attention", fq(p["flops_full_attention"]["total"], unit="FLOP"),
              "FlopCounterMode convention (S^2 attention, all logits)")
    t.add_row("FLOPs paper", fq(p["flops_paper"]["total"], unit="FLOP"), "paper: 2*N*(Q+V)")
    t.add_row("KV cache", fq(p["kv_cache_bytes"], unit="B"),
              f"{p['cached_tokens']:g} tokens, {p['dtype']}")
    t.add_row("weights", fq(p["weight_bytes"], unit="B"), p["dtype"])
    fits = ""
    if "fits_memory" in p:
        fits = f"{'fits' if p['fits_memory'] else 'does NOT fit'} in {gpu_memory_gb:g} GB"
    t.add_row("memory (weights + KV)", fq(p["memory_bytes"], unit="B"), fits)
    if "latency_s" in p:
        lat = p["latency_s"]
        t.add_row("latency prefill", f"{lat['prefill'] * 1e3:.2f} ms",
                  f"roofline on {p['gpu']}, time to first token")
        t.add_row("latency decode", f"{lat['decode'] * 1e3:.2f} ms", "roofline")
        t.add_row("latency total", f"{lat['total'] * 1e3:.2f} ms", "ideal lower bound")
    console.print(t)


@app.command("cost")
@guarded
def cost(
    llm: Annotated[str | None, typer.Option("--llm", help="Catalog LLM, e.g. qwen1.5-7b.")] = None,
    hf_config: Annotated[Path | None, typer.Option(
        "--hf-config", help="A config.json (LLM or LLaVA-style VLM).")] = None,
    encoder: Annotated[str | None, typer.Option(
        "--encoder", help="Vision encoder, e.g. clip-vit-l-14-336.")] = None,
    projector: Annotated[str | None, typer.Option(
        "--projector",
        help="linear|mlp2x_gelu|avgpool|conv_attn|queries (default: mlp2x_gelu when V >= "
             "the encoder's patches, else the paper's conv_attn compressor).")] = None,
    visual_tokens: Annotated[int | None, typer.Option(
        "--visual-tokens", help="Visual tokens per image reaching the LLM.")] = None,
    image_size: Annotated[str | None, typer.Option(
        "--image-size", help="Image size in px, PIXELS or WIDTHxHEIGHT (needs --encoder); "
        "larger than the encoder's input: LLaVA-NeXT anyres tiling.")] = None,
    tiling: Annotated[str, typer.Option(
        "--tiling", help="auto|anyres|native: how --image-size becomes tokens.")] = "auto",
    frames: Annotated[int, typer.Option(
        "--frames", help="Video frames per request (tokens and crops per frame x frames).")] = 1,
    text_tokens: Annotated[int, typer.Option("--text-tokens", help="Text prompt tokens.")] = 0,
    gen_tokens: Annotated[int, typer.Option("--gen-tokens", help="Tokens to generate.")] = 0,
    batch: Annotated[int, typer.Option("--batch", help="Requests served together.")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="fp32|bf16|fp16|fp8|int8.")] = "bf16",
    gpu: Annotated[str | None, typer.Option(
        "--gpu", help="h100|h200|a100-80gb|l40s|rtx4090|b200.")] = None,
    serving: Annotated[bool, typer.Option(
        "--serving", help="Add the continuous-batching serving cost (needs --gpu).")] = False,
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs (tensor parallel).")] = 1,
    gpu_memory_utilization: Annotated[float, typer.Option(
        "--gpu-memory-utilization", help="Share of GPU memory used, as vLLM.")] = 0.9,
    max_batch: Annotated[int | None, typer.Option(
        "--max-batch", help="Cap on running requests (vLLM max_num_seqs).")] = None,
    mfu: Annotated[float | None, typer.Option("--mfu", help="Share of peak FLOP/s.")] = None,
    mbu: Annotated[float | None, typer.Option("--mbu", help="Share of HBM bandwidth.")] = None,
    gpu_hour_usd: Annotated[float | None, typer.Option(
        "--gpu-hour-usd", help="Price of one GPU-hour, for dollars per 1M requests.")] = None,
    hardware_profile: Annotated[Path | None, typer.Option(
        "--hardware-profile", help="mfu/mbu from `scaling calibrate -o`.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Exact inference FLOPs, memory and roofline latency of one VLM request."""
    from scaling.cost.flops import inference_cost
    from scaling.cost.hardware import get_gpu
    from scaling.errors import ScalingError

    for name, value, low in (("--text-tokens", text_tokens, 0), ("--gen-tokens", gen_tokens, 0),
                             ("--batch", batch, 1)):
        if value < low:
            raise ScalingError(f"{name} must be >= {low}, got {value}")
    spec, enc, proj, visual, crops = _resolve(llm, hf_config, encoder, projector,
                                              visual_tokens, image_size, tiling, frames)
    gspec = get_gpu(gpu) if gpu is not None else None
    result = inference_cost(spec, encoder=enc, projector=proj, visual_tokens=visual,
                            text_tokens=text_tokens, gen_tokens=gen_tokens, batch=batch,
                            crops=crops, dtype=dtype, gpu=gspec)
    payload = _payload(result, encoder=enc, visual=visual, text=text_tokens, gen=gen_tokens,
                       batch=batch, crops=crops, frames=frames)
    serving_opts = (gpus != 1, gpu_memory_utilization != 0.9, max_batch, mfu, mbu,
                    gpu_hour_usd, hardware_profile)
    if not serving and any(o not in (None, False) for o in serving_opts):
        raise ScalingError("--gpus, --gpu-memory-utilization, --max-batch, --mfu, --mbu, "
                           "--gpu-hour-usd and --hardware-profile need --serving")
    if serving:
        from scaling.cost.calibration import load_profile
        from scaling.cost.serving import serving_cost

        if gspec is None:
            raise ScalingError("--serving needs --gpu NAME (h100, h200, a100-80gb, ...)")
        eff = {"mfu": 1.0, "mbu": 1.0}
        if hardware_profile is not None:
            prof = load_profile(hardware_profile, gpu=gspec.name)
            eff = {"mfu": prof["mfu"], "mbu": prof["mbu"]}
        eff.update({k: v for k, v in (("mfu", mfu), ("mbu", mbu)) if v is not None})
        sc = serving_cost(spec, gpu=gspec, gpus=gpus, encoder=enc, projector=proj,
                          visual_tokens=visual, text_tokens=text_tokens,
                          gen_tokens=gen_tokens, crops=crops, dtype=dtype,
                          gpu_memory_utilization=gpu_memory_utilization, max_batch=max_batch,
                          usd_per_gpu_hour=gpu_hour_usd, **eff)
        payload["serving"] = _serving_payload(sc)
    if json_out:
        print_json(payload)
    elif serving:
        _serving_table(payload)
    else:
        _table(payload, gspec.memory_gb if gspec is not None else None)
