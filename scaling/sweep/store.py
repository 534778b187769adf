"""Crash-safe results: one JSON file per finished run, the table regenerated from them.

Layout for ``--output results/x.csv``::

    results/x.csv                  the table (CSV or Parquet), rewritten tmp + os.replace
    results/x.csv.runs/<run_id>.json   one record per finished run (the source of truth)
    results/x.csv.runs/<run_id>/attempt-<k>/   each attempt's scratch dir ({output_dir})

A record ``{"run_id", "status", "attempts", "rows": [...]}`` is written to a temporary file,
flushed, fsync'ed and ``os.replace``'d onto ``<run_id>.json``: a reader sees the old record or
the new one, never half of one, so a SIGKILL loses at most the runs in flight and a rerun of a
failed run replaces its record instead of duplicating it. The table is a view rebuilt from the
records (every few seconds and at the end of a sweep, and by ``scaling sweep status``).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scaling.errors import ScalingError

HEAD = ("run_id", "status", "failure", "attempts")
SIZE = ("llm_params", "llm_params_actual", "text_tokens", "gen_tokens")
COST = ("flops_paper", "flops", "flops_full_attention", "kv_cache_bytes")
TIMING = ("started_at", "duration_s")
NUMERIC = frozenset({"attempts", "visual_tokens", *SIZE, *COST, "duration_s"})


class RunStore:
    """The records and the table of one sweep output."""

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)
        self.runs_dir = self.output.with_name(self.output.name + ".runs")

    def check_owner(self) -> None:
        """Refuse to overwrite a table that no sweep wrote (no ``.runs`` directory beside it)."""
        if self.output.exists() and not self.runs_dir.is_dir():
            raise ScalingError(
                f"{self.output} exists but was not written by a sweep (no {self.runs_dir.name}/ "
                "beside it); choose another --output or move the file away")

    def load(self) -> dict[str, dict[str, Any]]:
        """Every finished record, by run_id (temporary files from a killed writer ignored)."""
        records: dict[str, dict[str, Any]] = {}
        if not self.runs_dir.is_dir():
            return records
        for entry in os.scandir(self.runs_dir):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            try:
                with open(entry.path, encoding="utf-8") as fh:
                    record = json.load(fh)
            except (OSError, ValueError) as exc:  # only by hand-editing: replace is atomic
                raise ScalingError(f"unreadable sweep record {entry.path} ({exc}); delete it "
                                   "to rerun that run") from None
            records[record["run_id"]] = record
        return records

    def save(self, record: dict[str, Any]) -> None:
        """Atomically write one run's record (tmp, flush, fsync, os.replace)."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        final = self.runs_dir / f"{record['run_id']}.json"
        _atomic_write(final, json.dumps(_plain(record), allow_nan=False).encode(), sync=True)

    def scratch_dir(self, run_id: str, attempt: int) -> Path:
        """A fresh directory for one attempt (a leftover from a killed sweep gets a suffix)."""
        base = self.runs_dir / run_id / f"attempt-{attempt}"
        path, n = base, 1
        while path.exists():
            path, n = base.with_name(f"{base.name}.{n}"), n + 1
        return path

    def write_table(self, records: Iterable[dict[str, Any]], *, axes: tuple[str, ...]) -> int:
        """Rewrite the table atomically from ``records`` (in the order given); rows written."""
        rows = [row for record in records for row in record["rows"]]
        columns = table_columns(rows, axes=axes)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        if self.output.suffix.lower() == ".parquet":
            try:
                import pandas as pd
            except ImportError:
                raise ScalingError(f"writing {self.output.name} needs pandas and pyarrow: pip "
                                   "install 'scaling[parquet]' (or use a .csv output)") from None

            tmp = self.output.with_name(f".{self.output.name}.tmp{os.getpid()}")
            frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows],
                                 columns=columns)
            for c in columns:
                kinds = {type(v) for v in frame[c] if v is not None}
                if c in NUMERIC or (kinds and kinds <= {int, float}):
                    frame[c] = pd.to_numeric(frame[c], errors="coerce")
                elif str in kinds and len(kinds) > 1:  # mixed text and numbers: keep as text
                    frame[c] = [None if v is None else str(v) for v in frame[c]]
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.output)
        else:
            _atomic_write(self.output, _csv_bytes(rows, columns), sync=False)
        return len(rows)


def table_columns(rows: list[dict[str, Any]], *, axes: tuple[str, ...]) -> list[str]:
    """Column order: bookkeeping, axes, sizes, metrics (first seen), costs, timing."""
    fixed = set(HEAD) | set(axes) | set(SIZE) | set(COST) | set(TIMING)
    metrics: dict[str, None] = {}
    for row in rows:
        metrics.update((k, None) for k in row if k not in fixed)
    present = {k for row in rows for k in row}
    return [*HEAD, *axes, *[c for c in (*SIZE,) if c in present], *metrics,
            *[c for c in COST if c in present], *TIMING]


def _csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue().encode()


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _plain(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write(path: Path, data: bytes, *, sync: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        if sync:
            os.fsync(fh.fileno())
    os.replace(tmp, path)
