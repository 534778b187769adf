"""Figures: the compute-optimal frontier, iso-FLOP curves, an error heatmap and fit diagnostics.

Every figure is drawn from a fitted law (a :class:`scaling.law.FittedLaw` or
:class:`scaling.fit.FitResult`, ``None`` for the paper's published law, or a ``{group: law}``
mapping for laws fitted with ``--group-by``: one panel per group) and, optionally, measured
sweep points. Costs, optima and frontiers are never recomputed here: costs come from the
planner's pricer (:func:`scaling.planner.problem.setting`), optima from :func:`scaling.plan` and
frontiers from :func:`scaling.plan.frontier`, so what a figure marks is what ``scaling plan``
answers, under the same cost model (``paper``: ``C = 2 N (Q + V)``; ``exact``: the
architecture's cost).

- ``frontier``: predicted error against inference FLOPs ``C`` (log axis), one curve per LLM
  size across visual-token counts ``V`` (``C = cost(N, V, Q)``), measured points overlaid,
  the planner's compute-optimal frontier, and the planner's answer at ``budget``
  (Li et al. 2025, Fig. 1).
- ``isoflop``: at fixed budgets ``C``, predicted error against ``V`` with ``N`` the largest
  size the budget buys (paper cost: ``N = C / (2 (Q + V))``), the planner's ``V*`` marked;
  one panel per text-token count ``Q`` shows how ``V* = beta Q / (alpha - beta)`` moves.
- ``heatmap``: predicted error over ``(N, V)`` with iso-FLOP contours and the optimal path.
- ``fit``: measured error and the law's curves against ``V`` per size (bootstrap band when
  the law has draws), residuals below; hold-out points hollow.

Matplotlib is imported only here and only when a figure is drawn. Figures are built on
:class:`matplotlib.figure.Figure` (no pyplot, no global state, headless) and saved with fixed
metadata and SVG hash salt, so the same inputs give byte-identical SVG and PDF.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.files import atomic_write
from scaling.planner.solvers import DEFAULT_TOKEN_RANGE
from scaling.units import format_params, format_quantity

KINDS = ("frontier", "isoflop", "fit", "heatmap")
FORMATS = ("png", "svg", "pdf")

#: Okabe & Ito (2008) colour-blind-safe palette (black is kept for the frontier and optima).
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<")
FRONTIER_COLOR = "#000000"

#: Sizes drawn without data (the paper's Qwen1.5 sizes, in parameters) and token range.
DEFAULT_SIZES = (0.5e9, 1.8e9, 4e9, 7e9, 14e9)
#: Options of :func:`scaling.planner.problem.setting` that the figures pass on to the planner.
PLAN_OPTIONS = ("gen_tokens", "family", "encoder", "gpu", "batch", "dtype", "max_memory_gb",
                "max_latency_ms", "llm_range", "token_range", "law_size", "method")

STYLE = {
    "svg.hashsalt": "scaling",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "font.size": 9.0,
    "axes.titlesize": 9.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
}
METADATA = {
    "svg": {"Date": None, "Creator": "scaling"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "scaling", "Producer": "scaling"},
    "png": {"Software": "scaling"},
}


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Measured:
    """Measured sweep points: error-like metric (lower is better) per configuration.

    ``llm_params`` in parameters; ``group`` names each row's group (grouped laws) or is
    ``None``; ``holdout`` marks points held out of the fit (drawn hollow).
    """

    llm_params: np.ndarray
    visual_tokens: np.ndarray
    error: np.ndarray
    group: np.ndarray | None = None
    holdout: np.ndarray | None = None
    metric: str = "error"
    axes: Mapping[str, np.ndarray] = field(default_factory=dict)

    def select(self, group: str | None) -> Measured:
        """The rows of ``group`` (all rows when ``group`` is None or no groups are known)."""
        if group is None or self.group is None:
            return self
        keep = self.group == group
        return Measured(self.llm_params[keep], self.visual_tokens[keep], self.error[keep],
                        self.group[keep], None if self.holdout is None else self.holdout[keep],
                        self.metric, {a: v[keep] for a, v in self.axes.items()})

    @classmethod
    def from_sweep(cls, data: Any, *, holdout_sizes: Sequence[float] = ()) -> Measured:
        """From a :class:`scaling.fit.table.SweepData`; rows of ``holdout_sizes`` are hold-outs."""
        nan = np.full(data.n_points, np.nan)
        n = np.asarray(data.llm_params, float) if "N" in data.axes else nan
        held = np.zeros(n.size, bool)
        for size in holdout_sizes:
            held |= np.isclose(n, float(size), rtol=1e-6)
        v = np.asarray(data.visual_tokens, float) if "V" in data.axes else nan
        return cls(n, v, np.asarray(data.y, float), data.group, held, data.metric,
                   dict(data.axes))

    @property
    def is_holdout(self) -> np.ndarray:
        return (np.zeros(len(self.error), bool) if self.holdout is None
                else np.asarray(self.holdout, bool))

    def __len__(self) -> int:
        return int(len(self.error))


def holdout_sizes(laws: Any) -> tuple[float, ...]:
    """The LLM sizes the fitter held out in its validation (``validation.holdout_largest``)."""
    sizes = []
    for law in as_law_groups(laws).values():
        held = (getattr(law, "validation", None) or {}).get("holdout_largest") or {}
        if held.get("held_out_llm_params"):
            sizes.append(float(held["held_out_llm_params"]))
    return tuple(sorted(set(sizes)))


@dataclass(frozen=True)
class Panel:
    """What one axes shows, as data (tests and ``--json`` read this, not pixels).

    ``curves`` maps each legend label to its ``(x, y)``; ``optima`` are the planner's
    :class:`scaling.plan.Choice` objects the panel marks and ``marks`` where (x, y) it drew them.
    """

    title: str
    xlabel: str
    ylabel: str
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    points: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
    frontier: tuple[np.ndarray, np.ndarray] | None = None
    optima: tuple[Any, ...] = ()
    marks: tuple[tuple[float, float], ...] = ()
    group: str | None = None
    text_tokens: float | None = None

    @property
    def n_points(self) -> int:
        return len(self.points[0])


@dataclass(frozen=True, repr=False)
class PlotResult:
    """A drawn figure and what it shows; ``output`` is set once saved."""

    kind: str
    figure: Any
    panels: tuple[Panel, ...]
    cost_model: str
    text_tokens: tuple[float, ...]
    law_label: str
    output: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def curves(self) -> int:
        return sum(len(p.curves) for p in self.panels)

    @property
    def points(self) -> int:
        return sum(p.n_points for p in self.panels)

    @property
    def optima(self) -> tuple[Any, ...]:
        return tuple(o for p in self.panels for o in p.optima)

    def summary(self) -> dict[str, Any]:
        """The ``--json`` payload: output, kind, curves, points, panels, optimum/optima."""
        optima = [_choice_dict(o) for o in self.optima]
        return {
            "output": self.output,
            "kind": self.kind,
            "format": None if self.output is None else Path(self.output).suffix[1:].lower(),
            "law": self.law_label,
            "cost_model": self.cost_model,
            "text_tokens": list(self.text_tokens),
            "curves": self.curves,
            "points": self.points,
            "panels": [{"title": p.title, "group": p.group, "text_tokens": p.text_tokens,
                        "xlabel": p.xlabel, "ylabel": p.ylabel, "curves": len(p.curves),
                        "points": p.n_points, "frontier": p.frontier is not None,
                        "optima": [_choice_dict(o) for o in p.optima]} for p in self.panels],
            "optimum": optima[0] if optima else None,
            "optima": optima,
            "warnings": list(self.warnings),
        }

    def png_bytes(self, *, dpi: float = 100) -> bytes:
        """The figure as PNG bytes (what a notebook shows)."""
        buf = io.BytesIO()
        with _style():
            self.figure.savefig(buf, format="png", dpi=dpi, metadata=METADATA["png"])
        return buf.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png_bytes()

    def __repr__(self) -> str:
        return (f"PlotResult(kind={self.kind!r}, panels={len(self.panels)}, "
                f"curves={self.curves}, points={self.points}, optima={len(self.optima)}, "
                f"output={self.output!r})")


def _choice_dict(choice: Any) -> dict[str, Any]:
    keys = ("llm_params", "visual_tokens", "predicted_error", "flops", "budget_flops",
            "text_tokens")
    out = {k: float(getattr(choice, k)) for k in keys if getattr(choice, k, None) is not None}
    if "predicted_error" in out:
        out["predicted_accuracy"] = 1.0 - out["predicted_error"]
    return out


def as_law_groups(laws: Any) -> dict[str | None, Any]:
    """``{group: law}``; one law (or ``{"all": law}``) becomes ``{None: law}``.

    ``None`` is the paper's published law (:data:`scaling.law.PAPER_LAW`).
    """
    if laws is None:
        from scaling.law import PAPER_LAW

        return {None: PAPER_LAW}
    if isinstance(laws, Mapping):
        if not laws:
            raise ScalingError("no law to plot: the law file holds no groups")
        if list(laws) == ["all"]:
            return {None: laws["all"]}
        return dict(laws)
    return {None: laws}


# --------------------------------------------------------------------------- matplotlib


@contextlib.contextmanager
def _style() -> Iterator[Any]:
    try:
        import matplotlib
    except ModuleNotFoundError:  # pragma: no cover - matplotlib ships with the package
        raise ScalingError("plotting needs matplotlib: pip install 'scaling[plot]'") from None
    with matplotlib.rc_context(STYLE):
        yield matplotlib


def _new_figure(nrows: int, ncols: int, *, width: float | None, height: float | None,
                height_ratios: Sequence[float] | None = None, sharey: bool = False):
    from matplotlib.figure import Figure

    width = width or 4.0 * ncols + 2.2
    height = height or 3.4 * nrows
    if not (width > 0 and height > 0):
        raise ScalingError(f"figure size must be positive inches, got {width} x {height}")
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey,
                        gridspec_kw=None if height_ratios is None
                        else {"height_ratios": list(height_ratios)})
    return fig, axes


MIN_DPI, MAX_DPI = 10, 1200
MAX_PIXELS = 200e6  # a figure larger than this is a mistake (and gigabytes of memory)


def check_output(path: str | Path) -> str:
    """The format of ``path`` (png, svg or pdf); raises a :class:`ScalingError` otherwise."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ScalingError(f"output {str(path)!r} must end in .png, .svg or .pdf")
    parent = Path(path).parent
    if not parent.exists():
        raise ScalingError(f"output folder {str(parent)!r} does not exist; create it first")
    return fmt


def save_figure(figure: Any, path: str | Path, *, dpi: float = 150) -> str:
    """Write ``figure`` to ``path`` (.png, .svg or .pdf) with fixed metadata; return the path.

    SVG and PDF carry no date and a fixed creator, and SVG ids come from a fixed hash salt,
    so identical inputs give identical bytes.
    """
    fmt = check_output(path)
    if not (dpi and MIN_DPI <= dpi <= MAX_DPI):
        raise ScalingError(f"--dpi must be between {MIN_DPI} and {MAX_DPI}, got {dpi}")
    pixels = dpi * dpi * figure.get_figwidth() * figure.get_figheight()
    if pixels > MAX_PIXELS:
        raise ScalingError(f"a {figure.get_figwidth():g}x{figure.get_figheight():g} in figure at "
                           f"{dpi:g} dpi would be {pixels / 1e6:.0f} megapixels (at most "
                           f"{MAX_PIXELS / 1e6:.0f}); lower --dpi or the size")
    with _style():
        atomic_write(path, lambda fh: figure.savefig(fh, format=fmt, dpi=dpi,
                                                     metadata=METADATA[fmt]))
    return str(path)


def _drawn(handle: Any) -> bool:
    """Whether a legend handle shows anything: a line or a marker with finite data (legend-only
    proxies carry a gid ending in ``legend``)."""
    if str(getattr(handle, "get_gid", lambda: None)() or "").endswith("legend"):
        return True
    if hasattr(handle, "get_xydata"):
        xy = np.asarray(handle.get_xydata(), float)
        return bool(np.isfinite(xy).all(axis=-1).any()) if xy.size else False
    if hasattr(handle, "get_offsets"):
        xy = np.asarray(handle.get_offsets(), float)
        return bool(np.isfinite(xy).all(axis=-1).any()) if xy.size else False
    return True


def _legend_outside(fig: Any, axes: Sequence[Any]) -> None:
    """One legend right of the panels (outside the data), labels deduplicated; an entry is
    listed only if some panel draws it."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if _drawn(handle):
                seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside right upper", frameon=False)


def _suptitle(fig: Any, text: str) -> None:
    """A figure title wrapped to the figure's width (a long law label is never clipped)."""
    import textwrap

    width = max(30, int((fig.get_figwidth() - 2.6) * 12))  # the legend column stays free
    fig.suptitle("\n".join(textwrap.wrap(text, width)), fontsize=10, x=0.01, ha="left")


# --------------------------------------------------------------------------- labels


def _flops_label(x: float) -> str:
    return format_quantity(float(x), unit="FLOP").replace(" ", "")


def _cost_name(s: Any) -> str:
    """Short name of the planner's cost model: ``paper cost 2N(Q+V)`` or ``exact cost (...)``."""
    p = s.pricer
    if p.cost_model == "paper":
        return "paper cost 2N(Q+V" + ("+G)" if p.gen_tokens else ")")
    return f"exact cost: {p.family.name} + {p.family.encoder_name}"


def _cost_label(s: Any) -> str:
    q = f"Q = {s.pricer.text_tokens:g} text tokens"
    if s.pricer.gen_tokens:
        q += f", G = {s.pricer.gen_tokens:g} generated"
    return f"inference FLOPs per request\n({_cost_name(s)}; {q})"


def _error_label(accuracy: bool, metric: str = "error", *, what: str = "predicted") -> str:
    """``predicted error = 1 − accuracy`` (metric ``1 - accuracy``), ``predicted loss``, ..."""
    name = metric[4:] if metric.startswith("1 - ") else None
    if accuracy:
        name = name or ("accuracy" if metric == "error" else f"1 − {metric}")
        return f"{what} {name} (higher is better)"
    return f"{what} error = 1 − {name}" if name else f"{what} {metric} (lower is better)"


def _in_range(y: Any, metric: str, *, clip: bool = False) -> np.ndarray:
    """A law's predicted ``y`` where it is a possible value of ``metric``, NaN elsewhere (or,
    with ``clip``, capped at the range's ends): an error of ``1 - accuracy`` lies in [0, 1],
    and beyond it a law only extrapolates."""
    y = np.asarray(y, float)
    if not metric.startswith("1 - "):
        return y
    return np.clip(y, 0.0, 1.0) if clip else np.where((y >= 0) & (y <= 1), y, np.nan)


def _law_label(law: Any) -> str:
    return getattr(law, "label", "") or f"{getattr(law, 'law', 'law')} law"


def _panel_title(law: Any, group: str | None, extra: str = "") -> str:
    label = _law_label(law)
    named = group is None or label == group or label.endswith(f"[{group}]")
    head = label if named else f"{group}: {label}"
    return " · ".join(p for p in (head, extra) if p)


def _metric(points: Measured | None, law: Any) -> str:
    if points is not None:
        return points.metric
    return getattr(law, "metric", "") or "error"


# --------------------------------------------------------------------------- planner


def _plan_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(options or {})
    unknown = sorted(set(options) - set(PLAN_OPTIONS))
    if unknown:
        raise ScalingError(f"unknown planner option(s) {', '.join(unknown)}; the figures take "
                           f"{', '.join(PLAN_OPTIONS)}")
    return options


def _setting(law: Any, cost: str, text_tokens: float, options: Mapping[str, Any]) -> Any:
    """The planner's :class:`scaling.planner.problem.Setting` (pricer + limits) for one panel."""
    from scaling.planner.problem import setting

    opts = {k: v for k, v in options.items() if k != "method"}
    return setting(law, text_tokens=text_tokens, cost=cost, **opts)


def _plan(law: Any, budget: float, cost: str, text_tokens: float,
          options: Mapping[str, Any]) -> Any:
    from scaling.planner.answer import plan

    return plan(law, flops=budget, cost=cost, text_tokens=text_tokens, **options)


def _frontier(law: Any, budgets: np.ndarray, cost: str, text_tokens: float,
              options: Mapping[str, Any]) -> Any:
    from scaling.planner.answer import frontier

    return frontier(law, budgets, cost=cost, text_tokens=text_tokens, **options)


def _sizes_and_tokens(measured: Measured | None, sizes, token_range):
    """LLM sizes (parameters) for the curves and the visual-token range they span."""
    if sizes is None:
        sizes = (np.unique(measured.llm_params) if measured is not None and len(measured)
                 else DEFAULT_SIZES)
    sizes = np.unique(np.asarray(sizes, float))
    if sizes.size == 0 or np.any(~np.isfinite(sizes) | (sizes <= 0)):
        raise ScalingError(f"LLM sizes must be positive parameter counts, got {sizes.tolist()}")
    if token_range is None:
        token_range = ((float(measured.visual_tokens.min()), float(measured.visual_tokens.max()))
                       if measured is not None and len(measured) else DEFAULT_TOKEN_RANGE)
    lo, hi = (float(t) for t in token_range)
    if not (1 <= lo <= hi):
        raise ScalingError(f"token range must satisfy 1 <= low <= high, got {lo:g}..{hi:g}")
    return sizes, (lo, hi if hi > lo else lo * 4)


def round_budgets(lo: float, hi: float, *, most: int = 4) -> np.ndarray:
    """Up to ``most`` round budgets (1 and 3 x 10^k FLOPs) strictly inside ``(lo, hi)``."""
    if not (0 < lo < hi):
        return np.array([math.sqrt(max(lo, 1.0) * max(hi, 1.0))])
    decades = np.arange(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    grid = np.sort(np.concatenate([10.0 ** decades, 3 * 10.0 ** decades]))
    inside = grid[(grid > lo) & (grid < hi)]
    if inside.size == 0:
        return np.array([math.sqrt(lo * hi)])
    pick = np.unique(np.round(np.linspace(0, inside.size - 1, min(most, inside.size))))
    return inside[pick.astype(int)]


def _scatter_by_size(ax: Any, x, y, points: Measured, sizes: np.ndarray, *, gid: str) -> None:
    """Measured points, coloured and shaped like their size's curve; hold-outs hollow."""
    idx = np.abs(np.log(points.llm_params)[:, None] - np.log(sizes)[None, :]).argmin(axis=1)
    hold = points.is_holdout
    for i in np.unique(idx):
        for held in (False, True):
            keep = (idx == i) & (hold == held)
            if not keep.any():
                continue
            color = OKABE_ITO[i % len(OKABE_ITO)]
            ax.scatter(x[keep], y[keep], s=22, marker=MARKERS[i % len(MARKERS)], zorder=3,
                       facecolors="none" if held else color, edgecolors=color, linewidths=1.0,
                       label=f"{format_params(sizes[i])} measured"
                       + (" (size held out in validation)" if held else ""),
                       gid=f"{gid}-{i}-{int(held)}")


def _star(ax: Any, x: float, y: float, *, gid: str, label: str | None,
          color: str = FRONTIER_COLOR, edge: str = "white") -> None:
    ax.scatter([x], [y], marker="*", s=170, color=color, edgecolors=edge, linewidths=0.7,
               zorder=6, gid=gid, label=label)


# --------------------------------------------------------------------------- figures


def frontier_figure(laws: Any = None, *, measured: Measured | None = None,
                    cost: str = "paper", text_tokens: float = 0,
                    budget: float | None = None, accuracy: bool = False,
                    sizes: Sequence[float] | None = None,
                    token_range: tuple[float, float] | None = None, title: str | None = None,
                    width: float | None = None, height: float | None = None,
                    plan_options: Mapping[str, Any] | None = None) -> PlotResult:
    """Predicted error against inference FLOPs, one curve per LLM size (Li et al. Fig. 1).

    Each curve sweeps ``V`` over ``token_range`` at a fixed size ``N``: ``(C(N, V, Q),
    Y(N, V))`` with ``C`` the planner's cost model. The dashed frontier is
    :func:`scaling.plan.frontier` over the panel's FLOPs range; with ``budget`` the star is
    :func:`scaling.plan`'s ``optimum`` at that budget, drawn at ``(optimum.flops,
    optimum.predicted_error)``.
    """
    _require_nv(laws, "frontier")
    groups = as_law_groups(laws)
    options = _plan_options(plan_options)
    sign, offset = (-1.0, 1.0) if accuracy else (1.0, 0.0)
    panels, warnings = [], []
    with _style():
        fig, axes = _new_figure(1, len(groups), width=width or 4.6 * len(groups) + 3.4,
                                height=height or 3.8, sharey=True)
        for ax, (group, law) in zip(axes[0], groups.items(), strict=True):
            k = len(panels)
            s = _setting(law, cost, text_tokens, options)
            points = measured.select(group) if measured is not None else None
            sizes_, (tlo, thi) = _sizes_and_tokens(points, sizes, token_range)
            v = np.geomspace(tlo, thi, 64)
            curves = {}
            for i, n in enumerate(sizes_):
                x = np.asarray(s.pricer.flops(n, v), float)
                y = offset + sign * np.asarray(law.predict(n / 1e9, v), float)
                label = f"{format_params(n)} (law)"
                ax.plot(x, y, color=OKABE_ITO[i % len(OKABE_ITO)], lw=1.6, label=label,
                        gid=f"curve-{k}-{i}")
                curves[label] = (x, y)
            px = py = np.empty(0)
            if points is not None and len(points):
                px = np.asarray(s.pricer.flops(points.llm_params, points.visual_tokens), float)
                py = offset + sign * points.error
                _scatter_by_size(ax, px, py, points, sizes_, gid=f"points-{k}")
            lo = min(float(c[0].min()) for c in curves.values())
            hi = max(float(c[0].max()) for c in curves.values())
            if budget is not None:
                lo, hi = min(lo, budget / 2), max(hi, budget * 2)
            front = _frontier(law, np.geomspace(lo, hi, 96), cost, text_tokens, options)
            ok = np.asarray(front.feasible, bool)
            fx = np.asarray(front.budget_flops, float)[ok]
            fy = offset + sign * np.asarray(front.predicted_error, float)[ok]
            ax.plot(fx, fy, color=FRONTIER_COLOR, ls="--", lw=1.4,
                    label="compute-optimal frontier (planner)", gid=f"frontier-{k}")
            optima, marks = (), ()
            if budget is not None:
                answer = _plan(law, budget, cost, text_tokens, options)
                best = answer.optimum
                warnings += [w for w in answer.warnings if w not in warnings]
                mx, my = float(best.flops), offset + sign * float(best.predicted_error)
                _star(ax, mx, my, gid=f"optimum-{k}",
                      label=f"planner optimum at C = {_flops_label(budget)}")
                ax.annotate(f"N = {format_params(best.llm_params)}\nV = {best.visual_tokens:.3g}",
                            (mx, my), xytext=(8, 8), textcoords="offset points", fontsize=7,
                            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#999999",
                                  "lw": 0.5})
                ax.axvline(budget, color="#999999", lw=0.8, ls=":", zorder=0)
                optima, marks = (best,), ((mx, my),)
            ax.set_xscale("log")
            ax.set_xlabel(_cost_label(s))
            ax.set_ylabel(_error_label(accuracy, _metric(points, law)))
            ax.set_title(_panel_title(law, group))
            panels.append(Panel(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), curves,
                                (px, py), (fx, fy), optima, marks, group, float(text_tokens)))
        _legend_outside(fig, axes[0])
        if title:
            _suptitle(fig, title)
    return PlotResult("frontier", fig, tuple(panels), cost, (float(text_tokens),),
                      _law_label(next(iter(groups.values()))), warnings=tuple(warnings))


def isoflop_figure(laws: Any = None, *, measured: Measured | None = None, cost: str = "paper",
                   text_tokens: float | Sequence[float] = 0,
                   budgets: Sequence[float] | None = None, accuracy: bool = False,
                   sizes: Sequence[float] | None = None,
                   token_range: tuple[float, float] | None = None, title: str | None = None,
                   width: float | None = None, height: float | None = None,
                   plan_options: Mapping[str, Any] | None = None) -> PlotResult:
    """Predicted error against visual tokens at fixed budgets, the planner's ``V*`` marked.

    Along an iso-FLOP curve the budget fixes the size: ``N(V)`` is the planner's largest
    feasible size at ``V`` (:func:`scaling.planner.solvers.llm_cap`; paper cost, no limits:
    ``N(V) = C / (2 (Q + V))``), so ``Y(V) = Y(N(V), V)``; where ``N(V)`` would fall below the
    planner's ``llm_range`` nothing is drawn. The star is :func:`scaling.plan`'s
    optimum (for the product law under the paper cost ``V* = beta Q / (alpha - beta)``).
    One column per text-token count ``Q``, one row per group. Default budgets: round values
    inside the cost range of the sizes x tokens grid, common to every column.
    """
    _require_nv(laws, "isoflop")
    from scaling.planner.solvers import llm_cap

    groups = as_law_groups(laws)
    options = _plan_options(plan_options)
    qs = tuple(float(q) for q in np.atleast_1d(np.asarray(text_tokens, float)))
    sign, offset = (-1.0, 1.0) if accuracy else (1.0, 0.0)
    panels, warnings = [], []
    with _style():
        fig, axes = _new_figure(len(groups), len(qs), width=width, height=height, sharey=True)
        for row, (group, law) in enumerate(groups.items()):
            points = measured.select(group) if measured is not None else None
            sizes_, (tlo, thi) = _sizes_and_tokens(points, sizes, token_range)
            settings = [_setting(law, cost, q, options) for q in qs]
            if budgets is None:
                lo = max(float(s.pricer.flops(sizes_.min(), tlo)) for s in settings)
                hi = min(float(s.pricer.flops(sizes_.max(), thi)) for s in settings)
                cs = round_budgets(lo, hi)
            else:
                cs = np.unique(np.asarray(budgets, float))
            for col, (q, s) in enumerate(zip(qs, settings, strict=True)):
                ax, k = axes[row][col], len(panels)
                n_lo = s.limits.llm_range[0]
                curves, optima, marks = {}, [], []
                for i, c in enumerate(cs):
                    color = OKABE_ITO[i % len(OKABE_ITO)]
                    answer = _plan(law, float(c), cost, q, options)
                    best = answer.optimum
                    warnings += [w for w in answer.warnings if w not in warnings]
                    vstar = float(best.visual_tokens)
                    v = np.geomspace(min(tlo, vstar), max(thi, vstar), 128)
                    n = np.asarray(llm_cap(s.pricer, s.limits, v, float(c))[0], float)
                    inside = n >= n_lo * (1 - 1e-9)
                    y = np.where(inside, offset + sign * law.predict(n / 1e9, v), np.nan)
                    label = f"C = {_flops_label(c)}"
                    ax.plot(v, y, color=color, lw=1.6, label=label, gid=f"curve-{k}-{i}")
                    my = offset + sign * float(best.predicted_error)
                    _star(ax, vstar, my, gid=f"optimum-{k}-{i}", label=None, color=color,
                          edge=FRONTIER_COLOR)
                    # an inner minimum: under the star (the curve is convex there, so the
                    # label is off it); at an end of the token range: beside the star
                    edge = vstar <= tlo * 1.001 or vstar >= thi * 0.999
                    ax.annotate(f"V*={vstar:.3g}", (vstar, my),
                                xytext=((-8 if vstar >= thi * 0.999 else 8) if edge else 0,
                                        0 if edge else -9),
                                textcoords="offset points", fontsize=6.5, color=color,
                                ha=("right" if vstar >= thi * 0.999 else "left") if edge
                                else "center", va="center" if edge else "top", zorder=7)
                    curves[label] = (v, y)
                    optima.append(best)
                    marks.append((vstar, my))
                ax.set_xscale("log")
                ax.set_xlabel("visual tokens per image V (N set by the budget)")
                ax.set_ylabel(_error_label(accuracy, _metric(points, law)))
                ax.set_title(f"{group}: " * (group is not None) + f"Q = {q:g} text tokens")
                panels.append(Panel(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), curves,
                                    optima=tuple(optima), marks=tuple(marks), group=group,
                                    text_tokens=q))
        _star(axes[0][-1], np.nan, np.nan, gid="optimum-legend", color="#FFFFFF",
              edge=FRONTIER_COLOR, label="planner optimum V* (per budget)")
        _legend_outside(fig, [a for r in axes for a in r])
        _suptitle(fig, title or f"{_law_label(next(iter(groups.values())))}: iso-FLOP curves "
                  f"({_cost_name(settings[0])})")
    return PlotResult("isoflop", fig, tuple(panels), cost, qs,
                      _law_label(next(iter(groups.values()))), warnings=tuple(warnings))


def heatmap_figure(laws: Any = None, *, measured: Measured | None = None, cost: str = "paper",
                   text_tokens: float = 0, budget: float | None = None, accuracy: bool = False,
                   sizes: Sequence[float] | None = None,
                   token_range: tuple[float, float] | None = None, title: str | None = None,
                   width: float | None = None, height: float | None = None,
                   plan_options: Mapping[str, Any] | None = None) -> PlotResult:
    """Predicted error over ``(N, V)`` with iso-FLOP contours and the planner's optimal path.

    Contours are the planner's cost ``C(N, V, Q)`` at round budgets; the path is
    :func:`scaling.plan.frontier`'s ``(N*, V*)`` over the budgets the panel spans; with
    ``budget`` the star is :func:`scaling.plan`'s optimum at ``(N*, V*)``.
    """
    _require_nv(laws, "heatmap")
    groups = as_law_groups(laws)
    options = _plan_options(plan_options)
    sign, offset = (-1.0, 1.0) if accuracy else (1.0, 0.0)
    panels, warnings = [], []
    with _style():
        fig, axes = _new_figure(1, len(groups), width=width or 5.0 * len(groups) + 2.6,
                                height=height)
        for ax, (group, law) in zip(axes[0], groups.items(), strict=True):
            k = len(panels)
            s = _setting(law, cost, text_tokens, options)
            points = measured.select(group) if measured is not None else None
            sizes_, (tlo, thi) = _sizes_and_tokens(points, sizes, token_range)
            nlo, nhi = sizes_.min() / 1.5, sizes_.max() * 1.5
            n = np.geomspace(nlo, nhi, 96)
            v = np.geomspace(tlo, thi, 96)
            nn, vv = np.meshgrid(n, v)
            z = offset + sign * law.predict(nn / 1e9, vv)
            mesh = ax.pcolormesh(n / 1e9, v, z, shading="nearest", rasterized=True,
                                 gid=f"heatmap-{k}")
            metric = _metric(points, law)
            fig.colorbar(mesh, ax=ax, label="predicted accuracy" if accuracy else
                         "predicted " + ("error" if metric.startswith("1 - ") else metric))
            c = np.asarray(s.pricer.flops(nn, vv), float)
            levels = round_budgets(float(c.min()), float(c.max()), most=6)
            contours = ax.contour(n / 1e9, v, c, levels=levels, colors="white",
                                  linewidths=0.8, linestyles="-")
            from matplotlib import patheffects

            labels = ax.clabel(contours, fmt=_flops_label, fontsize=7, inline_spacing=4)
            for text in labels:
                text.set_path_effects([patheffects.withStroke(linewidth=2, foreground="black")])
            front = _frontier(law, np.geomspace(c.min(), c.max(), 96), cost, text_tokens,
                              options)
            ok = np.asarray(front.feasible, bool)
            fn = np.asarray(front.llm_params, float)[ok] / 1e9
            fv = np.asarray(front.visual_tokens, float)[ok]
            # on a white halo above the mesh; the V axis starts a little below the token
            # range so that a path along its lower end (Q = 0: V = 1) stays visible
            ax.plot(fn, fv, color="#FFFFFF", lw=4.0, zorder=5)
            ax.plot(fn, fv, color=FRONTIER_COLOR, lw=1.8, ls="--", zorder=6,
                    label="optimal path (planner)", gid=f"frontier-{k}")
            optima, marks = (), ()
            if budget is not None:
                answer = _plan(law, budget, cost, text_tokens, options)
                best = answer.optimum
                warnings += [w for w in answer.warnings if w not in warnings]
                mx, my = float(best.llm_params) / 1e9, float(best.visual_tokens)
                _star(ax, mx, my, gid=f"optimum-{k}",
                      label=f"planner optimum at C = {_flops_label(budget)}")
                optima, marks = (best,), ((mx, my),)
            px = py = np.empty(0)
            if points is not None and len(points):
                px, py = points.llm_params / 1e9, points.visual_tokens
                ax.scatter(px, py, s=12, marker="o", facecolors="#FFFFFF", edgecolors="#000000",
                           linewidths=0.5, label="measured configurations", clip_on=False,
                           zorder=4, gid=f"points-{k}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(nlo / 1e9, nhi / 1e9)
            ax.set_ylim(tlo / 1.3, thi * 1.3)
            ax.grid(False)
            ax.set_xlabel("LLM parameters N (billions)\n"
                          f"white: iso-FLOP budgets, {_cost_name(s)}, Q = {text_tokens:g}")
            ax.set_ylabel("visual tokens per image V")
            ax.set_title(_panel_title(law, group))
            panels.append(Panel(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), {},
                                (px, py), (fn, fv), optima, marks, group, float(text_tokens)))
        _legend_outside(fig, axes[0])
        if title:
            _suptitle(fig, title)
    return PlotResult("heatmap", fig, tuple(panels), cost, (float(text_tokens),),
                      _law_label(next(iter(groups.values()))), warnings=tuple(warnings))


def _law_axes(groups: Mapping[Any, Any]) -> tuple[str, ...]:
    axes = {tuple(sorted(getattr(law, "axis_names", ("N", "V")))) for law in groups.values()}
    if len(axes) != 1:
        raise ScalingError("the laws of a grouped file have different axes; plot one group "
                           "with --group NAME")
    return axes.pop()


def _require_nv(laws: Any, kind: str) -> None:
    axes = _law_axes(as_law_groups(laws))
    if axes != ("N", "V"):
        raise ScalingError(f"plot {kind} needs a law over N (LLM size) and V (visual tokens); "
                           f"this law is over {', '.join(axes)}: use `scaling plot fit` (with "
                           "--data), or `scaling plan` for its answers")


def _knee(law: Any, values: Mapping[str, np.ndarray], axis: str, grid: np.ndarray,
          min_gain: float) -> float | None:
    """The smallest ``x`` on ``grid`` whose doubling lowers the error by < ``min_gain``."""
    y = np.asarray(law.evaluate({**values, axis: grid}), float)
    y2 = np.asarray(law.evaluate({**values, axis: 2 * grid}), float)
    flat = np.flatnonzero((y - y2 < min_gain) & (2 * grid <= grid[-1]))
    return float(grid[flat[0]]) if flat.size else None


def axes_fit_figure(groups: Mapping[Any, Any], *, measured: Measured, accuracy: bool = False,
                    min_gain: float = 0.005, title: str | None = None,
                    width: float | None = None, height: float | None = None) -> PlotResult:
    """Measured points and a law over any axes, against its token (or last) axis.

    One-axis laws (``tokens``: error against ``V``): one panel per group, the knee marked
    (the smallest ``V`` whose next doubling gains less than ``min_gain``). Two-axis laws
    other than (N, V), e.g. ``chinchilla`` over (N, D): one curve per value of the first axis.
    Three-axis laws: one panel per value of the axis that is neither on the x axis nor the
    curve label. Residuals are summarised in each panel's title (RMSE).
    """
    axes = _law_axes(groups)
    x_axis = next((a for a in ("V", "D") if a in axes), axes[-1])
    rest = [a for a in axes if a != x_axis]
    series = "N" if "N" in rest else (rest[0] if rest else None)
    split = next((a for a in rest if a != series), None)
    sign, offset = (-1.0, 1.0) if accuracy else (1.0, 0.0)
    jobs = []
    for group, law in groups.items():
        pts = measured.select(group)
        if len(pts) == 0:
            raise ScalingError(f"no measured points for group {group!r} in --data")
        for a in axes:
            if a not in pts.axes:
                raise ScalingError(f"--data has no axis {a} for this law; it binds "
                                   f"{', '.join(pts.axes)}")
        values = np.unique(pts.axes[split]) if split else [None]
        jobs += [(group, law, pts, v) for v in values]
    ncols = min(len(jobs), 4)
    nrows = -(-len(jobs) // ncols)
    panels = []
    with _style():
        fig, ax_grid = _new_figure(nrows, ncols, width=width, height=height)
        flat = [ax_grid[r][c] for r in range(nrows) for c in range(ncols)]
        for ax in flat[len(jobs):]:
            ax.set_visible(False)
        for k, (group, law, pts, split_value) in enumerate(jobs):
            ax = flat[k]
            keep = np.ones(len(pts), bool) if split is None else pts.axes[split] == split_value
            x_pts = pts.axes[x_axis][keep]
            low = min(x_pts.min() / 2, 1.0) if x_axis == "V" else x_pts.min() / 2
            grid = np.geomspace(max(low, 1e-300), x_pts.max() * 4, 200)
            levels = np.unique(pts.axes[series][keep]) if series else np.array([np.nan])
            bins = ([levels[i:i + 1] for i in range(levels.size)] if levels.size <= 7
                    else np.array_split(levels, 6))      # many sizes: 6 log-quantile bins
            curves, resid, marked = {}, [], []
            for i, members in enumerate(bins):
                level = float(np.exp(np.mean(np.log(members)))) if series else None
                color = OKABE_ITO[i % len(OKABE_ITO)]
                sel = keep & np.isin(pts.axes[series], members) if series else keep
                fixed = {} if series is None else {series: np.full(grid.size, level)}
                if split:
                    fixed[split] = np.full(grid.size, split_value)
                y = offset + sign * _in_range(law.evaluate({**fixed, x_axis: grid}),
                                              pts.metric)
                name = "law"
                if series:
                    def fmt(x: float) -> str:
                        return format_params(x * 1e9) if series == "N" else f"{x:.3g}"
                    name = (f"{series} = {fmt(level)}" if members.size == 1 else
                            f"{series} {fmt(members[0])}-{fmt(members[-1])}")
                ax.plot(grid, y, color=color, lw=1.5, label=f"{name} (law)" if series else
                        "law", gid=f"curve-{k}-{i}")
                obs = pts.error[sel]
                at = {a: pts.axes[a][sel] for a in axes}
                pred = np.asarray(law.evaluate(at), float)
                resid.append(obs - pred)
                ax.scatter(pts.axes[x_axis][sel], offset + sign * obs, s=22, color=color,
                           marker=MARKERS[i % len(MARKERS)], zorder=3, gid=f"points-{k}-{i}",
                           label="measured (markers)" if i == 0 else None)
                curves[f"{name} (law)" if series else "law"] = (grid, y)
                if x_axis == "V" and series is None:
                    knee = _knee(law, fixed, x_axis, np.arange(1.0, grid[-1] + 1), min_gain)
                    if knee is not None:
                        ky = offset + sign * float(law.evaluate({**{a: np.array([v[0]]) for a, v
                                                                    in fixed.items()},
                                                                 x_axis: np.array([knee])})[0])
                        marked.append(ky)
                        _star(ax, knee, ky, gid=f"knee-{k}", label=f"knee: V = {knee:g} (next "
                              f"doubling gains < {min_gain:g})", color=OKABE_ITO[3])
                        ax.annotate(f"V = {knee:g}", (knee, ky), textcoords="offset points",
                                    xytext=(6, 8), fontsize=8)
            shown_y = np.concatenate([offset + sign * pts.error[keep], marked])
            span = max(float(np.ptp(shown_y)), 0.02 * float(np.abs(shown_y).max()), 1e-6)
            ax.set_ylim(float(shown_y.min()) - 0.6 * span, float(shown_y.max()) + 0.6 * span)
            ax.set_xscale("log")
            ax.set_xlabel({"V": "visual tokens per image V", "D": "training tokens D",
                           "N": "LLM parameters N (billions)"}.get(x_axis, x_axis))
            ax.set_ylabel(_error_label(accuracy, pts.metric, what="measured and predicted"))
            rmse = float(np.sqrt(np.mean(np.concatenate(resid) ** 2)))
            extra = f"{split} = {split_value:g}" if split else ""
            head = (_panel_title(law, group, extra) if _law_label(law) != group else
                    " · ".join(p for p in (str(group), extra) if p))
            ax.set_title(f"{head}\nRMSE {rmse:.3g}", fontsize=9)
            ax.legend(fontsize=7, loc="best")
            panels.append(Panel(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), curves,
                                (pts.axes[x_axis][keep], offset + sign * pts.error[keep]),
                                group=group))
        if title:
            fig.suptitle(title)
    return PlotResult("fit", fig, tuple(panels), "n/a", (),
                      _law_label(next(iter(groups.values()))))


def fit_figure(laws: Any = None, *, measured: Measured | None = None, accuracy: bool = False,
               band: tuple[float, float] = (5.0, 95.0), title: str | None = None,
               width: float | None = None, height: float | None = None) -> PlotResult:
    """Measured points and the law's prediction against ``V`` per size, residuals below.

    Top: ``Y(N, V)`` per measured size, with the ``band`` percentiles of the bootstrap draws'
    predictions where the law has draws; for ``1 - accuracy`` the curves stop and the band
    is capped where they leave [0, 1] (beyond it a law extrapolates). Bottom: residual
    ``measured - predicted`` (in the plotted quantity). Hold-out points
    (``measured.holdout``) are hollow.
    """
    if measured is None or len(measured) == 0:
        raise ScalingError("plot fit needs measured points: pass --data SWEEP.csv")
    groups = as_law_groups(laws)
    if _law_axes(groups) != ("N", "V"):
        return axes_fit_figure(groups, measured=measured, accuracy=accuracy, title=title,
                               width=width, height=height)
    sign, offset = (-1.0, 1.0) if accuracy else (1.0, 0.0)
    panels = []
    with _style():
        fig, axes = _new_figure(2, len(groups), width=width, height=height,
                                height_ratios=(2.2, 1.0))
        for col, (group, law) in enumerate(groups.items()):
            ax, rax, k = axes[0][col], axes[1][col], len(panels)
            points = measured.select(group)
            if len(points) == 0:
                raise ScalingError(f"no measured points for group {group!r} in --data; check "
                                   "--metric and that the data is the one the law was fitted on")
            sizes_, (tlo, thi) = _sizes_and_tokens(points, None, None)
            v = np.geomspace(tlo, thi, 64)
            draws = getattr(law, "draws", None)
            has_draws = draws is not None and len(draws) > 0
            curves = {}
            for i, n in enumerate(sizes_):
                color = OKABE_ITO[i % len(OKABE_ITO)]
                y = offset + sign * _in_range(law.predict(n / 1e9, v), points.metric)
                label = f"{format_params(n)} (law)"
                ax.plot(v, y, color=color, lw=1.5, label=label, gid=f"curve-{k}-{i}")
                if has_draws:
                    pred = offset + sign * _in_range(law.predict_draws(n / 1e9, v),
                                                     points.metric, clip=True)
                    low, high = np.nanpercentile(pred, band, axis=0)
                    ax.fill_between(v, low, high, color=color, alpha=0.2, lw=0,
                                    gid=f"band-{k}-{i}", label=None if i else
                                    f"{band[0]:g}-{band[1]:g}% of bootstrap fits (shaded)")
                curves[label] = (v, y)
            px, py = points.visual_tokens, offset + sign * points.error
            _scatter_by_size(ax, px, py, points, sizes_, gid=f"points-{k}")
            residual = points.error - law.predict(points.llm_params / 1e9, points.visual_tokens)
            _scatter_by_size(rax, px, sign * residual, points, sizes_, gid=f"residuals-{k}")
            rax.axhline(0.0, color=FRONTIER_COLOR, lw=0.8)
            for a in (ax, rax):
                a.set_xscale("log")
            rax.set_xlabel("visual tokens per image V")
            ax.set_ylabel(_error_label(accuracy, points.metric, what="measured and predicted"))
            rax.set_ylabel("residual (measured − law)")
            band_note = f", {band[0]:g}-{band[1]:g}% bootstrap band" if has_draws else ""
            rmse = float(np.sqrt(np.mean(residual ** 2)))
            ax.set_title(f"{_panel_title(law, group)}\nRMSE {rmse:.3g}{band_note}")
            panels.append(Panel(ax.get_title(), rax.get_xlabel(), ax.get_ylabel(), curves,
                                (px, py), group=group))
        _legend_outside(fig, [axes[0][c] for c in range(len(groups))])
        if title:
            _suptitle(fig, title)
    return PlotResult("fit", fig, tuple(panels), "n/a", (),
                      _law_label(next(iter(groups.values()))))


def serving_frontier_figure(laws: Any = None, *, gpu: str = "h100", family: str = "qwen2.5",
                            text_tokens: float = 50, gen_tokens: Sequence[float] = (1, 128, 1024),
                            encoder: str = "clip-vit-l-14-336", budget: float | None = None,
                            accuracy: bool = False, title: str | None = None,
                            width: float | None = None, height: float | None = None,
                            **_: Any) -> PlotResult:
    """Predicted error against GPU-seconds per request under continuous batching, one panel per
    generation length ``G``: each family member's curve sweeps ``V`` (cheapest tensor-parallel
    set-up, :func:`scaling.planner.serving.price_menu`); the dashed line is the serving frontier
    (best error within each GPU-time budget), the dotted one the FLOP planner's frontier at the
    same spend (the budget bought as FLOPs at the GPU's peak, priced by exact FLOPs). With
    ``budget`` (GPU-seconds) the stars are both planners' picks there."""
    from scaling.cost.hardware import get_gpu
    from scaling.planner.serving import plan_serving, price_menu

    law = next(iter(as_law_groups(laws).values()))
    peak = get_gpu(gpu).peak_flops("bf16")
    V = np.unique(np.round(np.geomspace(1, 576, 24)))
    sign, offset = (-1.0, 1.0) if accuracy else (1.0, 0.0)
    panels, warnings = [], []
    with _style():
        fig, axes = _new_figure(1, len(gen_tokens), width=width or 4.2 * len(gen_tokens) + 2.6,
                                height=height or 3.8, sharey=True)
        for k, (ax, g) in enumerate(zip(axes[0], gen_tokens, strict=True)):
            p = price_menu(family, V, gpu=gpu, text_tokens=text_tokens, gen_tokens=g,
                           encoder=encoder)
            gs = np.min(p["gpu_seconds"].reshape(*p["gpu_seconds"].shape[:2], -1), axis=2)
            err = np.asarray(law.predict(p["law_params"][:, None] / 1e9, V[None, :]), float)
            curves = {}
            for i, name in enumerate(p["names"]):
                ok = np.isfinite(gs[i])
                if not ok.any():
                    continue
                x, y = gs[i][ok], offset + sign * err[i][ok]
                ax.plot(x, y, color=OKABE_ITO[i % len(OKABE_ITO)], lw=1.4, label=str(name),
                        gid=f"curve-{k}-{i}")
                curves[str(name)] = (x, y)
            ok = np.isfinite(gs)
            grid = np.geomspace(gs[ok].min(), gs[ok].max(), 200)
            best = np.array([err[ok][gs[ok] <= b].min() for b in grid])
            flop_best = np.array([np.min(np.where(p["flops"] <= b * peak, err, np.inf))
                                  for b in grid])
            fx, fy = grid, offset + sign * best
            ax.plot(fx, fy, color="black", ls="--", lw=1.2, label="serving frontier",
                    gid=f"frontier-{k}")
            shown = np.isfinite(flop_best)
            ax.plot(grid[shown], offset + sign * flop_best[shown], color="#555555", ls=":",
                    lw=1.6, label="FLOP frontier at the same spend", gid=f"flop-frontier-{k}")
            optima, marks = (), ()
            if budget is not None:
                try:
                    ans = plan_serving(law, gpu=gpu, family=family, text_tokens=text_tokens,
                                       gen_tokens=g, tokens=V, encoder=encoder,
                                       gpu_seconds=budget)
                except ScalingError as exc:
                    warnings.append(f"G = {g:g}: {exc}")
                else:
                    c, f = ans.choice, ans.flop_optimum
                    same = (c.llm, c.visual_tokens) == (f.llm, f.visual_tokens)
                    for who, ch, colour, ms, dx, ha in (
                            ("FLOP", f, "#9a9a9a", 15, 8, "left"),
                            ("serving", c, "black", 9, -8, "right")):
                        my = offset + sign * ch.predicted_error
                        ax.plot([ch.gpu_seconds_per_request], [my], marker="*", ms=ms,
                                color=colour, ls="none", label=f"{who} planner's pick",
                                gid=f"optimum-{who}-{k}")
                        if who == "FLOP" and same:
                            continue
                        tag = "both planners" if same else who
                        ax.annotate(f"{tag}: {ch.llm}, V = {ch.visual_tokens:g}",
                                    (ch.gpu_seconds_per_request, my), xytext=(dx, -14),
                                    textcoords="offset points", fontsize=7, ha=ha,
                                    bbox={"boxstyle": "round,pad=0.2", "fc": "white",
                                          "ec": "#999999", "lw": 0.5})
                    ax.axvline(budget, color="#999999", lw=0.8, ls=":", zorder=0)
                    optima = (c, f)
                    marks = tuple((ch.gpu_seconds_per_request, offset + sign * ch.predicted_error)
                                  for ch in (c, f))
            ax.set_xscale("log")
            ax.set_xlabel(f"GPU-seconds per request on {gpu}\n(continuous batching, roofline; "
                          f"Q = {text_tokens:g}, G = {g:g})")
            ax.set_ylabel(_error_label(accuracy, _metric(None, law)))
            ax.set_title(f"{family} + {encoder}, G = {g:g}", fontsize=9)
            panels.append(Panel(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), curves,
                                (np.empty(0), np.empty(0)), (fx, fy), optima, marks, None,
                                float(text_tokens)))
        _legend_outside(fig, axes[0])
        fig.suptitle(title or f"Serving cost vs FLOPs: {_law_label(law)}", fontsize=10)
    return PlotResult("frontier", fig, tuple(panels), "serving", (float(text_tokens),),
                      _law_label(law), warnings=tuple(warnings))


FIGURES = {"frontier": frontier_figure, "isoflop": isoflop_figure, "heatmap": heatmap_figure,
           "fit": fit_figure}


def plot(kind: str, laws: Any = None, *, output: str | Path | None = None, dpi: float = 150,
         **options: Any) -> PlotResult:
    """Draw figure ``kind`` (frontier, isoflop, heatmap, fit) and save it to ``output``.

    ``laws`` is a law, ``{group: law}`` (``load_laws``'s result) or ``None`` (the paper's
    law). ``options`` go to the figure function (``measured``, ``cost``, ``text_tokens``,
    ``budget``/``budgets``, ``accuracy``, ``sizes``, ``token_range``, ``title``, ``width``,
    ``height``, ``plan_options``). Returns the :class:`PlotResult` with ``output`` set when
    saved.
    """
    if kind not in FIGURES:
        raise ScalingError(f"unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    if output is not None:
        check_output(output)
    result = FIGURES[kind](laws, **options)
    if output is None:
        return result
    path = save_figure(result.figure, output, dpi=dpi)
    return PlotResult(result.kind, result.figure, result.panels, result.cost_model,
                      result.text_tokens, result.law_label, path, result.warnings)


# --------------------------------------------------------------------------- data


def _law_metric(laws: Any) -> list[str] | None:
    """The sweep metric a law was fitted on, as ``load_sweep(metric=...)`` takes it.

    ``"1 - accuracy"`` -> ``["accuracy"]``, ``"1 - mean(gqa, pope)"`` -> ``["gqa", "pope"]``;
    ``None`` when the law does not say (the paper's law).
    """
    metric = getattr(next(iter(as_law_groups(laws).values())), "metric", "") or ""
    metric = metric[4:] if metric.startswith("1 - ") else metric
    if metric.startswith("mean(") and metric.endswith(")"):
        return [m.strip() for m in metric[5:-1].split(",") if m.strip()]
    return [metric] if metric else None


def _law_group_by(laws: Any) -> str | None:
    groups = as_law_groups(laws)
    if list(groups) == [None]:
        return None
    settings = getattr(next(iter(groups.values())), "settings", None) or {}
    group_by = settings.get("group_by")
    if not group_by:
        raise ScalingError("the law file is grouped but does not say which column it was "
                           "grouped by (settings.group_by); refit with scaling fit --group-by")
    return str(group_by)


def load_measured(paths: str | Path | Sequence[str | Path], laws: Any = None, *,
                  metric: str | Sequence[str] | None = None, kind: str = "auto",
                  holdout: Sequence[float] | None = None) -> Measured:
    """Read sweep table(s) as the measured points of a figure of ``laws``.

    The metric defaults to the one the law was fitted on (else ``load_sweep``'s default), the
    group column to the law file's ``group_by``, and the hold-out sizes to those the fitter
    held out in its validation (``holdout`` overrides them; ``()`` marks none).
    """
    from scaling.fit.table import load_sweep

    law = next(iter(as_law_groups(laws).values()))
    bound = {a: b.column for a, b in (getattr(law, "axes", None) or {}).items()}
    data = load_sweep(paths, metric=metric if metric else _law_metric(laws),
                      group_by=_law_group_by(laws), kind=kind, axes=bound or None,
                      need=getattr(law, "axis_names", None))
    sizes = holdout_sizes(laws) if holdout is None else tuple(float(h) for h in holdout)
    return Measured.from_sweep(data, holdout_sizes=sizes)
