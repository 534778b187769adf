"""Benchmark the fitter: speed against a scipy reference, a formula law, scale.

Run (single-threaded BLAS, as the figures are meant): ``OPENBLAS_NUM_THREADS=1 python
tests/benchmarks/bench_fit.py [--resamples 1000] [--rows 1000000] [--draws 100000]``

1. **Paper data, built-in ``product`` law**: ours = ``fit_law(product, sse, bootstrap=1000)``
   (validation off), in-process. Reference, as its users run it (Epoch AI's Chinchilla
   replication): the full fit by L-BFGS-B from a grid of 192 starts, then each bootstrap
   refit by L-BFGS-B **warm-started** from the full-data estimate (one start per resample,
   analytic gradient). Same resamples; objectives compared draw by draw.
2. **Epoch AI's Chinchilla data, a formula law** (``E + A*N^-alpha + B*D^-beta``, huber):
   fit + 1,000 bootstrap refits, with validation.
3. **Scale**: a table of ``--rows`` rows (CSV, 28 configurations x seeds) loaded and fitted;
   wall time and peak memory (``ru_maxrss``, in a child process), then a law file with
   ``--draws`` bootstrap draws planned.
Wall-clock and CPU seconds are both printed (the machine is shared: CPU time is the fairer
figure when it is busy).
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from scaling.fit.bootstrap import resample_weights
from scaling.fit.fitter import fit_law
from scaling.fit.table import load_sweep

ROOT = Path(__file__).parents[2]
PAPER = ROOT / "sweeps" / "li2025_visual_reasoning.csv"
EPOCH = ROOT / "sweeps" / "epoch_chinchilla.csv"
STARTS = list(itertools.product([0.2, 0.5, 1.0, 2.0], [0.01, 0.05, 0.2, 0.5],
                                [0.005, 0.02, 0.1, 0.4], [0.0, 0.1, 0.3]))


def sse_and_grad(theta, N, V, y, w):
    """Plain numpy product-law SSE and gradient (the reference's own objective)."""
    a, alpha, beta, D = theta
    x = N ** -alpha * V ** -beta
    r = a * x + D - y
    g = 2 * w * r
    return float(np.sum(w * r * r)), np.array([np.sum(g * x), np.sum(-g * a * x * np.log(N)),
                                               np.sum(-g * a * x * np.log(V)), np.sum(g)])


def reference(N, V, y, W):
    """Multi-start full fit, then warm-started L-BFGS-B refits: (params, objectives)."""
    ones = np.ones_like(y)
    bounds = [(0, None), (0, 4), (0, 4), (0, float(y.min()))]
    best = min((minimize(sse_and_grad, np.minimum(s, [np.inf, 4, 4, y.min()]), jac=True,
                         args=(N, V, y, ones), method="L-BFGS-B", bounds=bounds)
                for s in STARTS), key=lambda r: r.fun)
    objs = []
    for w in W:
        b = [(0, None), (0, 4), (0, 4), (0, float(y[w > 0].min()))]
        start = np.minimum(best.x, [np.inf, 4, 4, y[w > 0].min()])
        objs.append(minimize(sse_and_grad, start, jac=True, args=(N, V, y, w),
                             method="L-BFGS-B", bounds=b).fun)
    return best, np.array(objs)


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def paper_benchmark(k: int, seed: int) -> None:
    data = load_sweep(PAPER)
    fit_law(data, law="product", bootstrap=20, validation=False)       # warm imports
    ours, wall, cpu = timed(lambda: fit_law(data, law="product", bootstrap=k, seed=seed,
                                            validation=False))
    W = resample_weights(data, k, seed=seed)
    N, V, y = data.llm_params_b, data.visual_tokens, data.y
    (ref_fit, ref_obj), r_wall, r_cpu = timed(lambda: reference(N, V, y, W))
    our_obj = np.array([sse_and_grad(d, N, V, y, w)[0] for d, w in zip(ours.draws, W,
                                                                         strict=True)])
    rel = (our_obj - ref_obj) / ref_obj
    print(f"[paper, product, sse] {data.n_points} points, {k} resamples (seed {seed})")
    print(f"  ours:      fit + {k} bootstrap refits  wall {wall:.3f} s  cpu {cpu:.3f} s")
    print(f"  reference: 192-start fit + {k} warm-started L-BFGS-B refits  wall {r_wall:.2f} s"
          f"  cpu {r_cpu:.2f} s")
    print(f"  speed-up:  wall {r_wall / wall:.1f}x  cpu {r_cpu / cpu:.1f}x")
    print(f"  full-data objective: ours {ours.objective:.10e}  reference {ref_fit.fun:.10e}")
    print(f"  per-draw objective, ours vs reference (relative): min {rel.min():+.2e}, max "
          f"{rel.max():+.2e}; reference worse than ours by > 1e-6 on {(rel < -1e-6).sum()} "
          f"draws, ours worse by > 1e-9 on {(rel > 1e-9).sum()}")


def epoch_benchmark(k: int) -> None:
    data = load_sweep(EPOCH, metric="loss", axes={"D": "train_tokens"})
    law = "E + A*N^-alpha + B*D^-beta"
    fit, wall, cpu = timed(lambda: fit_law(data, law=law, loss="huber", bootstrap=k))
    print(f"[Epoch AI Chinchilla, formula {law!r}, huber] {data.n_points} points")
    print(f"  fit + {k} bootstrap refits + 10-fold validation: wall {wall:.2f} s  cpu "
          f"{cpu:.2f} s")
    print("  " + ", ".join(f"{p} {v:.4g} [{fit.ci[p][0]:.4g}, {fit.ci[p][1]:.4g}]"
                           for p, v in fit.params.items()))


CHILD = """
import resource, sys, time
t = time.perf_counter()
from scaling.fit.table import load_sweep
from scaling.fit.fitter import fit_law
d = load_sweep(sys.argv[1])
t1 = time.perf_counter()
r = fit_law(d, law="product", validation=False)
t2 = time.perf_counter()
print(f"  load {t1 - t:.2f} s, fit {t2 - t1:.2f} s, total {t2 - t:.2f} s; peak memory "
      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; "
      f"{d.n_points} rows, alpha {r.params['alpha']:.4f}, beta {r.params['beta']:.4f}")
"""

PLAN_CHILD = """
import sys, time
t = time.perf_counter()
from scaling.cli import app
from typer.testing import CliRunner
res = CliRunner().invoke(app, ["plan", "--flops", "1e13", "--law", sys.argv[1], "--json"])
assert res.exit_code == 0, res.output
print(f"  plan --json with the law file: {time.perf_counter() - t:.2f} s (process, imports "
      "included)")
"""


def scale_benchmark(rows: int, draws: int) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        data = load_sweep(PAPER)
        reps = -(-rows // data.n_points)
        n = np.repeat(data.llm_params, reps)[:rows]
        v = np.repeat(data.visual_tokens, reps)[:rows]
        acc = np.clip(1 - np.repeat(data.y, reps)[:rows] + rng.normal(0, 0.01, rows), 0, 1)
        seed = np.tile(np.arange(reps), data.n_points)[:rows]
        with open(path, "w") as f:
            f.write("llm_params,visual_tokens,seed,accuracy\n")
            np.savetxt(f, np.c_[n, v, seed, acc], fmt=["%.6g", "%d", "%d", "%.6f"],
                       delimiter=",")
        print(f"[scale] {rows} rows, {data.n_points} configurations x {reps} seeds")
        subprocess.run([sys.executable, "-c", CHILD, str(path)], check=True)
        fit = fit_law(data, law="product", bootstrap=draws, validation=False)
        law = fit.save(Path(tmp) / "draws.law.json")
        print(f"[plan] law file with {draws} draws ({law.stat().st_size / 2**20:.1f} MiB)")
        subprocess.run([sys.executable, "-c", PLAN_CHILD, str(law)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, default=100_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["paper", "epoch", "scale"])
    args = parser.parse_args()
    if "paper" not in args.skip:
        paper_benchmark(args.resamples, args.seed)
    if "epoch" not in args.skip:
        epoch_benchmark(args.resamples)
    if "scale" not in args.skip:
        scale_benchmark(args.rows, args.draws)


if __name__ == "__main__":
    main()
