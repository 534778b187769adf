"""The one exception type for bad input or impossible requests.

Raise :class:`ScalingError` with a message that names the bad value and the fix, e.g.
``visual_tokens must be >= 1, got 0 (row 17 of runs.csv)``. The CLI turns it into one line
on stderr and exit code 2; anything else is an internal error (exit code 1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ScalingError(ValueError):
    """Bad input or an impossible request, described in one actionable line."""


def unknown_name(what: str, name: object, known: Iterable[str], *, key: str | None = None,
                 cutoff: float = 0.4) -> ScalingError:
    """``unknown {what} 'x'; did you mean 'y'? (known: ...)``: the error for a bad catalog name.

    ``key`` is the normalised form of ``name`` compared against ``known`` (default ``name``).
    """
    known = list(dict.fromkeys(known))
    close = difflib.get_close_matches(str(name) if key is None else key, known, n=3,
                                      cutoff=cutoff)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ScalingError(f"unknown {what} {name!r}{hint} (known: {', '.join(sorted(known))})")
