"""The ``*.law.json`` artifact: its schema (pydantic), writing and reading.

Keys (DESIGN.md): ``law``, ``params``, ``ci`` (when bootstrapped), ``loss``, ``objective``,
``n_points``, ``warnings``, ``data_sha256``; plus ``formula``, ``metric``, ``ci_level``,
``derived``, ``validation``, ``settings``, ``versions``, ``draws`` (``K x p`` in
``draw_params`` order), ``label``, ``source``. A grouped artifact (``--group-by``) holds one
such entry per group under top-level ``groups``. Floats are written with ``repr`` precision,
so reading an artifact back reproduces predictions bit for bit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from scaling.errors import ScalingError
from scaling.files import check_input_file, write_json
from scaling.law import LAWS

SCHEMA = "scaling.law/1"


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
    metric: str = ""
    ci_level: float | None = None
    derived: dict[str, Any] = {}
    validation: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    versions: dict[str, str] = {}
    draw_params: list[str] = []
    draws: list[list[float]] | None = None
    label: str = ""
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> LawArtifact:
        if self.law not in LAWS:
            raise ValueError(f"unknown law {self.law!r}; expected one of {', '.join(LAWS)}")
        expected = set(LAWS[self.law].params)
        if set(self.params) != expected:
            raise ValueError(f"params {sorted(self.params)} do not match law {self.law!r} "
                             f"({sorted(expected)})")
        if not all(math.isfinite(v) for v in self.params.values()):
            raise ValueError("params must be finite numbers")
        if self.draws is not None:
            if list(self.draw_params) != list(LAWS[self.law].params):
                raise ValueError(f"draw_params must be {list(LAWS[self.law].params)}")
            if any(len(row) != len(self.draw_params) for row in self.draws):
                raise ValueError("every draw needs one value per parameter")
        return self


class GroupedArtifact(BaseModel):
    """One law per value of the ``--group-by`` column."""

    model_config = ConfigDict(extra="allow")

    group_by: str
    groups: dict[str, LawArtifact]
    data_sha256: str = ""
    versions: dict[str, str] = {}


def write(path: str | Path, payload: dict) -> Path:
    """Validate ``payload`` (a single or grouped artifact dict) and write it as JSON."""
    model = GroupedArtifact if "groups" in payload else LawArtifact
    model.model_validate(payload)
    return write_json(path, {"schema": SCHEMA, **payload})


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
    try:
        if "groups" in payload:
            return GroupedArtifact.model_validate(payload)
        return LawArtifact.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "artifact"
        raise ScalingError(f"{path.name} is not a valid law artifact: {where}: "
                           f"{first['msg']}") from None
