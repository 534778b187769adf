"""The answer a design pins down: the planner's (model, V) for the question, with its CI.

The point answer is :func:`scaling.plan` on the fitted law (paper cost ``2 N (Q + V)``, the
grid's token range, the question's menu): the best menu configuration (``llm_params``,
``visual_tokens``) and the continuous optimum ``V*``, ``N* = C / (2 (Q + V*))`` and its
predicted error. The same quantities under each bootstrap draw (vectorised: the budget line
sampled at 257 log-spaced token counts, the menu evaluated whole) give the percentile CIs, the
share of draws that pick the point answer's menu entry (``p_choice``) and the inputs of the
design criterion. ``rel_width`` is the widest relative CI, ``max_k (hi_k - lo_k) / |median_k|``
over ``V*``, ``N*`` and the predicted error: the number the ``target`` stops on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling import FittedLaw, plan
from scaling.design.spec import Design
from scaling.law import interval

LINE_POINTS = 257


@dataclass(frozen=True)
class Answer:
    """The planner's answer under a fit, with CIs when the fit has bootstrap draws."""

    llm_params: float           # menu choice
    visual_tokens: float
    v_star: float               # continuous optimum
    n_star: float
    predicted_error: float
    p_choice: float | None = None
    ci: dict[str, tuple[float, float]] | None = None
    rel_width: float = float("inf")

    def matches(self, other: Answer, *, tolerance: float = 0.15) -> bool:
        """Same menu choice and ``V*`` within ``tolerance`` (relative) of ``other``'s."""
        return (np.isclose(self.llm_params, other.llm_params, rtol=1e-9)
                and np.isclose(self.visual_tokens, other.visual_tokens, rtol=1e-9)
                and abs(self.v_star / other.v_star - 1) <= tolerance)

    def to_dict(self) -> dict[str, Any]:
        return {"choice": {"llm_params": self.llm_params, "visual_tokens": self.visual_tokens,
                           "p_choice": self.p_choice},
                "optimum": {"visual_tokens": self.v_star, "llm_params": self.n_star,
                            "predicted_error": self.predicted_error},
                "ci": None if self.ci is None else {k: list(v) for k, v in self.ci.items()},
                "rel_width": self.rel_width}


@dataclass(frozen=True)
class Draws:
    """The answer under each bootstrap draw: ``(K,)`` arrays and the menu pick per draw."""

    v_star: np.ndarray
    n_star: np.ndarray
    error: np.ndarray
    choice: np.ndarray          # index into the feasible menu
    menu: np.ndarray            # (F, 2): llm_params, visual_tokens of the feasible entries


def point_answer(design: Design, law: str, params: dict[str, float]) -> Answer:
    """:func:`scaling.plan` on ``law`` with ``params`` for the design's question."""
    p = plan(FittedLaw(law=law, params=params), flops=design.flops,
             text_tokens=design.text_tokens, sizes=design.sizes.tolist(),
             tokens=design.tokens.tolist(), token_range=design.token_range,
             llm_range=(1e3, float("inf")), top=0)
    return Answer(llm_params=p.discrete.llm_params, visual_tokens=p.discrete.visual_tokens,
                  v_star=p.optimum.visual_tokens, n_star=p.optimum.llm_params,
                  predicted_error=p.optimum.predicted_error)


def draw_answers(design: Design, fit: Any) -> Draws:
    """The answer under every bootstrap draw of ``fit`` (see the module docstring)."""
    C, Q = design.flops, design.text_tokens
    V = np.geomspace(*design.token_range, LINE_POINTS)
    N = C / (2 * (Q + V))
    with np.errstate(all="ignore"):
        Y = np.asarray(fit.predict_draws(N / 1e9, V), float)
    Y = np.where(np.isfinite(Y), Y, np.inf)
    best = np.argmin(Y, axis=1)
    v_star = _refine(np.log(V), Y, best)
    n_menu, v_menu = np.meshgrid(design.sizes, design.tokens, indexing="ij")
    n_menu, v_menu = n_menu.ravel(), v_menu.ravel()
    ok = 2 * n_menu * (Q + v_menu) <= C * (1 + 1e-9)
    menu = np.stack([n_menu[ok], v_menu[ok]], axis=1)
    with np.errstate(all="ignore"):
        Ym = np.asarray(fit.predict_draws(menu[:, 0] / 1e9, menu[:, 1]), float)
    choice = np.argmin(np.where(np.isfinite(Ym), Ym, np.inf), axis=1)
    rows = np.arange(len(best))
    return Draws(v_star, C / (2 * (Q + v_star)), Y[rows, best], choice, menu)


def _refine(x: np.ndarray, Y: np.ndarray, best: np.ndarray) -> np.ndarray:
    """``V*`` from the parabola through the sampled minimum and its two neighbours (in
    ``log V``), so draws are not quantised to the sampling; ends stay at the ends."""
    i = np.clip(best, 1, x.size - 2)
    rows = np.arange(best.size)
    y0, y1, y2 = Y[rows, i - 1], Y[rows, i], Y[rows, i + 1]
    curv = y0 - 2 * y1 + y2
    with np.errstate(all="ignore"):
        shift = np.where((curv > 0) & np.isfinite(curv), 0.5 * (y0 - y2) / curv, 0.0)
    inner = (best > 0) & (best < x.size - 1)
    h = x[1] - x[0]
    return np.exp(np.where(inner, x[i] + np.clip(shift, -1, 1) * h, x[best]))


def answer(design: Design, fit: Any) -> Answer:
    """Point answer plus, when ``fit`` has draws, CIs at the design's ``ci_level``."""
    point = point_answer(design, fit.law, dict(fit.params))
    if fit.draws is None or len(fit.draws) == 0:
        return point
    d = draw_answers(design, fit)
    level = design.spec.ci_level
    ci, widths = {}, []
    for name, values in (("visual_tokens", d.v_star), ("llm_params", d.n_star),
                         ("predicted_error", d.error)):
        lo, hi = interval(values, level)
        ci[name] = (lo, hi)
        widths.append((hi - lo) / max(abs(float(np.median(values))), 1e-300))
    picked = np.flatnonzero(np.isclose(d.menu[:, 0], point.llm_params)
                            & np.isclose(d.menu[:, 1], point.visual_tokens))
    p_choice = float(np.mean(d.choice == picked[0])) if picked.size else 0.0
    return Answer(point.llm_params, point.visual_tokens, point.v_star, point.n_star,
                  point.predicted_error, p_choice, ci, float(max(widths)))
