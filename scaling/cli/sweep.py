"""``scaling sweep run|status|suggest``: run a sweep spec (resuming; ``--adaptive`` runs its
``design:`` block), show how far it got, or suggest the next points to measure.

Exit codes of ``sweep run``: 0 every run of the grid is ok; 1 some runs failed (their reasons
are printed and in the table's ``failure`` column; rerun to retry them); 2 bad input, or
another sweep is writing the same output (``--wait`` waits for it); 130 interrupted. With
``--adaptive`` failed runs do not stop the design (exit 0 when it stops normally).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scaling.cli import app
from scaling.cli._common import console, err_console, guarded, print_json

sweep_app = typer.Typer(
    help="Run grids of LLM size x visual tokens (locally or on Dask) into a results table.",
    no_args_is_help=True,
)
app.add_typer(sweep_app, name="sweep")

SPEC_ARG = typer.Argument(..., help="Sweep spec (YAML), e.g. sweeps/toyvlm_quick.yaml.")
OUTPUT_OPT = typer.Option(None, "--output", "-o", help="Results table (.csv/.parquet); "
                          "overrides the spec's output.")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable result on stdout.")


class _Bar:
    """rich progress bar with ETA on stderr (the runner's Progress hook)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=err_console, transient=False)
        self.task: Any = None
        self.ok = self.failed = 0

    def start(self, *, total: int, skipped: int, todo: int) -> None:
        if skipped:
            err_console.print(f"resuming: {skipped} of {total} runs already done")
        if not todo:
            return
        self.bar.start()
        self.task = self.bar.add_task("sweep", total=todo, state="")

    def update(self, record: Any) -> None:
        if record.status == "ok":
            self.ok += 1
        else:
            self.failed += 1
        self.bar.update(self.task, advance=1,
                        state=f"done: {self.ok} ok, {self.failed} failed")

    def stop(self) -> None:
        if self.task is not None:
            self.bar.stop()
            self.task = None


@sweep_app.command("run", epilog="Exit status: 0 all runs ok; 1 some runs failed (listed; "
                   "rerun to retry them); 2 bad input or the output is busy; 130 interrupted.")
@guarded
def run_command(
    spec: Path = SPEC_ARG,
    output: str | None = OUTPUT_OPT,
    executor: str | None = typer.Option(None, "--executor", help="local (default) or dask."),
    address: str | None = typer.Option(None, "--address", help="Dask scheduler HOST:PORT "
                                       "(implies --executor dask); else a LocalCluster."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Parallel runs."),
    adaptive: bool = typer.Option(False, "--adaptive", help="Run the spec's design: block: "
                                  "a space-filling start, then rounds of suggest + run until "
                                  "the answer's CI reaches the target or max_runs."),
    wait: bool = typer.Option(False, "--wait", help="If another sweep is writing the same "
                              "output, wait for it to finish (else exit 2 naming it)."),
    json_out: bool = JSON_OPT,
) -> None:
    """Run SPEC's grid, skipping runs already done (resume is the default)."""
    from scaling.sweep import load_spec, run_sweep

    sweep = load_spec(spec)
    if adaptive:
        _run_adaptive(sweep, str(spec), output=output, executor=executor, address=address,
                      workers=workers, json_out=json_out)
        return
    bar = None if json_out else _Bar()

    def waiting(holder: str) -> None:
        err_console.print(f"waiting: the output is being written by another sweep ({holder})",
                          markup=False)

    try:
        report = run_sweep(sweep, output=output, executor=executor, address=address,
                           workers=workers, progress=bar, wait=wait, on_wait=waiting)
    except KeyboardInterrupt:
        if bar is not None:
            bar.stop()
        err_console.print("interrupted: finished runs are saved; rerun the same command to "
                          "resume", markup=False)
        raise typer.Exit(code=130) from None
    finally:
        if bar is not None:
            bar.stop()
    if json_out:
        print_json(report)
    else:
        console.print(f"{report.name}: {report.ok} ok, {report.failed} "
                      f"failed, {report.pending} pending of {report.total} runs ({report.ran} "
                      f"run now, {report.skipped} already done) in {report.elapsed_s:.1f} s "
                      f"on {report.executor} x{report.workers}")
        console.print(f"table: {report.output} ({report.rows} rows)", markup=False)
        _print_invalid(report.invalid, rerun=True)
        _print_failures(report.failures)
        for warning in report.warnings:
            err_console.print(f"warning: {warning}", markup=False)
    if report.failed:
        err_console.print(f"error: {report.failed} of {report.total} runs failed; fix the cause "
                          "and rerun the same command to retry them", markup=False)
        raise typer.Exit(code=1)


@sweep_app.command("status")
@guarded
def status_command(spec: Path = SPEC_ARG, output: str | None = OUTPUT_OPT,
                   json_out: bool = JSON_OPT) -> None:
    """Show SPEC's runs done / failed / pending."""
    from rich.table import Table

    from scaling.design.sweeps import design_status
    from scaling.files import to_jsonable
    from scaling.sweep import load_spec, sweep_status

    sweep = load_spec(spec)
    status = sweep_status(sweep, output=output)
    design = design_status(sweep, output=output)
    if json_out:
        print_json({**to_jsonable(status), "design": design})
        return
    table = Table(title=f"{status.name}: {status.output}")
    for col in ("total", "ok", "failed", "pending", "rows"):
        table.add_column(col, justify="right")
    table.add_row(*(str(getattr(status, c)) for c in ("total", "ok", "failed", "pending",
                                                     "rows")))
    console.print(table)
    if design is not None:
        _print_design_status(design)
    if status.running:
        console.print(f"a sweep is writing this output now ({status.running})", markup=False)
    if status.orphaned:
        console.print(f"{status.orphaned} recorded runs are no longer in this grid (kept in "
                      f"{status.output}.runs/, not in the table)", markup=False)
    _print_invalid(status.invalid, rerun=False)
    _print_failures(status.failures)


def _print_invalid(invalid: dict[str, str], *, rerun: bool, limit: int = 10) -> None:
    what = "found; their runs were run again" if rerun else \
        "(their runs count as pending; `sweep run` reruns them)"
    if invalid:
        console.print(f"{len(invalid)} invalid run records {what}:", markup=False)
    for run_id, reason in list(invalid.items())[:limit]:
        console.print(f"  invalid {run_id}.json: {reason}", markup=False, highlight=False,
                      soft_wrap=True)


def _print_failures(failures: list[dict[str, Any]], *, limit: int = 10) -> None:
    for f in failures[:limit]:
        axes = ", ".join(f"{k}={v}" for k, v in f.items()
                         if k not in ("run_id", "attempts", "failure"))
        console.print(f"  failed {f['run_id']} ({axes}; {f['attempts']} attempts): "
                      f"{f['failure']}", markup=False, highlight=False, soft_wrap=True)
    if len(failures) > limit:
        console.print(f"  ... and {len(failures) - limit} more (see --json)", markup=False)


@sweep_app.command("suggest")
@guarded
def suggest_command(
    spec: Path = SPEC_ARG,
    k: int | None = typer.Option(None, "--k", "-k", help="How many points (default: the "
                                 "design's batch, or its initial design before any run)."),
    output: str | None = OUTPUT_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Rank SPEC's unmeasured grid points by how much they would pin down its design's answer
    per unit run_cost (the spec needs a design: block)."""
    from scaling.design.sweeps import suggest
    from scaling.sweep import load_spec

    result = suggest(load_spec(spec), output=output, k=k, source=str(spec))
    if json_out:
        print_json(result.points)
        return
    head = ("next points (by the criterion, then by coverage):" if result.kind == "criterion"
            else "space-filling points (too few runs to fit the law yet):")
    console.print(f"{result.measured} runs measured; {head}", soft_wrap=True)
    if result.answer is not None:
        console.print(f"current answer: {_answer_line(result.answer)}",
                      soft_wrap=True)
    for p in result.points:
        console.print(f"  {p['label']}  score {p['score']:.3g}  run_id {p['run_id']}: "
                      f"{p['why']}", soft_wrap=True)


def _run_adaptive(sweep: Any, source: str, *, output: str | None, executor: str | None,
                  address: str | None, workers: int | None, json_out: bool) -> None:
    from scaling.design.sweeps import run_adaptive

    def on_round(r: Any, design: Any) -> None:
        if json_out:
            return
        points = ", ".join(design.labels[p.index] for p in r.picks)
        failed = f" ({len(r.failed)} failed)" if r.failed else ""
        share = r.cost_used / float(design.cost.sum())
        answer = "law not fitted yet" if r.answer is None else _answer_line(r.answer.to_dict())
        err_console.print(f"round {r.index} ({r.kind}): {points}{failed}; {r.runs_used} runs, "
                          f"{100 * share:.0f}% of the grid's cost; {answer}",
                          soft_wrap=True)

    try:
        report = run_adaptive(sweep, output=output, executor=executor, address=address,
                              workers=workers, on_round=on_round, source=source,
                              progress=None if json_out else _Bar)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished runs and rounds are saved; rerun the same "
                          "command to resume", soft_wrap=True)
        raise typer.Exit(code=130) from None
    if json_out:
        print_json(report)
        return
    if report.resumed_at is not None:
        console.print(f"resumed at round {report.resumed_at}", soft_wrap=True)
    console.print(f"{report.name}: stopped after {report.rounds} rounds, {report.runs_used} of "
                  f"{report.grid_runs} runs ({100 * report.cost_fraction:.0f}% of the grid's "
                  f"cost): {report.stopped}", soft_wrap=True)
    if report.answer is not None:
        console.print(f"answer: {_answer_line(report.answer)}", soft_wrap=True)
    console.print(f"table: {report.output}; design log: {report.log}",
                  soft_wrap=True)


def _answer_line(a: dict[str, Any]) -> str:
    from scaling.units import format_params

    c, o, ci = a["choice"], a["optimum"], a.get("ci") or {}
    share = "" if c.get("p_choice") is None else f" (chosen by {100 * c['p_choice']:.0f}% " \
        "of bootstrap fits)"
    v_ci = ci.get("visual_tokens")
    interval = "" if not v_ci else f" [{v_ci[0]:.3g}, {v_ci[1]:.3g}]"
    width = a.get("rel_width")
    rel = "" if width is None else f"; relative CI width {width:.2g}"
    return (f"{format_params(c['llm_params'])} with {c['visual_tokens']:g} visual tokens{share}; "
            f"V* = {o['visual_tokens']:.3g}{interval}, N* = {format_params(o['llm_params'])}"
            f"{rel}")


def _print_design_status(design: dict[str, Any]) -> None:
    console.print(f"design: {design['rounds']} rounds, {design['runs_used']} runs "
                  f"({100 * design['cost_fraction']:.0f}% of the grid's cost)"
                  + (f", stopped: {design['stopped']}" if design["stopped"] else ""),
                  soft_wrap=True)
    if design["answer"] is not None:
        console.print(f"current answer: {_answer_line(design['answer'])}",
                      soft_wrap=True)
