"""The sweep runner: expand the grid, skip finished runs, execute the rest, keep the table.

``run_sweep(spec)`` resumes by default: runs whose record says ``ok`` are skipped; failed
runs get ``1 + retries`` new attempts (``attempts`` keeps counting across invocations); runs
never recorded are executed. Every finished run is saved atomically as it arrives
(:mod:`scaling.sweep.store`) and the table is rewritten every ``flush_every_s`` seconds and at
the end (also after Ctrl-C). The table holds the current grid's runs in grid order, so the
local pool and Dask produce identical tables up to the timing columns.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from scaling.errors import ScalingError
from scaling.sweep.grid import Run, expand
from scaling.sweep.job import Job
from scaling.sweep.spec import SweepSpec
from scaling.sweep.store import RunStore

#: Seconds the local pool waits past a job's timeouts before it kills the worker.
BACKSTOP_GRACE_S = 10.0


class Progress(Protocol):
    """What the runner reports to (the CLI's progress bar)."""

    def start(self, *, total: int, skipped: int, todo: int) -> None: ...

    def update(self, record: dict[str, Any]) -> None: ...


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
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SweepStatus:
    """Done / failed / pending of a spec's grid against its output."""

    name: str
    output: str
    total: int
    ok: int
    failed: int
    pending: int
    rows: int
    orphaned: int               # records of runs no longer in the grid (kept, not tabled)
    failures: list[dict[str, Any]] = field(default_factory=list)


def run_sweep(spec: SweepSpec, *, output: str | Path | None = None,
              executor: str | None = None, address: str | None = None,
              workers: int | None = None, progress: Progress | None = None,
              flush_every_s: float = 2.0) -> SweepReport:
    """Run (or resume) ``spec``; ``output``, ``executor``, ``address`` and ``workers``
    override the spec's (an ``address`` implies the Dask executor)."""
    t0 = time.perf_counter()
    kind, address, workers = _executor_choice(spec, executor, address, workers)
    store = RunStore(spec.output_path(output))
    store.check_owner()
    runs = expand(spec)
    _preflight(spec, kind)
    records = store.load()
    todo = [r for r in runs if records.get(r.run_id, {}).get("status") != "ok"]
    own = not (kind == "dask" and address)  # an existing cluster keeps its settings
    jobs = [_job(spec, store, run, records.get(run.run_id), own) for run in todo]
    if progress is not None:
        progress.start(total=len(runs), skipped=len(runs) - len(todo), todo=len(todo))
    pool = _make_pool(spec, kind, address, workers)
    ran, last_flush = 0, time.monotonic()
    try:
        for rec in pool.run(jobs) if jobs else ():
            store.save(rec)
            records[rec["run_id"]] = rec
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
        warnings=_warnings(runs, records), **counts)


def sweep_status(spec: SweepSpec, *, output: str | Path | None = None) -> SweepStatus:
    """Count done / failed / pending runs of ``spec`` in its output (read-only)."""
    store = RunStore(spec.output_path(output))
    runs = expand(spec)
    records = store.load()
    grid_ids = {r.run_id for r in runs}
    return SweepStatus(
        name=spec.name, output=str(store.output), total=len(runs),
        rows=sum(len(rec["rows"]) for rec in _in_grid(runs, records)),
        orphaned=sum(1 for rid in records if rid not in grid_ids),
        failures=_failures(runs, records), **_counts(runs, records))


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


def _preflight(spec: SweepSpec, kind: str) -> None:
    """Fail fast (exit 2) on what would make every run fail the same way."""
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


def _job(spec: SweepSpec, store: RunStore, run: Run, previous: dict | None, own: bool) -> Job:
    return Job(run=run, evaluator=spec.evaluator, output=str(store.output),
               text_tokens=spec.text_tokens, gen_tokens=spec.gen_tokens, encoder=spec.encoder,
               retries=spec.retries, timeout_s=spec.timeout_s,
               prior_attempts=int(previous["attempts"]) if previous else 0, own_worker=own)


def _make_pool(spec: SweepSpec, kind: str, address: str | None, workers: int) -> Any:
    from scaling.sweep.executors import DaskPool, LocalPool

    if kind == "dask":
        return DaskPool(address=address, workers=workers)
    backstop = None
    if spec.timeout_s is not None:  # for a C call that the in-process timeout cannot stop
        backstop = (spec.retries + 1) * (spec.timeout_s + BACKSTOP_GRACE_S) + BACKSTOP_GRACE_S
    return LocalPool(workers, backstop_s=backstop)


def _in_grid(runs: tuple[Run, ...], records: dict[str, dict]) -> list[dict]:
    return [records[r.run_id] for r in runs if r.run_id in records]


def _counts(runs: tuple[Run, ...], records: dict[str, dict]) -> dict[str, int]:
    statuses = [records[r.run_id]["status"] if r.run_id in records else "pending" for r in runs]
    return {"ok": statuses.count("ok"), "failed": statuses.count("failed"),
            "pending": statuses.count("pending")}


def _failures(runs: tuple[Run, ...], records: dict[str, dict], *, limit: int = 50
              ) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        rec = records.get(r.run_id)
        if rec and rec["status"] == "failed":
            out.append({"run_id": r.run_id, **r.axes, "attempts": rec["attempts"],
                        "failure": rec["rows"][0].get("failure")})
    return out[:limit]


def _warnings(runs: tuple[Run, ...], records: dict[str, dict]) -> list[str]:
    missing = sorted({row.get("llm") for rec in _in_grid(runs, records) if rec["status"] == "ok"
                      for row in rec["rows"] if row.get("llm_params") is None})
    if not missing:
        return []
    return [f"ok rows of llm {', '.join(map(str, missing))} have no llm_params: give the llm as "
            "a catalog name, a size (0.5B) or {name, params}, or return llm_params from the "
            "evaluator"]

