"""Results parsers for the ``command`` evaluator: turn the files a program wrote into rows.

A missing results file raises :class:`ResultsMissing`; an unreadable or malformed one raises
:class:`EvaluatorFailure` naming the file and what is wrong.

``lmms_eval`` (facts checked on lmms-eval 0.7.3): results go to
``OUTPUT/<model_name_sanitized>/<timestamp>_results.json``; metrics sit at
``results[task]["<metric>,<filter>"]`` (e.g. ``"exact_match,none"``), standard errors at
``"<metric>_stderr,<filter>"`` and may be the string ``"N/A"``; sample counts at
``n-samples[task] = {"original": n, "effective": m}``. One row per task.

``json``: a JSON file (or the last line of stdout) and dotted key paths.
"""

from __future__ import annotations

import glob
import json
import math
import os
from pathlib import Path
from typing import Any

from scaling.sweep.evaluators.base import EvaluatorFailure


class ResultsMissing(EvaluatorFailure):
    """The program wrote no results file."""


def results_path(parser: Any, fields: dict[str, Any], output_dir: Path) -> Path | None:
    """Where ``parser`` reads: its ``file`` (a glob) or ``results_dir`` template filled in and
    resolved inside ``output_dir``, the run's folder (``None``: stdout). A path that leads
    outside it (``../``, an absolute path elsewhere, a value with ``../``) raises."""
    if parser.kind == "json" and parser.file == "-":
        return None
    template = parser.results_dir if parser.kind == "lmms_eval" else parser.file
    try:
        rendered = template.format_map(fields)
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise EvaluatorFailure(f"cannot fill parser template {template!r}: {exc!r}") from None
    path = inside(output_dir, output_dir / rendered, what=f"parser path {rendered!r}")
    return path / "**" / "*_results.json" if parser.kind == "lmms_eval" else path


def inside(folder: Path, path: Path, *, what: str) -> Path:
    """``path`` with symlinks and ``..`` resolved, if that is inside ``folder``; else raise."""
    base = Path(os.path.realpath(folder))
    resolved = Path(os.path.realpath(path))
    if not resolved.is_relative_to(base):
        raise EvaluatorFailure(f"{what} leads outside the run's folder {folder} (to "
                               f"{resolved}); give a path inside it")
    return resolved


def parse(parser: Any, *, output_dir: Path, stdout_path: Path,
          fields: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
    """Read a run's results with ``parser`` (from :func:`results_path`, or stdout)."""
    results = results_path(parser, fields, output_dir)
    if results is None:
        return json_metrics(_stdout_json(stdout_path), keys=parser.keys, source="stdout")
    path = newest(str(results))
    inside(output_dir, path, what=f"results file {path}")  # a symlink the program left
    if parser.kind == "lmms_eval":
        return lmms_eval_rows(load_json(path), score=parser.score, source=path)
    return json_metrics(load_json(path), keys=parser.keys, source=path)


def newest(pattern: str) -> Path:
    """The most recently modified file matching ``pattern`` (``**`` recurses)."""
    matches = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
    if not matches:
        raise ResultsMissing(f"no results file matching {pattern}")
    return max(matches, key=lambda p: (p.stat().st_mtime_ns, p.name))


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EvaluatorFailure(f"results file {path} is not valid JSON ({exc})") from None


def lmms_eval_rows(data: Any, *, score: dict[str, Any] | None = None,
                   source: Any = "results") -> list[dict[str, Any]]:
    """Rows ``{task, <metric>[_<filter>], <metric>_stderr, n_samples, [score]}`` per task."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict) or not results:
        raise EvaluatorFailure(f"{source}: no 'results' mapping of tasks (is it an lmms-eval "
                               "results file?)")
    counts = data.get("n-samples") or {}
    rows = []
    for task, metrics in results.items():
        if not isinstance(metrics, dict):
            raise EvaluatorFailure(f"{source}: results[{task!r}] is not a mapping")
        row: dict[str, Any] = {"task": task}
        for key, value in metrics.items():
            metric, sep, filt = key.partition(",")
            if not sep:
                continue  # "alias", "name", ...
            column = metric if filt in ("none", "") else f"{metric}_{filt}"
            row[column] = _number(value)
        count = counts.get(task) if isinstance(counts, dict) else None
        if isinstance(count, dict):
            row["n_samples"] = count.get("effective", count.get("original"))
        if score and task in score:
            key = score[task].metric
            value = _number(metrics.get(key))
            if value is None:
                raise EvaluatorFailure(f"{source}: results[{task!r}] has no number at {key!r} "
                                       f"for score; keys: {', '.join(metrics)}")
            row["score"] = value / score[task].divide_by
        rows.append(row)
    return rows


def json_metrics(data: Any, *, keys: dict[str, str] | None, source: Any) -> dict[str, Any]:
    """``{column: value at key path}``, or every top-level scalar when ``keys`` is None."""
    if keys is None:
        if not isinstance(data, dict):
            raise EvaluatorFailure(f"{source}: expected a JSON object of metrics, got "
                                   f"{type(data).__name__}")
        return {k: v for k, v in data.items() if _is_scalar(v)}
    out = {}
    for column, path in keys.items():
        value = data
        for part in path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.lstrip("-").isdigit() and \
                    -len(value) <= int(part) < len(value):
                value = value[int(part)]
            else:
                raise EvaluatorFailure(f"{source}: key path {path!r} not found (stopped at "
                                       f"{part!r})")
        if not _is_scalar(value):
            raise EvaluatorFailure(f"{source}: {path!r} is a {type(value).__name__}, not a "
                                   "number or string")
        out[column] = value
    return out


def _stdout_json(stdout_path: Path) -> Any:
    try:
        lines = [ln for ln in stdout_path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    if not lines:
        raise ResultsMissing("the program printed nothing on stdout (expected a JSON line)")
    try:
        return json.loads(lines[-1])
    except ValueError:
        raise EvaluatorFailure(f"last line of stdout is not JSON: {lines[-1][:120]!r}") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(value)  # "N/A" and other strings -> None
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
