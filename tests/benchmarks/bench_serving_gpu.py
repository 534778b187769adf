"""Measure LLM serving speed on a GPU: batched prefill and per-step decode, random weights.

Run on a GPU machine (prints a table, writes JSON)::

    python tests/benchmarks/bench_serving_gpu.py --llm qwen2.5-7b -o results/serving_gpu.json
    python tests/benchmarks/bench_serving_gpu.py --tiny -o /tmp/tiny.json        # CPU check

Two backends, chosen automatically:

- ``vllm`` (when ``import vllm`` works): ``vllm.LLM(load_format="dummy")`` (random weights, no
  download) on the catalog config, offline throughput of ``n`` requests of ``V + Q`` prompt
  tokens and ``G`` generated tokens (``ignore_eos``), as ``vllm bench throughput`` does.
- ``torch`` (otherwise): the decoder of the catalog config (Qwen2/Llama: q/k/v bias for Qwen,
  RoPE, GQA, SwiGLU, RMSNorm, untied lm_head) written out in plain PyTorch with random bf16
  weights, a preallocated KV cache ``[B, kv_heads, C, head_dim]`` per layer and every step
  captured in a CUDA graph (as vLLM does for decode), so the timings are GPU time rather than
  Python launch overhead. A Hugging Face eager ``generate`` would be launch-bound at small
  batch; the test suite checks this module's logits against ``transformers``'
  ``Qwen2ForCausalLM`` with the same weights.

Grid (issue 13): ``V`` in {1, 64, 576} visual tokens (as prompt tokens), ``Q = 50`` text
tokens, ``G`` in {16, 256}. Prefill: one batched forward over ``B x (V + Q)`` tokens writing
the cache, logits at the last position. Decode: one step of ``B`` tokens attending over
``C = V + Q + G/2`` cached tokens (the mean context of the generation), for ``B`` up to the
largest batch whose cache fits. Times are medians over CUDA-event-timed graph replays. It also
records a bf16 matmul and a device copy, the card's practical peaks.

Standalone on purpose (the GPU machine has torch but not this package); the comparison with
the cost model is ``scaling.cost.serving`` (see ``bench_serving_compare.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

#: Catalog configs (Hugging Face config.json values; the same as scaling's catalog).
CONFIGS = {
    "qwen2.5-7b": dict(layers=28, hidden=3584, heads=28, kv_heads=4, head_dim=128,
                       intermediate=18944, vocab=152064, qkv_bias=True, rope_theta=1e6),
    "qwen2.5-1.5b": dict(layers=28, hidden=1536, heads=12, kv_heads=2, head_dim=128,
                         intermediate=8960, vocab=151936, qkv_bias=True, rope_theta=1e6),
    "llama-3.1-8b": dict(layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128,
                         intermediate=14336, vocab=128256, qkv_bias=False, rope_theta=5e5),
    "tiny": dict(layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128,
                 vocab=256, qkv_bias=True, rope_theta=1e6),
}


def build(torch, cfg: dict, device, dtype, seed: int = 0):
    """The decoder's weights as a dict of tensors (random, std 0.02, like HF's init)."""
    g = None if device.type == "meta" else torch.Generator(device=device).manual_seed(seed)
    h, q, k, m = cfg["hidden"], cfg["heads"] * cfg["head_dim"], \
        cfg["kv_heads"] * cfg["head_dim"], cfg["intermediate"]

    def rnd(*shape):
        return (torch.randn(*shape, generator=g, device=device, dtype=torch.float32)
                * 0.02).to(dtype)

    layers = []
    for _ in range(cfg["layers"]):
        layer = dict(ln1=torch.ones(h, device=device, dtype=dtype),
                     ln2=torch.ones(h, device=device, dtype=dtype),
                     wq=rnd(q, h), wk=rnd(k, h), wv=rnd(k, h), wo=rnd(h, q),
                     wg=rnd(m, h), wu=rnd(m, h), wd=rnd(h, m))
        if cfg["qkv_bias"]:
            layer.update(bq=rnd(q), bk=rnd(k), bv=rnd(k))
        layers.append(layer)
    return dict(embed=rnd(cfg["vocab"], h), norm=torch.ones(h, device=device, dtype=dtype),
                lm_head=rnd(cfg["vocab"], h), layers=layers)


def n_params(w) -> int:
    """Parameter count of the weight dict (equals scaling.cost llm_params for the config)."""
    total = w["embed"].numel() + w["norm"].numel() + w["lm_head"].numel()
    return total + sum(t.numel() for layer in w["layers"] for t in layer.values())


def forward(torch, cfg, w, tokens, cache, start: int, last_only: bool = True):
    """Logits of ``tokens [B, T]`` at positions ``start..start+T-1``, writing K/V into
    ``cache`` (a list of (k, v) tensors ``[B, kv_heads, C, head_dim]``); ``T > 1`` is a causal
    prefill from ``start = 0``, ``T = 1`` a decode step over the ``start + 1`` cached tokens."""
    F = torch.nn.functional
    B, T = tokens.shape
    H, K, d = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    eps = 1e-6
    pos = torch.arange(start, start + T, device=tokens.device, dtype=torch.float32)
    inv = cfg["rope_theta"] ** (-torch.arange(0, d, 2, device=tokens.device,
                                              dtype=torch.float32) / d)
    ang = torch.outer(pos, inv)
    cos = torch.cat([ang.cos(), ang.cos()], -1).to(w["embed"].dtype)
    sin = torch.cat([ang.sin(), ang.sin()], -1).to(w["embed"].dtype)

    def rope(x):  # x [B, heads, T, d]; rotate_half convention of HF Llama/Qwen2
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def rms(x, weight):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(var + eps)).to(x.dtype) * weight

    x = F.embedding(tokens, w["embed"])
    for i, lw in enumerate(w["layers"]):
        y = rms(x, lw["ln1"])
        q = F.linear(y, lw["wq"], lw.get("bq")).view(B, T, H, d).transpose(1, 2)
        k = F.linear(y, lw["wk"], lw.get("bk")).view(B, T, K, d).transpose(1, 2)
        v = F.linear(y, lw["wv"], lw.get("bv")).view(B, T, K, d).transpose(1, 2)
        q, k = rope(q), rope(k)
        kc, vc = cache[i]
        kc[:, :, start:start + T] = k
        vc[:, :, start:start + T] = v
        if T == 1:  # decode: each KV head's H/K query heads attend to all start+1 keys
            qg = q.reshape(B, K, H // K, d)
            a = F.scaled_dot_product_attention(qg, kc[:, :, :start + 1], vc[:, :, :start + 1])
            a = a.reshape(B, H, 1, d)
        else:
            rep = H // K
            a = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1),
                                               v.repeat_interleave(rep, 1), is_causal=True)
        x = x + F.linear(a.transpose(1, 2).reshape(B, T, H * d), lw["wo"])
        y = rms(x, lw["ln2"])
        x = x + F.linear(F.silu(F.linear(y, lw["wg"])) * F.linear(y, lw["wu"]), lw["wd"])
    x = rms(x[:, -1:] if last_only else x, w["norm"])
    return F.linear(x, w["lm_head"])


def make_cache(torch, cfg, batch: int, length: int, device, dtype):
    shape = (batch, cfg["kv_heads"], length, cfg["head_dim"])
    return [(torch.zeros(shape, device=device, dtype=dtype),
             torch.zeros(shape, device=device, dtype=dtype)) for _ in range(cfg["layers"])]


def timed(torch, fn, *, cuda: bool, reps: int) -> float:
    """Median seconds of ``fn()``: a CUDA graph replay timed with events on a GPU, a plain
    call timed with perf_counter on the CPU."""
    if not cuda:
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del graph
    return statistics.median(times)


def safe_timed(torch, fn, *, cuda: bool, reps: int) -> float:
    """:func:`timed`, NaN (and a note on stderr) when the GPU runs out of memory."""
    try:
        return timed(torch, fn, cuda=cuda, reps=reps)
    except torch.OutOfMemoryError as exc:
        print(f"out of memory: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
        return float("nan")
    finally:
        if cuda:
            torch.cuda.empty_cache()


def microbench(torch, device) -> dict:
    """Practical peaks: a bf16 8192^3 matmul (FLOP/s) and a 4 GB device copy (bytes/s)."""
    if device.type != "cuda":
        return {}
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    t_mm = timed(torch, lambda: a @ b, cuda=True, reps=10)
    src = torch.empty(2 * 1024**3, device=device, dtype=torch.uint8)
    dst = torch.empty_like(src)
    t_cp = timed(torch, lambda: dst.copy_(src), cuda=True, reps=10)
    return {"matmul_bf16_flops_per_s": 2 * n**3 / t_mm,
            "copy_bytes_per_s": 2 * src.numel() / t_cp}


def run_torch(args, cfg: dict) -> dict:
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    t0 = time.perf_counter()
    w = build(torch, cfg, device, dtype)
    out = {"backend": "torch-cudagraph" if cuda else "torch-cpu",
           "device": torch.cuda.get_device_name() if cuda else "cpu",
           "device_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda
           else None,
           "torch": torch.__version__, "dtype": "bf16" if cuda else "fp32",
           "params": n_params(w), "build_s": time.perf_counter() - t0,
           "microbench": microbench(torch, device), "prefill": [], "decode": []}
    q_tok, vs, gs = args.text_tokens, args.visual_tokens, args.gen_tokens
    peak_ctx = max(vs) + q_tok + max(gs)
    kv_per_token = 2 * cfg["layers"] * cfg["kv_heads"] * cfg["head_dim"] * (2 if cuda else 4)
    if cuda:
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info()
        fit = int((free - args.reserve_gb * 1e9) // (kv_per_token * peak_ctx))
        batches = sorted({b for b in args.decode_batches if b <= fit} | {min(fit, 4096)})
    else:
        fit = max(args.decode_batches)
        batches = sorted(args.decode_batches)
    out["kv_bytes_per_token"] = kv_per_token
    out["largest_cache_batch"] = fit
    bmax = max(batches + [max(args.prefill_batches)])
    cache = make_cache(torch, cfg, bmax, peak_ctx, device, dtype)
    gen = torch.Generator(device=device).manual_seed(1)
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.verbose else \
        (lambda *a: None)
    with torch.inference_mode():
        for v in vs:
            s = v + q_tok
            for b in args.prefill_batches:
                toks = torch.randint(0, cfg["vocab"], (b, s), device=device, generator=gen)
                view = [(kc[:b], vc[:b]) for kc, vc in cache]
                t = safe_timed(torch, lambda t=toks, c=view: forward(torch, cfg, w, t, c, 0),
                               cuda=cuda, reps=args.reps)
                out["prefill"].append({"batch": b, "visual_tokens": v, "text_tokens": q_tok,
                                       "prompt_tokens": s, "seconds": t})
                say(f"prefill B={b} S={s}: {t * 1e3:.2f} ms")
            for g in gs:
                ctx = s + g // 2
                for b in batches:
                    tok = torch.randint(0, cfg["vocab"], (b, 1), device=device, generator=gen)
                    view = [(kc[:b], vc[:b]) for kc, vc in cache]
                    t = safe_timed(torch, lambda t=tok, c=view, n=ctx - 1: forward(
                        torch, cfg, w, t, c, n), cuda=cuda, reps=args.reps)
                    out["decode"].append({"batch": b, "visual_tokens": v, "text_tokens": q_tok,
                                          "gen_tokens": g, "context_tokens": ctx,
                                          "seconds_per_step": t})
                    say(f"decode B={b} C={ctx}: {t * 1e3:.3f} ms/step")
    return out


def run_vllm(args, cfg: dict) -> dict:  # pragma: no cover - needs vllm and a GPU
    """Offline throughput with vLLM (random weights), one entry per (V, G)."""
    import tempfile

    from vllm import LLM, SamplingParams

    hf = {"architectures": ["Qwen2ForCausalLM" if cfg["qkv_bias"] else "LlamaForCausalLM"],
          "model_type": "qwen2" if cfg["qkv_bias"] else "llama",
          "hidden_size": cfg["hidden"], "intermediate_size": cfg["intermediate"],
          "num_hidden_layers": cfg["layers"], "num_attention_heads": cfg["heads"],
          "num_key_value_heads": cfg["kv_heads"], "head_dim": cfg["head_dim"],
          "vocab_size": cfg["vocab"], "rope_theta": cfg["rope_theta"],
          "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "torch_dtype": "bfloat16",
          "tie_word_embeddings": False, "hidden_act": "silu"}
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump(hf, fh)
    llm = LLM(model=folder, load_format="dummy", skip_tokenizer_init=True, dtype="bfloat16",
              gpu_memory_utilization=0.9, max_model_len=4096)
    out = {"backend": "vllm", "vllm_throughput": []}
    import random

    rng = random.Random(0)
    for v in args.visual_tokens:
        for g in args.gen_tokens:
            s = v + args.text_tokens
            prompts = [{"prompt_token_ids": [rng.randrange(100, cfg["vocab"] - 100)
                                             for _ in range(s)]} for _ in range(args.requests)]
            params = SamplingParams(max_tokens=g, min_tokens=g, ignore_eos=True,
                                    detokenize=False)
            t0 = time.perf_counter()
            llm.generate(prompts, params, use_tqdm=False)
            dt = time.perf_counter() - t0
            out["vllm_throughput"].append({
                "visual_tokens": v, "text_tokens": args.text_tokens, "gen_tokens": g,
                "num_requests": args.requests, "elapsed_time": dt,
                "requests_per_second": args.requests / dt,
                "output_tokens_per_second": args.requests * g / dt})
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--llm", default="qwen2.5-7b", choices=sorted(CONFIGS))
    p.add_argument("--tiny", action="store_true", help="tiny config on the CPU (a smoke run)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even with a GPU")
    p.add_argument("--backend", choices=("auto", "vllm", "torch"), default="auto")
    p.add_argument("--visual-tokens", type=int, nargs="+", default=[1, 64, 576])
    p.add_argument("--text-tokens", type=int, default=50)
    p.add_argument("--gen-tokens", type=int, nargs="+", default=[16, 256])
    p.add_argument("--prefill-batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--decode-batches", type=int, nargs="+", default=[1, 16, 64, 256, 1024])
    p.add_argument("--requests", type=int, default=1000, help="vllm backend: requests")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--reserve-gb", type=float, default=6.0,
                   help="GPU memory kept free for activations and graphs")
    p.add_argument("-o", "--output", default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.tiny:
        args.llm, args.cpu, args.backend = "tiny", True, "torch"
        args.prefill_batches, args.decode_batches, args.reps = [1, 2], [1, 4], 2
    cfg = CONFIGS[args.llm]
    backend = args.backend
    if backend == "auto":
        try:
            import vllm  # noqa: F401
            backend = "vllm"
        except ImportError:
            backend = "torch"
    t0 = time.perf_counter()
    result = run_vllm(args, cfg) if backend == "vllm" else run_torch(args, cfg)
    result.update(llm=args.llm, config=cfg, wall_s=time.perf_counter() - t0,
                  settings={"visual_tokens": args.visual_tokens, "text_tokens": args.text_tokens,
                            "gen_tokens": args.gen_tokens, "reps": args.reps})
    for row in result.get("prefill", []):
        print(f"prefill  B={row['batch']:5d} S={row['prompt_tokens']:5d} "
              f"{row['seconds'] * 1e3:9.3f} ms")
    for row in result.get("decode", []):
        tps = row["batch"] / row["seconds_per_step"]
        print(f"decode   B={row['batch']:5d} C={row['context_tokens']:5d} "
              f"{row['seconds_per_step'] * 1e3:9.3f} ms/step {tps:12.0f} tok/s")
    for row in result.get("vllm_throughput", []):
        print(f"vllm V={row['visual_tokens']} G={row['gen_tokens']}: "
              f"{row['requests_per_second']:.2f} req/s")
    if result.get("microbench"):
        mb = result["microbench"]
        print(f"matmul {mb['matmul_bf16_flops_per_s'] / 1e12:.0f} TFLOP/s, "
              f"copy {mb['copy_bytes_per_s'] / 1e12:.2f} TB/s")
    if args.output:
        text = json.dumps(result, indent=1, default=float)  # an OOM point is NaN
        tmp = args.output + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text + "\n")
        os.replace(tmp, args.output)
    return result


if __name__ == "__main__":
    main()
