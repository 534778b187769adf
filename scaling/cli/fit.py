"""``scaling fit``: sweep table(s) -> fitted law, report and ``*.law.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from scaling.cli import app
from scaling.cli._common import console, guarded, print_json
from scaling.units import format_params

METRIC_HELP = ("Metric to fit: a column (wide table) or benchmark (tidy benchmark+score "
               "table). Repeat it (--metric gqa --metric pope) or write mean:gqa,pope to fit "
               "the mean. Default: error, loss or accuracy. Accuracies are fitted as 1 - value.")


@app.command("fit")
@guarded
def fit_command(
    data: Annotated[list[str], typer.Argument(help="Sweep table(s): CSV or Parquet files.")],
    metric: Annotated[list[str] | None, typer.Option("--metric", help=METRIC_HELP)] = None,
    metric_kind: Annotated[str, typer.Option(
        "--metric-kind", help="auto (by name), accuracy (fit 1 - value) or error.")] = "auto",
    law: Annotated[str, typer.Option(
        "--law", help="product | additive | loglinear | tokens | tokens-loglinear | chinchilla "
        "| auto (best held-out error) | a formula over the axes, e.g. "
        "'E + A*N^-alpha + B*D^-beta'.")] = "product",
    axis: Annotated[list[str] | None, typer.Option(
        "--axis", help="Bind a law axis to a column: NAME=COLUMN (repeatable), e.g. "
        "D=train_tokens. Defaults: N=llm_params (billions), V=visual_tokens.")] = None,
    bound: Annotated[list[str] | None, typer.Option(
        "--bound", help="Override a parameter's bounds: NAME=LO:HI (repeatable), e.g. "
        "E=0:2 or alpha=0:inf.")] = None,
    loss: Annotated[str, typer.Option(
        "--loss", help="sse (on Y, the paper's) or huber (on log Y).")] = "sse",
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", help="Bootstrap resamples K (0 = none).")] = 0,
    resample: Annotated[str, typer.Option(
        "--resample", help="Bootstrap unit: case (rows), config (all rows of an (N, T) "
        "configuration, e.g. seeds) or size (LLM sizes).")] = "case",
    group_by: Annotated[str | None, typer.Option(
        "--group-by", help="Fit one law per value of COL.")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", help="Bootstrap seed (results are deterministic).")] = 0,
    ci: Annotated[float, typer.Option(
        "--ci", help="Confidence level of the bootstrap intervals.")] = 0.9,
    no_validation: Annotated[bool, typer.Option(
        "--no-validation", help="Skip hold-out and cross-validation.")] = False,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the *.law.json artifact.")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="JSON on stdout, nothing else.")] = False,
) -> None:
    """Fit a scaling law Y(N, V, ...) to sweep results, with bootstrap CIs and hold-out checks."""
    from scaling.fit.fitter import fit_groups, save_laws
    from scaling.fit.table import load_sweep, parse_axis_options
    from scaling.law import DEFAULT_AXES, needed_axes, parse_bound_options

    axes = parse_axis_options(axis)
    bounds = parse_bound_options(bound)
    need = needed_axes(law, dict.fromkeys([*DEFAULT_AXES, *axes]))  # checked before reading
    table = load_sweep(data, metric=metric or None, group_by=group_by, kind=metric_kind,
                       axes=axes, need=need)
    results = fit_groups(table, law=law, loss=loss, bootstrap=bootstrap, resample=resample,
                         seed=seed, ci_level=ci, validation=not no_validation, bounds=bounds)
    if output is not None:
        save_laws(results, output, group_by=group_by, data_sha256=table.sha256)
    if json_out:
        payloads = {name: _json(r) for name, r in results.items()}
        if group_by is None:
            print_json({**payloads["all"], "output": str(output) if output else None})
        else:
            print_json({"group_by": group_by, "data_sha256": table.sha256, "groups": payloads,
                        "output": str(output) if output else None})
        return
    for name, result in results.items():
        _report(result, title=f"{group_by} = {name}" if group_by else "")
    if output is not None:
        console.print(f"wrote {output}")


def _json(result: Any) -> dict[str, Any]:
    """The artifact dict without the (long) draws; ``n_draws`` says how many."""
    out = result.to_dict()
    draws = out.pop("draws")
    out["n_draws"] = 0 if draws is None else len(draws)
    return out


def _report(r: Any, *, title: str) -> None:
    from rich.table import Table

    form = r.form
    binds = ", ".join(f"{a}={b.column}" + (" (billions)" if b.unit == 1e9 else
                                            f" (/{b.unit:g})" if b.unit != 1 else "")
                      for a, b in r.axes.items())
    from rich.text import Text

    console.print(Text.assemble((f"{title + ': ' if title else ''}{form.formula}", "bold"),
                                f"  (law {r.law}, axes {binds}, fitted on {r.metric}, "
                                f"{r.n_points} points, loss {r.loss})"))
    level = f"{100 * r.ci_level:.0f}% CI" if r.ci_level else "CI (use --bootstrap K)"
    params = Table("parameter", "value", level, box=None, pad_edge=False)
    for p in form.params:
        low_high = r.ci.get(p)
        params.add_row(p, f"{r.params[p]:.5g}",
                       f"[{low_high[0]:.5g}, {low_high[1]:.5g}]" if low_high else "-")
    for name, entry in r.derived.items():
        ci = entry.get("ci")
        value = entry["value"]
        params.add_row(name, "inf" if value is None else f"{value:.4g}",
                       f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "-")
    console.print(params)
    v = r.validation
    quality = f"objective {r.objective:.4g}   SSE {v['sse']:.4g}   RMSE {v['rmse']:.4g}   " \
              f"R^2 {v['r2']:.4f}"
    if "aic" in v:
        quality += f"   AIC {_num(v['aic'])}   BIC {_num(v['bic'])}"
    console.print(quality)
    hold = v.get("holdout_largest")
    if hold and "skipped" not in hold:
        axis = hold.get("axis", "N")
        size = hold.get("held_out_llm_params") if axis == "N" else hold.get(f"held_out_{axis}")
        shown = f"LLM ({format_params(size)})" if axis == "N" else f"{axis} ({size:g})"
        others = [k for k in hold["points"][0] if k not in (
            "observed", "predicted", "error", "relative_error", "llm_params", axis)]
        t = Table(*others, "observed", "predicted", "error", "rel. error", box=None,
                  title=f"held out: largest {shown}, fitted on the others",
                  title_justify="left")
        for p in hold["points"]:
            t.add_row(*(f"{p[k]:.4g}" for k in others), f"{p['observed']:.4f}",
                      f"{p['predicted']:.4f}", f"{p['error']:+.4f}",
                      f"{100 * p['relative_error']:+.2f}%")
        console.print(t)
        console.print(f"hold-out RMSE {hold['rmse']:.4g}, mean |rel. error| "
                      f"{100 * hold['mean_abs_relative_error']:.2f}%")
    elif hold:
        console.print(f"hold-out skipped: {hold['skipped']}")
    loso = v.get("leave_one_size_out")
    if loso and "skipped" not in loso:
        def size(f: dict) -> str:
            value = f.get("llm_params", f.get(loso.get("axis", "N")))
            fmt = format_params if "llm_params" in f else (lambda x: f"{x:g}")
            return "-".join(fmt(x) for x in value) if isinstance(value, list) else fmt(value)
        folds = ", ".join(f"{size(f)} {f['rmse']:.4f}" for f in loso["folds"][:12])
        more = ", ..." if len(loso["folds"]) > 12 else ""
        scheme = loso.get("scheme", "leave-one-size-out")
        console.print(f"{scheme} RMSE {loso['rmse']:.4g}  ({folds}{more})")
    if "auto" in v:
        cands = ", ".join(f"{k} {_num(c['cv_rmse'])}" for k, c in v["auto"]["candidates"].items())
        console.print(f"--law auto chose {v['auto']['chosen']} (CV RMSE: {cands})")
    for w in r.warnings:
        console.print(f"warning: {w}", style="yellow")
    console.print()


def _num(x: Any) -> str:
    return "inf" if x is None else f"{x:.4g}"
