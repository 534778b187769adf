"""Exceptions shared by the evaluators."""

from __future__ import annotations


class EvaluatorFailure(RuntimeError):
    """An attempt failed for a reason worth recording in the ``failure`` column."""


class EvaluatorTimeout(EvaluatorFailure):
    """An attempt ran past ``timeout_s``."""
