"""Does the law extrapolate? Hold-out of the largest LLM, leave-one-size-out CV, AIC/BIC.

- **hold-out largest** (the paper's check, which fitted 0.5B-7B and predicted 14B): fit all
  sizes but the largest, predict every point of the largest, report each point's error.
- **leave-one-size-out**: each size in turn is held out; the RMSE over all held-out points
  is the cross-validated error, the criterion ``law="auto"`` minimises.
- **AIC/BIC** from the Gaussian likelihood of the residuals:
  ``AIC = n ln(SSE/n) + 2k``, ``BIC = n ln(SSE/n) + k ln n`` (``k`` parameters).

All need at least 3 distinct sizes (2 to fit, 1 to predict); with fewer they are skipped
and say why.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.errors import ScalingError
from scaling.fit.polish import fit_point
from scaling.fit.table import SweepData
from scaling.law import LAWS, get_law

MIN_SIZES = 3


def information_criteria(sse: float, n: int, k: int) -> dict[str, float]:
    """``AIC`` and ``BIC`` of a least-squares fit with ``k`` parameters on ``n`` points."""
    if sse <= 0 or n <= 0:
        return {"aic": -math.inf, "bic": -math.inf}
    ll = n * math.log(sse / n)
    return {"aic": ll + 2 * k, "bic": ll + k * math.log(n)}


def _fit_predict(data: SweepData, law: str, loss: str, train: np.ndarray, **kw) -> np.ndarray:
    part = data.subset(train)
    fit = fit_point(law, part.llm_params_b, part.visual_tokens, part.y, loss=loss, **kw)
    form = get_law(law)
    return form.fn(data.llm_params_b[~train], data.visual_tokens[~train],
                   **dict(zip(form.params, fit.theta, strict=True)))


def holdout_largest(data: SweepData, law: str, *, loss: str = "sse", **kw) -> dict:
    """Fit without the largest LLM size, predict it: per-point and summary errors."""
    sizes = np.unique(data.llm_params)
    if sizes.size < MIN_SIZES:
        return {"skipped": f"needs >= {MIN_SIZES} LLM sizes, got {sizes.size}"}
    test = data.llm_params == sizes[-1]
    pred = _fit_predict(data, law, loss, ~test, **kw)
    obs = data.y[test]
    err = pred - obs
    points = [{"llm_params": float(sizes[-1]), "visual_tokens": float(t), "observed": float(o),
               "predicted": float(p), "error": float(e), "relative_error": float(e / o)}
              for t, o, p, e in zip(data.visual_tokens[test], obs, pred, err, strict=True)]
    return {"held_out_llm_params": float(sizes[-1]), "points": points,
            "rmse": float(np.sqrt(np.mean(err ** 2))),
            "max_abs_error": float(np.max(np.abs(err))),
            "mean_abs_relative_error": float(np.mean(np.abs(err / obs)))}


def leave_one_size_out(data: SweepData, law: str, *, loss: str = "sse", **kw) -> dict:
    """Each LLM size held out in turn; RMSE per fold and over all held-out points."""
    sizes = np.unique(data.llm_params)
    if sizes.size < MIN_SIZES:
        return {"skipped": f"needs >= {MIN_SIZES} LLM sizes, got {sizes.size}"}
    folds, sq = [], []
    for size in sizes:
        test = data.llm_params == size
        err = _fit_predict(data, law, loss, ~test, **kw) - data.y[test]
        sq.append(err ** 2)
        folds.append({"llm_params": float(size), "n": int(test.sum()),
                      "rmse": float(np.sqrt(np.mean(err ** 2)))})
    return {"folds": folds, "rmse": float(np.sqrt(np.mean(np.concatenate(sq))))}


def validate(data: SweepData, law: str, *, loss: str, objective_sse: float, **kw) -> dict:
    """All three checks for one fitted law (``objective_sse`` is the fit's SSE)."""
    k = len(get_law(law).params)
    return {"holdout_largest": holdout_largest(data, law, loss=loss, **kw),
            "leave_one_size_out": leave_one_size_out(data, law, loss=loss, **kw),
            **information_criteria(objective_sse, data.n_points, k)}


def select_law(data: SweepData, *, loss: str = "sse", candidates: tuple[str, ...] = tuple(LAWS),
               **kw) -> tuple[str, dict[str, dict]]:
    """The law with the lowest leave-one-size-out RMSE (BIC when sizes are too few).

    Returns the winner and, per candidate, its ``cv_rmse`` and ``bic``.
    """
    table: dict[str, dict] = {}
    for name in candidates:
        fit = fit_point(name, data.llm_params_b, data.visual_tokens, data.y, loss=loss, **kw)
        form = get_law(name)
        pred = form.fn(data.llm_params_b, data.visual_tokens,
                       **dict(zip(form.params, fit.theta, strict=True)))
        sse = float(np.sum((pred - data.y) ** 2))
        if data.n_points < len(form.params):
            continue
        cv = leave_one_size_out(data, name, loss=loss, **kw)
        table[name] = {"cv_rmse": cv.get("rmse"),
                       "bic": information_criteria(sse, data.n_points, len(form.params))["bic"]}
    if not table:
        raise ScalingError(f"too few points ({data.n_points}) for any law; add measurements")
    key = "cv_rmse" if all(v["cv_rmse"] is not None for v in table.values()) else "bic"
    return min(table, key=lambda n: table[n][key]), table
