"""Learning curves of a toy-VLM sweep: validation accuracy against training step.

Every ``toyvlm`` row carries its learning curve (column ``curve``, JSON written by
:func:`scaling.toyvlm.evaluate.curve_json`). This draws, per question family, the curves of
the extreme grid points (smallest and largest decoder x fewest and most visual tokens), one
line per seed, with a dot at the checkpoint that was kept, so one can see whether each point
reached its plateau or was stopped by the ``max_steps`` cap::

    python -m scaling.toyvlm.curves results/toyvlm.csv -o results/toyvlm_curves.png

matplotlib and pandas are imported here only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scaling.errors import ScalingError
from scaling.files import atomic_write


def extreme_points(table) -> list[tuple[float, int]]:
    """``(llm_params, visual_tokens)`` of the (up to four) corners of the grid in ``table``."""
    sizes = sorted(table["llm_params"].unique())
    tokens = sorted(table["visual_tokens"].unique())
    return list(dict.fromkeys((n, v) for n in (sizes[0], sizes[-1])
                              for v in (tokens[0], tokens[-1])))


def plot_curves(table, path: str | Path, *, dpi: int = 120) -> Path:
    """Draw the extreme points' learning curves of ``table`` (a sweep DataFrame) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "curve" not in table.columns:
        raise ScalingError("the table has no 'curve' column: it is not a toyvlm sweep made "
                           "by this version (rerun the sweep)")
    table = table[(table["status"] == "ok") & table["curve"].notna()]
    if table.empty:
        raise ScalingError("the table has no finished toyvlm runs with a learning curve")
    families = sorted(table["task"].unique())
    fig, axes = plt.subplots(1, len(families), figsize=(6.2 * len(families), 4.4),
                             squeeze=False)
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for ax, family in zip(axes[0], families, strict=True):
        rows = table[table["task"] == family]
        for colour, (n, v) in zip(colours, extreme_points(rows), strict=False):
            runs = rows[(rows["llm_params"] == n) & (rows["visual_tokens"] == v)]
            for k, (_, run) in enumerate(runs.sort_values("seed").iterrows()):
                c = json.loads(run["curve"])
                label = f"{run['llm']} ({int(n):,} params), V = {v}" if k == 0 else None
                ax.plot(c["step"], c["val_accuracy"], color=colour, lw=1.4,
                        ls=("-", "--", ":", "-.")[k % 4], label=label)
                best = c["step"].index(int(run["best_step"]))
                ax.plot(c["step"][best], c["val_accuracy"][best], "o", color=colour, ms=5)
        ax.axhline(rows["chance"].iloc[0], color="grey", lw=0.8, ls=":", label="chance")
        ax.set_title(f"{family}: validation accuracy (line style = seed, dot = kept)")
        ax.set_xlabel("training step")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi,
                                                    metadata={"Software": None}))
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scaling.toyvlm.curves",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("table", help="a toyvlm sweep table (.csv)")
    parser.add_argument("-o", "--output", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    import pandas as pd

    try:
        print(plot_curves(pd.read_csv(args.table), args.output))
    except ScalingError as exc:  # bad input: one line and exit code 2, as the CLI does
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
