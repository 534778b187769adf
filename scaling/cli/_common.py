"""What every command shares: JSON output, one-line errors with exit code 2."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any, NoReturn, TypeVar

import numpy as np
import typer
from pydantic import ValidationError
from rich.console import Console

from scaling.errors import ScalingError

console = Console()
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with code 2 (bad input)."""
    err_console.print(f"error: {message}", markup=False)
    raise typer.Exit(code=2)


def guarded(fn: F) -> F:
    """Map :class:`ScalingError` (and pydantic validation errors) to exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ScalingError as exc:
            fail(str(exc))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            fail(f"{where}: {first['msg']} (got {first.get('input')!r})")

    return wrapper  # type: ignore[return-value]


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses and non-finite floats to plain JSON."""
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(payload: Any) -> None:
    """Write ``payload`` as JSON on stdout (and nothing else)."""
    sys.stdout.write(json.dumps(jsonable(payload), indent=2) + "\n")
