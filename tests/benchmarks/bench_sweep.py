"""Sweep runner overhead: 1,000 runs of a no-op evaluator, local pool and Dask.

    python tests/benchmarks/bench_sweep.py [--runs 1000] [--workers 2] [--no-dask]

The evaluator returns ``{}`` at once, so the wall time is all runner overhead: dispatch,
config and scratch dir, cost annotation (catalog architecture: exact cost), the atomic
fsync'ed record per run, progress bookkeeping and the table rewrites. Printed: the total,
the per-run figure (total / runs), the marginal per-run figure ((T(n) - T(1)) / (n - 1),
i.e. without pool or cluster start-up), and the in-process cost of one job for reference.
Target (issue 6): under 20 ms per run locally.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from scaling.sweep import expand, parse_spec, run_sweep  # noqa: E402
from scaling.sweep.job import Job, execute_job  # noqa: E402
from scaling.sweep.store import RunStore  # noqa: E402


def spec_for(runs: int, out: Path, workers: int, kind: str):
    llms = ["qwen1.5-0.5b", "qwen1.5-1.8b", "qwen1.5-4b", "qwen1.5-7b"]
    return parse_spec({
        "name": "bench", "evaluator": {"kind": "python", "function": "sweep_evals:noop"},
        "axes": {"llm": llms[: min(4, runs)], "visual_tokens": list(range(1, runs // 4 + 1))
                 if runs >= 4 else [1]},
        "text_tokens": 50, "encoder": "clip-vit-l-14-336",
        "executor": {"kind": kind, "workers": workers}, "retries": 0, "output": str(out)})


def timed(runs: int, kind: str, workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        spec = spec_for(runs, Path(tmp) / "out.csv", workers, kind)
        t0 = time.perf_counter()
        report = run_sweep(spec)
        elapsed = time.perf_counter() - t0
        assert report.ok == report.total, report.failures[:3]
        return elapsed, report.total


def in_process(runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        spec = spec_for(runs, Path(tmp) / "out.csv", 1, "local")
        store = RunStore(spec.output_path())
        jobs = [Job(run=r, evaluator=spec.evaluator, output=str(store.output), text_tokens=50,
                    encoder=spec.encoder) for r in expand(spec)]
        execute_job(jobs[0])  # warm caches
        t0 = time.perf_counter()
        for job in jobs:
            store.save(execute_job(job))
        return (time.perf_counter() - t0) / len(jobs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    print(f"in-process execute_job + save: {1e3 * in_process(200):.2f} ms per run")
    kinds = ["local"] + ([] if args.no_dask else ["dask"])
    for kind in kinds:
        one, _ = timed(1, kind, args.workers)
        total, n = timed(args.runs, kind, args.workers)
        print(f"{kind:5s} x{args.workers}: {n} runs in {total:.2f} s = "
              f"{1e3 * total / n:.2f} ms/run overall; start-up (1 run) {one:.2f} s; marginal "
              f"{1e3 * (total - one) / (n - 1):.2f} ms/run (target < 20 ms locally)")


if __name__ == "__main__":
    main()
