"""The design log ``<output>.design.json``: every round's points, outcome, fit, answer and CI.

Written atomically (:func:`scaling.files.write_json`) when a round is chosen (before its runs
start) and when it completes, so a killed adaptive sweep resumes at its round. The log
records the design's ``key`` (:meth:`Design.key`): a log written for another design or grid
is refused rather than mixed in. Points are stored by ``run_id`` with their axis values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scaling.design.answer import Answer
from scaling.design.campaign import Round
from scaling.design.criterion import Pick
from scaling.design.spec import Design
from scaling.errors import ScalingError
from scaling.files import write_json


def log_path(output: str | Path) -> Path:
    """``results/x.csv`` -> ``results/x.csv.design.json``."""
    output = Path(output)
    return output.with_name(output.name + ".design.json")


def run_key(design: Design, i: int) -> str:
    return design.runs[i].run_id if design.runs else design.labels[i]


def point(design: Design, i: int) -> dict[str, Any]:
    """A grid point as people and scripts read it."""
    axes = dict(design.runs[i].axes) if design.runs else {}
    return {"run_id": run_key(design, i), "label": design.labels[i],
            "llm_params": float(design.llm_params[i]),
            "visual_tokens": float(design.visual_tokens[i]), **axes,
            "cost": float(design.cost[i])}


def to_dict(design: Design, rounds: list[Round], stopped: str | None, *,
            name: str = "") -> dict[str, Any]:
    total = float(design.cost.sum())
    out = []
    for r in rounds:
        entry: dict[str, Any] = {
            "round": r.index, "kind": r.kind, "done": r.done,
            "points": [{**point(design, p.index), "score": p.score, "why": p.why}
                       for p in r.picks]}
        if r.done:
            entry.update({"ok": [run_key(design, i) for i in r.ok],
                          "failed": [run_key(design, i) for i in r.failed],
                          "runs_used": r.runs_used, "cost_used": r.cost_used,
                          "cost_fraction": r.cost_used / total, "fit": r.fit,
                          "answer": None if r.answer is None else r.answer.to_dict()})
        out.append(entry)
    last = next((r for r in reversed(rounds) if r.done and r.answer is not None), None)
    return {"name": name, "key": design.key(), "design": design.spec.model_dump(),
            "grid": {"runs": int(design.cost.size), "cost": total},
            "stopped": stopped, "answer": None if last is None else last.answer.to_dict(),
            "rounds": out}


def save(path: Path, design: Design, rounds: list[Round], stopped: str | None, *,
         name: str = "") -> None:
    write_json(path, to_dict(design, rounds, stopped, name=name))


def read(path: Path) -> dict[str, Any] | None:
    """The log as written, or None when there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
            raise ValueError("no rounds")
    except ValueError as exc:
        raise ScalingError(f"unreadable design log {path} ({exc}); move it away to start the "
                           "design again") from None
    return data


def load(path: Path, design: Design) -> list[Round]:
    """The rounds of the log at ``path`` (none if absent), checked against ``design``."""
    data = read(path)
    if data is None:
        return []
    if data.get("key") != design.key():
        raise ScalingError(f"{path} was written for another design or grid (the design block, "
                           "the question or the axes changed); move it away, or use another "
                           "--output, to start a new design")
    index = {run_key(design, i): i for i in range(design.cost.size)}
    try:
        return [_round(entry, index) for entry in data["rounds"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ScalingError(f"unreadable design log {path} (bad round: {exc}); move it away "
                           "to start the design again") from None


def _round(entry: dict[str, Any], index: dict[str, int]) -> Round:
    picks = tuple(Pick(index[p["run_id"]], float(p["score"]), str(p["why"]))
                  for p in entry["points"])
    if not entry.get("done"):
        return Round(int(entry["round"]), str(entry["kind"]), picks)
    a = entry.get("answer")
    ans = None if a is None else Answer(
        llm_params=a["choice"]["llm_params"], visual_tokens=a["choice"]["visual_tokens"],
        v_star=a["optimum"]["visual_tokens"], n_star=a["optimum"]["llm_params"],
        predicted_error=a["optimum"]["predicted_error"], p_choice=a["choice"]["p_choice"],
        ci=None if a["ci"] is None else {k: tuple(v) for k, v in a["ci"].items()},
        rel_width=float("inf") if a["rel_width"] is None else float(a["rel_width"]))
    return Round(int(entry["round"]), str(entry["kind"]), picks, done=True,
                 ok=tuple(index[k] for k in entry["ok"]),
                 failed=tuple(index[k] for k in entry["failed"]),
                 runs_used=int(entry["runs_used"]), cost_used=float(entry["cost_used"]),
                 fit=entry["fit"], answer=ans)
