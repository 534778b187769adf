"""The ``*.law.json`` artifact: its schema (pydantic), writing and reading.

Keys (DESIGN.md): ``law``, ``params``, ``ci`` (when bootstrapped), ``loss``, ``objective``,
``n_points``, ``warnings``, ``data_sha256``; plus ``formula``, ``axes`` (each axis's column and
unit: law value = column value / unit), ``axis_ranges`` (``[min, max]`` of each axis the law
was fitted on, law units), ``metric``, ``ci_level``, ``derived``, ``validation``,
``settings``, ``versions``, ``draws`` (``K x p`` in ``draw_params`` order), ``label``,
``source``. A grouped artifact (``--group-by``) holds one such entry per group under
top-level ``groups``. Floats are written with ``repr`` precision, so reading an artifact back
reproduces predictions bit for bit.

Schema versions: ``scaling.law/2`` (this one) added ``axes`` and ``axis_ranges`` and formula
laws (``law: "formula"``); ``scaling.law/1`` files (no axes: ``N`` = ``llm_params`` in
billions, ``V`` = ``visual_tokens``) still load. Any other version is refused. On load every
law is checked against its form: parameter names, finite values inside their bounds
(a negative coefficient or exponent would predict nonsense), draws of the right shape.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from scaling.errors import ScalingError
from scaling.files import check_input_file, write_json
from scaling.law import LAWS, Axis, check_params, law_form

SCHEMA = "scaling.law/2"
READABLE = ("scaling.law/1", "scaling.law/2")


class AxisModel(BaseModel):
    column: str
    unit: float = 1.0


class LawArtifact(BaseModel):
    """One fitted law."""

    model_config = ConfigDict(extra="allow")

    law: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]] = {}
    loss: str = "sse"
    objective: float
    n_points: int
    warnings: list[str] = []
    data_sha256: str
    formula: str = ""
    axes: dict[str, AxisModel] = {}
    axis_ranges: dict[str, tuple[float, float]] = {}
    metric: str = ""
    ci_level: float | None = None
    derived: dict[str, Any] = {}
    validation: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    versions: dict[str, str] = {}
    draw_params: list[str] = []
    draws: Any = None
    label: str = ""
    source: str = ""

    def bindings(self) -> dict[str, Axis]:
        return {a: Axis(b.column, b.unit) for a, b in self.axes.items()}

    @model_validator(mode="after")
    def _consistent(self) -> LawArtifact:
        if self.law not in LAWS and self.law != "formula":
            raise ValueError(f"unknown law {self.law!r}; expected one of {', '.join(LAWS)} "
                             "or 'formula'")
        if self.law == "formula" and not self.formula:
            raise ValueError("a formula law needs its 'formula'")
        try:
            form = law_form(self.law if self.law in LAWS else
                            self.formula.partition("=")[2].strip() or self.formula,
                            tuple(self.axes) or ("N", "V"))
            check_params(form, self.params, what="params")
        except ScalingError as exc:
            raise ValueError(str(exc)) from None
        for a, b in self.axes.items():
            if not (math.isfinite(b.unit) and b.unit > 0):
                raise ValueError(f"axis {a}: unit must be a positive number, got {b.unit!r}")
        for a, (lo, hi) in self.axis_ranges.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
                raise ValueError(f"axis_ranges.{a}: [{lo}, {hi}] is not a range of positive "
                                 "numbers")
        if self.draws is not None:
            if list(self.draw_params) != list(form.params):
                raise ValueError(f"draw_params must be {list(form.params)}")
            try:
                arr = np.asarray(self.draws, float)
            except (TypeError, ValueError):
                raise ValueError("draws must be a list of lists of numbers") from None
            if arr.size == 0:
                raise ValueError("draws is empty; drop the key or refit with --bootstrap K")
            if arr.ndim != 2 or arr.shape[1] != len(form.params):
                raise ValueError("every draw needs one value per parameter")
            if not np.all(np.isfinite(arr)):
                raise ValueError("draws must be finite numbers")
            self.draws = arr
        return self


class GroupedArtifact(BaseModel):
    """One law per value of the ``--group-by`` column."""

    model_config = ConfigDict(extra="allow")

    group_by: str
    groups: dict[str, LawArtifact]
    data_sha256: str = ""
    versions: dict[str, str] = {}


def write(path: str | Path, payload: dict) -> Path:
    """Validate ``payload`` (a single or grouped artifact dict) and write it atomically."""
    model = GroupedArtifact if "groups" in payload else LawArtifact
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        raise ScalingError(f"refusing to write an invalid law artifact: {_first(exc)}"
                           ) from None
    return write_json(path, {"schema": SCHEMA, **payload}, indent=1)


def _first(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "artifact"
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def read(path: str | Path) -> LawArtifact | GroupedArtifact:
    """Parse and validate an artifact; every problem is a :class:`ScalingError`."""
    path = check_input_file(path, what="law file")
    try:
        payload = json.loads(path.read_text())
    except RecursionError:
        raise ScalingError(f"{path.name} is nested too deeply to be a law artifact") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScalingError(f"{path.name} is not valid JSON ({exc}); refit with `scaling fit`"
                           ) from None
    if not isinstance(payload, dict):
        raise ScalingError(f"{path.name} is not a law artifact (expected a JSON object)")
    schema = payload.get("schema", "scaling.law/1")
    if schema not in READABLE:
        raise ScalingError(f"{path.name} has schema {schema!r}, which this version of scaling "
                           f"cannot read (it reads {', '.join(READABLE)}); upgrade scaling or "
                           "refit")
    try:
        if "groups" in payload:
            return GroupedArtifact.model_validate(payload)
        return LawArtifact.model_validate(payload)
    except ValidationError as exc:
        raise ScalingError(f"{path.name} is not a valid law artifact: {_first(exc)}") from None
