"""The sweep table (DESIGN.md): loading, validation and the array form the fitter uses.

A sweep table has one row per measurement with the columns a law's **axes** are bound to and
one or more metric columns. The default bindings are the paper's: ``N`` = ``llm_params`` (a
number or "0.5B", read in **billions**) and ``V`` = ``visual_tokens`` (a whole number
>= 1); any other axis binds a column with ``axes={"D": "train_tokens"}`` (the CLI's
``--axis D=train_tokens``), read as it is: any finite positive real. Default axes whose
columns are absent are simply not loaded (a one-model table needs no ``llm_params``); an
axis the law needs but the table lacks is reported by the fitter.

Tables come from one or many CSV or Parquet files, in one of two shapes:

- **wide**: one column per metric (``accuracy``, ``gqa``, ``pope``, ...);
- **tidy**: ``benchmark`` (or ``task``) + ``score`` columns, one row per benchmark.

The metric to fit (``metric=``, the CLI's ``--metric``) is one name (a column or a
benchmark), several names or ``"mean:gqa,pope"`` (their mean per configuration), or nothing:
``error``, ``loss`` or ``accuracy`` (the first present), or for a tidy table its single
benchmark (or each benchmark's own score with ``group_by="benchmark"``).

Laws are fitted on an error-like ``Y`` (lower is better): a metric whose name is or ends in
``error``/``loss`` is used as is, any other is an accuracy and becomes ``Y = 1 - accuracy``
(``kind=`` overrides the guess). Rows are matched across benchmarks by their axis values and,
where present, ``llm``, ``seed``, ``compressor``, ``text_tokens`` and the group column.
Every problem stops with a :class:`ScalingError` naming the file, row, column and value; rows
are numbered from 1 after the header (``#`` comment lines skipped).

Loading is column-wise and vectorised (numpy), so a table of ``10^6`` rows loads in seconds.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.files import check_input_file
from scaling.law import DEFAULT_AXES, Axis
from scaling.units import parse_params

ID_COLUMNS = ("llm", "seed", "compressor", "text_tokens")
ERROR_NAMES = ("error", "loss")


@dataclass(frozen=True)
class SweepData:
    """Validated measurements: ``Y`` (error-like) at the values of named axes.

    ``axes`` holds each bound axis in the law's units (``N`` in billions); ``bindings`` says
    which column and unit each came from, ``columns`` the values as the table has them.
    ``cluster`` numbers the (group, axis values)
    configurations: rows that share one are repeated measurements (e.g. seeds), resampled
    together by the ``config`` bootstrap and collapsed into sufficient statistics by the
    fitter. ``source`` holds ``(file index, row number)`` of each row.
    """

    axes: Mapping[str, np.ndarray]
    y: np.ndarray
    bindings: Mapping[str, Axis] = field(default_factory=dict)
    metric: str = "error"
    group: np.ndarray | None = None
    group_by: str | None = None
    cluster: np.ndarray | None = None
    source: np.ndarray | None = None
    files: tuple[str, ...] = ()
    file_sha256: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        """Axis ``name`` as the table has it (``llm_params`` in parameters)."""
        if name in self.columns:
            return self.columns[name]
        return self.axis(name) * self.bindings.get(name, Axis(name)).unit

    @property
    def n_points(self) -> int:
        return int(self.y.size)

    def axis(self, name: str) -> np.ndarray:
        """The values of axis ``name`` (law units); a clear error when it is not bound."""
        if name not in self.axes:
            bound = ", ".join(f"{a}={b.column}" for a, b in self.bindings.items()) or "none"
            raise ScalingError(f"the table has no axis {name!r} (bound: {bound}); bind a "
                               f"column with --axis {name}=COLUMN")
        return self.axes[name]

    @property
    def llm_params_b(self) -> np.ndarray:
        """LLM size in billions of parameters (axis ``N``)."""
        return self.axis("N")

    @property
    def llm_params(self) -> np.ndarray:
        """LLM size in parameters."""
        return self.column("N")

    @property
    def visual_tokens(self) -> np.ndarray:
        return self.axis("V")

    def where(self, i: int) -> str:
        """``row R of FILE`` for data row ``i``."""
        if self.source is None:
            return f"point {i + 1}"
        f, r = self.source[i]
        return f"row {r} of {Path(self.files[f]).name}" if self.files else f"row {r}"

    @property
    def sha256(self) -> str:
        """Hash of the data actually fitted (group, axis values, Y per row, full precision).

        With exactly the default axes ``N``, ``V`` the text is that of earlier versions
        (``group, llm_params, visual_tokens, Y``), so their artifacts keep their hash.
        """
        groups = self.group if self.group is not None else [""] * self.n_points
        if set(self.axes) == {"N", "V"} and self.bindings.get("N") == DEFAULT_AXES["N"]:
            cols = [self.llm_params.tolist(), self.visual_tokens.tolist()]
            head = ""
        else:
            names = sorted(self.axes)
            cols = [self.column(a).tolist() for a in names]
            head = "axes " + " ".join(f"{a}={self.bindings[a].column}/{self.bindings[a].unit!r}"
                                      if a in self.bindings else a for a in names) + "\n"
        rows = zip(groups, *cols, self.y.tolist(), strict=True)
        text = "\n".join("\t".join([str(r[0])] + [repr(v) for v in r[1:]]) for r in rows)
        return hashlib.sha256(f"{head}{self.metric}\n{text}".encode()).hexdigest()

    def subset(self, mask: np.ndarray) -> SweepData:
        """The rows where ``mask`` holds (clusters renumbered)."""
        mask = np.asarray(mask)
        cluster = None if self.cluster is None else np.unique(
            self.cluster[mask], return_inverse=True)[1]
        return replace(
            self, axes={a: v[mask] for a, v in self.axes.items()}, y=self.y[mask],
            columns={a: v[mask] for a, v in self.columns.items()},
            group=None if self.group is None else self.group[mask], cluster=cluster,
            source=None if self.source is None else self.source[mask])

    def by_group(self) -> dict[str, SweepData]:
        """One table per value of the group column (``{"all": self}`` when ungrouped)."""
        if self.group is None:
            return {"all": self}
        return {str(g): self.subset(self.group == g) for g in dict.fromkeys(self.group)}

    def check_identifiable(self, axes: Sequence[str], label: str = "") -> None:
        """Each axis of the law needs >= 2 distinct values."""
        where = f" in group {label!r}" if label else ""
        for name in axes:
            distinct = np.unique(self.axis(name))
            if distinct.size < 2:
                column = self.bindings.get(name, Axis(name)).column
                shown = np.unique(self.column(name)).tolist()
                raise ScalingError(
                    f"need at least 2 distinct {column} values (axis {name}) to fit a law"
                    f"{where}, got {shown}; add runs with another {column}, or fit a law "
                    f"without {name} (e.g. --law tokens for one model)")

    def ranges(self) -> dict[str, tuple[float, float]]:
        """``[min, max]`` of every axis (law units): stored in artifacts."""
        return {a: (float(v.min()), float(v.max())) for a, v in self.axes.items()}


def from_axes(axes: Mapping[str, Any], y, *, bindings: Mapping[str, Axis] | None = None,
              metric: str = "error", group=None, cluster=None,
              columns: Mapping[str, Any] | None = None) -> SweepData:
    """A :class:`SweepData` from arrays already in law units (``N`` in billions)."""
    yv = np.asarray(y, float).ravel()
    values = {a: np.asarray(v, float).ravel() for a, v in axes.items()}
    for a, v in values.items():
        if v.size != yv.size:
            raise ScalingError(f"axis {a} has {v.size} values but y has {yv.size}")
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ScalingError(f"axis {a} needs finite values > 0")
    if not np.all(np.isfinite(yv)):
        raise ScalingError("y must be finite")
    g = None if group is None else np.asarray(group, str).ravel()
    if cluster is None:
        cluster = _codes([g if g is not None else np.zeros(yv.size, int)]
                         + [values[a] for a in sorted(values)])
    binds = {a: (bindings or {}).get(a, DEFAULT_AXES.get(a, Axis(a))) for a in values}
    cols = {a: np.asarray(v, float).ravel() for a, v in (columns or {}).items()}
    return SweepData(values, yv, binds, metric=metric, group=g, cluster=np.asarray(cluster),
                     columns=cols)


def from_arrays(llm_params, visual_tokens, y, *, metric: str = "error", group=None,
                cluster=None) -> SweepData:
    """A :class:`SweepData` over the default axes (``llm_params`` in parameters, e.g. 7e9)."""
    n = np.asarray(llm_params, float).ravel()
    t = np.asarray(visual_tokens, float).ravel()
    if not np.all(t >= 1):
        raise ScalingError("from_arrays needs visual_tokens >= 1")
    return from_axes({"N": n / DEFAULT_AXES["N"].unit, "V": t}, y, metric=metric, group=group,
                     cluster=cluster, columns={"N": n})


def _codes(columns: Sequence[np.ndarray]) -> np.ndarray:
    """One integer per distinct row of the given columns (first-appearance order)."""
    parts = [np.unique(c, return_inverse=True)[1].ravel() for c in columns]
    if not parts:
        return np.zeros(0, int)
    _, first, inv = np.unique(np.stack(parts, axis=1), axis=0, return_index=True,
                              return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv.ravel()]


# ----------------------------------------------------------------------------- reading

@dataclass
class _Table:
    name: str
    columns: list[str]
    data: dict[str, np.ndarray]      # column -> array of str (CSV) or objects (Parquet)
    rows: np.ndarray                  # row numbers (1-based, after the header)
    digest: str


def _read(path: Path) -> _Table:
    """The columns of one CSV or Parquet file and the sha256 of its raw bytes."""
    check_input_file(path, what="data file")
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
        cols = list(table.column_names)
        data = {c: np.array(table.column(c).to_pylist(), dtype=object) for c in cols}
        return _Table(path.name, cols, data, np.arange(1, table.num_rows + 1), digest)
    if path.suffix.lower() not in (".csv", ".txt", ".tsv"):
        raise ScalingError(f"unsupported data file {path.name!r}: use .csv or .parquet")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScalingError(f"{path.name} is not UTF-8 text; save it as UTF-8 CSV") from None
    del raw
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    del text
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        table = list(csv.reader(lines, delimiter=delimiter))
    except csv.Error as exc:
        raise ScalingError(f"{path.name} is not valid CSV: {exc}") from None
    del lines
    if not table:
        raise ScalingError(f"{path.name} is empty; expected a header row and data rows")
    header = [h.strip() for h in table[0]]
    if len(set(header)) != len(header) or "" in header:
        raise ScalingError(f"{path.name}: header {header} has empty or repeated column names")
    body = table[1:]
    del table
    widths = np.fromiter((len(r) for r in body), int, len(body))
    bad = np.flatnonzero(widths != len(header))
    if bad.size:
        i = int(bad[0])
        raise ScalingError(f"row {i + 1} of {path.name} has {widths[i]} fields but the "
                           f"header has {len(header)}; fix the row or the header")
    data = {}
    for j, name in enumerate(header):
        data[name] = np.array([r[j].strip() for r in body], dtype=str) if body else \
            np.zeros(0, str)
    return _Table(path.name, header, data, np.arange(1, len(body) + 1), digest)


def _cell(t: _Table, column: str, i: int) -> Any:
    v = t.data[column][i]
    return v.item() if isinstance(v, np.generic) else v


def _numbers(t: _Table, column: str, mask: np.ndarray | None = None) -> np.ndarray:
    """A column as finite floats, or an error naming the first bad cell."""
    values = t.data[column]
    idx = np.arange(values.size) if mask is None else np.flatnonzero(mask)
    sub = values[idx]
    try:
        out = np.array(sub, dtype=float) if sub.dtype.kind in "USO" else sub.astype(float)
        if sub.dtype == object and any(isinstance(v, (bool, np.bool_)) for v in sub):
            raise ValueError
    except (TypeError, ValueError):
        out = None
    if out is not None and np.all(np.isfinite(out)):
        return out
    for i in idx:  # slow path: find and name the first bad cell
        value = _cell(t, column, i)
        where = f"row {t.rows[i]} of {t.name}, column {column!r}"
        if value is None or (isinstance(value, str) and value == ""):
            raise ScalingError(f"{where}: missing value; fill it in or remove the row")
        if isinstance(value, bool):
            raise ScalingError(f"{where}: {value!r} is not a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ScalingError(f"{where}: text {value!r} in a number column; write a number"
                               ) from None
        if not math.isfinite(number):
            raise ScalingError(f"{where}: {value!r} is not a finite number")
    raise AssertionError("a column failed to convert but every cell is a finite number")


def _llm_params(t: _Table, mask: np.ndarray) -> np.ndarray:
    """``llm_params`` in parameters: numbers, or text with a unit, parsed once per value."""
    values = t.data["llm_params"][mask]
    rows = t.rows[mask]
    uniq, inv = np.unique(values.astype(str), return_inverse=True)
    parsed = np.empty(uniq.size)
    for k in range(uniq.size):
        i = int(np.flatnonzero(inv == k)[0])
        raw = values[i]
        where = f"row {rows[i]} of {t.name}, column 'llm_params'"
        if raw is None or raw == "":
            raise ScalingError(f"{where}: missing value; fill it in or remove the row")
        try:
            parsed[k] = parse_params(raw.item() if isinstance(raw, np.generic) else raw)
        except ScalingError as exc:
            raise ScalingError(f"{where}: {exc}") from None
    return parsed[inv.ravel()]


def is_error_name(name: str) -> bool:
    """Whether a metric column is error-like (fitted as is) rather than an accuracy
    (fitted as ``1 - value``): ``error``, ``loss`` and names such as ``val_loss``."""
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


def _to_error(values: np.ndarray, t: _Table, column: str, kind: str,
              rows: np.ndarray) -> np.ndarray:
    if kind == "error":
        bad = np.flatnonzero(values < 0)
        if bad.size:
            raise ScalingError(f"row {rows[bad[0]]} of {t.name}, column {column!r}: error-like "
                               f"value {float(values[bad[0]])!r} is negative; errors and "
                               "losses must be >= 0")
        return values
    bad = np.flatnonzero((values < 0) | (values > 1))
    if bad.size:
        raise ScalingError(f"row {rows[bad[0]]} of {t.name}, column {column!r}: accuracy "
                           f"{float(values[bad[0]])!r} is outside [0, 1]; rescale it (e.g. "
                           "percent / 100) or pass --metric-kind error if lower is better")
    return 1.0 - values


def parse_axis_options(options: Sequence[str] | None) -> dict[str, str]:
    """``["D=train_tokens", ...]`` (the CLI's ``--axis``) -> ``{"D": "train_tokens"}``."""
    out: dict[str, str] = {}
    for text in options or ():
        name, eq, column = text.partition("=")
        name, column = name.strip(), column.strip()
        if not eq or not name.isidentifier() or not column:
            raise ScalingError(f"--axis {text!r} must look like NAME=COLUMN, e.g. "
                               "D=train_tokens")
        if name in out:
            raise ScalingError(f"axis {name!r} is bound twice (--axis {name}={out[name]} and "
                               f"--axis {text}); bind each axis once")
        out[name] = column
    return out


def _bindings(axes: Mapping[str, str] | None) -> tuple[dict[str, Axis], set[str]]:
    """Default + user bindings, and the names the user bound (those must exist)."""
    user = dict(axes or {})
    out = {a: b for a, b in DEFAULT_AXES.items() if a not in user}
    for name, column in user.items():
        default = DEFAULT_AXES.get(name)
        out[name] = default if default is not None and default.column == column \
            else Axis(column, DEFAULT_AXES["N"].unit if column == "llm_params" else 1.0)
    columns = [b.column for b in out.values()]
    dup = {c for c in columns if columns.count(c) > 1 and c in user.values()}
    if dup:
        c = dup.pop()
        raise ScalingError(f"column {c!r} is bound to two axes "
                           f"({', '.join(a for a, b in out.items() if b.column == c)}); bind "
                           "each column once")
    return out, set(user)


def _load_table(t: Any, fi: int, *, present: Sequence[str], bindings: Mapping[str, Any],
                names: list[str], group_by: str | None, kind: str
                ) -> tuple[list[dict[str, Any]], list[str], str, int]:
    """One file's rows: ``(parts, chosen metric columns, metric label, rows not ok)``."""
    not_ok = 0
    parts: list[dict[str, Any]] = []
    bench_col = next((c for c in ("benchmark", "task") if c in t.columns), None)
    tidy = "score" in t.columns and bench_col is not None and not (
        names and all(n in t.columns for n in names))
    required = [bindings[a].column for a in present] + ([group_by] if group_by else [])
    if not present:
        required.append("visual_tokens")   # the classic table: say what is missing
    if tidy:
        required += [bench_col, "score"]
        benchmarks = list(dict.fromkeys(str(b) for b in t.data[bench_col]))
        if names:
            chosen = names
            missing = [n for n in names if n not in benchmarks]
            if missing:
                raise ScalingError(
                    f"{t.name}: no column or benchmark named {missing[0]!r}; columns: "
                    f"{', '.join(t.columns)}; benchmarks: {', '.join(benchmarks)}")
        elif group_by == bench_col or len(benchmarks) == 1:
            chosen = ["score"] if group_by == bench_col else benchmarks
        else:
            raise ScalingError(
                f"{t.name} holds several benchmarks in column {bench_col!r} "
                f"({', '.join(benchmarks[:6])}); choose --metric NAME, --metric "
                f"mean:{','.join(benchmarks[:2])},... or --group-by {bench_col}")
    else:
        chosen = names or [next((c for c in ("error", "loss", "accuracy")
                                 if c in t.columns), "accuracy")]
        required += chosen
    for col in required:
        if col not in t.columns:
            raise ScalingError(f"{t.name} has no column {col!r}; its columns are "
                               f"{', '.join(t.columns)}")
    kinds = {c: kind if kind != "auto" else ("error" if is_error_name(c) else "accuracy")
             for c in chosen}
    if len(set(kinds.values())) > 1:
        raise ScalingError(f"--metric mixes error-like and accuracy-like columns "
                           f"{kinds}; average metrics of one kind")
    metric_label = (("1 - " if kinds[chosen[0]] == "accuracy" else "")
                    + (chosen[0] if len(chosen) == 1 else f"mean({', '.join(chosen)})"))
    n_rows = t.rows.size
    keep = np.ones(n_rows, bool)
    if "status" in t.columns:
        status = np.char.strip(t.data["status"].astype(str))
        keep = (status == "ok") | (status == "") | (status == "None")
        not_ok += int((~keep).sum())
    if tidy and chosen != ["score"]:
        keep &= np.isin(t.data[bench_col].astype(str), chosen)
    rows = t.rows[keep]
    values: dict[str, np.ndarray] = {}
    for a in present:
        col = bindings[a].column
        v = _llm_params(t, keep) if col == "llm_params" else _numbers(t, col, keep)
        bad = np.flatnonzero(~(v > 0))
        if col == "visual_tokens":
            bad = np.flatnonzero((v < 1) | (v != np.round(v)))
            if bad.size:
                cell = _cell(t, col, np.flatnonzero(keep)[bad[0]])
                raise ScalingError(f"row {rows[bad[0]]} of {t.name}, column "
                                   f"'visual_tokens': {cell!r} must be a whole number >= 1")
        if bad.size:
            raise ScalingError(f"row {rows[bad[0]]} of {t.name}, column {col!r} (axis "
                               f"{a}): {v[bad[0]]!r} must be > 0: power-law axes need "
                               "positive values; drop the row or bind another column")
        values[a] = v
    group = np.zeros(rows.size, str)
    if group_by:
        group = t.data[group_by][keep].astype(str)
        empty = np.flatnonzero((group == "") | (group == "None"))
        if empty.size:
            raise ScalingError(f"row {rows[empty[0]]} of {t.name}, column {group_by!r}: "
                               "missing group value")
    ids = [c for c in ID_COLUMNS + (("task", "benchmark") if not tidy else ())
           if c in t.columns and c != group_by and c not in
           {bindings[a].column for a in present}]
    id_cols = [t.data[c][keep].astype(str) for c in ids]
    if tidy:
        metric_of = np.zeros(rows.size, int)
        if chosen != ["score"]:
            uniq, inv = np.unique(t.data[bench_col][keep].astype(str), return_inverse=True)
            metric_of = np.array([chosen.index(u) for u in uniq], int)[inv.ravel()]
        y = _to_error(_numbers(t, "score", keep), t, "score", kinds[chosen[0]], rows)
        parts.append(dict(values=values, group=group, ids=id_cols, metric=metric_of, y=y,
                          rows=rows, file=fi, value_cols=["score"]))
    else:
        for m, c in enumerate(chosen):
            y = _to_error(_numbers(t, c, keep), t, c, kinds[c], rows)
            parts.append(dict(values=values, group=group, ids=id_cols,
                              metric=np.full(rows.size, m), y=y, rows=rows, file=fi,
                              value_cols=[c]))
    return parts, chosen, metric_label, not_ok


def load_sweep(paths: str | Path | Sequence[str | Path], *,
               metric: str | Sequence[str] | None = None, group_by: str | None = None,
               kind: str = "auto", axes: Mapping[str, str] | None = None,
               need: Sequence[str] | None = None) -> SweepData:
    """Read, validate and combine sweep tables into the ``Y`` the fitter uses.

    ``kind`` is ``"auto"`` (by name: ``error``/``loss`` are errors, anything else an
    accuracy), ``"accuracy"`` (fit ``1 - value``) or ``"error"`` (fit the value as is).
    ``axes`` binds extra axes (or rebinds ``N``/``V``) to columns: ``{"D": "train_tokens"}``.
    ``need`` (the law's axes, when known) loads exactly those axes, each of which must be bound
    and present; otherwise every bound axis whose column is present is loaded.
    """
    if kind not in ("auto", "accuracy", "error"):
        raise ScalingError(f"metric kind must be auto, accuracy or error, got {kind!r}")
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ScalingError("no data files given; pass one or more CSV or Parquet files")
    bindings, user_bound = _bindings(axes)
    tables = [_read(Path(p)) for p in paths]
    names = _metric_names(metric)
    if need is not None:
        unbound = [a for a in need if a not in bindings]
        if unbound:
            raise ScalingError(f"the law needs axis {unbound[0]} but no column is bound to it; "
                               f"bind one with --axis {unbound[0]}=COLUMN")
        present = list(need)
    else:
        present = [a for a, b in bindings.items()
                   if a in user_bound or all(b.column in t.columns for t in tables)]
    parts: list[dict[str, Any]] = []
    notes: list[str] = []
    not_ok = 0
    choices = []
    for fi, t in enumerate(tables):
        file_parts, chosen, metric_label, dropped = _load_table(
            t, fi, present=present, bindings=bindings, names=names, group_by=group_by, kind=kind)
        parts += file_parts
        not_ok += dropped
        choices.append((t.name, chosen, metric_label))
    differ = [c for c in choices if c[1:] != choices[0][1:]]
    if differ:
        raise ScalingError(
            f"the files resolve to different metrics: {choices[0][0]} -> {choices[0][2]}, "
            f"{differ[0][0]} -> {differ[0][2]}; choose one with --metric (and --metric-kind)")
    _, chosen, metric_label = choices[0]
    return _combine(parts, tables, paths, present, bindings, chosen, metric_label, group_by,
                    not_ok, notes)


def _combine(parts, tables, paths, present, bindings, chosen, metric_label, group_by, not_ok,
             notes) -> SweepData:
    """Match rows across metrics and files, check repeats, average the chosen metrics."""
    if not parts or sum(p["y"].size for p in parts) == 0:
        raise ScalingError(f"no data rows in {', '.join(map(str, paths))}")
    n_ids = max(len(p["ids"]) for p in parts)

    def cat(get):
        return np.concatenate([get(p) for p in parts])

    axes = {a: cat(lambda p, a=a: p["values"][a]) for a in present}
    group = cat(lambda p: p["group"])
    ids = [cat(lambda p, j=j: p["ids"][j] if j < len(p["ids"]) else
               np.full(p["y"].size, "")) for j in range(n_ids)]
    metric = cat(lambda p: p["metric"])
    y = cat(lambda p: p["y"])
    rows = cat(lambda p: p["rows"])
    files = cat(lambda p: np.full(p["y"].size, p["file"]))
    value_col = [p["value_cols"][0] for p in parts]
    part_of = np.concatenate([np.full(p["y"].size, k) for k, p in enumerate(parts)])
    key = _codes([group] + [axes[a] for a in present] + ids)
    slot = key * len(chosen) + metric
    order = np.lexsort((rows, files, slot))
    s_slot, s_y = slot[order], y[order]
    same = s_slot[1:] == s_slot[:-1]
    clash = np.flatnonzero(same & (s_y[1:] != s_y[:-1]))
    if clash.size:
        i, j = order[clash[0] + 1], order[clash[0]]
        cfg = ", ".join(f"{bindings[a].column}={axes[a][i]:g}" for a in present)
        grp = f", {group_by}={group[i]}" if group_by else ""
        raise ScalingError(
            f"row {rows[i]} of {tables[files[i]].name} repeats the configuration of row "
            f"{rows[j]} of {tables[files[j]].name} ({cfg}{grp}) with a different "
            f"{value_col[part_of[i]]}; remove one, or add a 'seed' column if they are repeated "
            "runs")
    dups = np.flatnonzero(same)
    if dups.size:
        i = order[dups[0] + 1]
        notes.append(f"{dups.size} exact duplicate row(s) counted once (row {rows[i]} of "
                     f"{tables[files[i]].name}{', ...' if dups.size > 1 else ''})")
    first = np.ones(s_slot.size, bool)
    first[1:] = ~same
    u_slot, u_y, u_idx = s_slot[first], s_y[first], order[first]
    n_keys = int(key.max()) + 1
    count = np.bincount(u_slot // len(chosen), minlength=n_keys)
    total = np.bincount(u_slot // len(chosen), weights=u_y, minlength=n_keys)
    incomplete = np.flatnonzero(count < len(chosen))
    if incomplete.size:
        k = incomplete[0]
        i = int(u_idx[u_slot // len(chosen) == k][0])
        have = set(metric[u_idx[u_slot // len(chosen) == k]].tolist())
        miss = next(c for m, c in enumerate(chosen) if m not in have)
        cfg = ", ".join(f"{bindings[a].column}={axes[a][i]:g}" for a in present)
        raise ScalingError(f"row {rows[i]} of {tables[files[i]].name}: configuration {cfg} has "
                           f"no {miss!r} value; add it or drop {miss!r} from --metric")
    rep = np.zeros(n_keys, int)
    rep[u_slot[::-1] // len(chosen)] = u_idx[::-1]     # first row of each configuration
    keys = np.lexsort((rows[rep], files[rep]))           # configurations in file order
    if not_ok:
        notes.append(f"{not_ok} row(s) whose status is not 'ok' (failed sweep runs) were "
                     "left out")
    picked = rep[keys]
    group_out = group[picked] if group_by else None
    cluster = _codes([group[picked]] + [axes[a][picked] for a in present])
    return SweepData(
        axes={a: axes[a][picked] / bindings[a].unit if bindings[a].unit != 1.0
              else axes[a][picked] for a in present}, y=total[keys] / count[keys],
        bindings={a: bindings[a] for a in present}, metric=metric_label, group=group_out,
        group_by=group_by, cluster=cluster,
        source=np.stack([files[picked], rows[picked]], axis=1),
        files=tuple(str(p) for p in paths), file_sha256=tuple(t.digest for t in tables),
        notes=tuple(notes), columns={a: axes[a][picked] for a in present})
