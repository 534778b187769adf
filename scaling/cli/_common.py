"""What every command shares: JSON output, one-line errors with exit code 2."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from scaling.errors import ScalingError
from scaling.files import to_jsonable


#: Markup is off: every string printed is shown as it is, so user text (file, model, group and
#: metric names) can never be read as rich markup. Styles go through ``style=`` instead.
class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (``scaling plan ... | head``): end quietly with exit code 0,
        as Unix tools do (rich's default exits 1); stdout now points at devnull."""
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0)


console = _Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

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
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe shows here, while we can still handle it
            return result
        except ScalingError as exc:
            fail(str(exc))
        except BrokenPipeError:  # JSON written with sys.stdout: the same quiet exit
            console.on_broken_pipe()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            fail(f"{where}: {first['msg']} (got {first.get('input')!r})")

    return wrapper  # type: ignore[return-value]


def choose_law(laws: dict[str, Any], group: str | None, path: Any) -> Any:
    """The one law of a file, or its group ``group``; a grouped file needs ``--group``."""
    if group is not None:
        if group not in laws:
            raise ScalingError(f"group {group!r} is not in {path}; it has {', '.join(laws)}")
        return laws[group]
    if len(laws) == 1:
        return next(iter(laws.values()))
    raise ScalingError(f"{path} holds one law per group ({', '.join(laws)}): choose one with "
                       "--group NAME")


def si(x: float | None, unit: str = "") -> str:
    """A quantity in SI form for people (``1.2e13`` -> ``12 T``); ``-`` when unknown."""
    from scaling.units import format_quantity

    return "-" if x is None or not math.isfinite(x) else format_quantity(x, unit=unit)


def print_json(payload: Any) -> None:
    """Write ``payload`` as JSON on stdout (and nothing else)."""
    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2) + "\n")
