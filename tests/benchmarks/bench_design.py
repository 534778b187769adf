"""Benchmark: adaptive sweeps vs the full grid, random subsets and fixed-token designs.

Run: ``OPENBLAS_NUM_THREADS=1 python tests/benchmarks/bench_design.py [--campaigns 200]
[--seed 0] [--jobs 2] [--oracle measured|law] [--flops 1e12] [--text-tokens 50]
[--max-runs 14]`` (about 1.3-2 s per campaign per core)

Simulation (the default). The oracle is the paper's 28 points
(``sweeps/li2025_visual_reasoning.csv``, Qwen1.5 0.5B-7B x 1-576 tokens): one simulated
campaign measures grid point ``i`` as ``oracle(i) + e_i``, with ``e_i`` drawn (with
replacement, seeded by ``(seed, campaign)``) from the 28 residuals of the product law fitted to
them. ``--oracle measured`` (default): ``oracle(i)`` is the measured value, so the truth keeps
the data's own departures from the law; ``--oracle law``: it is the fitted law (a world where
the law is exactly right). In each campaign, on the same simulated measurements:

- ``full grid``: all 28 points; its planner answer is the reference of that campaign;
- ``adaptive``: :func:`scaling.design.simulate` with the design block below (initial 6,
  batch 2, ``max_runs``, target 0.1, 64 bootstrap draws per round, seed 0);
- ``space-filling start only``: the adaptive design's first round (its ``initial`` points);
- ``start + random @ adaptive cost``: that start, then random points up to the adaptive
  design's cost (isolates what the criterion adds over random additions);
- ``random @ adaptive cost``: points in a random order, each added while the total cost stays
  within what the adaptive design spent in that campaign (equal cost);
- ``random @ 50% cost``: the same within half the grid's cost;
- ``sizes x {64, 576} tokens``: the common practice of fixing tokens and sweeping sizes (two
  token counts, the least that identifies the token exponent);
- ``one factor at a time``: all sizes at 576 tokens plus all token counts at the smallest LLM.

The answer is ``scaling.plan`` for the question (default ``--flops 1e12 --text-tokens 50``,
paper cost, the grid as the menu, the grid's token range); a design "reaches the full grid's
answer" when it picks the same menu entry and its continuous ``V*`` is within 15% of the full
grid's. Cost is ``run_cost = llm_params * (visual_tokens + text_tokens)`` (the issue's example;
text_tokens 50), as a share of the full grid's. The goal: >= 90% of adaptive campaigns reach the
full grid's answer at <= 50% of its cost, random equal-cost designs measurably worse (paired
difference with a 95% normal interval).

Replay (``--replay results/toyvlm.csv --where task=reasoning``): the measured table of a
finished grid is the oracle, no noise: each run's measured value is what a design gets when it
"runs" that point. This replays measured results; it trains nothing.
"""

from __future__ import annotations

import argparse
import csv
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from scaling import fit_law, load_sweep
from scaling.design import in_memory, simulate
from scaling.design.answer import point_answer
from scaling.design.campaign import fit_data

ROOT = Path(__file__).parents[2]
PAPER = ROOT / "sweeps" / "li2025_visual_reasoning.csv"


def design_block(args, flops, text_tokens):
    return {"law": "product", "metric": "accuracy",
            "question": {"flops": flops, "text_tokens": text_tokens},
            "initial": args.initial, "batch": args.batch, "max_runs": args.max_runs,
            "target": args.target, "bootstrap": 64, "seed": 0}


def answer_of(design, idx, y):
    """The planner's answer from the points ``idx`` (None when the law cannot be fitted)."""
    fit = fit_data(design, {int(i): (design.llm_params[i], y[i]) for i in idx}, bootstrap=0)
    return None if fit is None else point_answer(design, fit.law, fit.params)


def random_within(design, rng, budget, first=()):
    """``first``, then grid points in a random order, each kept while the cost fits."""
    chosen, spent = list(first), float(design.cost[list(first)].sum())
    for i in rng.permutation(design.cost.size):
        if i not in chosen and spent + design.cost[i] <= budget * (1 + 1e-12):
            chosen.append(int(i))
            spent += design.cost[i]
    return chosen


def campaign(design, y, ref, rng):
    """Every design on one set of measurements ``y``: name -> (runs, cost share, answer, extra)."""
    total = design.cost.sum()
    out = simulate(design, y)
    done = [r for r in out.rounds if r.done]
    final = done[-1]
    first = next((r for r in done if r.answer is not None and r.answer.matches(ref)), None)
    half = [r for r in done if r.cost_used <= 0.5 * total]
    rows = {"full grid": (design.cost.size, 1.0, ref, {}),
            "adaptive": (final.runs_used, final.cost_used / total, final.answer,
                         {"first": None if first is None else (first.runs_used,
                                                                first.cost_used / total),
                          "at_half": half[-1].answer if half else None})}
    start = [p.index for p in done[0].picks]
    rows["space-filling start only"] = (len(start), design.cost[start].sum() / total,
                                        done[0].answer, {})
    for name, budget, first in (("start + random @ adaptive cost", final.cost_used, start),
                                ("random @ adaptive cost", final.cost_used, []),
                                ("random @ 50% cost", 0.5 * total, [])):
        idx = random_within(design, rng, budget, first)
        rows[name] = (len(idx), design.cost[idx].sum() / total, answer_of(design, idx, y), {})
    N, V = design.llm_params, design.visual_tokens
    for name, mask in (("sizes x {64, 576} tokens", np.isin(V, [64, 576])),
                       ("one factor at a time", (V == V.max()) | (N == N.min()))):
        idx = np.flatnonzero(mask)
        rows[name] = (idx.size, design.cost[idx].sum() / total, answer_of(design, idx, y), {})
    return rows


def reaches(answer, ref, tolerance=0.15):
    return answer is not None and answer.matches(ref, tolerance=tolerance)


def summarise(results, truth):
    """The table: one line per design over all campaigns; returns success per campaign."""
    print("| design | runs (mean) | cost, % of grid (mean / max) | reaches full grid's answer "
          "| same menu choice | V* within 15% | matches the answer of the law fitted to the 28 "
          "points |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    hits = {}
    for name in results[0]["rows"]:
        got = [(c["ref"], c["rows"][name]) for c in results]
        runs = np.array([g[1][0] for g in got], float)
        cost = np.array([g[1][1] for g in got], float)
        ok = np.array([reaches(g[1][2], ref) for ref, g in zip([g[0] for g in got], got,
                                                                 strict=True)])
        menu = np.array([reaches(g[1][2], g[0], np.inf) for g in got])
        vstar = np.array([g[1][2] is not None and abs(g[1][2].v_star / g[0].v_star - 1) <= 0.15
                          for g in got])
        oracle = np.array([reaches(g[1][2], truth) for g in got])
        hits[name] = ok
        print(f"| {name} | {runs.mean():.1f} | {100 * cost.mean():.1f} / {100 * cost.max():.1f}"
              f" | {100 * ok.mean():.1f}% | {100 * menu.mean():.0f}% | {100 * vstar.mean():.0f}% "
              f"| {100 * oracle.mean():.0f}% |")
    return hits


def paired(a, b):
    d = a.astype(float) - b.astype(float)
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    return d.mean(), d.mean() - 1.96 * se, d.mean() + 1.96 * se


_STATE: dict = {}


def one_campaign(c):
    """Campaign ``c``: its own noise draw (seeded by ``(seed, c)``) and every design on it."""
    design, clean, resid = _STATE["design"], _STATE["clean"], _STATE["resid"]
    rng = np.random.default_rng([_STATE["seed"], c])
    y = clean + rng.choice(resid, size=resid.size, replace=True)
    full = answer_of(design, range(design.cost.size), y)
    return {"ref": full, "rows": campaign(design, y, full, rng)}


def simulation(args):
    data = load_sweep(PAPER, metric="accuracy")
    truth = fit_law(data, law="product", validation=False)
    fitted = truth.predict(data.llm_params_b, data.visual_tokens)
    resid = data.y - fitted
    clean = data.y if args.oracle == "measured" else fitted
    design = in_memory(design_block(args, args.flops, args.text_tokens), data.llm_params,
                       data.visual_tokens)
    ref_true = point_answer(design, "product", truth.params)
    print(f"oracle: the paper's 28 points ({args.oracle} values; product law fitted to them: "
          f"{', '.join(f'{k}={v:.4g}' for k, v in truth.params.items())}); residual sd "
          f"{resid.std():.4f}; question: {args.flops:g} FLOPs, Q = {args.text_tokens:g}; "
          f"oracle answer: {ref_true.llm_params / 1e9:g}B x {ref_true.visual_tokens:g} tokens, "
          f"V* = {ref_true.v_star:.3g}")
    t0 = time.perf_counter()
    _STATE.update(design=design, clean=clean, resid=resid, seed=args.seed)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("fork")) as pool:
            results = list(pool.map(one_campaign, range(args.campaigns), chunksize=4))
    else:
        results = [one_campaign(c) for c in range(args.campaigns)]
    elapsed = time.perf_counter() - t0
    print(f"\n{args.campaigns} campaigns (noise seeds ({args.seed}, c) for c = 0.."
          f"{args.campaigns - 1}), {elapsed:.0f} s wall on {args.jobs} process(es)\n")
    hits = summarise(results, ref_true)
    ad = [c["rows"]["adaptive"] for c in results]
    cost = np.array([a[1] for a in ad])
    goal = np.array([reaches(a[2], c["ref"]) and a[1] <= 0.5 for a, c in zip(ad, results,
                                                                             strict=True)])
    half = np.array([reaches(a[3]["at_half"], c["ref"]) for a, c in zip(ad, results,
                                                                         strict=True)])
    print(f"\nadaptive: reaches the full grid's answer at <= 50% of its cost in "
          f"{100 * goal.mean():.1f}% of campaigns (answer at stop; stop cost median "
          f"{100 * np.median(cost):.1f}%, max {100 * cost.max():.1f}% of the grid); the last "
          f"round within 50% matches in {100 * half.mean():.1f}%")
    first = np.array([a[3]["first"] for a in ad if a[3]["first"] is not None])
    if first.size:
        print(f"first round that matches ({len(first)} campaigns): runs median "
              f"{np.median(first[:, 0]):.0f} (range {first[:, 0].min():.0f}-"
              f"{first[:, 0].max():.0f}), cost median {100 * np.median(first[:, 1]):.1f}% "
              "of the grid")
    for other in ("start + random @ adaptive cost", "random @ adaptive cost",
                  "random @ 50% cost"):
        m, lo, hi = paired(hits["adaptive"], hits[other])
        print(f"adaptive minus {other}: {100 * m:+.1f} points of success rate "
              f"(paired, 95% CI {100 * lo:+.1f} to {100 * hi:+.1f})")


def replay(args):
    where = dict(kv.split("=", 1) for kv in args.where)
    with open(args.replay, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("status", "ok") == "ok"
                and all(r.get(k) == v for k, v in where.items())]  # table order = grid order
    N = np.array([float(r["llm_params"]) for r in rows])
    V = np.array([float(r["visual_tokens"]) for r in rows])
    y = 1 - np.array([float(r[args.metric]) for r in rows])
    labels = tuple(f"{r['llm']} x {r['visual_tokens']}" for r in rows)
    design = in_memory(design_block(args, args.flops, args.text_tokens), N, V, labels=labels)
    full = answer_of(design, range(N.size), y)
    total = design.cost.sum()
    print(f"replay of {args.replay} ({', '.join(f'{k}={v}' for k, v in where.items())}; "
          f"{N.size} measured runs; measured results replayed, nothing trained)")
    print(f"question: {args.flops:g} FLOPs, Q = {args.text_tokens}; full grid's answer: "
          f"{full.llm_params:g} params x {full.visual_tokens:g} tokens, V* = {full.v_star:.3g}\n")
    reached = []
    for seed in range(args.seeds):
        block = {**design_block(args, args.flops, args.text_tokens), "seed": seed}
        d = in_memory(block, N, V, labels=labels)
        out = simulate(d, y)
        if seed == 0:
            for r in out.rounds:
                if not r.done:
                    continue
                a = r.answer
                ans = "no fit" if a is None else (
                    f"{a.llm_params:g} x {a.visual_tokens:g}, V* = {a.v_star:.3g}, rel CI "
                    f"width {a.rel_width:.2g}, {'matches' if a.matches(full) else 'differs'}")
                print(f"round {r.index} ({r.kind}): {', '.join(labels[p.index] for p in r.picks)}"
                      f"; {r.runs_used} runs, {100 * r.cost_used / total:.0f}% cost; {ans}")
            print(f"stopped: {out.stopped}\n")
        done = [r for r in out.rounds if r.done]
        first = next((r for r in done if r.answer is not None and r.answer.matches(full)), None)
        last = done[-1].answer
        reached.append((reaches(last, full), done[-1].runs_used, done[-1].cost_used / total,
                        None if first is None else first.runs_used,
                        reaches(last, full, np.inf), None if last is None else last.v_star))
    ok = np.array([r[0] for r in reached])
    print(f"over bootstrap seeds 0..{args.seeds - 1}: final answer matches the full grid in "
          f"{ok.sum()}/{len(ok)} (same menu choice in {sum(r[4] for r in reached)}; final V* "
          f"{[round(r[5], 2) for r in reached]}); runs used {[r[1] for r in reached]}; cost % "
          f"{[round(100 * r[2]) for r in reached]}; first matching round at runs "
          f"{[r[3] for r in reached]}")
    rng = np.random.default_rng(args.seed)
    for frac in sorted({round(np.mean([r[2] for r in reached]), 3), 0.5}):
        rand = [answer_of(design, random_within(design, rng, frac * total), y)
                for _ in range(200)]
        print(f"random subsets at {100 * frac:.0f}% of the cost (200 draws): "
              f"{100 * np.mean([reaches(a, full) for a in rand]):.0f}% match the full grid "
              f"(same menu choice {100 * np.mean([reaches(a, full, np.inf) for a in rand]):.0f}%)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="processes (campaigns are independent "
                    "and seeded, so the result does not depend on it)")
    ap.add_argument("--oracle", choices=("measured", "law"), default="measured")
    ap.add_argument("--flops", type=float, default=1e12)
    ap.add_argument("--text-tokens", type=float, default=50)
    ap.add_argument("--initial", type=int, default=6)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--max-runs", type=int, default=14)
    ap.add_argument("--target", type=float, default=0.1)
    ap.add_argument("--replay", help="a finished grid table (e.g. results/toyvlm.csv)")
    ap.add_argument("--where", nargs="*", default=[], help="row filter, e.g. task=reasoning")
    ap.add_argument("--metric", default="accuracy")
    ap.add_argument("--seeds", type=int, default=10, help="replay: design seeds to try")
    args = ap.parse_args()
    replay(args) if args.replay else simulation(args)


if __name__ == "__main__":
    main()
