"""The sweep runner: expand the grid, skip finished runs, execute the rest, keep the table.

``run_sweep(spec)`` resumes by default: runs whose record says ``ok`` are skipped; failed
runs get ``1 + retries`` new attempts (``attempts`` keeps counting across invocations); runs
never recorded, or whose record is invalid (reported in ``invalid``), are executed. One
``run_sweep`` at a time writes an output (a lock in its ``.runs`` folder); ``sweep_status``
reads without it. Every finished run is saved atomically as it arrives
(:mod:`scaling.sweep.store`) and the table is rewritten every ``flush_every_s`` seconds and at
the end (also after Ctrl-C). The table holds the current grid's runs in grid order, so the
local pool and Dask produce identical tables up to the timing columns.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from scaling.errors import ScalingError
from scaling.sweep.grid import Run, expand
from scaling.sweep.job import Job, run_config
from scaling.sweep.spec import SweepSpec
from scaling.sweep.store import RunRecord, RunStore

#: Seconds the local pool waits past a job's timeouts before it kills the worker.
BACKSTOP_GRACE_S = 10.0


class Progress(Protocol):
    """What the runner reports to (the CLI's progress bar)."""

    def start(self, *, total: int, skipped: int, todo: int) -> None: ...

    def update(self, record: RunRecord) -> None: ...


@dataclass(frozen=True)
class SweepReport:
    """The outcome of one ``run_sweep`` call."""

    name: str
    output: str
    executor: str
    workers: int
    total: int                  # grid size
    skipped: int                # already ok before this call
    ran: int                    # runs executed now
    ok: int                     # ok in the table now (all runs of the grid)
    failed: int                 # failed in the table now
    pending: int                # never finished (interrupted)
    rows: int                   # rows in the table
    elapsed_s: float
    failures: list[dict[str, Any]] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)  # records found invalid (rerun)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SweepStatus:
    """Done / failed / pending of a spec's grid against its output."""

    name: str
    output: str
    total: int
    ok: int
    failed: int
    pending: int                # not finished, invalid records included (they are rerun)
    rows: int
    orphaned: int               # records of runs no longer in the grid (kept, not tabled)
    failures: list[dict[str, Any]] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)  # run_id -> why its record is invalid
    running: str | None = None  # the sweep writing this output now, if any


def run_sweep(spec: SweepSpec, *, output: str | Path | None = None,
              executor: str | None = None, address: str | None = None,
              workers: int | None = None, progress: Progress | None = None,
              flush_every_s: float = 2.0, wait: bool = False,
              on_wait: Callable[[str], None] | None = None) -> SweepReport:
    """Run (or resume) ``spec``; ``output``, ``executor``, ``address`` and ``workers``
    override the spec's (an ``address`` implies the Dask executor). Another sweep writing
    the same output: :class:`ScalingError` naming it, or (``wait``) wait for it."""
    t0 = time.perf_counter()
    kind, address, workers = _executor_choice(spec, executor, address, workers)
    store = RunStore(spec.output_path(output))
    store.check_owner()
    runs = expand(spec)
    _preflight(spec, kind, runs)
    with store.locked(wait=wait, on_wait=on_wait):
        records, invalid = store.load()
        todo = [r for r in runs if r.run_id not in records or records[r.run_id].status != "ok"]
        own = not (kind == "dask" and address)  # an existing cluster keeps its settings
        jobs = [_job(spec, store, run, records.get(run.run_id), own) for run in todo]
        if progress is not None:
            progress.start(total=len(runs), skipped=len(runs) - len(todo), todo=len(todo))
        pool = _make_pool(spec, kind, address, workers)
        ran, last_flush = 0, time.monotonic()
        try:
            for rec in pool.run(jobs) if jobs else ():
                store.save(rec)
                records[rec.run_id] = rec
                ran += 1
                if progress is not None:
                    progress.update(rec)
                if time.monotonic() - last_flush >= flush_every_s:
                    store.write_table(_in_grid(runs, records), axes=spec.axes.names())
                    last_flush = time.monotonic()
        finally:
            rows = store.write_table(_in_grid(runs, records), axes=spec.axes.names())
    counts = _counts(runs, records)
    return SweepReport(
        name=spec.name, output=str(store.output), executor=kind, workers=workers,
        total=len(runs), skipped=len(runs) - len(todo), ran=ran, rows=rows,
        elapsed_s=time.perf_counter() - t0, failures=_failures(runs, records),
        invalid=invalid, warnings=_warnings(runs, records), **counts)


def sweep_status(spec: SweepSpec, *, output: str | Path | None = None) -> SweepStatus:
    """Count done / failed / pending runs of ``spec`` in its output (read-only, no lock)."""
    store = RunStore(spec.output_path(output))
    runs = expand(spec)
    records, invalid = store.load()
    grid_ids = {r.run_id for r in runs}
    return SweepStatus(
        name=spec.name, output=str(store.output), total=len(runs),
        rows=sum(len(rec.rows) for rec in _in_grid(runs, records)),
        orphaned=sum(1 for rid in records if rid not in grid_ids),
        failures=_failures(runs, records), invalid=invalid, running=store.running(),
        **_counts(runs, records))


def _executor_choice(spec: SweepSpec, executor: str | None, address: str | None,
                     workers: int | None) -> tuple[str, str | None, int]:
    if executor not in (None, "local", "dask"):
        raise ScalingError(f"--executor must be local or dask, got {executor!r}")
    kind = executor or ("dask" if address else spec.executor.kind)
    if kind == "local" and address:
        raise ScalingError("--address needs the dask executor; drop --executor local")
    if kind == "dask":
        address = address or getattr(spec.executor, "address", None)
    if workers is not None and workers < 1:
        raise ScalingError(f"--workers must be >= 1, got {workers}")
    return kind, address, workers or spec.executor.workers


def _preflight(spec: SweepSpec, kind: str, runs: tuple[Run, ...]) -> None:
    """Fail fast (exit 2) on what would make every run fail the same way, and on command
    templates that some run would fill with an option-like value or a path outside its
    folder."""
    from scaling.sweep.annotate import resolve_encoder

    resolve_encoder(spec.encoder)  # unknown encoder -> ScalingError naming it
    function = getattr(spec.evaluator, "function", None)
    if function and kind == "local":
        module = function.partition(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            raise ScalingError(f"evaluator {function!r}: module {module!r} not found; install "
                               "it or add its directory to PYTHONPATH")
    if spec.evaluator.kind == "command":
        from scaling.sweep.evaluators import EvaluatorFailure
        from scaling.sweep.evaluators.command import render_args
        from scaling.sweep.evaluators.parsers import results_path

        folder = Path("/run-folder")
        for run in runs:
            fields = run_config(run, spec.evaluator.options, folder, 1)
            try:
                render_args(spec.evaluator.args, fields)
                results_path(spec.evaluator.parser, fields, folder)
            except EvaluatorFailure as exc:
                axes = ", ".join(f"{k}={v}" for k, v in run.axes.items())
                raise ScalingError(f"evaluator of run {run.run_id} ({axes}): {exc}") from None


def _job(spec: SweepSpec, store: RunStore, run: Run, previous: RunRecord | None,
         own: bool) -> Job:
    return Job(run=run, evaluator=spec.evaluator, output=str(store.output),
               text_tokens=spec.text_tokens, gen_tokens=spec.gen_tokens, encoder=spec.encoder,
               retries=spec.retries, timeout_s=spec.timeout_s,
               prior_attempts=previous.attempts if previous else 0, own_worker=own)


def _make_pool(spec: SweepSpec, kind: str, address: str | None, workers: int) -> Any:
    from scaling.sweep.executors import DaskPool, LocalPool

    backstop = None
    if spec.timeout_s is not None:  # for a C call that the in-process timeout cannot stop
        backstop = (spec.retries + 1) * (spec.timeout_s + BACKSTOP_GRACE_S) + BACKSTOP_GRACE_S
    if kind == "dask":
        return DaskPool(address=address, workers=workers, backstop_s=backstop)
    return LocalPool(workers, backstop_s=backstop)


def _in_grid(runs: tuple[Run, ...], records: dict[str, RunRecord]) -> list[RunRecord]:
    return [records[r.run_id] for r in runs if r.run_id in records]


def _counts(runs: tuple[Run, ...], records: dict[str, RunRecord]) -> dict[str, int]:
    statuses = [records[r.run_id].status if r.run_id in records else "pending" for r in runs]
    return {"ok": statuses.count("ok"), "failed": statuses.count("failed"),
            "pending": statuses.count("pending")}


def _failures(runs: tuple[Run, ...], records: dict[str, RunRecord], *, limit: int = 50
              ) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        rec = records.get(r.run_id)
        if rec and rec.status == "failed":
            out.append({"run_id": r.run_id, **r.axes, "attempts": rec.attempts,
                        "failure": rec.rows[0].get("failure")})
    return out[:limit]


def _warnings(runs: tuple[Run, ...], records: dict[str, RunRecord]) -> list[str]:
    missing = sorted({str(row.get("llm")) for rec in _in_grid(runs, records)
                      if rec.status == "ok" for row in rec.rows if row.get("llm_params") is None})
    if not missing:
        return []
    return [f"ok rows of llm {', '.join(missing)} have no llm_params: give the llm as "
            "a catalog name, a size (0.5B) or {name, params}, or return llm_params from the "
            "evaluator"]
