"""Serving model vs measurements: the GPU run of ``bench_serving_gpu.py`` and published figures.

    python tests/benchmarks/bench_serving_compare.py [results/serving_gpu_h200_qwen2.5-7b.json ...]

1. GPU measurement (decoder with random bf16 weights, CUDA graphs; see bench_serving_gpu.py):
   every batched prefill and decode step against the roofline (mfu = mbu = 1), then against
   the roofline with ``mfu``/``mbu`` fitted on these timings (least squares in log time); and
   the continuous-batching throughput assembled from the measured parts,
   ``X = 1 / (t_prefill(32) / 32 + D t_step(B) / B)`` at the largest measured batch, against
   the model's at the same batch.
2. Published measurements (tests/data/published_serving.json): roofline vs measured, then
   calibrated on one of them (TensorRT-LLM, Llama-3.1-8B FP8, 1000/1000 on H100) and on two
   (+ 128/128, a compute-bound point) and applied to the rest.

Prints tables and ratios (no timed assertions).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from scaling.cost.calibration import Measurement, calibrate
from scaling.cost.catalog import as_stack, get_llm
from scaling.cost.flops import inference_cost
from scaling.cost.hardware import get_gpu
from scaling.cost.serving import serving_cost, step_times, throughput_at

ROOT = Path(__file__).resolve().parents[2]
GPU_NAMES = {"NVIDIA H200": "h200", "NVIDIA H100 80GB HBM3": "h100"}


def model_times(llm: str, gpu: str, rows: list[dict], kind: str) -> tuple[np.ndarray, ...]:
    """(compute_s, memory_s) of each measured prefill or decode point at mfu = mbu = 1."""
    s, g = as_stack(llm), get_gpu(gpu)
    peak, bw = g.peak_flops("bf16"), g.hbm_bytes_per_s
    comp, mem = [], []
    for r in rows:
        if kind == "prefill":
            c = inference_cost(llm, visual_tokens=r["prompt_tokens"], gen_tokens=1)
            comp.append(r["batch"] * c.flops_prefill / peak)
            mem.append(c.weight_bytes / bw)  # weights read at least once
        else:
            gen = r["gen_tokens"]
            c = inference_cost(llm, visual_tokens=r["visual_tokens"],
                               text_tokens=r["text_tokens"], gen_tokens=gen)
            kv_tok = 2.0 * s.layers * s.kv_heads * s.head_dim * 2
            tc, tm = step_times(s, batch=r["batch"], flops_per_request=c.flops_decode / (gen - 1),
                                context=r["context_tokens"], weights_per_gpu=c.weight_bytes,
                                kv_bytes_per_token=kv_tok, gpus=1, peak=peak, bandwidth=bw,
                                weight_bytes=2.0)
            comp.append(float(tc))
            mem.append(float(tm))
    return np.array(comp), np.array(mem)


def fit_times(tc: np.ndarray, tm: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """mfu, mbu minimising sum (ln max(tc/mfu, tm/mbu) - ln t)^2 (log grid, two passes)."""
    best, lo, hi = (1.0, 1.0), np.log(0.05), 0.0
    for _ in range(2):
        a = np.linspace(lo, hi, 201)
        A, B = np.meshgrid(a, a, indexing="ij")
        pred = np.maximum(tc[:, None, None] / np.exp(A), tm[:, None, None] / np.exp(B))
        loss = ((np.log(pred) - np.log(measured)[:, None, None]) ** 2).sum(0)
        i, j = np.unravel_index(np.argmin(loss), loss.shape)
        best = (float(np.exp(A[i, j])), float(np.exp(B[i, j])))
        step = a[1] - a[0]
        lo, hi = min(A[i, j], B[i, j]) - 4 * step, min(0.0, max(A[i, j], B[i, j]) + 4 * step)
    return best


def gpu_comparison(path: Path) -> None:
    data = json.loads(path.read_text())
    llm, gpu = data["llm"], GPU_NAMES.get(data["device"], data["device"])
    print(f"\n== {path.name}: {llm} on {data['device']} ({data['backend']}, {data['dtype']}) ==")
    mb = data.get("microbench") or {}
    if mb:
        g = get_gpu(gpu)
        print(f"microbench: bf16 matmul {mb['matmul_bf16_flops_per_s'] / 1e12:.0f} TFLOP/s "
              f"({mb['matmul_bf16_flops_per_s'] / g.peak_flops('bf16'):.2f} of the datasheet "
              f"peak), device copy {mb['copy_bytes_per_s'] / 1e12:.2f} TB/s "
              f"({mb['copy_bytes_per_s'] / g.hbm_bytes_per_s:.2f} of datasheet bandwidth)")
    pre, dec = data["prefill"], [r for r in data["decode"] if np.isfinite(r["seconds_per_step"])]
    pc, pm = model_times(llm, gpu, pre, "prefill")
    dc, dm = model_times(llm, gpu, dec, "decode")
    t_pre = np.array([r["seconds"] for r in pre])
    t_dec = np.array([r["seconds_per_step"] for r in dec])
    tc, tm, t = np.r_[pc, dc], np.r_[pm, dm], np.r_[t_pre, t_dec]
    mfu, mbu = fit_times(tc, tm, t)
    before, after = np.maximum(tc, tm), np.maximum(tc / mfu, tm / mbu)
    print(f"fitted on all {len(t)} timings: mfu = {mfu:.3f}, mbu = {mbu:.3f}")
    print(f"{'point':<28}{'measured ms':>12}{'roofline ms':>12}{'ratio':>7}"
          f"{'calibrated':>11}{'ratio':>7}")
    labels = [f"prefill B={r['batch']} S={r['prompt_tokens']}" for r in pre] + [
        f"decode  B={r['batch']} C={r['context_tokens']}" for r in dec]
    for lab, m, b, a in zip(labels, t, before, after, strict=True):
        print(f"{lab:<28}{m * 1e3:>12.3f}{b * 1e3:>12.3f}{b / m:>7.2f}{a * 1e3:>11.3f}"
              f"{a / m:>7.2f}")
    err_b = np.exp(np.mean(np.abs(np.log(before / t)))) - 1
    err_a = np.exp(np.mean(np.abs(np.log(after / t)))) - 1
    print(f"geometric mean |error|: roofline {err_b:.1%}, calibrated {err_a:.1%}; "
          f"roofline faster than measured on {np.mean(before <= t * 1.0001):.0%} of points")
    # continuous-batching throughput assembled from the measured parts, per (V, G)
    print(f"{'V':>5}{'G':>6}{'B':>6}{'assembled req/s':>17}{'model req/s':>13}{'ratio':>7}"
          f"{'calibrated':>12}{'ratio':>7}")
    for v in sorted({r["visual_tokens"] for r in dec}):
        p32 = [(r, tt) for r, tt in zip(pre, t_pre, strict=True)
               if r["visual_tokens"] == v and r["batch"] == max(x["batch"] for x in pre)]
        if not p32:
            continue
        r_pre, tp = p32[0]
        tp_req = tp / r_pre["batch"]
        for gen in sorted({r["gen_tokens"] for r in dec}):
            pts = [(r, tt, c, m) for r, tt, c, m in zip(dec, t_dec, dc, dm, strict=True)
                   if r["visual_tokens"] == v and r["gen_tokens"] == gen]
            r, ts, c, m = max(pts, key=lambda x: x[0]["batch"])
            b, steps = r["batch"], gen - 1
            x_meas = 1 / (tp_req + steps * ts / b)
            pc_req = pc[pre.index(r_pre)] / r_pre["batch"]
            x_model = 1 / (pc_req + steps * max(c, m) / b)
            x_cal = 1 / (pc_req / mfu + steps * max(c / mfu, m / mbu) / b)
            print(f"{v:>5}{gen:>6}{b:>6}{x_meas:>17.1f}{x_model:>13.1f}{x_model / x_meas:>7.2f}"
                  f"{x_cal:>12.1f}{x_cal / x_meas:>7.2f}")


def published_comparison() -> None:
    rows = json.loads((ROOT / "tests/data/published_serving.json").read_text())["measurements"]

    def cost(m: dict):
        cap = m["max_batch"] if m["max_batch"] is not None else m["num_requests"]
        return serving_cost(m["llm"], gpu=m["gpu"], gpus=m["gpus"], visual_tokens=0,
                            text_tokens=m["input_tokens"], gen_tokens=m["output_tokens"],
                            dtype=m["dtype"], kv_dtype=m["kv_dtype"], max_batch=cap,
                            gpu_memory_utilization=m["gpu_memory_utilization"])

    def run(m: dict) -> Measurement:
        return Measurement(m["requests_per_second"], m["input_tokens"], m["output_tokens"],
                           m["num_requests"], m["max_batch"], m["id"])

    by_id = {m["id"]: m for m in rows}
    one = by_id["trtllm-llama3.1-8b-fp8-h100-1000-1000"]
    two = [one, by_id["trtllm-llama3.1-8b-fp8-h100-128-128"]]
    fits = {}
    for label, chosen in (("one", [one]), ("two", two)):
        cal = calibrate([run(m) for m in chosen], llm="llama-3.1-8b", gpu="h100", dtype="fp8",
                        gpu_memory_utilization=0.95)
        fits[label] = cal
        print(f"calibrated on {label} ({', '.join(m['id'] for m in chosen)}): mfu = "
              f"{cal.mfu:.3f}, mbu = {cal.mbu:.3f} ({cal.identified})")
    print(f"\n{'measurement':<44}{'measured':>9}{'roofline':>9}{'ratio':>7}{'cal(1)':>8}"
          f"{'ratio':>7}{'cal(2)':>8}{'ratio':>7}  binding")
    for m in rows:
        c = cost(m)
        x, r0 = m["requests_per_second"], float(c.throughput_rps)
        r1 = float(throughput_at(c, fits["one"].mfu, fits["one"].mbu))
        r2 = float(throughput_at(c, fits["two"].mfu, fits["two"].mbu))
        print(f"{m['id']:<44}{x:>9.2f}{r0:>9.2f}{r0 / x:>7.2f}{r1:>8.2f}{r1 / x:>7.2f}"
              f"{r2:>8.2f}{r2 / x:>7.2f}  {c.binding}")
    print("(ratio = predicted / measured; the roofline is an upper bound: every ratio >= 1; "
          "the vLLM row is another engine, 2024, max_num_seqs 256)")


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv] or sorted((ROOT / "results").glob("serving_gpu_*.json"))
    for path in paths:
        get_llm(json.loads(path.read_text())["llm"])
        gpu_comparison(path)
    print("\n== published measurements ==")
    published_comparison()


if __name__ == "__main__":
    main(sys.argv[1:])
