"""Evaluators measure one run: ``evaluate(evaluator_spec, config, timeout_s=...) -> metrics``.

``config`` holds the run's axis values (``llm``, ``visual_tokens``, ``compressor``, ``task``,
``seed``, free parameters), ``llm_path``, ``options`` (from the spec), ``output_dir`` (a fresh
scratch directory), ``run_id`` and ``attempt``. The result is a dict of metrics or a list of
dicts (one row per task, each with a ``task`` key). Any failure raises
:class:`EvaluatorFailure` (or any exception) whose text becomes the row's ``failure``.

Kinds: ``python`` (``module:function``), ``toyvlm`` (``scaling.toyvlm.evaluate``, imported
lazily), ``command`` (an external program, results read by a parser from :mod:`.parsers`).
"""

from __future__ import annotations

from typing import Any

from scaling.sweep.evaluators.base import EvaluatorFailure, EvaluatorTimeout


def evaluate(spec: Any, config: dict[str, Any], *, timeout_s: float | None) -> Any:
    """Run the evaluator described by ``spec`` (a spec.Evaluator model) on one config."""
    if spec.kind == "command":
        from scaling.sweep.evaluators.command import run_command

        return run_command(spec, config, timeout_s=timeout_s)
    from scaling.sweep.evaluators.python import call_function

    return call_function(spec.function, config, timeout_s=timeout_s)


__all__ = ["EvaluatorFailure", "EvaluatorTimeout", "evaluate"]
