"""Grid expansion: a spec's axes become runs, each with a stable ``run_id``.

``run_id`` is the first 16 hex digits of the SHA-256 of the canonical JSON (sorted keys, no
spaces) of the run's axis values (the llm by name) and the evaluator's ``options``::

    run_id = sha256(json({"llm": ..., "visual_tokens": ..., <other axes>, "options": {...}}))

So it does not depend on axis order, on the executor, the command line, retries or timeouts:
editing those keeps finished runs; changing a value or an option makes a new run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from scaling.sweep.spec import LLMEntry, SweepSpec


@dataclass(frozen=True)
class Run:
    """One grid point: ``axes`` (column name -> value, in table order) and its LLM entry."""

    run_id: str
    index: int
    axes: dict[str, Any]
    llm: LLMEntry


def run_id(axes: dict[str, Any], options: dict[str, Any]) -> str:
    """Stable hash of a run's configuration (see the module docstring)."""
    canonical = json.dumps({**axes, "options": options}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def expand(spec: SweepSpec) -> tuple[Run, ...]:
    """All runs of the spec, in grid order (llm, visual_tokens, compressor, task, seed,
    free parameters; the last axis varies fastest)."""
    names = spec.axes.names()
    values = [spec.axes.llm] + [
        getattr(spec.axes, n) if n in ("visual_tokens", "compressor", "task", "seed")
        else spec.axes.params[n] for n in names[1:]
    ]
    runs = []
    for index, combo in enumerate(itertools.product(*values)):
        entry, *rest = combo
        axes = {"llm": entry.name, **dict(zip(names[1:], rest, strict=True))}
        runs.append(Run(run_id(axes, spec.evaluator.options), index, axes, entry))
    return tuple(runs)
