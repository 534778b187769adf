"""The one exception type for bad input or impossible requests.

Raise :class:`ScalingError` with a message that names the bad value and the fix, e.g.
``visual_tokens must be >= 1, got 0 (row 17 of runs.csv)``. The CLI turns it into one line
on stderr and exit code 2; anything else is an internal error (exit code 1).
"""

from __future__ import annotations


class ScalingError(ValueError):
    """Bad input or an impossible request, described in one actionable line."""
