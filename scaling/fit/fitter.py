"""Robust scaling-law fitting -> :class:`FitResult` (and its ``*.law.json`` artifact).

``fit_law(data, law=..., loss=..., bootstrap=K)`` runs, for one sweep table:

1. the point fit (:mod:`scaling.fit.polish`: variable projection over a dense exponent grid,
   stencil-Newton refinement, L-BFGS-B polish with analytic gradients);
2. diagnostics: parameters at a bound, weakly identified parameters (flat profile), and
   non-convergence become ``warnings``;
3. the seeded bootstrap (:mod:`scaling.fit.bootstrap`): percentile CIs for every parameter and
   derived quantity, draws kept for the planner;
4. validation (:mod:`scaling.fit.validation`): hold-out of the largest LLM, leave-one-size-out
   CV, AIC/BIC; ``law="auto"`` picks the form with the best cross-validated error.

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
from scaling.fit.bootstrap import SCHEMES, derived_quantities, run_bootstrap
from scaling.fit.polish import GRID, MAX_EXPONENT, fit_point, param_bounds, polish
from scaling.fit.table import SweepData
from scaling.fit.validation import select_law, validate
from scaling.law import LAWS, FittedLaw, get_law, interval

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
    metric: str = ""
    ci_level: float | None = None
    derived: Mapping[str, Any] = field(default_factory=dict)
    validation: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    converged: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The artifact / ``--json`` form (DESIGN.md keys first)."""
        form = get_law(self.law)
        out = {"law": self.law, "params": {p: float(self.params[p]) for p in form.params},
               "ci": {p: [float(v) for v in self.ci[p]] for p in self.ci},
               "loss": self.loss, "objective": float(self.objective),
               "n_points": int(self.n_points), "warnings": list(self.warnings),
               "data_sha256": self.data_sha256, "formula": form.formula, "metric": self.metric,
               "ci_level": self.ci_level, "derived": to_jsonable(self.derived),
               "validation": to_jsonable(self.validation), "settings": to_jsonable(self.settings),
               "versions": dict(self.versions), "label": self.label, "source": self.source,
               "draw_params": list(form.params) if self.draws is not None else [],
               "draws": None if self.draws is None else np.asarray(self.draws).tolist()}
        return out

    def save(self, path: str | Path) -> Path:
        """Write the ``*.law.json`` artifact."""
        return artifact.write(path, self.to_dict())


def versions() -> dict[str, str]:
    import scipy

    from scaling import __version__
    return {"scaling": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}


def _bound_warnings(law: str, theta: np.ndarray, y_min: float, max_exponent: float) -> list:
    form = get_law(law)
    out = []
    bounds = param_bounds(form, y_min, max_exponent)
    for p, v, (lo, hi) in zip(form.params, theta, bounds, strict=True):
        if lo is not None and abs(v - lo) <= 1e-9 * max(1.0, abs(lo)):
            out.append(f"{p} = {v:.4g} sits at its lower bound {lo:g}: the data push it "
                       "past the admissible range, so its value is set by the bound")
        elif hi is not None and abs(v - hi) <= 1e-9 * max(1.0, abs(hi)):
            what = ("the smallest observed Y (min Y)" if form.bounds[p][1] == "min_y"
                    else f"the exponent search limit max_exponent={hi:g}")
            out.append(f"{p} = {v:.4g} sits at its upper bound, {what}")
    return out


def _weak_warnings(law: str, loss: str, theta: np.ndarray, objective: float, data: SweepData,
                   bounds: list) -> list:
    """Flat profiles: ``p`` can move to 0 *and* to ``2 p`` (re-fitting the others) while
    ``n ln(L_p / L)`` stays under the chi-square(1) 95% point (Venzon & Moolgavkar 1988).
    """
    form = get_law(law)
    N, T, y = data.llm_params_b, data.visual_tokens, data.y
    w = np.ones_like(y)
    out = []
    for i, p in enumerate(form.params):
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
            _, obj = polish(law, loss, start, N, T, y, w, fixed)
            if not objective > 0 or data.n_points * math.log(obj / objective) > CHI2_95:
                flat = False
                break
        if flat:
            out.append(f"{p} is weakly identified: the fit is statistically as good with {p} "
                       f"= 0 or with {p} doubled (flat profile); do not read much into its "
                       "value")
    return out


def fit_law(data: SweepData, *, law: str = "product", loss: str = "sse", bootstrap: int = 0,
            resample: str = "case", seed: int = 0, ci_level: float = 0.9,
            validation: bool = True, grid: int = GRID, max_exponent: float = MAX_EXPONENT,
            label: str = "") -> FitResult:
    """Fit one law (or ``law="auto"``) to one sweep table; see the module docstring."""
    if loss not in losses.LOSSES:
        raise ScalingError(f"unknown loss {loss!r}; choose one of {', '.join(losses.LOSSES)}")
    if resample not in SCHEMES:
        raise ScalingError(f"unknown bootstrap scheme {resample!r}; choose one of "
                           f"{', '.join(SCHEMES)}")
    if bootstrap < 0:
        raise ScalingError(f"--bootstrap must be >= 0, got {bootstrap}")
    if not 0 < ci_level < 1:
        raise ScalingError(f"ci level must be in (0, 1), got {ci_level}")
    if grid < 3 or not max_exponent > 0:
        raise ScalingError(f"grid must be >= 3 and max_exponent > 0, got {grid}, {max_exponent}")
    data.check_identifiable(label)
    if loss == "huber" and np.any(data.y <= 0):
        raise ScalingError("the huber loss works on log(Y) and needs every error > 0; "
                           "use --loss sse")
    kw = {"grid": grid, "max_exponent": max_exponent}
    selection = None
    if law == "auto":
        law, selection = select_law(data, loss=loss, **kw)
    form = get_law(law)
    if data.n_points < len(form.params):
        raise ScalingError(f"law {law!r} has {len(form.params)} parameters but only "
                           f"{data.n_points} points{f' in group {label!r}' if label else ''}; "
                           "add measurements or use --law loglinear")
    N, T, y = data.llm_params_b, data.visual_tokens, data.y
    point = fit_point(law, N, T, y, loss=loss, **kw)
    theta = point.theta
    params = dict(zip(form.params, (float(v) for v in theta), strict=True))
    bounds = param_bounds(form, float(y.min()), max_exponent)
    warnings = list(data.notes) + _bound_warnings(law, theta, float(y.min()), max_exponent)
    warnings += _weak_warnings(law, loss, theta, point.objective, data, bounds)
    if not point.converged:
        warnings.append("the optimiser did not reach a stationary point (projected gradient "
                        f"{np.abs(point.gradient).max():.2g}); treat the fit with caution")
    draws, ci = None, {}
    if bootstrap:
        boot = run_bootstrap(data, law, theta, bootstrap, loss=loss, scheme=resample,
                             seed=seed, max_exponent=max_exponent)
        draws = boot.draws
        ci = {p: interval(draws[:, i], ci_level) for i, p in enumerate(form.params)}
        if boot.dropped:
            warnings.append(f"{boot.dropped} of {bootstrap} bootstrap draws had < 2 distinct "
                            "sizes or token counts and were dropped")
        if boot.unconverged > 0.01 * len(draws):
            warnings.append(f"{boot.unconverged} of {len(draws)} bootstrap refits stopped "
                            "before full convergence (flat objective)")
    pred = form.fn(N, T, **params)
    sse = float(np.sum((pred - y) ** 2))
    spread = float(np.sum((y - y.mean()) ** 2))
    checks: dict[str, Any] = {"sse": sse, "rmse": math.sqrt(sse / data.n_points),
                              "r2": 1 - sse / spread if spread > 0 else float("nan")}
    if validation:
        checks.update(validate(data, law, loss=loss, objective_sse=sse, **kw))
    if selection is not None:
        checks["auto"] = {"chosen": law, "criterion": "leave-one-size-out RMSE",
                          "candidates": selection}
    settings = {"law": "auto" if selection is not None else law, "loss": loss,
                "bootstrap": bootstrap, "resample": resample, "seed": seed, "grid": grid,
                "max_exponent": max_exponent, "group_by": data.group_by,
                "data_files": list(data.files), "data_files_sha256": list(data.file_sha256)}
    return FitResult(
        law=law, params=params, draws=draws, label=label or f"{law} law fitted on "
        f"{data.metric}", source=", ".join(Path(f).name for f in data.files), ci=ci, loss=loss,
        objective=point.objective, n_points=data.n_points, warnings=tuple(warnings),
        data_sha256=data.sha256, metric=data.metric, ci_level=ci_level if bootstrap else None,
        derived=derived_quantities(law, params, draws, ci_level), validation=checks,
        settings=settings, versions=versions(), converged=point.converged)


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
    return FitResult(
        law=a.law, params=dict(a.params),
        draws=None if a.draws is None else np.asarray(a.draws, float).reshape(
            -1, len(LAWS[a.law].params)),
        label=a.label, source=a.source, ci={k: tuple(v) for k, v in a.ci.items()},
        loss=a.loss, objective=a.objective, n_points=a.n_points, warnings=tuple(a.warnings),
        data_sha256=a.data_sha256, metric=a.metric, ci_level=a.ci_level, derived=a.derived,
        validation=a.validation, settings=a.settings, versions=a.versions)


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
