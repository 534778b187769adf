"""The adaptive loop: a space-filling start, then rounds of fit -> answer -> choose -> measure.

Each round records the points chosen (with score and why), which of them succeeded, the
runs and cost spent so far, the fit and the answer with its CI. The loop stops when the
answer's relative CI width is at most ``target`` in two rounds in a row (with the same menu
choice), when ``max_runs`` runs are spent (failed runs count: they cost a run) or when the
grid is exhausted. A failed run (after the sweep's
``retries``) is never chosen again and never blocks the design: when the measured points cannot
fit the law yet, the round fills the design space instead of ranking.

:func:`drive` is the loop over two callbacks (``run`` measures points, ``read`` returns every
measurement so far), so the same code serves the sweep runner (:mod:`scaling.design.sweeps`),
the simulation benchmark and the tests (:func:`simulate`). A round is appended (and saved)
before its points run, and completed after: a loop killed in between resumes at that round.

The start (``initial`` points) is space-filling in ``(log N, log V)`` scaled to the unit
square: the grid's corners except the costliest (the largest LLM at the most tokens is the
grid's priciest run; the criterion buys it if it moves the answer), the point nearest the
centre, then maximin filling (each new point as far as possible from those chosen) among the
runs costing at most the median run.

Later rounds are a model-robust compromise (Box & Draper 1959: a design must guard against
the bias of a wrong model as well as minimise variance under the right one): a share
``explore`` of each batch (default half) is chosen by maximin coverage among all but the
priciest quarter of the runs, the rest by the criterion (:mod:`scaling.design.criterion`).
The criterion alone trusts the law: on the paper's grid with its own departures from the law
kept (tests/benchmarks/bench_design.py, ``--oracle measured``) it stays on cheap points and
reached the full grid's answer in about two thirds of simulated campaigns; with coverage,
in all of them at a sixth of the grid's cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scaling import fit_law, from_arrays
from scaling.design.answer import Answer, answer
from scaling.design.criterion import Pick, noise_sd, rank
from scaling.design.spec import Design
from scaling.errors import ScalingError

#: index -> (llm_params, y) for a measured run, None for a failed one.
Data = dict[int, "tuple[float, float] | None"]
MIN_DRAWS = 8
#: Space filling draws from the runs costing at most this quantile of the grid's run costs:
#: the cheaper half for the start, all but the priciest quarter for coverage picks (the
#: criterion may still choose any run).
START_QUANTILE, COVER_QUANTILE = 0.5, 0.75


@dataclass(frozen=True)
class Round:
    """One round: ``picks`` chosen, then (``done``) their outcome, the fit and the answer."""

    index: int
    kind: str                               # initial | criterion | fill
    picks: tuple[Pick, ...]
    done: bool = False
    ok: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    runs_used: int = 0
    cost_used: float = 0.0
    fit: dict[str, Any] | None = None
    answer: Answer | None = None


@dataclass(frozen=True)
class Outcome:
    """A finished (or stopped) design: its rounds and why it stopped."""

    rounds: tuple[Round, ...]
    stopped: str

    @property
    def answer(self) -> Answer | None:
        done = [r for r in self.rounds if r.done and r.answer is not None]
        return done[-1].answer if done else None


def fit_data(design: Design, data: Data, *, bootstrap: int | None = None) -> Any:
    """Fit the design's law to the successful runs (in grid order), or None when it cannot be
    fitted yet (too few points or distinct values)."""
    ok = sorted(i for i, v in data.items() if v is not None)
    if len(ok) < design.n_params:
        return None
    n = np.array([data[i][0] for i in ok], float)
    v = design.visual_tokens[ok]
    if np.unique(n).size < 2 or np.unique(v).size < 2:
        return None
    y = np.array([data[i][1] for i in ok], float)
    k = design.spec.bootstrap if bootstrap is None else bootstrap
    try:
        return fit_law(from_arrays(n, v, y, metric=design.spec.metric), law=design.spec.law,
                       bootstrap=k, seed=design.spec.seed, validation=False)
    except ScalingError:
        return None


def fit_summary(design: Design, fit: Any) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {"law": fit.law, "params": dict(fit.params),
            "ci": {k: list(v) for k, v in fit.ci.items()}, "n_points": fit.n_points,
            "rmse": fit.validation.get("rmse"), "noise_sd": noise_sd(design, fit),
            "draws": 0 if fit.draws is None else len(fit.draws)}


def space_filling(design: Design, n: int, taken: set[int], *, quantile: float = START_QUANTILE
                  ) -> list[Pick]:
    """``n`` space-filling points not in ``taken``: the start's corners and centre, then
    maximin filling among the runs whose cost is at most the grid's ``quantile``."""
    u = _unit(np.log(design.llm_params))
    w = _unit(np.log(design.visual_tokens))
    cost = design.cost
    corners = []
    for cu in (0.0, 1.0):
        for cw in (0.0, 1.0):
            d = np.hypot(u - cu, w - cw)
            corners.append(int(np.lexsort((cost, d))[0]))
    corners = sorted(set(corners), key=lambda i: (cost[i], i))[:3]
    centre = int(np.lexsort((cost, np.hypot(u - 0.5, w - 0.5)))[0])
    chosen: list[Pick] = []
    for i, why in [*((c, "a corner of the grid (space-filling start)") for c in corners),
                   (centre, "the centre of the grid (space-filling start)")]:
        if len(chosen) < n and i not in taken and i not in {p.index for p in chosen}:
            chosen.append(Pick(i, 0.0, why))
    cheap = cost <= np.quantile(cost, quantile)
    while len(chosen) < n:
        used = sorted(taken | {p.index for p in chosen})
        free = np.ones(cost.size, bool)
        free[used] = False
        if not free.any():
            break
        pool = free & cheap if (free & cheap).any() else free
        if used:
            dist = np.min(np.hypot(u[:, None] - u[used], w[:, None] - w[used]), axis=1)
        else:
            dist = np.zeros(cost.size)
        dist = np.where(pool, dist, -np.inf)
        i = int(np.lexsort((np.arange(cost.size), cost, -dist))[0])
        chosen.append(Pick(i, float(dist[i]), f"fills the design space (distance "
                                              f"{dist[i]:.2f} from the nearest chosen point)"))
    return chosen


def _unit(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def choose(design: Design, fit: Any, rounds: list[Round], n: int | None = None
           ) -> tuple[str, list[Pick]]:
    """The next round's kind and ``n`` picks (default: ``initial`` first, then ``batch``,
    within ``max_runs``)."""
    taken = {p.index for r in rounds for p in r.picks}
    if n is None:
        used = rounds[-1].runs_used if rounds else 0
        n = min(design.initial if not rounds else design.spec.batch, design.max_runs - used)
    if not rounds:
        return "initial", space_filling(design, n, taken)
    if fit is None or fit.draws is None or len(fit.draws) < MIN_DRAWS:
        return "fill", space_filling(design, n, taken)
    free = np.setdiff1d(np.arange(design.cost.size), sorted(taken))
    # the coverage share: explore * n, a fractional part rounded up on every other round
    n_cover = min(n, int(n * design.spec.explore + 0.5 * (len(rounds) % 2)))
    picks = rank(design, fit, free, n - n_cover)
    if not picks and n > n_cover:
        return "fill", space_filling(design, n, taken)
    picks += space_filling(design, n_cover, taken | {p.index for p in picks},
                           quantile=COVER_QUANTILE)
    return "criterion", picks


def stop_reason(design: Design, rounds: list[Round]) -> str | None:
    """Why the design stops after its last (complete) round, or None to go on."""
    if not rounds:
        return None
    last = rounds[-1]
    if _settled(design, rounds[-2:]):
        return (f"target reached: the answer's relative CI width {last.answer.rel_width:.3g} "
                f"<= {design.spec.target:g} in two rounds in a row, same menu choice")
    if last.runs_used >= design.max_runs:
        return f"max_runs reached ({last.runs_used} runs)"
    if len({p.index for r in rounds for p in r.picks}) >= design.cost.size:
        return "every grid point is measured"
    return None


def _settled(design: Design, pair: list[Round]) -> bool:
    """Two rounds in a row below the target with the same menu choice: one round alone can be
    over-confident (a handful of points, bootstrap draws piled at a range boundary)."""
    answers = [r.answer for r in pair]
    if len(answers) < 2 or any(a is None for a in answers):
        return False
    (a, b) = answers
    return (max(a.rel_width, b.rel_width) <= design.spec.target
            and a.matches(b, tolerance=float("inf")))


def drive(design: Design, rounds: list[Round], *, run: Callable[[list[int]], None],
          read: Callable[[], Data], save: Callable[[list[Round], str | None], None]
          = lambda rounds, stopped: None,
          on_round: Callable[[Round], None] | None = None) -> Outcome:
    """Run the loop from ``rounds`` (a resumed log; may end with an unfinished round)."""
    rounds, fit, fresh = list(rounds), None, False
    while True:
        if rounds and not rounds[-1].done:
            rounds[-1], fit = complete(design, rounds, run, read)
            fresh = True
            save(rounds, None)
            if on_round is not None:
                on_round(rounds[-1])
        reason = stop_reason(design, rounds)
        if reason is not None:
            save(rounds, reason)
            return Outcome(tuple(rounds), reason)
        if rounds and not fresh:  # resumed after a finished round: the same fit again
            fit = fit_data(design, _picked(read(), rounds))
        kind, picks = choose(design, fit, rounds)
        fresh = False
        if not picks:
            reason = "no grid point left to choose"
            save(rounds, reason)
            return Outcome(tuple(rounds), reason)
        rounds.append(Round(len(rounds), kind, tuple(picks)))
        save(rounds, None)


def complete(design: Design, rounds: list[Round], run: Callable[[list[int]], None],
             read: Callable[[], Data]) -> tuple[Round, Any]:
    """Measure the last round's points; the round with its outcome, fit and answer, and the
    fit itself."""
    last = rounds[-1]
    run([p.index for p in last.picks])
    data = _picked(read(), rounds)
    fit = fit_data(design, data)
    chosen = [p.index for r in rounds for p in r.picks]
    return replace(last, done=True,
                   ok=tuple(p.index for p in last.picks if data.get(p.index) is not None),
                   failed=tuple(p.index for p in last.picks if data.get(p.index) is None),
                   runs_used=len(chosen), cost_used=float(design.cost[chosen].sum()),
                   fit=fit_summary(design, fit),
                   answer=None if fit is None else answer(design, fit)), fit


def _picked(data: Data, rounds: list[Round]) -> Data:
    """Only the design's own points count (a run measured outside it is not in its log)."""
    chosen = {p.index for r in rounds for p in r.picks}
    return {i: v for i, v in data.items() if i in chosen}


def simulate(design: Design, y: np.ndarray, *, failed: set[int] = frozenset()) -> Outcome:
    """The loop on known measurements ``y`` (one per grid point; ``failed`` ones fail)."""
    measured: set[int] = set()

    def run(indices: list[int]) -> None:
        measured.update(indices)

    def read() -> Data:
        return {i: None if i in failed else (float(design.llm_params[i]), float(y[i]))
                for i in measured}

    return drive(design, [], run=run, read=read)
