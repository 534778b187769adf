"""Adaptive sweeps on the sweep runner: ``run_adaptive``, ``suggest`` and ``design_status``.

Each round's points run through :func:`scaling.sweep.run_sweep` on sub-specs that hold
exactly those points (as few cross products ``llms x tokens`` as :func:`blocks` finds), writing
into the sweep's own output: run ids, records, retries, timeouts, the executor (local pool or
Dask) and resuming are the runner's. After a round the table is rewritten with every run of
the grid measured so far, in grid order. Measurements are read from the run records: the
``where`` rows of an ``ok`` run, its ``metric`` as an error-like ``Y`` (a name that is or ends
in ``error``/``loss`` as is, anything else an accuracy: ``1 - value``), ``llm_params`` as the
run reported it. A failed run (after ``retries``) counts as spent and is not chosen again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.design import log as design_log
from scaling.design.answer import answer as answer_of
from scaling.design.campaign import Data, Outcome, Round, choose, drive, fit_data, fit_summary
from scaling.design.criterion import Pick
from scaling.design.spec import Design, design_of
from scaling.errors import ScalingError
from scaling.fit.table import is_error_name
from scaling.sweep import SweepSpec, run_sweep
from scaling.sweep.store import RunStore


@dataclass(frozen=True)
class Suggestion:
    """``scaling sweep suggest``: the next points and the state they were chosen from."""

    kind: str
    points: list[dict[str, Any]]
    measured: int
    fit: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None


@dataclass(frozen=True)
class DesignReport:
    """The outcome of ``scaling sweep run --adaptive``."""

    name: str
    output: str
    log: str
    stopped: str
    rounds: int
    runs_used: int
    grid_runs: int
    cost_fraction: float
    answer: dict[str, Any] | None
    resumed_at: int | None = None
    round_log: list[dict[str, Any]] = field(default_factory=list)


def read_data(design: Design, output: Path) -> Data:
    """Every grid run with a record: ``(llm_params, Y)`` when ok, None when failed."""
    records, _ = RunStore(output).load()  # an invalid record counts as not run (runner's rule)
    spec, data = design.spec, {}
    for i, run in enumerate(design.runs):
        rec = records.get(run.run_id)
        if rec is None:
            continue
        if rec.status != "ok":
            data[i] = None
            continue
        rows = [r for r in rec.rows
                if all(str(r.get(k)) == str(v) for k, v in spec.where.items())]
        if len(rows) != 1:
            where = f" with {spec.where}" if spec.where else ""
            raise ScalingError(f"run {design.labels[i]} ({run.run_id}) has {len(rows)} rows"
                               f"{where}; a design needs one per run: set design.where "
                               "(e.g. {task: NAME}) to pick it")
        row = rows[0]
        if row.get(spec.metric) is None:
            cols = ", ".join(k for k, v in row.items() if isinstance(v, (int, float)))
            raise ScalingError(f"run {design.labels[i]} ({run.run_id}) has no value for "
                               f"design.metric {spec.metric!r}; its numeric columns: {cols}")
        data[i] = (float(row.get("llm_params") or design.llm_params[i]),
                   error_like(spec.metric, float(row[spec.metric]), design.labels[i]))
    return data


def error_like(metric: str, value: float, where: str) -> float:
    """DESIGN.md's rule, the fitter's (:func:`scaling.fit.table.is_error_name`): error-like
    names as is, accuracies as ``1 - value``."""
    if is_error_name(metric):
        return value
    if not 0.0 <= value <= 1.0:
        raise ScalingError(f"run {where}: accuracy {metric}={value!r} is outside [0, 1]; "
                           "rescale it, or name an error-like metric (…_error, …_loss)")
    return 1.0 - value


def execute(sweep: SweepSpec, design: Design, indices: list[int], output: Path, *,
            executor: str | None = None, address: str | None = None,
            workers: int | None = None, progress: Callable[[], Any] | None = None) -> None:
    """Run grid points ``indices`` with the sweep runner (one call per block of points that
    is a cross product, see :func:`blocks`), then rewrite the whole table."""
    for llms, tokens, run in blocks([design.runs[i] for i in indices]):
        axes: dict[str, Any] = {"llm": llms, "visual_tokens": tokens}
        for name in sweep.axes.names():
            if name in ("compressor", "task", "seed"):
                axes[name] = [run.axes[name]]
        axes["params"] = {k: [run.axes[k]] for k in sweep.axes.params}
        sub = sweep.model_copy(update={"axes": type(sweep.axes)(**axes), "design": None})
        bar = None if progress is None else progress()
        try:
            run_sweep(sub, output=output, executor=executor, address=address,
                      workers=workers, progress=bar)
        finally:
            getattr(bar, "stop", lambda: None)()
    store = RunStore(output)
    with store.locked(wait=True):
        records, _ = store.load()
        store.write_table([records[r.run_id] for r in design.runs if r.run_id in records],
                          axes=sweep.axes.names())


def blocks(runs: list[Any]) -> list[tuple[list[Any], list[int], Any]]:
    """Cover ``runs`` exactly by cross products ``llms x tokens`` (other axes fixed), as few as
    this finds: LLMs that need the same token counts share a block, or token counts that need
    the same LLMs do, whichever gives fewer blocks."""
    out = []
    by_rest: dict[str, list[Any]] = {}
    for run in runs:
        rest = {k: v for k, v in run.axes.items() if k not in ("llm", "visual_tokens")}
        by_rest.setdefault(repr(sorted(rest.items())), []).append(run)
    for group in by_rest.values():
        entries = {r.llm.name: r.llm for r in group}
        tokens: dict[str, set[int]] = {}
        llms: dict[int, set[str]] = {}
        for r in group:
            tokens.setdefault(r.llm.name, set()).add(r.axes["visual_tokens"])
            llms.setdefault(r.axes["visual_tokens"], set()).add(r.llm.name)
        per_llm: dict[frozenset, list[str]] = {}
        for name, vs in tokens.items():
            per_llm.setdefault(frozenset(vs), []).append(name)
        per_token: dict[frozenset, list[int]] = {}
        for v, names in llms.items():
            per_token.setdefault(frozenset(names), []).append(v)
        if len(per_llm) <= len(per_token):
            pairs = [(names, sorted(vs)) for vs, names in per_llm.items()]
        else:
            pairs = [(sorted(names), vs) for names, vs in per_token.items()]
        out += [([entries[n] for n in names], list(vs), group[0]) for names, vs in pairs]
    return out


def run_adaptive(sweep: SweepSpec, *, output: str | Path | None = None,
                 executor: str | None = None, address: str | None = None,
                 workers: int | None = None, on_round: Callable[[Round, Design], None] | None
                 = None, progress: Callable[[], Any] | None = None,
                 source: str = "spec") -> DesignReport:
    """Run (or resume) the adaptive design of ``sweep``; bad input raises before any run.
    ``on_round`` hears of each finished round; ``progress()`` makes the runner's progress
    hook for each batch of runs (its ``stop()``, if any, is called after the batch)."""
    design = design_of(sweep, source=source)
    out = sweep.output_path(output)
    RunStore(out).check_owner()
    path = design_log.log_path(out)
    rounds = design_log.load(path, design)
    resumed = len(rounds) - 1 if rounds else None
    if rounds and rounds[-1].done:
        resumed = len(rounds)

    def run(indices: list[int]) -> None:
        execute(sweep, design, indices, out, executor=executor, address=address,
                workers=workers, progress=progress)

    def save(done: list[Round], stopped: str | None) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        design_log.save(path, design, done, stopped, name=sweep.name)

    outcome: Outcome = drive(design, rounds, run=run, read=lambda: read_data(design, out),
                             save=save, on_round=None if on_round is None
                             else lambda r: on_round(r, design))
    last = next((r for r in reversed(outcome.rounds) if r.done), None)
    payload = design_log.to_dict(design, list(outcome.rounds), outcome.stopped, name=sweep.name)
    return DesignReport(
        name=sweep.name, output=str(out), log=str(path), stopped=outcome.stopped,
        rounds=len(outcome.rounds), runs_used=0 if last is None else last.runs_used,
        grid_runs=int(design.cost.size),
        cost_fraction=0.0 if last is None else last.cost_used / float(design.cost.sum()),
        answer=payload["answer"], resumed_at=resumed, round_log=payload["rounds"])


def suggest(sweep: SweepSpec, *, output: str | Path | None = None, k: int | None = None,
            source: str = "spec") -> Suggestion:
    """The next ``k`` points (default: the design's ``batch``) from the runs measured so far:
    those of the design log's rounds if there is a log (a round still running counts with the
    runs it finished), else every grid run with a record."""
    design = design_of(sweep, source=source)
    if k is not None and k < 1:
        raise ScalingError(f"--k must be >= 1, got {k}")
    out = sweep.output_path(output)
    data = read_data(design, out)
    rounds = design_log.load(design_log.log_path(out), design)
    if not rounds and data:  # runs measured outside a design: one pseudo-round holding them
        picks = tuple(Pick(i, 0.0, "measured") for i in sorted(data))
        rounds = [Round(0, "measured", picks, done=True, runs_used=len(picks))]
    taken = {p.index for r in rounds for p in r.picks}
    data = {i: v for i, v in data.items() if i in taken}
    fit = fit_data(design, data) if rounds else None
    kind, picks = choose(design, fit, rounds,
                         n=k or (design.initial if not rounds else design.spec.batch))
    return Suggestion(kind=kind, measured=sum(v is not None for v in data.values()),
                      points=[{**design_log.point(design, p.index), "score": p.score,
                               "why": p.why} for p in picks],
                      fit=fit_summary(design, fit),
                      answer=None if fit is None else answer_of(design, fit).to_dict())


def design_status(sweep: SweepSpec, *, output: str | Path | None = None) -> dict[str, Any] | None:
    """The design log's current answer and CI (None when the sweep has no design log)."""
    if sweep.design is None:
        return None
    data = design_log.read(design_log.log_path(sweep.output_path(output)))
    if data is None:
        return None
    done = [r for r in data["rounds"] if r.get("done")]
    return {"log": str(design_log.log_path(sweep.output_path(output))),
            "rounds": len(data["rounds"]), "stopped": data.get("stopped"),
            "runs_used": done[-1]["runs_used"] if done else 0,
            "cost_fraction": done[-1]["cost_fraction"] if done else 0.0,
            "answer": data.get("answer")}
