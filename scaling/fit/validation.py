"""Does the law extrapolate? Hold-out of the largest size, cross-validation by size, AIC/BIC.

The **size axis** is ``N`` when the law has one, else its first axis (``V`` for a one-model
token law).

- **hold-out largest** (the paper's check, which fitted 0.5B-7B and predicted 14B): fit all
  sizes but the largest, predict every point of the largest, report each point's error.
- **cross-validation by size**: with up to :data:`MAX_FOLDS` distinct sizes, each size is
  held out in turn (leave-one-size-out); with more (Chinchilla data has ~140), the sizes are
  split into :data:`MAX_FOLDS` contiguous quantile groups and each group is held out. The
  RMSE over all held-out points is the cross-validated error, the criterion ``law="auto"``
  minimises.
- **AIC/BIC** from the Gaussian likelihood of the residuals:
  ``AIC = n ln(SSE/n) + 2k``, ``BIC = n ln(SSE/n) + k ln n`` (``k`` parameters).

Both checks need at least 3 distinct sizes (2 to fit, 1 to predict); with fewer they are
skipped and say why.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.errors import ScalingError
from scaling.fit.polish import fit_point, make_context
from scaling.fit.table import SweepData
from scaling.law import AUTO_CANDIDATES, LawForm, get_law

MIN_SIZES = 3
MAX_FOLDS = 10


def information_criteria(sse: float, n: int, k: int) -> dict[str, float]:
    """``AIC`` and ``BIC`` of a least-squares fit with ``k`` parameters on ``n`` points."""
    if sse <= 0 or n <= 0:
        return {"aic": -math.inf, "bic": -math.inf}
    ll = n * math.log(sse / n)
    return {"aic": ll + 2 * k, "bic": ll + k * math.log(n)}


def size_axis(form: LawForm) -> str:
    return "N" if "N" in form.axes else form.axes[0]


def folds(sizes: np.ndarray, k: int = MAX_FOLDS) -> list[np.ndarray]:
    """Groups of distinct sizes: one per size up to ``k`` sizes, else ``k`` quantile groups."""
    distinct = np.unique(sizes)
    if distinct.size <= k:
        return [np.array([s]) for s in distinct]
    return [part for part in np.array_split(distinct, k) if part.size]


def _fit_predict(data: SweepData, form: LawForm, loss: str, train: np.ndarray, **kw
                 ) -> np.ndarray:
    part = data.subset(train)
    ctx = make_context(form, part.axes, part.y, loss=loss,
                       max_exponent=kw.get("max_exponent", 4.0))
    theta = ctx.to_law_units(fit_point(ctx, grid=kw.get("grid", 65)).theta)
    values = {a: data.axes[a][~train] for a in form.axes}
    return form.evaluate({**values, **dict(zip(form.params, theta, strict=True))})


def _usable(data: SweepData, form: LawForm, train: np.ndarray) -> bool:
    """Enough distinct points and axis values left to fit."""
    if train.sum() < len(form.params):
        return False
    return all(np.unique(data.axes[a][train]).size >= 2 for a in form.axes)


def holdout_largest(data: SweepData, form: LawForm, *, loss: str = "sse", **kw) -> dict:
    """Fit without the largest size, predict it: per-point and summary errors."""
    axis = size_axis(form)
    sizes = np.unique(data.axes[axis])
    if sizes.size < MIN_SIZES:
        return {"skipped": f"needs >= {MIN_SIZES} distinct {axis} values, got {sizes.size}"}
    test = data.axes[axis] == sizes[-1]
    if not _usable(data, form, ~test):
        return {"skipped": "too few points left once the largest size is held out"}
    pred = _fit_predict(data, form, loss, ~test, **kw)
    obs = data.y[test]
    err = pred - obs
    unit = data.bindings[axis].unit if axis in data.bindings else 1.0
    others = [a for a in form.axes if a != axis]
    points = [{**{("llm_params" if axis == "N" else axis): float(sizes[-1] * unit)},
               **{("visual_tokens" if a == "V" else a): float(data.axes[a][test][i])
                  for a in others},
               "observed": float(o), "predicted": float(p), "error": float(e),
               "relative_error": float(e / o) if o else math.inf}
              for i, (o, p, e) in enumerate(zip(obs, pred, err, strict=True))]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(err / obs)
    return {"axis": axis, f"held_out_{'llm_params' if axis == 'N' else axis}":
            float(sizes[-1] * unit), "points": points,
            "rmse": float(np.sqrt(np.mean(err ** 2))), "max_abs_error": float(np.max(np.abs(err))),
            "mean_abs_relative_error": float(np.mean(rel))}


def cross_validate(data: SweepData, form: LawForm, *, loss: str = "sse", **kw) -> dict:
    """Sizes (or size quantile groups) held out in turn; RMSE per fold and overall."""
    axis = size_axis(form)
    sizes = data.axes[axis]
    if np.unique(sizes).size < MIN_SIZES:
        return {"skipped": f"needs >= {MIN_SIZES} distinct {axis} values, got "
                           f"{np.unique(sizes).size}"}
    unit = data.bindings[axis].unit if axis in data.bindings else 1.0
    out_folds, sq = [], []
    for group in folds(sizes):
        test = np.isin(sizes, group)
        if not _usable(data, form, ~test):
            continue
        err = _fit_predict(data, form, loss, ~test, **kw) - data.y[test]
        sq.append(err ** 2)
        key = "llm_params" if axis == "N" else axis
        entry = {key: float(group[0] * unit)} if group.size == 1 else {
            key: [float(group[0] * unit), float(group[-1] * unit)]}
        out_folds.append({**entry, "n": int(test.sum()),
                          "rmse": float(np.sqrt(np.mean(err ** 2)))})
    if not sq:
        return {"skipped": "no fold leaves enough points to fit"}
    kind = "leave-one-size-out" if all(np.ndim(f.get("llm_params", f.get(axis))) == 0
                                       for f in out_folds) else f"{len(out_folds)}-fold by size"
    return {"axis": axis, "scheme": kind, "folds": out_folds,
            "rmse": float(np.sqrt(np.mean(np.concatenate(sq))))}


def validate(data: SweepData, form: LawForm, *, loss: str, objective_sse: float, **kw) -> dict:
    """All checks for one fitted law (``objective_sse`` is the fit's SSE)."""
    return {"holdout_largest": holdout_largest(data, form, loss=loss, **kw),
            "leave_one_size_out": cross_validate(data, form, loss=loss, **kw),
            **information_criteria(objective_sse, data.n_points, len(form.params))}


def candidates_for(data: SweepData) -> tuple[str, ...]:
    """Registered laws over exactly the axes that vary in the table (``--law auto``)."""
    varying = tuple(sorted(a for a, v in data.axes.items() if np.unique(v).size >= 2))
    out = AUTO_CANDIDATES.get(varying)
    if not out:
        raise ScalingError(f"--law auto has no registered law for the varying axes "
                           f"{', '.join(varying) or 'none'}; name a law or write a formula")
    return out


def select_law(data: SweepData, *, loss: str = "sse", candidates: tuple[str, ...] | None = None,
               **kw) -> tuple[str, dict[str, dict]]:
    """The law with the lowest cross-validated RMSE (BIC when sizes are too few).

    Returns the winner and, per candidate, its ``cv_rmse`` and ``bic``.
    """
    table: dict[str, dict] = {}
    for name in candidates or candidates_for(data):
        form = get_law(name)
        if data.n_points < len(form.params):
            continue
        ctx = make_context(form, data.axes, data.y, loss=loss,
                           max_exponent=kw.get("max_exponent", 4.0))
        theta = ctx.to_law_units(fit_point(ctx, grid=kw.get("grid", 65)).theta)
        pred = form.evaluate({**{a: data.axes[a] for a in form.axes},
                              **dict(zip(form.params, theta, strict=True))})
        sse = float(np.sum((pred - data.y) ** 2))
        cv = cross_validate(data, form, loss=loss, **kw)
        table[name] = {"cv_rmse": cv.get("rmse"),
                       "bic": information_criteria(sse, data.n_points, len(form.params))["bic"]}
    if not table:
        raise ScalingError(f"too few points ({data.n_points}) for any law; add measurements")
    key = "cv_rmse" if all(v["cv_rmse"] is not None for v in table.values()) else "bic"
    return min(table, key=lambda n: table[n][key]), table
