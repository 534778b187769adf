"""One run, executed where a worker runs it: attempts, timing, rows, cost annotation.

:func:`execute_job` is the single task function of every executor (local pool or Dask), so
both produce the same records. It never raises for an evaluator's failure: it retries up to
``job.retries`` times and returns a record ``{"run_id", "status", "attempts", "rows"}`` whose
rows carry ``status`` (``ok``/``failed``), ``failure`` (the last attempt's reason, one
line; not ``error``, which DESIGN.md keeps for an error-like metric),
``attempts`` (counted across sweep invocations), the axis values, ``llm_params``,
``text_tokens``, ``gen_tokens``, the evaluator's metrics, the cost columns
(:mod:`scaling.sweep.annotate`), ``started_at`` (UTC, ISO 8601) and ``duration_s``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling.errors import ScalingError
from scaling.sweep.annotate import annotate
from scaling.sweep.evaluators import EvaluatorFailure, evaluate
from scaling.sweep.grid import Run
from scaling.sweep.store import RunStore

#: Keys an evaluator may not return (the runner owns them).
OWNED = frozenset({"run_id", "status", "failure", "attempts", "started_at", "duration_s",
                   "flops_paper", "flops", "flops_full_attention", "kv_cache_bytes",
                   "llm_params_actual",
                   "output_dir", "options", "attempt"})
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
MAX_ERROR_CHARS = 600


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to execute one run (picklable)."""

    run: Run
    evaluator: Any
    output: str
    text_tokens: int = 0
    gen_tokens: int = 0
    encoder: str | None = None
    retries: int = 0
    timeout_s: float | None = None
    prior_attempts: int = 0
    own_worker: bool = False  # a worker the sweep started: pin threads, stdout -> stderr


def pin_threads() -> None:
    """One thread per worker: BLAS/OpenMP variables (inherited by commands) and torch."""
    for var in THREAD_VARS:
        os.environ[var] = "1"
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def execute_job(job: Job) -> dict[str, Any]:
    """Run ``job`` with up to ``1 + job.retries`` attempts; return its record."""
    if job.own_worker:
        pin_threads()
        sys.stdout.flush()
        os.dup2(2, 1)  # a program's raw writes must not reach the sweep's `--json` output
    store = RunStore(job.output)
    started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    attempt, error = job.prior_attempts, "not attempted"
    for attempt in range(job.prior_attempts + 1, job.prior_attempts + job.retries + 2):
        out_dir = store.scratch_dir(job.run.run_id, attempt)
        try:
            out_dir.mkdir(parents=True)
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for `--json` alone
                result = evaluate(job.evaluator, run_config(job, out_dir, attempt),
                                  timeout_s=job.timeout_s)
            rows = result_rows(result, job)
        except Exception as exc:  # recorded as the run's error; the sweep goes on
            error = describe(exc)
            continue
        finally:
            _remove_if_empty(out_dir)
        timing = {"started_at": started_at, "duration_s": time.perf_counter() - t0}
        return record(job, "ok", None, attempt, rows, timing)
    timing = {"started_at": started_at, "duration_s": time.perf_counter() - t0}
    return failed_record(job, error, attempts=attempt, timing=timing)


def run_config(job: Job, out_dir: Path, attempt: int) -> dict[str, Any]:
    """The dict an evaluator receives."""
    entry = job.run.llm
    return {**job.run.axes, "llm_path": entry.path or entry.name,
            "options": job.evaluator.options, "output_dir": str(out_dir),
            "run_id": job.run.run_id, "attempt": attempt}


def result_rows(result: Any, job: Job) -> list[dict[str, Any]]:
    """Validate an evaluator's result and turn it into annotated rows."""
    items = result if isinstance(result, list) else [result]
    if not items:
        raise EvaluatorFailure("evaluator returned an empty list (no rows)")
    base = {**job.run.axes, "text_tokens": job.text_tokens, "gen_tokens": job.gen_tokens}
    rows = []
    for item in items:
        if not isinstance(item, dict):
            raise EvaluatorFailure(f"evaluator returned {type(item).__name__}; expected a dict "
                                   "of metrics or a list of dicts")
        item = dict(item)
        llm_spec = item.pop("llm_spec", None)
        if llm_spec is not None and not isinstance(llm_spec, dict):
            raise EvaluatorFailure("llm_spec must be a dict of scaling.cost.specs.LLMSpec fields")
        taken = sorted(OWNED & set(item))
        if taken:
            raise EvaluatorFailure(f"evaluator returned reserved key(s) {', '.join(taken)}; "
                                   "rename them")
        row = {**base, **{str(k): _scalar(k, v) for k, v in item.items()}}
        rows.append(annotate(row, entry=job.run.llm, llm_spec=llm_spec, encoder=job.encoder))
    if len(rows) > 1:
        tasks = [r.get("task") for r in rows]
        if None in tasks or len(set(tasks)) < len(tasks):
            raise EvaluatorFailure(f"evaluator returned {len(rows)} rows; each needs a distinct "
                                   f"'task' (got {tasks})")
    return rows


def record(job: Job, status: str, error: str | None, attempts: int,
           rows: list[dict[str, Any]], timing: dict[str, Any]) -> dict[str, Any]:
    head = {"run_id": job.run.run_id, "status": status, "failure": error,
            "attempts": attempts}
    return {"run_id": job.run.run_id, "status": status, "attempts": attempts,
            "rows": [{**head, **row, **timing} for row in rows]}


def failed_record(job: Job, error: str, *, attempts: int,
                  timing: dict[str, Any] | None = None) -> dict[str, Any]:
    """A failed run's record: one row with the axes (and costs where they resolve)."""
    row = {**job.run.axes, "text_tokens": job.text_tokens, "gen_tokens": job.gen_tokens}
    try:
        row = annotate(row, entry=job.run.llm, llm_spec=None, encoder=job.encoder)
    except ScalingError:
        pass  # the failure itself is what this row reports
    timing = timing or {"started_at": None, "duration_s": None}
    return record(job, "failed", error, attempts, [row], timing)


def describe(exc: BaseException) -> str:
    """One line for the ``failure`` column."""
    text = str(exc) if isinstance(exc, (EvaluatorFailure, ScalingError)) else \
        f"{type(exc).__name__}: {exc}"
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def _scalar(key: Any, value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item() if getattr(value, "ndim", 0) == 0 else value  # numpy scalar
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise EvaluatorFailure(f"metric {key!r} is a {type(value).__name__}; return numbers or "
                           "strings")


def _remove_if_empty(path: Path) -> None:
    for p in (path, path.parent):
        try:
            p.rmdir()
        except OSError:
            return
