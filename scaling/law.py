"""Scaling laws over named axes: a registry of forms, formulas, and fitted laws.

A law predicts an error-like quantity ``Y`` (lower is better) from **named axes** bound to
table columns. The defaults are the paper's: ``N`` = ``llm_params`` in **billions** of
parameters and ``V`` = ``visual_tokens``; any other axis binds a column (``D`` = training
tokens, ``R`` = image size, ...). Registered forms:

- ``product``   (Li et al. 2025, eq. 1):  ``Y = a * N^-alpha * V^-beta + D``
- ``additive``:                            ``Y = A * N^-alpha + B * V^-beta + D``
- ``loglinear``:                           ``Y = c - alpha * ln N - beta * ln V``
- ``tokens`` (one model):                  ``Y = B * V^-beta + E``
- ``tokens-loglinear`` (one model):        ``Y = c - beta * ln V``
- ``chinchilla`` (Hoffmann et al. 2022, approach 3): ``Y = E + A * N^-alpha + B * D^-beta``

and any formula over bound axes (:mod:`scaling.formula`: parsed without ``eval``). A
:class:`LawForm` is defined in one place, its formula: the function, the parameters that
enter *linearly* once the nonlinear ones (exponents) are fixed (``design`` returns the matrix
``X`` and offset with ``Y = offset + X @ linear``, which variable projection solves exactly),
the Jacobian ``dY/dtheta`` (symbolic) and the bounds (``"min_y"`` stands for the smallest
observed ``Y``, so an irreducible error lies in ``[0, min Y]``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from scaling.errors import ScalingError
from scaling.formula import Formula, parse, parse_expr

Bound = tuple[float, float | str]
INF = float("inf")


@dataclass(frozen=True)
class Axis:
    """Where an axis comes from: a table column, in units of ``unit`` (law value = column
    value / unit; ``llm_params`` is read in billions, unit 1e9)."""

    column: str
    unit: float = 1.0


#: The paper's bindings: N in billions of parameters, V in visual tokens per image.
DEFAULT_AXES = {"N": Axis("llm_params", 1e9), "V": Axis("visual_tokens")}


@dataclass(frozen=True)
class LawForm:
    """A law: its name, formula, axes, parameters (artifact order), structure and bounds."""

    name: str
    formula: str
    parsed: Formula = field(repr=False)
    bounds: Mapping[str, Bound]

    @property
    def axes(self) -> tuple[str, ...]:
        return self.parsed.axes

    @property
    def params(self) -> tuple[str, ...]:
        return self.parsed.params

    @property
    def linear(self) -> tuple[str, ...]:
        """Parameters solved exactly for fixed nonlinear ones, in ``design`` column order."""
        return self.parsed.linear

    @property
    def exponents(self) -> tuple[str, ...]:
        """The nonlinear parameters (exponents, for the power laws), searched on a grid."""
        return self.parsed.nonlinear

    def evaluate(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """``Y`` from axis values and parameters, all given by name (numpy broadcasting)."""
        return self.parsed(values)

    def design(self, values: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``X (..., n, k)`` and ``offset (..., n)`` at axis values and nonlinear parameters."""
        return self.parsed.basis(values)

    def jacobian(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """``dY/dtheta``, ``(..., n, len(params))`` in ``params`` order."""
        return self.parsed.jacobian(values)

    def __call__(self, *axis_values, **params: float) -> np.ndarray:
        """``form(N, V, a=..., ...)``: axis values positionally, in ``axes`` order."""
        if len(axis_values) != len(self.axes):
            raise ScalingError(f"law {self.name!r} takes {len(self.axes)} axis value(s) "
                               f"({', '.join(self.axes)}), got {len(axis_values)}")
        values = {a: np.asarray(v, float) for a, v in zip(self.axes, axis_values, strict=True)}
        return self.evaluate({**values, **params})


def _form(name: str, formula: str, axes: tuple[str, ...], bounds: Mapping[str, Bound]
          ) -> LawForm:
    parsed = parse(formula, axes)
    assert set(bounds) == set(parsed.params), name
    return LawForm(name, formula, parsed, dict(bounds))


_POS, _FLOOR, _FREE = (0.0, INF), (0.0, "min_y"), (-INF, INF)

LAWS: dict[str, LawForm] = {
    "product": _form("product", "Y = a * N^-alpha * V^-beta + D", ("N", "V"),
                     {"a": _POS, "alpha": _POS, "beta": _POS, "D": _FLOOR}),
    "additive": _form("additive", "Y = A * N^-alpha + B * V^-beta + D", ("N", "V"),
                      {"A": _POS, "alpha": _POS, "B": _POS, "beta": _POS, "D": _FLOOR}),
    "loglinear": _form("loglinear", "Y = c - alpha * ln(N) - beta * ln(V)", ("N", "V"),
                       {"c": _FREE, "alpha": _POS, "beta": _POS}),
    "tokens": _form("tokens", "Y = B * V^-beta + E", ("V",),
                    {"B": _POS, "beta": _POS, "E": _FLOOR}),
    "tokens-loglinear": _form("tokens-loglinear", "Y = c - beta * ln(V)", ("V",),
                              {"c": _FREE, "beta": _POS}),
    "chinchilla": _form("chinchilla", "Y = E + A * N^-alpha + B * D^-beta", ("N", "D"),
                        {"E": _FLOOR, "A": _POS, "alpha": _POS, "B": _POS, "beta": _POS}),
}

#: Registered laws tried by ``--law auto`` for a table with these axes.
AUTO_CANDIDATES = {("N", "V"): ("product", "additive", "loglinear"),
                   ("V",): ("tokens", "tokens-loglinear"), ("D", "N"): ("chinchilla",)}


def get_law(name: str) -> LawForm:
    """The registered law called ``name``; unknown names list the choices."""
    try:
        return LAWS[name]
    except KeyError:
        close = difflib.get_close_matches(name, LAWS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ScalingError(f"unknown law {name!r}{hint}; choose one of {', '.join(LAWS)}, "
                           "auto, or write a formula such as 'E + A*N^-alpha + B*D^-beta'"
                           ) from None


@lru_cache(maxsize=256)
def _formula_form(text: str, axes: tuple[str, ...]) -> LawForm:
    parsed = parse(text, axes)
    return LawForm("formula", f"Y = {parsed.text}", parsed, parsed.default_bounds())


def law_form(law: str, axes: Iterable[str] = ("N", "V")) -> LawForm:
    """A registered law by name, or a formula over the bound ``axes`` (see the module doc)."""
    if law in LAWS:
        return LAWS[law]
    if law.replace("-", "_").isidentifier():
        get_law(law)  # a bare name that is not registered: say so, with the choices
    if not tuple(axes):
        parse_expr(law)
        return None  # type: ignore[return-value]  (syntax check only)
    return _formula_form(law, tuple(axes))


def needed_axes(law: str, bound: Iterable[str]) -> tuple[str, ...] | None:
    """The axes a law reads, given the bound names (``None`` for ``auto``): registered laws
    their own, formulas the bound names they use (an error when they use none)."""
    if law == "auto":
        return None
    if law in LAWS:
        return LAWS[law].axes
    law_form(law, ())
    bound = tuple(bound)
    used = tuple(a for a in bound if a in parse_expr(law).symbols)
    if not used:
        raise ScalingError(f"law formula {law!r} uses none of the bound axes "
                           f"({', '.join(bound)}); bind a column with --axis NAME=COLUMN")
    return used


def with_bounds(form: LawForm, overrides: Mapping[str, tuple[float, float]]) -> LawForm:
    """``form`` with some parameters' bounds replaced (the CLI's ``--bound NAME=LO:HI``)."""
    if not overrides:
        return form
    for p, (lo, hi) in overrides.items():
        if p not in form.params:
            raise ScalingError(f"--bound {p}: law {form.name!r} has no parameter {p!r}; its "
                               f"parameters are {', '.join(form.params)}")
        if not lo <= hi or math.isnan(lo) or math.isnan(hi):
            raise ScalingError(f"--bound {p}={lo:g}:{hi:g} is empty; write LO:HI with LO <= HI")
    return LawForm(form.name, form.formula, form.parsed, {**form.bounds, **overrides})


def parse_bound_options(options: Iterable[str] | None) -> dict[str, tuple[float, float]]:
    """``["E=0:2", "alpha=0:inf"]`` (the CLI's ``--bound``) -> ``{"E": (0, 2), ...}``."""
    out: dict[str, tuple[float, float]] = {}
    for text in options or ():
        name, eq, rng = text.partition("=")
        lo, colon, hi = rng.partition(":")
        try:
            if not (eq and colon and name.strip().isidentifier()):
                raise ValueError
            bounds = (float(lo) if lo.strip() else -INF, float(hi) if hi.strip() else INF)
        except ValueError:
            raise ScalingError(f"--bound {text!r} must look like NAME=LO:HI, e.g. E=0:2 or "
                               "alpha=0:inf") from None
        out[name.strip()] = bounds
    return out


def check_params(form: LawForm, params: Mapping[str, float], *, what: str = "law") -> None:
    """Every parameter present, finite and inside its bounds (``min_y`` is not checked)."""
    missing = [p for p in form.params if p not in params]
    if missing or set(params) - set(form.params):
        raise ScalingError(f"{what}: params {sorted(params)} do not match law {form.name!r} "
                           f"({', '.join(form.params)})")
    for p in form.params:
        v, (lo, hi) = params[p], form.bounds[p]
        if not math.isfinite(v):
            raise ScalingError(f"{what}: parameter {p} = {v!r} is not a finite number")
        if v < lo - 1e-12 * max(1.0, abs(lo)) or (hi != "min_y" and v > float(hi)):
            rng = f"[{lo:g}, {'min Y' if hi == 'min_y' else format(float(hi), 'g')}]"
            raise ScalingError(f"{what}: parameter {p} = {v:g} is outside its bounds {rng} "
                               f"for law {form.name!r}; refit it with `scaling fit`")


DEFAULT_CI_LEVEL = 0.9


def accuracy(error: float) -> float:
    """The accuracy an answer shows, ``1 - error`` clipped to [0, 1]: a law's prediction beyond
    the metric's range is an extrapolation, never an answer (planners warn about it)."""
    return min(max(1.0 - float(error), 0.0), 1.0)


def interval(values, level: float) -> tuple[float, float]:
    """Percentile interval of ``values`` at ``level`` (order statistics, so safe with inf;
    NaNs, e.g. draws where a quantity is undefined, are left out)."""
    values = np.asarray(values, float).reshape(-1)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return float(lo), float(hi)


def optimal_visual_tokens(alpha, beta, text_tokens):
    """``V* = beta Q / (alpha - beta)``: the token count minimising Y at fixed paper FLOPs.

    On the budget line ``2 N (Q + V) = C`` the product law gives
    ``Y - D = a (C/2)^-alpha (Q + V)^alpha V^-beta``, whose minimum over ``V`` is at
    ``V* = beta Q / (alpha - beta)`` (Li et al. 2025, sec. 3.3); the loglinear law has the
    same stationary point. When ``alpha <= beta`` error falls with every extra token, so the
    optimum is the most tokens allowed: ``inf``. Vectorised over all three arguments.
    """
    alpha, beta, q = (np.asarray(x, float) for x in (alpha, beta, text_tokens))
    wins = alpha > beta
    with np.errstate(divide="ignore", invalid="ignore"):
        v_star = np.where(wins, beta * q / np.where(wins, alpha - beta, 1.0), np.inf)
    return float(v_star) if v_star.ndim == 0 else v_star


@dataclass(frozen=True)
class FittedLaw:
    """A law form with parameter values: what the planner and the plots consume.

    ``law`` is a registered name or ``"formula"`` (then ``formula`` holds it); ``axes`` the
    bindings (defaults when absent); ``axis_ranges`` the ``[min, max]`` of each axis the law
    was fitted on (law units). ``draws`` holds bootstrap parameter draws, shape
    ``(K, len(form.params))`` in ``form.params`` order, or ``None``.
    :class:`scaling.fit.FitResult` offers the same attributes, so either can be planned with.
    """

    law: str
    params: Mapping[str, float]
    draws: np.ndarray | None = None
    label: str = ""
    source: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)
    formula: str = ""
    axes: Mapping[str, Axis] = field(default_factory=dict)
    axis_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    metric: str = ""

    @property
    def form(self) -> LawForm:
        if self.law in LAWS:
            return LAWS[self.law]
        names = tuple(self.axes) or tuple(DEFAULT_AXES)
        return _formula_form(self.formula.partition("=")[2].strip() or self.formula, names)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return self.form.axes

    def axis_unit(self, name: str) -> float:
        """Column units per law unit of axis ``name`` (1e9 for N read from llm_params)."""
        return (self.axes.get(name) or DEFAULT_AXES.get(name) or Axis(name)).unit

    def evaluate(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Predicted ``Y`` at axis values given by name (law units)."""
        vals = _with_logs({a: np.asarray(values[a], float) for a in self.axis_names})
        return self.form.evaluate({**vals, **self.params})

    def thinned(self, most: int) -> FittedLaw:
        """The same law keeping at most ``most`` of its draws (evenly spaced, deterministic):
        enough for percentiles, and bounded work for the planner's per-draw optima."""
        if self.draws is None or len(self.draws) <= most:
            return self
        idx = np.linspace(0, len(self.draws) - 1, most).round().astype(int)
        return replace(self, draws=np.asarray(self.draws)[idx])

    def evaluate_draws(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Predictions under every bootstrap draw: shape ``(K, *broadcast(values))``."""
        if self.draws is None:
            raise ScalingError(f"law {self.label or self.law!r} has no bootstrap draws; "
                               "refit with --bootstrap K")
        vals = _with_logs({a: np.asarray(values[a], float)[None] for a in self.axis_names})
        ndim = max((v.ndim for k, v in vals.items() if ":" not in k), default=1) - 1
        cols = {p: self.draws[:, i].reshape((-1,) + (1,) * ndim)
                for i, p in enumerate(self.form.params)}
        return self.form.evaluate({**vals, **cols})

    def _nv(self, llm_params_b, visual_tokens) -> dict[str, np.ndarray]:
        extra = set(self.axis_names) - {"N", "V"}
        if extra:
            raise ScalingError(f"law {self.label or self.law!r} has axes "
                               f"{', '.join(self.axis_names)}; this needs a law over N and V")
        N, V = np.broadcast_arrays(np.asarray(llm_params_b, float),
                                   np.asarray(visual_tokens, float))
        return {"N": N, "V": V}

    def predict(self, llm_params_b, visual_tokens) -> np.ndarray:
        """Predicted error at ``N`` billion parameters and ``V`` visual tokens."""
        return self.evaluate(self._nv(llm_params_b, visual_tokens))

    def predict_draws(self, llm_params_b, visual_tokens) -> np.ndarray:
        """Predictions under every bootstrap draw: shape ``(K, *broadcast(N, V).shape)``."""
        return self.evaluate_draws(self._nv(llm_params_b, visual_tokens))


def _with_logs(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``"ln:x"`` for positive axes, so powers are computed as ``exp(e ln x)``."""
    with np.errstate(all="ignore"):
        logs = {f"ln:{a}": np.log(v) for a, v in values.items() if np.all(v > 0)}
    return {**values, **logs}


PAPER_CITATION = (
    "Li, Goyal, Semedo, Kolter, 'Inference Optimal VLMs Need Fewer Visual Tokens and More "
    "Parameters', ICLR 2025 (arXiv 2411.03312)"
)

#: The paper's published visual-reasoning fit (its coarse grid search, SSE 4.06e-4 on the
#: 28 grid points of Qwen1.5 0.5B-7B x 1-576 tokens). The planner's default law.
PAPER_LAW = FittedLaw(
    law="product",
    params={"a": 0.5571, "alpha": 0.0768, "beta": 0.0157, "D": 0.0333},
    label="Li et al. 2025 visual-reasoning law (published fit)",
    source=PAPER_CITATION,
    axes=dict(DEFAULT_AXES),
    axis_ranges={"N": (0.5, 7.0), "V": (1.0, 576.0)},
    metric="1 - accuracy",
)
