"""Exceptions shared by the evaluators, and how to install a missing module."""

from __future__ import annotations

import functools
import re


class EvaluatorFailure(RuntimeError):
    """An attempt failed for a reason worth recording in the ``failure`` column."""


class EvaluatorTimeout(EvaluatorFailure):
    """An attempt ran past ``timeout_s``."""


def install_hint(module: str | None) -> str:
    """``"; install it: pip install \"scaling[train]\""`` for a module that one of scaling's
    extras provides (read from the installed package's metadata), else a generic hint."""
    if not module:
        return ""
    top = module.partition(".")[0]
    extra = _extras().get(_norm(top))
    if extra:
        return f'; install it: pip install "scaling[{extra}]"'
    return f"; install the package that provides {top!r} (e.g. pip install {top})"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.lru_cache(maxsize=1)
def _extras() -> dict[str, str]:
    """Distribution (and its bracketed extras, e.g. ``distributed`` of ``dask[distributed]``)
    -> the scaling extra that requires it; the catch-all ``test`` extra comes last."""
    from importlib import metadata

    try:
        requirements = metadata.requires("scaling") or []
    except metadata.PackageNotFoundError:
        return {}
    found: dict[str, str] = {}
    pattern = r"\s*([A-Za-z0-9][\w.-]*)\s*(?:\[([^\]]*)\])?[^;]*;.*extra\s*==\s*.([\w-]+)"
    for req in sorted(requirements, key=lambda r: "test" in r.partition(";")[2]):
        match = re.match(pattern, req)
        if match is None or _norm(match.group(1)) == "scaling":
            continue
        names = [match.group(1), *(match.group(2) or "").split(",")]
        for name in filter(None, (n.strip() for n in names)):
            found.setdefault(_norm(name), match.group(3))
    return found
