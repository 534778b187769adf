"""Robust scaling-law fitting -> :class:`FitResult` (and its ``*.law.json`` artifact).

``fit_law(data, law=..., loss=..., bootstrap=K)`` runs, for one sweep table:

1. the law: a registered form or a formula over the table's axes (:func:`scaling.law.law_form`),
   with ``bounds`` overrides;
2. the point fit (:mod:`scaling.fit.polish`: units normalised and repeats collapsed, variable
   projection over a grid of the nonlinear parameters, multi-start Levenberg-Marquardt,
   L-BFGS-B polish with the symbolic Jacobian), converted back to the law's units;
3. diagnostics: parameters at a bound, weakly identified parameters (flat profile), and
   non-convergence become ``warnings``;
4. the seeded bootstrap (:mod:`scaling.fit.bootstrap`): percentile CIs for every parameter and
   derived quantity, draws kept for the planner;
5. validation (:mod:`scaling.fit.validation`): hold-out of the largest size, cross-validation
   by size (k-fold over size quantiles when sizes are many), AIC/BIC; ``law="auto"`` picks
   the registered form with the best cross-validated error.

``fit_groups`` does this per value of ``data.group_by``; ``load_laws`` reads artifacts back.
Results depend only on the data and the settings (the seed included): reruns are identical.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scaling.errors import ScalingError
from scaling.files import to_jsonable
from scaling.fit import artifact, losses
from scaling.fit.bootstrap import SCHEMES, check_settings, derived_quantities, run_bootstrap
from scaling.fit.polish import GRID, MAX_EXPONENT, Context, fit_point, make_context, polish
from scaling.fit.table import SweepData
from scaling.fit.validation import select_law, validate
from scaling.law import LAWS, Axis, FittedLaw, LawForm, interval, law_form, with_bounds

#: Profile-likelihood threshold: chi-square(1) 95% quantile.
CHI2_95 = 3.841


@dataclass(frozen=True)
class FitResult(FittedLaw):
    """A fitted law with its diagnostics; usable wherever a :class:`FittedLaw` is."""

    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    loss: str = "sse"
    objective: float = math.nan
    n_points: int = 0
    warnings: tuple[str, ...] = ()
    data_sha256: str = ""
    ci_level: float | None = None
    derived: Mapping[str, Any] = field(default_factory=dict)
    validation: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    converged: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The artifact / ``--json`` form (DESIGN.md keys first)."""
        form = self.form
        return {"law": self.law, "params": {p: float(self.params[p]) for p in form.params},
                "ci": {p: [float(v) for v in self.ci[p]] for p in self.ci},
                "loss": self.loss, "objective": float(self.objective),
                "n_points": int(self.n_points), "warnings": list(self.warnings),
                "data_sha256": self.data_sha256, "formula": form.formula,
                "axes": {a: {"column": b.column, "unit": b.unit} for a, b in self.axes.items()},
                "axis_ranges": {a: [float(lo), float(hi)]
                                for a, (lo, hi) in self.axis_ranges.items()},
                "metric": self.metric, "ci_level": self.ci_level,
                "derived": to_jsonable(self.derived), "validation": to_jsonable(self.validation),
                "settings": to_jsonable(self.settings), "versions": dict(self.versions),
                "label": self.label, "source": self.source,
                "draw_params": list(form.params) if self.draws is not None else [],
                "draws": None if self.draws is None else np.asarray(self.draws).tolist()}

    def save(self, path: str | Path) -> Path:
        """Write the ``*.law.json`` artifact (atomically)."""
        return artifact.write(path, self.to_dict())


def versions() -> dict[str, str]:
    import scipy

    from scaling import __version__
    return {"scaling": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}


def _bound_warnings(form: LawForm, theta: np.ndarray, bounds: list) -> list:
    out = []
    for p, v, (lo, hi) in zip(form.params, theta, bounds, strict=True):
        if lo is not None and abs(v - lo) <= 1e-9 * max(1.0, abs(lo)):
            out.append(f"{p} = {v:.4g} sits at its lower bound {lo:g}: the data push it "
                       "past the admissible range, so its value is set by the bound")
        elif hi is not None and abs(v - hi) <= 1e-9 * max(1.0, abs(hi)):
            what = ("the smallest observed Y (min Y)" if form.bounds[p][1] == "min_y"
                    else f"the search limit {hi:g}" if p in form.exponents
                    and hi < float(form.bounds[p][1]) else f"its bound {hi:g}")
            out.append(f"{p} = {v:.4g} sits at its upper bound, {what}")
    return out


def _weak_warnings(ctx: Context, theta: np.ndarray, objective: float, n: int,
                   bounds: list) -> list:
    """Flat profiles: ``p`` can move to 0 *and* to ``2 p`` (re-fitting the others) while
    ``n ln(L_p / L)`` stays under the chi-square(1) 95% point (Venzon & Moolgavkar 1988).
    """
    out = []
    for i, p in enumerate(ctx.form.params):
        lo, hi = bounds[i]
        value = theta[i]
        if value == 0 or (lo is not None and value <= lo) or (hi is not None and value >= hi):
            continue
        flat = True
        for target in (0.0, 2.0 * value):
            target = min(max(target, lo if lo is not None else -np.inf),
                         hi if hi is not None else np.inf)
            fixed = list(bounds)
            fixed[i] = (target, target)
            start = theta.copy()
            start[i] = target
            _, obj = polish(ctx, start, fixed)
            obj += ctx.within
            if not objective > 0 or n * math.log(obj / objective) > CHI2_95:
                flat = False
                break
        if flat:
            out.append(f"{p} is weakly identified: the fit is statistically as good with {p} "
                       f"= 0 or with {p} doubled (flat profile); do not read much into its "
                       "value")
    return out


def resolve_law(data: SweepData, law: str, bounds: Mapping[str, tuple[float, float]] | None
                ) -> LawForm:
    """The form to fit: registered or a formula over the table's axes, bounds applied."""
    form = law_form(law, tuple(data.axes) or ("N", "V"))
    missing = [a for a in form.axes if a not in data.axes]
    if missing:
        bound = ", ".join(f"{a}={b.column}" for a, b in data.bindings.items()) or "none"
        raise ScalingError(f"law {law!r} needs axis {missing[0]} but the table binds only "
                           f"{bound}; bind a column with --axis {missing[0]}=COLUMN")
    return with_bounds(form, bounds or {})


def fit_law(data: SweepData, *, law: str = "product", loss: str = "sse", bootstrap: int = 0,
            resample: str = "case", seed: int = 0, ci_level: float = 0.9,
            validation: bool = True, grid: int = GRID, max_exponent: float = MAX_EXPONENT,
            label: str = "", bounds: Mapping[str, tuple[float, float]] | None = None,
            ) -> FitResult:
    """Fit one law (a name, a formula, or ``"auto"``) to one sweep table (module doc)."""
    if loss not in losses.LOSSES:
        raise ScalingError(f"unknown loss {loss!r}; choose one of {', '.join(losses.LOSSES)}")
    if resample not in SCHEMES:
        raise ScalingError(f"unknown bootstrap scheme {resample!r}; choose one of "
                           f"{', '.join(SCHEMES)}")
    check_settings(bootstrap, data.n_points, seed, resample)
    if not 0 < ci_level < 1:
        raise ScalingError(f"ci level must be in (0, 1), got {ci_level}")
    if grid < 3 or not max_exponent > 0:
        raise ScalingError(f"grid must be >= 3 and max_exponent > 0, got {grid}, {max_exponent}")
    where = f" in group {label!r}" if label else ""
    if loss == "huber" and np.any(data.y <= 0):
        raise ScalingError("the huber loss works on log(Y) and needs every error > 0; "
                           "use --loss sse")
    kw = {"grid": grid, "max_exponent": max_exponent}
    selection = None
    if law == "auto":
        law, selection = select_law(data, loss=loss, **kw)
    form = resolve_law(data, law, bounds)
    data.check_identifiable(form.axes, label)
    ctx = make_context(form, data.axes, data.y, loss=loss, max_exponent=max_exponent)
    if ctx.y.size < len(form.params):
        raise ScalingError(f"law {law!r} has {len(form.params)} parameters but only "
                           f"{ctx.y.size} distinct points{where}; add measurements or fit a "
                           "law with fewer parameters")
    point = fit_point(ctx, grid=grid)
    lbfgs = ctx.lbfgs_bounds()
    theta = ctx.to_law_units(point.theta)
    params = dict(zip(form.params, (float(v) for v in theta), strict=True))
    warnings = list(data.notes) + _bound_warnings(form, point.theta, lbfgs)
    warnings += _weak_warnings(ctx, point.theta, point.objective, data.n_points, lbfgs)
    if not point.converged:
        warnings.append("the optimiser did not reach a stationary point (projected gradient "
                        f"{np.abs(point.gradient).max():.2g}); treat the fit with caution")
    draws, ci = None, {}
    if bootstrap:
        boot = run_bootstrap(ctx, data, point.theta, bootstrap, scheme=resample, seed=seed)
        if boot.dropped:
            warnings.append(f"{boot.dropped} of {bootstrap} bootstrap draws could not identify "
                            "the law (too few distinct points or axis values) and were dropped")
        if len(boot.draws):
            draws = ctx.to_law_units(boot.draws)
            ci = {p: interval(draws[:, i], ci_level) for i, p in enumerate(form.params)}
        else:
            warnings.append(f"all {bootstrap} bootstrap draws were dropped: no intervals; "
                            "use --resample case or add measurements")
        if boot.unconverged > 0.01 * max(len(boot.draws), 1):
            warnings.append(f"{boot.unconverged} of {len(boot.draws)} bootstrap refits "
                            "stopped before full convergence (flat objective)")
    pred = form.evaluate({**{a: data.axes[a] for a in form.axes}, **params})
    sse = float(np.sum((pred - data.y) ** 2))
    spread = float(np.sum((data.y - data.y.mean()) ** 2))
    checks: dict[str, Any] = {"sse": sse, "rmse": math.sqrt(sse / data.n_points),
                              "r2": 1 - sse / spread if spread > 0 else float("nan")}
    if validation:
        checks.update(validate(data, form, loss=loss, objective_sse=sse, **kw))
    if selection is not None:
        checks["auto"] = {"chosen": law, "criterion": "cross-validated RMSE by size",
                          "candidates": selection}
    settings = {"law": "auto" if selection is not None else law, "loss": loss,
                "bootstrap": bootstrap, "resample": resample, "seed": seed, "grid": grid,
                "max_exponent": max_exponent, "group_by": data.group_by,
                "data_files": list(data.files), "data_files_sha256": list(data.file_sha256)}
    if bounds:
        settings["bounds"] = {p: list(b) for p, b in bounds.items()}
    name = form.name if form.name in LAWS else "formula"
    return FitResult(
        law=name, params=params, draws=draws, label=label or f"{name} law fitted on "
        f"{data.metric}", source=", ".join(Path(f).name for f in data.files), ci=ci, loss=loss,
        objective=point.objective, n_points=data.n_points, warnings=tuple(warnings),
        data_sha256=data.sha256, metric=data.metric, ci_level=ci_level if bootstrap else None,
        derived=derived_quantities(form, params, draws, ci_level), validation=checks,
        settings=settings, versions=versions(), converged=point.converged,
        formula=form.formula, axes={a: data.bindings.get(a, Axis(a)) for a in form.axes},
        axis_ranges={a: r for a, r in data.ranges().items() if a in form.axes})


def fit_groups(data: SweepData, **kwargs: Any) -> dict[str, FitResult]:
    """One :func:`fit_law` per group (``{"all": ...}`` for an ungrouped table)."""
    return {name: fit_law(part, label=name if data.group_by else "", **kwargs)
            for name, part in data.by_group().items()}


def save_laws(results: Mapping[str, FitResult], path: str | Path, *,
              group_by: str | None = None, data_sha256: str = "") -> Path:
    """Write one result (ungrouped) or a grouped artifact with top-level ``groups``."""
    if group_by is None:
        (only,) = results.values()
        return only.save(path)
    return artifact.write(path, {"group_by": group_by, "data_sha256": data_sha256,
                                 "versions": versions(),
                                 "groups": {k: r.to_dict() for k, r in results.items()}})


def _from_artifact(a: artifact.LawArtifact) -> FitResult:
    form_params = list(a.params)
    if a.law in LAWS:
        form_params = list(LAWS[a.law].params)
    draws = None if a.draws is None else np.asarray(a.draws, float).reshape(-1, len(form_params))
    return FitResult(
        law=a.law, params=dict(a.params), draws=draws, label=a.label, source=a.source,
        ci={k: tuple(v) for k, v in a.ci.items()}, loss=a.loss, objective=a.objective,
        n_points=a.n_points, warnings=tuple(a.warnings), data_sha256=a.data_sha256,
        metric=a.metric, ci_level=a.ci_level, derived=a.derived, validation=a.validation,
        settings=a.settings, versions=a.versions, formula=a.formula, axes=a.bindings(),
        axis_ranges={k: tuple(v) for k, v in a.axis_ranges.items()})


def load_laws(path: str | Path) -> dict[str, FitResult]:
    """Read a ``*.law.json``: ``{"all": result}`` or, when grouped, ``{group: result}``.

    A law without a label is labelled by its file (and group): ``toy.law.json [text]``."""
    parsed = artifact.read(path)
    name = Path(path).name
    if isinstance(parsed, artifact.GroupedArtifact):
        laws = {group: _from_artifact(a) for group, a in parsed.groups.items()}
    else:
        laws = {"all": _from_artifact(parsed)}
    return {group: law if law.label else replace(
        law, label=name if group == "all" else f"{name} [{group}]")
        for group, law in laws.items()}
