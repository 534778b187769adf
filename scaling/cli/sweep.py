"""``scaling sweep run|status``: run a sweep spec (resuming), or show how far it got.

Exit codes of ``sweep run``: 0 every run of the grid is ok; 1 some runs failed (their reasons
are printed and in the table's ``failure`` column; rerun to retry them); 2 bad input, or
another sweep is writing the same output (``--wait`` waits for it); 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

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
    wait: bool = typer.Option(False, "--wait", help="If another sweep is writing the same "
                              "output, wait for it to finish (else exit 2 naming it)."),
    json_out: bool = JSON_OPT,
) -> None:
    """Run SPEC's grid, skipping runs already done (resume is the default)."""
    from scaling.sweep import load_spec, run_sweep

    sweep = load_spec(spec)
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
        console.print(f"[bold]{escape(report.name)}[/]: {report.ok} ok, {report.failed} "
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

    from scaling.sweep import load_spec, sweep_status

    status = sweep_status(load_spec(spec), output=output)
    if json_out:
        print_json(status)
        return
    table = Table(title=escape(f"{status.name}: {status.output}"))
    for col in ("total", "ok", "failed", "pending", "rows"):
        table.add_column(col, justify="right")
    table.add_row(*(str(getattr(status, c)) for c in ("total", "ok", "failed", "pending",
                                                     "rows")))
    console.print(table)
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
