"""Benchmark: the planner's frontier over 10^4 budgets (closed form and numeric solvers).

Run: ``python tests/benchmarks/bench_plan.py``. Prints wall times (best of 3) and the largest
relative gap between the closed-form and numeric optima, plus one plan / task-mix timing.
"""

from __future__ import annotations

import time

import numpy as np

from scaling.law import PAPER_LAW, FittedLaw
from scaling.planner.answer import plan
from scaling.planner.mix import plan_mix
from scaling.planner.problem import frontier


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    budgets = np.geomspace(1e11, 1e17, 10_000)
    t_cf, cf = best_of(lambda: frontier(None, budgets, text_tokens=50))
    t_num, num = best_of(lambda: frontier(None, budgets, text_tokens=50, method="numeric"))
    gap = max(np.nanmax(np.abs(getattr(num, k) / getattr(cf, k) - 1))
              for k in ("llm_params", "visual_tokens", "predicted_error"))
    print(f"frontier, 10^4 budgets, paper cost, closed form : {t_cf * 1e3:8.1f} ms")
    print(f"frontier, 10^4 budgets, paper cost, numeric     : {t_num * 1e3:8.1f} ms "
          f"(max rel. gap to closed form {gap:.1e})")
    ex_budgets = np.geomspace(2e11, 1e14, 10_000)
    t_ex, ex = best_of(lambda: frontier(None, ex_budgets, text_tokens=50, cost="exact",
                                        family="qwen1.5"), repeat=1)
    print(f"frontier, 10^4 budgets, exact cost (qwen1.5)    : {t_ex * 1e3:8.1f} ms "
          f"({int(ex.feasible.sum())} feasible)")
    t_plan, _ = best_of(lambda: plan(flops=1e13, text_tokens=50, family="qwen1.5",
                                     tokens=[1, 4, 16, 36, 64, 144, 576], cost="exact",
                                     gpu="h100"))
    print(f"one plan (exact cost, qwen1.5 menu, h100)       : {t_plan * 1e3:8.1f} ms")
    ocr = FittedLaw("product", {"a": 0.8, "alpha": 0.029, "beta": 0.048, "D": 0.1})
    t_mix, m = best_of(lambda: plan_mix({"reasoning": PAPER_LAW, "ocr": ocr},
                                        "reasoning=0.7,ocr=0.3", flops=1e13, text_tokens=50))
    print(f"task mix (2 tasks, paper cost)                  : {t_mix * 1e3:8.1f} ms "
          f"(gain {m.gain * 100:.3f} accuracy points)")


if __name__ == "__main__":
    main()
