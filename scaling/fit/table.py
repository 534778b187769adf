"""The sweep table (DESIGN.md): loading, validation and the array form the fitter uses.

A sweep table has one row per measurement with ``llm_params`` (a number or "0.5B"),
``visual_tokens`` (integer >= 1) and one or more metric columns. It comes from one or many
CSV or Parquet files, in one of two shapes:

- **wide**: one column per metric (``accuracy``, ``gqa``, ``pope``, ...);
- **tidy**: ``benchmark`` (or ``task``) + ``score`` columns, one row per benchmark.

The metric to fit (``metric=``, the CLI's ``--metric``) is

- one name: a column (wide) or a benchmark (tidy);
- several names (``["gqa", "pope"]``, the CLI's repeated ``--metric``) or ``"mean:gqa,pope"``:
  their mean per configuration;
- nothing: ``error``, ``loss`` or ``accuracy`` (the first present), or for a tidy table the
  single benchmark (or each benchmark's own score with ``group_by="benchmark"``).

Laws are fitted on an error-like ``Y`` (lower is better): a metric whose name is or ends in
``error``/``loss`` is used as is, any other is an accuracy and becomes ``Y = 1 - accuracy``
(``kind=`` overrides the guess). Tidy rows are matched across benchmarks by ``llm_params``,
``visual_tokens`` and, where present, ``llm``, ``seed``, ``compressor``, ``text_tokens`` and
the group column. Every problem stops with a :class:`ScalingError` naming the file, row,
column and value; rows are numbered from 1 after the header (``#`` comment lines skipped).
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.units import parse_params

ID_COLUMNS = ("llm", "seed", "compressor", "text_tokens")
ERROR_NAMES = ("error", "loss")


@dataclass(frozen=True)
class SweepData:
    """Validated measurements: ``Y`` (error-like) at ``llm_params`` x ``visual_tokens``.

    ``cluster`` numbers the (group, llm_params, visual_tokens) configurations: rows that
    share one are repeated measurements (e.g. seeds), resampled together by the
    ``config`` bootstrap. ``where`` says where each row came from (``file:row``).
    """

    llm_params: np.ndarray
    visual_tokens: np.ndarray
    y: np.ndarray
    metric: str = "error"
    group: np.ndarray | None = None
    group_by: str | None = None
    cluster: np.ndarray | None = None
    where: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    file_sha256: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def llm_params_b(self) -> np.ndarray:
        """LLM size in billions of parameters, the unit of every law."""
        return self.llm_params / 1e9

    @property
    def n_points(self) -> int:
        return int(self.y.size)

    @property
    def sha256(self) -> str:
        """Hash of the data actually fitted (group, N, T, Y per row, full precision)."""
        groups = self.group if self.group is not None else [""] * self.n_points
        cols = (groups, self.llm_params.tolist(), self.visual_tokens.tolist(), self.y.tolist())
        text = "\n".join(f"{g}\t{n!r}\t{t!r}\t{y!r}" for g, n, t, y in zip(*cols, strict=True))
        return hashlib.sha256(f"{self.metric}\n{text}".encode()).hexdigest()

    def subset(self, mask: np.ndarray) -> SweepData:
        """The rows where ``mask`` holds (clusters renumbered)."""
        mask = np.asarray(mask)
        cluster = None if self.cluster is None else np.unique(
            self.cluster[mask], return_inverse=True)[1]
        return replace(
            self, llm_params=self.llm_params[mask], visual_tokens=self.visual_tokens[mask],
            y=self.y[mask], group=None if self.group is None else self.group[mask],
            cluster=cluster, where=tuple(np.asarray(self.where, object)[mask]) if self.where
            else ())

    def by_group(self) -> dict[str, SweepData]:
        """One table per value of the group column (``{"all": self}`` when ungrouped)."""
        if self.group is None:
            return {"all": self}
        return {str(g): self.subset(self.group == g) for g in dict.fromkeys(self.group)}

    def check_identifiable(self, label: str = "") -> None:
        """A law needs >= 2 distinct LLM sizes and >= 2 distinct token counts."""
        where = f" in group {label!r}" if label else ""
        for name, values in (("llm_params", self.llm_params), ("visual_tokens",
                                                                 self.visual_tokens)):
            distinct = np.unique(values)
            if distinct.size < 2:
                raise ScalingError(
                    f"need at least 2 distinct {name} values to fit a law{where}, got "
                    f"{distinct.tolist()}; add runs with another {name}")


def from_arrays(llm_params, visual_tokens, y, *, metric: str = "error",
                group=None, cluster=None) -> SweepData:
    """A :class:`SweepData` from arrays (``llm_params`` in parameters, e.g. 7e9)."""
    n = np.asarray(llm_params, float).ravel()
    t = np.asarray(visual_tokens, float).ravel()
    yv = np.asarray(y, float).ravel()
    if not n.size == t.size == yv.size:
        raise ScalingError(f"llm_params, visual_tokens and y differ in length: "
                           f"{n.size}, {t.size}, {yv.size}")
    g = None if group is None else np.asarray(group, str).ravel()
    if not (np.all(np.isfinite(n) & (n > 0)) and np.all(t >= 1) and np.all(np.isfinite(yv))):
        raise ScalingError("from_arrays needs llm_params > 0, visual_tokens >= 1 and finite y")
    if cluster is None:
        groups = g if g is not None else [""] * n.size
        keys = [f"{a}\t{b!r}\t{c!r}" for a, b, c in
                zip(groups, n.tolist(), t.tolist(), strict=True)]
        cluster = np.unique(keys, return_inverse=True)[1]
    return SweepData(n, t, yv, metric=metric, group=g, cluster=np.asarray(cluster))


# ----------------------------------------------------------------------------- reading

def _read(path: Path) -> tuple[list[str], list[dict[str, Any]], str]:
    """Columns, rows (dicts) and sha256 of the raw bytes of one CSV or Parquet file."""
    if not path.is_file():
        raise ScalingError(f"data file {str(path)!r} not found; pass a CSV or Parquet sweep table")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ScalingError(f"reading {path.name} needs pyarrow: pip install "
                               "'scaling[parquet]' (or convert it to CSV)") from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise ScalingError(f"cannot read {path.name} as Parquet: {exc}") from None
        return list(table.column_names), table.to_pylist(), digest
    if path.suffix.lower() not in (".csv", ".txt", ".tsv"):
        raise ScalingError(f"unsupported data file {path.name!r}: use .csv or .parquet")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScalingError(f"{path.name} is not UTF-8 text; save it as UTF-8 CSV") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        table = list(csv.reader(lines, delimiter=delimiter))
    except csv.Error as exc:
        raise ScalingError(f"{path.name} is not valid CSV: {exc}") from None
    if not table:
        raise ScalingError(f"{path.name} is empty; expected a header row and data rows")
    header = [h.strip() for h in table[0]]
    if len(set(header)) != len(header) or "" in header:
        raise ScalingError(f"{path.name}: header {header} has empty or repeated column names")
    rows = []
    for i, fields in enumerate(table[1:], start=1):
        if len(fields) != len(header):
            raise ScalingError(f"row {i} of {path.name} has {len(fields)} fields but the "
                               f"header has {len(header)}; fix the row or the header")
        rows.append(dict(zip(header, (f.strip() for f in fields), strict=True)))
    return header, rows, digest


def _number(value: Any, where: str, column: str) -> float:
    """A finite float from a cell, or an error naming the cell."""
    if value is None or (isinstance(value, str) and value == ""):
        raise ScalingError(f"{where}, column {column!r}: missing value; fill it in or "
                           "remove the row")
    if isinstance(value, bool):
        raise ScalingError(f"{where}, column {column!r}: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScalingError(f"{where}, column {column!r}: text {value!r} in a number column; "
                           "write a number") from None
    if not math.isfinite(number):
        raise ScalingError(f"{where}, column {column!r}: {value!r} is not a finite number")
    return number


def _is_error_name(name: str) -> bool:
    low = name.lower()
    return any(low == e or low.endswith(("_" + e, "-" + e)) or low.startswith(e + "_")
               for e in ERROR_NAMES)


def _metric_names(metric: str | Sequence[str] | None) -> list[str]:
    if metric is None:
        return []
    names = [metric] if isinstance(metric, str) else list(metric)
    out: list[str] = []
    for name in names:
        body = name[5:] if name.startswith("mean:") else name
        parts = [p.strip() for p in body.split(",") if p.strip()]
        if not parts:
            raise ScalingError(f"--metric {name!r} names no column; use COL or mean:COL1,COL2")
        out += parts
    return list(dict.fromkeys(out))


def _to_error(value: float, name: str, kind: str, where: str) -> float:
    if kind == "error":
        if value < 0:
            raise ScalingError(f"{where}, column {name!r}: error-like value {value!r} is "
                               "negative; errors and losses must be >= 0")
        return value
    if not 0.0 <= value <= 1.0:
        raise ScalingError(f"{where}, column {name!r}: accuracy {value!r} is outside [0, 1]; "
                           "rescale it (e.g. percent / 100) or pass --metric-kind error if "
                           "lower is better")
    return 1.0 - value


def load_sweep(paths: str | Path | Sequence[str | Path], *,
               metric: str | Sequence[str] | None = None, group_by: str | None = None,
               kind: str = "auto") -> SweepData:
    """Read, validate and combine sweep tables into the ``Y`` the fitter uses.

    ``kind`` is ``"auto"`` (by name: ``error``/``loss`` are errors, anything else an
    accuracy), ``"accuracy"`` (fit ``1 - value``) or ``"error"`` (fit the value as is).
    """
    if kind not in ("auto", "accuracy", "error"):
        raise ScalingError(f"metric kind must be auto, accuracy or error, got {kind!r}")
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ScalingError("no data files given; pass one or more CSV or Parquet files")
    files = [_read(Path(p)) for p in paths]
    names = _metric_names(metric)
    records: dict[tuple, dict[str, tuple[float, str]]] = {}
    order: list[tuple] = []
    duplicates: list[str] = []
    not_ok = 0
    metric_label = ""
    for path, (columns, rows, _) in zip(paths, files, strict=True):
        fname = Path(path).name
        bench_col = next((c for c in ("benchmark", "task") if c in columns), None)
        tidy = "score" in columns and bench_col is not None and not (
            names and all(n in columns for n in names))
        required = ["llm_params", "visual_tokens"] + ([group_by] if group_by else [])
        if tidy:
            required += [bench_col, "score"]
            benchmarks = list(dict.fromkeys(str(r[bench_col]) for r in rows))
            if names:
                chosen = names
                missing = [n for n in names if n not in benchmarks]
                if missing:
                    raise ScalingError(
                        f"{fname}: no column or benchmark named {missing[0]!r}; columns: "
                        f"{', '.join(columns)}; benchmarks: {', '.join(benchmarks)}")
            elif group_by == bench_col or len(benchmarks) == 1:
                chosen = ["score"] if group_by == bench_col else benchmarks
            else:
                raise ScalingError(
                    f"{fname} holds several benchmarks in column {bench_col!r} "
                    f"({', '.join(benchmarks[:6])}); choose --metric NAME, --metric "
                    f"mean:{','.join(benchmarks[:2])},... or --group-by {bench_col}")
        else:
            chosen = names or [next((c for c in ("error", "loss", "accuracy") if c in columns),
                                    "accuracy")]
            required += chosen
        for col in required:
            if col not in columns:
                raise ScalingError(f"{fname} has no column {col!r}; its columns are "
                                   f"{', '.join(columns)}")
        kinds = {c: kind if kind != "auto" else ("error" if _is_error_name(c) else "accuracy")
                 for c in chosen}
        if len(set(kinds.values())) > 1:
            raise ScalingError(f"--metric mixes error-like and accuracy-like columns "
                               f"{kinds}; average metrics of one kind")
        metric_label = (("1 - " if kinds[chosen[0]] == "accuracy" else "")
                        + (chosen[0] if len(chosen) == 1 else f"mean({', '.join(chosen)})"))
        ids = [c for c in ID_COLUMNS + (("task", "benchmark") if not tidy else ())
               if c in columns and c != group_by]
        for i, row in enumerate(rows, start=1):
            where = f"row {i} of {fname}"
            if "status" in columns and str(row["status"]).strip() not in ("ok", ""):
                not_ok += 1  # a failed sweep run (scaling sweep writes status ok|failed)
                continue
            try:
                n = parse_params(_number_or_text(row["llm_params"], where, "llm_params"))
            except ScalingError as exc:
                raise ScalingError(f"{where}, column 'llm_params': {exc}") from None
            t = _number(row["visual_tokens"], where, "visual_tokens")
            if t < 1 or t != int(t):
                raise ScalingError(f"{where}, column 'visual_tokens': {row['visual_tokens']!r}"
                                   " must be a whole number >= 1")
            g = "" if group_by is None else str(row[group_by])
            if group_by and row[group_by] in (None, ""):
                raise ScalingError(f"{where}, column {group_by!r}: missing group value")
            key = (g, n, t) + tuple(str(row[c]) for c in ids)
            if key not in records:
                records[key] = {}
                order.append(key)
            cols = [(row[bench_col] if tidy and chosen != ["score"] else "score", "score")] \
                if tidy else [(c, c) for c in chosen]
            for name, col in cols:
                if tidy and name not in chosen:
                    continue
                value = _to_error(_number(row[col], where, col), col, kinds[chosen[0]], where)
                old = records[key].get(name)
                if old is not None and old[0] != value:
                    raise ScalingError(
                        f"{where} repeats the configuration of {old[1]} (llm_params={n:g}, "
                        f"visual_tokens={t:g}{', ' + group_by + '=' + g if group_by else ''})"
                        f" with a different {col} ({row[col]!r}); remove one, or add a "
                        "'seed' column if they are repeated runs")
                if old is not None:
                    duplicates.append(where)
                records[key][name] = (value, where if old is None else old[1])
    rows_out = []
    notes = [f"{len(duplicates)} exact duplicate row(s) counted once ({duplicates[0]}"
             f"{', ...' if len(duplicates) > 1 else ''})"] if duplicates else []
    if not_ok:
        notes.append(f"{not_ok} row(s) whose status is not 'ok' (failed sweep runs) were left out")
    for key in order:
        values = records[key]
        missing = [c for c in chosen if c not in values]
        if missing:
            first = next(iter(values.values()))[1]
            raise ScalingError(f"{first}: configuration llm_params={key[1]:g}, visual_tokens="
                               f"{key[2]:g} has no {missing[0]!r} value; add it or drop "
                               f"{missing[0]!r} from --metric")
        y = float(np.mean([values[c][0] for c in chosen]))
        rows_out.append((key[0], key[1], key[2], y, next(iter(values.values()))[1]))
    data = SweepData(
        llm_params=np.array([r[1] for r in rows_out]),
        visual_tokens=np.array([r[2] for r in rows_out]),
        y=np.array([r[3] for r in rows_out]),
        metric=metric_label,
        group=np.array([r[0] for r in rows_out], dtype=str) if group_by else None,
        group_by=group_by,
        cluster=np.unique([f"{r[0]}\t{r[1]!r}\t{r[2]!r}" for r in rows_out],
                          return_inverse=True)[1],
        where=tuple(r[4] for r in rows_out),
        files=tuple(str(p) for p in paths),
        file_sha256=tuple(f[2] for f in files),
        notes=tuple(notes),
    )
    if data.n_points == 0:
        raise ScalingError(f"no data rows in {', '.join(map(str, paths))}")
    for label, part in data.by_group().items():
        part.check_identifiable(label if group_by else "")
    return data


def _number_or_text(value: Any, where: str, column: str) -> Any:
    """``llm_params`` may be text with a unit ("0.5B"); only emptiness is checked here."""
    if value is None or value == "":
        raise ScalingError("missing value; fill it in or remove the row")
    return value
