"""One run, executed where a worker runs it: attempts, timing, rows, cost annotation.

:func:`execute_job` is what every sweep worker process runs (the local pool's, and the one a
Dask task starts), so both executors produce the same records. It never raises for an
evaluator's failure: it retries up to ``job.retries`` times and returns a
:class:`~scaling.sweep.store.RunRecord` whose rows carry ``status`` (``ok``/``failed``),
``failure`` (the last attempt's reason, one line; not ``error``, which DESIGN.md keeps for an
error-like metric),
``attempts`` (counted across sweep invocations), the axis values, ``llm_params``,
``text_tokens``, ``gen_tokens``, the evaluator's metrics, the cost columns
(:mod:`scaling.sweep.annotate`), ``started_at`` (UTC, ISO 8601) and ``duration_s``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling.errors import ScalingError
from scaling.sweep.annotate import annotate
from scaling.sweep.evaluators import EvaluatorFailure, evaluate
from scaling.sweep.evaluators.base import install_hint
from scaling.sweep.grid import Run
from scaling.sweep.store import RunRecord, RunStore

#: Keys an evaluator may not return (the runner owns them).
OWNED = frozenset({"run_id", "status", "failure", "attempts", "started_at", "duration_s",
                   "flops_paper", "flops", "flops_full_attention", "kv_cache_bytes",
                   "llm_params_actual", "llm_path", "output_dir", "options", "attempt"})
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
MAX_ERROR_CHARS = 600
#: What an evaluator may return besides metrics: the sizes of the cost annotation.
SIZES = ("llm_params", "text_tokens", "gen_tokens")
MAX_METRICS = 500
MAX_TEXT_CHARS = 1000
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.@%+/-]{0,99}", re.ASCII)


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


def execute_job(job: Job, *, after_attempt: Callable[[], None] | None = None) -> RunRecord:
    """Run ``job`` with up to ``1 + job.retries`` attempts; return its record.
    ``after_attempt`` runs after each attempt (the worker ends the attempt's processes)."""
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
            config = run_config(job.run, job.evaluator.options, out_dir, attempt)
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for `--json` alone
                result = evaluate(job.evaluator, config, timeout_s=job.timeout_s)
            rows = result_rows(result, job)
        except Exception as exc:  # recorded as the run's error; the sweep goes on
            error = describe(exc)
            continue
        finally:
            if after_attempt is not None:
                after_attempt()
            _remove_if_empty(out_dir)
        timing = {"started_at": started_at, "duration_s": time.perf_counter() - t0}
        return record(job, "ok", None, attempt, rows, timing)
    timing = {"started_at": started_at, "duration_s": time.perf_counter() - t0}
    return failed_record(job, error, attempts=attempt, timing=timing)


def run_config(run: Run, options: dict[str, Any], out_dir: str | Path, attempt: int
               ) -> dict[str, Any]:
    """The dict an evaluator receives (and command templates are filled from)."""
    return {**run.axes, "llm_path": run.llm.path or run.llm.name, "options": options,
            "output_dir": str(out_dir), "run_id": run.run_id, "attempt": attempt}


def result_rows(result: Any, job: Job) -> list[dict[str, Any]]:
    """Check an evaluator's result and turn it into annotated rows.

    A result is a dict of metrics or a non-empty list of them (one per ``task``). Each row
    needs at least one metric; a metric is named like an identifier (``exact_match``,
    ``acc@1``, ``mme_perception_score``; no spaces, at most 100 characters) and is a finite
    number, a missing value (``None``), or text (at most :data:`MAX_TEXT_CHARS` characters)
    when the spec lists it in ``evaluator.text_columns``. ``llm_params``, ``text_tokens``,
    ``gen_tokens`` and ``llm_spec`` feed the cost columns. The axis columns (``llm``,
    ``visual_tokens``, ...) and the runner's bookkeeping belong to the runner: an evaluator may
    echo an axis value, never change it. Anything else fails the run with the reason.
    """
    items = result if isinstance(result, list) else [result]
    if not items:
        raise EvaluatorFailure("evaluator returned an empty list (no rows)")
    base = {**job.run.axes, "text_tokens": job.text_tokens, "gen_tokens": job.gen_tokens}
    text = frozenset(job.evaluator.text_columns)
    rows = []
    for item in items:
        if not isinstance(item, dict):
            raise EvaluatorFailure(f"evaluator returned {_shown(item)} ({type(item).__name__}); "
                                   "expected a dict of metrics or a list of dicts")
        item = dict(item)
        llm_spec = item.pop("llm_spec", None)
        if llm_spec is not None and not isinstance(llm_spec, dict):
            raise EvaluatorFailure("llm_spec must be a dict of scaling.cost.specs.LLMSpec fields")
        if len(item) > MAX_METRICS:
            raise EvaluatorFailure(f"evaluator returned {len(item)} values in one row; at most "
                                   f"{MAX_METRICS}")
        row = dict(base)
        for key, value in item.items():
            name = _column_name(key)
            if name in job.run.axes:
                if _value(name, value, text=True) != job.run.axes[name]:
                    raise EvaluatorFailure(
                        f"evaluator returned {name}={_shown(value)}, but this run's {name} is "
                        f"{job.run.axes[name]!r}: axis columns belong to the runner; rename it")
            elif name == "task":  # one row per task when the grid has no task axis
                if not (isinstance(value, str) and value and len(value) <= 200):
                    raise EvaluatorFailure(f"task must be a non-empty string of at most 200 "
                                           f"characters, got {_shown(value)}")
                row[name] = value
            else:
                row[name] = _value(name, value, text=name in text or name == "llm_params")
        metrics = [k for k in item if k not in (*SIZES, *job.run.axes, "task")]
        if not any(row[k] is not None for k in metrics):
            raise EvaluatorFailure(f"evaluator returned no metric (got {_shown(item)}); return "
                                   "e.g. {'accuracy': 0.61}")
        rows.append(annotate(row, entry=job.run.llm, llm_spec=llm_spec, encoder=job.encoder))
    if len(rows) > 1:
        tasks = [r.get("task") for r in rows]
        if None in tasks or len(set(tasks)) < len(tasks):
            raise EvaluatorFailure(f"evaluator returned {len(rows)} rows; each needs a distinct "
                                   f"'task' (got {tasks})")
    return rows


def record(job: Job, status: str, error: str | None, attempts: int,
           rows: list[dict[str, Any]], timing: dict[str, Any]) -> RunRecord:
    head = {"run_id": job.run.run_id, "status": status, "failure": error,
            "attempts": attempts}
    return RunRecord(run_id=job.run.run_id, status=status, attempts=attempts,
                     rows=[{**head, **row, **timing} for row in rows])


def failed_record(job: Job, error: str, *, attempts: int,
                  timing: dict[str, Any] | None = None) -> RunRecord:
    """A failed run's record: one row with the axes (and costs where they resolve)."""
    row = {**job.run.axes, "text_tokens": job.text_tokens, "gen_tokens": job.gen_tokens}
    try:
        row = annotate(row, entry=job.run.llm, llm_spec=None, encoder=job.encoder)
    except ScalingError:
        pass  # the failure itself is what this row reports
    timing = timing or {"started_at": None, "duration_s": None}
    return record(job, "failed", error, attempts, [row], timing)


def describe(exc: BaseException) -> str:
    """One line for the ``failure`` column (with how to install a missing module)."""
    text = str(exc) if isinstance(exc, (EvaluatorFailure, ScalingError)) else \
        f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ImportError):
        text += install_hint(exc.name)
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def _column_name(key: Any) -> str:
    if not (isinstance(key, str) and COLUMN_NAME.fullmatch(key)):
        raise EvaluatorFailure(f"metric name {_shown(key)} is not a column name: use letters, "
                               "digits and _ . - @ % + / (no spaces), starting with a letter or "
                               "_, at most 100 characters")
    if key in OWNED:
        raise EvaluatorFailure(f"evaluator returned reserved key {key!r} (the runner's); "
                               "rename it")
    return key


def _value(key: str, value: Any, *, text: bool) -> Any:
    """A table cell: a finite number, None, or (``text``) a short string."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy scalar
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EvaluatorFailure(f"metric {key!r} is {value}; return a finite number (or "
                                   "leave the metric out)")
        return value
    if isinstance(value, str):
        if not text:
            raise EvaluatorFailure(f"metric {key!r} is text ({_shown(value)}); return a number, "
                                   "or list it in the spec's evaluator.text_columns")
        if len(value) > MAX_TEXT_CHARS:
            raise EvaluatorFailure(f"metric {key!r} is a string of {len(value):,} characters; "
                                   f"at most {MAX_TEXT_CHARS:,}")
        return value
    raise EvaluatorFailure(f"metric {key!r} is a {type(value).__name__}; return numbers "
                           "(or declared text)")


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _remove_if_empty(path: Path) -> None:
    for p in (path, path.parent):
        try:
            p.rmdir()
        except OSError:
            return
