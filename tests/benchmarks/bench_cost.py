"""Price 10^6 (LLM, V, Q, G) configurations in one vectorised call.

    python tests/benchmarks/bench_cost.py [N]

Draws N random configurations over all 20 catalog LLMs (different architectures in one
call, via an LLMStack), visual tokens 1..2880, text tokens 0..512, generated tokens
0..1024, with the CLIP ViT-L/14-336 encoder and the roofline on an H100; prints the
wall time, the rate, and the speed-up over pricing configurations one call at a time.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from scaling.cost.catalog import LLMS, get_encoder
from scaling.cost.flops import inference_cost
from scaling.cost.specs import stack_llms


def main(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(0)
    stack = stack_llms(list(LLMS.values()))
    which = rng.integers(0, len(stack), n)
    v = rng.integers(1, 2881, n)
    q = rng.integers(0, 513, n)
    g = rng.integers(0, 1025, n)
    enc = get_encoder("clip-vit-l-14-336")
    crops = np.where(v > enc.patches, 5, 1)  # anyres above 576 tokens

    times = []
    for _ in range(3):  # the first call also pays for fresh memory pages
        t0 = time.perf_counter()
        configs = stack.take(which)
        cost = inference_cost(configs, encoder=enc, visual_tokens=v, text_tokens=q,
                              gen_tokens=g, crops=crops, gpu="h100")
        times.append(time.perf_counter() - t0)
    t_vec = min(times)
    assert cost.flops_total.shape == (n,) and np.all(np.isfinite(cost.latency_s_total))

    k = 2000  # the same work one configuration per call, on a sample
    specs = list(LLMS.values())
    t0 = time.perf_counter()
    for i in range(k):
        one = inference_cost(specs[which[i]], encoder=enc, visual_tokens=int(v[i]),
                             text_tokens=int(q[i]), gen_tokens=int(g[i]), crops=int(crops[i]),
                             gpu="h100")
        assert one.flops_total == cost.flops_total[i]
    t_loop = (time.perf_counter() - t0) / k * n

    print(f"configurations        {n:,}")
    print(f"vectorised call       {t_vec:.3f} s best of 3, first {times[0]:.3f} s "
          f"({n / t_vec / 1e6:.2f} M configs/s)")
    print(f"one call per config   {t_loop:.1f} s   (extrapolated from {k:,} calls)")
    print(f"speed-up              {t_loop / t_vec:.0f}x")
    print(f"total FLOPs priced    {cost.flops_total.sum():.3e}  "
          f"(median {np.median(cost.flops_total):.3e} per request)")


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 1_000_000)
