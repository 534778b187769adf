"""Crash-safe results: one JSON record per finished run, the table regenerated from them.

Layout for ``--output results/x.csv``::

    results/x.csv                      the table (CSV or Parquet)
    results/x.csv.runs/<run_id>.json   one record per finished run (the source of truth)
    results/x.csv.runs/<run_id>/attempt-<k>/   each attempt's scratch dir ({output_dir})
    results/x.csv.runs/.lock           held by the one `sweep run` writing this output
    results/x.csv.runs/.lock.owner     {"pid", "host", "since"} of that run

Every file goes through :func:`scaling.files.atomic_write` (exclusive temporary file, fsync,
``os.replace``): a reader sees the old file or the new one, never half of one, so a SIGKILL
loses at most the runs in flight. A record is a :class:`RunRecord`, validated when written and
again when read: a record that does not validate (hand-edited, ``{}``, an ``ok`` without rows)
is reported as invalid and its run executed again, never counted as done. The table is a view
rebuilt from the records (every few seconds and at the end of a sweep).

Only one ``sweep run`` writes an output at a time (:meth:`RunStore.locked`); reading
(``sweep status``) takes no lock: records are replaced atomically.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from scaling.errors import ScalingError
from scaling.files import atomic_write, write_json

HEAD = ("run_id", "status", "failure", "attempts")
SIZE = ("llm_params", "llm_params_actual", "text_tokens", "gen_tokens")
COST = ("flops_paper", "flops", "flops_full_attention", "kv_cache_bytes")
TIMING = ("started_at", "duration_s")
NUMERIC = frozenset({"attempts", "visual_tokens", *SIZE, *COST, "duration_s"})
#: A record file larger than this is not read (reported invalid).
MAX_RECORD_BYTES = 64 * 2**20

Scalar = Union[StrictStr, StrictInt, StrictFloat, StrictBool, None]  # noqa: UP007


class RunRecord(BaseModel):
    """One finished run: ``{"run_id", "status", "attempts", "rows"}``; every row repeats the
    record's ``run_id``, ``status`` and ``attempts``; a failed run has exactly one row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    status: Literal["ok", "failed"]
    attempts: StrictInt = Field(ge=1)
    rows: list[dict[str, Scalar]] = Field(min_length=1)

    @model_validator(mode="after")
    def _rows_agree(self) -> RunRecord:
        for i, row in enumerate(self.rows):
            for key in ("run_id", "status", "attempts"):
                if row.get(key) != getattr(self, key):
                    raise ValueError(f"rows[{i}].{key} is {row.get(key)!r}, not the record's "
                                     f"{getattr(self, key)!r}")
        if self.status == "failed" and len(self.rows) != 1:
            raise ValueError(f"a failed run has one row, got {len(self.rows)}")
        return self


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

    @contextlib.contextmanager
    def locked(self, *, wait: bool = False,
               on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold ``.runs/.lock`` for one writer. Held elsewhere: raise a :class:`ScalingError`
        naming the holder, or (``wait``) call ``on_wait(holder)`` and block until it is free."""
        import filelock

        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ScalingError(f"cannot create {self.runs_dir}: {exc.strerror}; choose another "
                               "--output") from None
        path = self.runs_dir / ".lock"
        if path.is_symlink():
            raise ScalingError(f"{path} is a symbolic link; remove it (a sweep lock is a file)")
        lock = filelock.FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            if not wait:
                raise ScalingError(
                    f"{self.output} is being written by another sweep ({self.holder()}); wait "
                    "for it to finish, or rerun with --wait") from None
            if on_wait is not None:
                on_wait(self.holder())
            lock.acquire(timeout=-1)
        owner = self.runs_dir / ".lock.owner"
        since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        try:
            write_json(owner, {"pid": os.getpid(), "host": socket.gethostname(), "since": since})
            yield
        finally:
            with contextlib.suppress(OSError):
                owner.unlink()
            lock.release()

    def holder(self) -> str:
        """Who holds the lock, as written beside it."""
        info = self._owner()
        if info is None:
            return "holder unknown"
        return f"pid {info['pid']} on host {info['host']}, since {info['since']}"

    def running(self) -> str | None:
        """The sweep writing this output now (from ``.lock.owner``, without taking the lock;
        a holder on this host whose pid is gone is not running), else None."""
        import psutil

        info = self._owner()
        if info is None or (info["host"] == socket.gethostname()
                            and not psutil.pid_exists(info["pid"])):
            return None
        return self.holder()

    def _owner(self) -> dict[str, Any] | None:
        try:
            info = json.loads((self.runs_dir / ".lock.owner").read_text())
            return {"pid": int(info["pid"]), "host": str(info["host"]),
                    "since": str(info["since"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self) -> tuple[dict[str, RunRecord], dict[str, str]]:
        """Valid records by run_id, and invalid ones (file stem -> reason)."""
        records: dict[str, RunRecord] = {}
        invalid: dict[str, str] = {}
        if not self.runs_dir.is_dir():
            return records, invalid
        for entry in os.scandir(self.runs_dir):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue  # temporary files of a killed writer start with "."
            stem = entry.name[:-5]
            try:
                record = _read(entry)
            except ValueError as exc:
                invalid[stem] = str(exc)
                continue
            if record.run_id != stem:
                invalid[stem] = f"holds run {record.run_id}, not {stem}"
                continue
            records[stem] = record
        return records, invalid

    def save(self, record: RunRecord) -> None:
        """Atomically write one run's record."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.runs_dir / f"{record.run_id}.json", record.model_dump(), indent=None)

    def scratch_dir(self, run_id: str, attempt: int) -> Path:
        """A fresh directory for one attempt (a leftover from a killed sweep gets a suffix)."""
        base = self.runs_dir / run_id / f"attempt-{attempt}"
        path, n = base, 1
        while path.exists():
            path, n = base.with_name(f"{base.name}.{n}"), n + 1
        return path

    def write_table(self, records: Iterable[RunRecord], *, axes: tuple[str, ...]) -> int:
        """Rewrite the table atomically from ``records`` (in the order given); rows written."""
        rows = [row for record in records for row in record.rows]
        columns = table_columns(rows, axes=axes)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        if self.output.suffix.lower() == ".parquet":
            frame = _frame(rows, columns, self.output)
            atomic_write(self.output, lambda fh: frame.to_parquet(fh, index=False), sync=False)
        else:
            atomic_write(self.output, _csv_bytes(rows, columns), sync=False)
        return len(rows)


def _read(entry: os.DirEntry) -> RunRecord:
    """One record file, validated; ValueError says why it is not a record."""
    if not entry.is_file(follow_symlinks=False):
        raise ValueError("not a regular file")
    if entry.stat(follow_symlinks=False).st_size > MAX_RECORD_BYTES:
        raise ValueError(f"larger than {MAX_RECORD_BYTES // 2**20} MiB")
    try:
        with open(entry.path, "rb") as fh:
            return RunRecord.model_validate_json(fh.read())
    except OSError as exc:
        raise ValueError(f"unreadable ({exc.strerror})") from None
    except ValidationError as exc:
        parts = [f"{'.'.join(map(str, err['loc'])) or 'record'}: {err['msg']}"
                 for err in exc.errors()[:3]]
        more = exc.error_count() - len(parts)
        raise ValueError("; ".join(parts) + (f"; and {more} more" if more > 0 else "")) from None


def table_columns(rows: list[dict[str, Any]], *, axes: tuple[str, ...]) -> list[str]:
    """Column order: bookkeeping, axes, sizes, metrics (first seen), costs, timing."""
    fixed = set(HEAD) | set(axes) | set(SIZE) | set(COST) | set(TIMING)
    metrics: dict[str, None] = {}
    for row in rows:
        metrics.update((k, None) for k in row if k not in fixed)
    present = {k for row in rows for k in row}
    return [*HEAD, *axes, *[c for c in (*SIZE,) if c in present], *metrics,
            *[c for c in COST if c in present], *TIMING]


def _frame(rows: list[dict[str, Any]], columns: list[str], output: Path) -> Any:
    """A DataFrame in which every column is numeric or text, whatever the runs returned."""
    try:
        import pandas as pd
    except ImportError:
        raise ScalingError(f"writing {output.name} needs pandas and pyarrow: pip install "
                           "'scaling[parquet]' (or use a .csv output)") from None
    data = {}
    for c in columns:
        values = [row.get(c) for row in rows]
        numbers = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                      for v in values)
        if c in NUMERIC or numbers:
            data[c] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        else:  # text, or a column that is text in some runs and numbers in others
            data[c] = pd.Series([None if v is None else str(v) for v in values], dtype=object)
    return pd.DataFrame(data, columns=columns)


def _csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
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
