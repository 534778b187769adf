"""``scaling plot``: frontier, iso-FLOP, heatmap and fit figures from a law (and sweep data).

Matplotlib is imported by :mod:`scaling.plot` only when a figure is drawn, never here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from scaling.cli import app
from scaling.cli._common import choose_law, console, err_console, guarded, print_json
from scaling.errors import ScalingError

KINDS = ("frontier", "isoflop", "fit", "heatmap")


def _numbers(value: str | None, what: str, parse) -> list[float] | None:
    """``"1e12,3e12"`` -> ``[1e12, 3e12]`` (each item through ``parse``)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ScalingError(f"{what} is empty; give one or more values separated by commas")
    return [parse(v) for v in items]


def _text_tokens(v: str) -> float:
    try:
        q = float(v)
    except ValueError:
        raise ScalingError(f"--text-tokens must be numbers like 0 or 0,50,200, got {v!r}") from None
    if not q >= 0:
        raise ScalingError(f"--text-tokens must be >= 0, got {v!r}")
    return q


def _load(path: Path | None, group: str | None) -> tuple[Any, str]:
    """The law(s) to draw and their label: the paper's, a file's, or one group of a file."""
    if path is None:
        if group is not None:
            raise ScalingError("--group needs --law FILE.law.json (a grouped fit)")
        from scaling.law import PAPER_LAW

        return PAPER_LAW, PAPER_LAW.label
    from scaling.fit import load_laws

    laws = load_laws(path)
    if group is not None:
        return {group: choose_law(laws, group, path)}, f"{path.name} [{group}]"
    return laws, str(path.name)


def _serving_frontier(kind: str, laws: Any, *, output: Path, gpu: str, family: str | None,
                      text_tokens: str, gens: list[float], budget: str | None, accuracy: bool,
                      title: str | None, width: float | None, height: float | None, dpi: float,
                      json_out: bool, label: str) -> None:
    """``plot frontier --cost serving``: one panel per generation length."""
    from dataclasses import replace

    from scaling import plot as plots

    if kind != "frontier":
        raise ScalingError(f"--cost serving draws plot frontier only, not {kind}")
    qs = _numbers(text_tokens, "--text-tokens", _text_tokens)
    if len(qs) > 1:
        raise ScalingError("--text-tokens takes one value for plot frontier")
    if any(g < 1 for g in gens):
        raise ScalingError(f"--gen-tokens must be >= 1 under serving, got {gens}")
    gpu_s = None
    if budget is not None:
        try:
            gpu_s = float(budget)
        except ValueError:
            raise ScalingError(f"--budget under --cost serving is GPU-seconds per request "
                               f"(e.g. 0.02), got {budget!r}") from None
        if not gpu_s > 0:
            raise ScalingError(f"--budget must be > 0 GPU-seconds, got {budget!r}")
    fig = plots.serving_frontier_figure(laws, gpu=gpu, family=family or "qwen2.5",
                                        text_tokens=qs[0], gen_tokens=gens, budget=gpu_s,
                                        accuracy=accuracy, title=title, width=width,
                                        height=height)
    path = plots.save_figure(fig.figure, output, dpi=dpi)
    summary = {**replace(fig, output=path).summary(), "law": label}
    if json_out:
        print_json(summary)
        return
    console.print(f"wrote {path}: serving frontier, {summary['curves']} curves "
                  f"(G = {', '.join(f'{g:g}' for g in gens)}; law: {label})", markup=False,
                  highlight=False, soft_wrap=True)
    for w in fig.warnings:
        err_console.print(f"warning: {w}", markup=False)


@app.command("plot")
@guarded
def plot_command(
    kind: Annotated[str, typer.Argument(help="frontier | isoflop | fit | heatmap")],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="Figure file: .png, .svg or .pdf.")],
    law: Annotated[Path | None, typer.Option(
        "--law", help="Fitted law (FILE.law.json); default: the paper's published law.")
    ] = None,
    data: Annotated[list[str] | None, typer.Option(
        "--data", help="Sweep table(s) to overlay (CSV/Parquet); repeat for several.")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Metric column/benchmark of --data; default: the law's metric.")
    ] = None,
    metric_kind: Annotated[str, typer.Option(
        "--metric-kind", help="auto, accuracy (plot 1 - value) or error.")] = "auto",
    group: Annotated[str | None, typer.Option(
        "--group", help="Draw one group of a grouped law (default: one panel per group).")
    ] = None,
    cost: Annotated[str, typer.Option(
        "--cost", help="Cost model: paper (2N(Q+V)), exact (architecture), or serving "
        "(GPU-seconds under continuous batching; frontier only).")] = "paper",
    text_tokens: Annotated[str, typer.Option(
        "--text-tokens", "-q", help="Text tokens per prompt Q; isoflop takes a list "
        "(0,50,200: one panel each).")] = "0",
    gen_tokens: Annotated[str, typer.Option(
        "--gen-tokens", help="Generated tokens per request; --cost serving takes a list "
        "(1,128,1024: one panel each).")] = "0",
    gpu: Annotated[str, typer.Option(
        "--gpu", help="--cost serving: the GPU (h100, h200, ...).")] = "h100",
    family: Annotated[str | None, typer.Option(
        "--family", help="Model family for the exact cost (default qwen1.5).")] = None,
    budget: Annotated[str | None, typer.Option(
        "--budget", help="FLOPs per request to mark with the planner's answer (1e13, 2T); "
        "isoflop: the budgets to draw (1e12,3e12).")] = None,
    accuracy: Annotated[bool, typer.Option(
        "--accuracy", help="Plot accuracy (1 - error) instead of error.")] = False,
    sizes: Annotated[str | None, typer.Option(
        "--sizes", help="LLM sizes to draw: 0.5B,1.8B,4B,7B (default: the data's).")] = None,
    llm_range: Annotated[str | None, typer.Option(
        "--llm-range", help="Planner's allowed LLM sizes, LOW:HIGH (0.5B:72B).")] = None,
    token_range: Annotated[str | None, typer.Option(
        "--token-range", help="Visual tokens drawn and allowed, LOW:HIGH (1:576).")] = None,
    holdout: Annotated[str | None, typer.Option(
        "--holdout", help="LLM sizes to mark as held out (default: the fit's hold-out; "
        "'none' for none).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    width: Annotated[float | None, typer.Option("--width", help="Width in inches.")] = None,
    height: Annotated[float | None, typer.Option("--height", help="Height in inches.")] = None,
    dpi: Annotated[float, typer.Option("--dpi", help="Resolution of PNG output.")] = 150,
    json_out: Annotated[bool, typer.Option(
        "--json", help="JSON on stdout, nothing else.")] = False,
) -> None:
    """Draw the error/FLOPs frontier, iso-FLOP curves, an (N, V) heatmap or fit diagnostics."""
    from scaling import plot as plots
    from scaling.units import parse_flops, parse_params, parse_range

    if kind not in KINDS:
        raise ScalingError(f"unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    plots.check_output(output)
    laws, label = _load(law, group)
    gens = _numbers(gen_tokens, "--gen-tokens", _text_tokens)
    if cost == "serving":
        _serving_frontier(kind, laws, output=output, gpu=gpu, family=family,
                          text_tokens=text_tokens, gens=gens, budget=budget, accuracy=accuracy,
                          title=title, width=width, height=height, dpi=dpi, json_out=json_out,
                          label=str(law.name) if law else label)
        return
    if len(gens) > 1:
        raise ScalingError(f"--gen-tokens takes one value unless --cost serving, got "
                           f"{gen_tokens!r}")
    gen_tokens = gens[0]
    qs = _numbers(text_tokens, "--text-tokens", _text_tokens)
    if kind != "isoflop" and len(qs) > 1:
        raise ScalingError(f"--text-tokens takes one value for plot {kind}, got {text_tokens!r}"
                           " (a list is for plot isoflop)")
    budgets = _numbers(budget, "--budget", parse_flops)
    if kind != "isoflop" and budgets is not None and len(budgets) > 1:
        raise ScalingError(f"--budget takes one value for plot {kind}, got {budget!r} "
                           "(a list is for plot isoflop)")
    size_list = _numbers(sizes, "--sizes", parse_params)
    plan_options: dict[str, Any] = {"gen_tokens": gen_tokens, "family": family,
                                    "llm_range": llm_range, "token_range": token_range}
    plan_options = {k: v for k, v in plan_options.items() if v}
    drawn_tokens = None
    if token_range is not None:
        from scaling.planner.problem import tokens_value
        from scaling.planner.solvers import DEFAULT_TOKEN_RANGE

        drawn_tokens = parse_range(token_range, DEFAULT_TOKEN_RANGE, what="--token-range",
                                   parse=tokens_value)
    if holdout is not None and holdout.strip().lower() == "none":
        held: list[float] | None = []
    else:
        held = _numbers(holdout, "--holdout", parse_params)
    measured = (plots.load_measured(data, laws, metric=metric, kind=metric_kind, holdout=held)
                if data else None)

    options: dict[str, Any] = {"measured": measured, "accuracy": accuracy, "title": title,
                               "width": width, "height": height}
    if kind == "fit":
        if cost != "paper" or budgets or any(qs) or plan_options or size_list:
            raise ScalingError("plot fit draws the law against the data only; drop --cost, "
                               "--budget, --text-tokens, --sizes and the planner options")
    else:
        options.update(cost=cost, sizes=size_list, token_range=drawn_tokens,
                       plan_options=plan_options)
        if kind == "isoflop":
            options.update(text_tokens=qs, budgets=budgets)
        else:
            options.update(text_tokens=qs[0], budget=budgets[0] if budgets else None)
    result = plots.plot(kind, laws, output=output, dpi=dpi, **options)
    summary = {**result.summary(), "law_file": str(law) if law else None,
               "law": result.law_label if law else label}
    if json_out:
        print_json(summary)
        return
    from scaling.units import format_params

    console.print(f"wrote {result.output}: {kind}, {summary['curves']} curves, "
                  f"{summary['points']} measured points (law: {summary['law']}; "
                  f"cost model: {result.cost_model})", markup=False, highlight=False,
                  soft_wrap=True)
    for o in summary["optima"]:
        console.print(f"  planner optimum at {o['flops']:.4g} FLOPs: N = "
                      f"{format_params(o['llm_params'])} params, V = {o['visual_tokens']:.3g} "
                      f"visual tokens, predicted error {o['predicted_error']:.4f}",
                      markup=False, highlight=False, soft_wrap=True)
    for w in result.warnings:
        err_console.print(f"warning: {w}", markup=False)
