"""The toy study's tables: a toy-VLM sweep's grid as markdown, mean and spread over seeds.

Every table of ``results/toyvlm.md`` comes from here, so the report is regenerated, never
hand-edited::

    python -m scaling.toyvlm.report results/toyvlm.csv

prints, per question family, the grid (mean accuracy over seeds +- half the seed-to-seed
range, per decoder size and visual-token count), the per-question-type accuracies with
where each run stopped, and the seed-to-seed spread. pandas is imported here only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling.errors import ScalingError
from scaling.toyvlm import data


def _ok(table):
    missing = {"task", "llm", "llm_params", "visual_tokens", "seed", "accuracy"} - set(table)
    if missing:
        raise ScalingError(f"the table has no {', '.join(sorted(missing))} column(s): it is "
                           "not a toyvlm sweep made with task and seed axes")
    return table[table["status"] == "ok"] if "status" in table else table


def grid_table(table) -> str:
    """Markdown: one row per (family, decoder), one column per V: mean +- half range."""
    table = _ok(table)
    tokens = sorted(table["visual_tokens"].unique())
    lines = ["| family | llm (params) | " + " | ".join(f"V = {v}" for v in tokens) + " |",
             "|---|---|" + "---:|" * len(tokens)]
    for (task, params, llm), g in table.groupby(["task", "llm_params", "llm"], sort=True):
        cells = []
        for v in tokens:
            acc = g.loc[g["visual_tokens"] == v, "accuracy"]
            cells.append(f"{acc.mean():.3f} ± {(acc.max() - acc.min()) / 2:.3f}"
                         if len(acc) else "")
        lines.append(f"| {task} | {llm} ({int(params):,}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def type_table(table, task: str) -> str:
    """Markdown: per (decoder, V), the mean accuracy per question type of ``task`` over
    seeds and where each seed's run stopped."""
    table = _ok(table)
    g = table[table["task"] == task]
    types = [t for t in data.QUESTION_TYPES if data.FAMILY[t] == task and f"acc_{t}" in g]
    lines = ["| llm | V | " + " | ".join(types) + " | steps | stopped |",
             "|---|---:|" + "---:|" * len(types) + "---:|---|"]
    for (_, llm, v), r in g.groupby(["llm_params", "llm", "visual_tokens"], sort=True):
        accs = " | ".join(f"{r[f'acc_{t}'].mean():.2f}" for t in types)
        steps = ", ".join(str(int(s)) for s in r.get("train_steps", []))
        stopped = ", ".join(str(s) for s in r.get("stopped", []))
        lines.append(f"| {llm} | {v} | {accs} | {steps} | {stopped} |")
    return "\n".join(lines)


def seed_spread(table) -> dict[str, tuple[float, float]]:
    """Per family, the mean and largest |accuracy difference| between seeds of one grid
    point (the largest minus the smallest seed when there are more than two)."""
    table = _ok(table)
    out = {}
    for task, g in table.groupby("task"):
        spread = g.groupby(["llm", "visual_tokens"])["accuracy"].agg(lambda a: a.max() - a.min())
        out[task] = (float(spread.mean()), float(spread.max()))
    return out


def report(table) -> str:
    """All the tables of one toy-VLM sweep as markdown."""
    parts = ["## Grid (mean ± half the seed-to-seed range)", "", grid_table(table), ""]
    for task, (mean, most) in seed_spread(table).items():
        parts.append(f"Seed-to-seed |difference| per point, {task}: mean {mean:.3f}, "
                     f"max {most:.3f}.")
    for task in sorted(_ok(table)["task"].unique()):
        parts += ["", f"## {task}: per question type (mean over seeds)", "",
                  type_table(table, task)]
    if "train_time_s" in table:
        parts += ["", f"Training time of all runs together: {table['train_time_s'].sum():,.0f} s."]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scaling.toyvlm.report",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("table", type=Path, help="a toyvlm sweep table (.csv)")
    args = parser.parse_args(argv)
    import pandas as pd

    try:
        print(report(pd.read_csv(args.table)))
    except ScalingError as exc:  # bad input: one line and exit code 2, as the CLI does
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
