"""Scaling-law forms as plain functions in a registry.

Every law predicts an error-like quantity ``Y`` (lower is better) from the LLM size ``N`` in
**billions** of parameters and the number of visual tokens per image ``V``:

- ``product``   (Li et al. 2025, eq. 1):  ``Y = a * N^-alpha * V^-beta + D``
- ``additive``  (Chinchilla-style):       ``Y = A * N^-alpha + B * V^-beta + D``
- ``loglinear``:                           ``Y = c - alpha * ln N - beta * ln V``

A law is defined in one place, its :class:`LawForm`: the function, the parameters that enter
*linearly* once the exponents are fixed (``basis(lnN, lnV, exps)`` returns the design matrix
``X`` with ``Y = X @ linear``, which the variable-projection fitter solves exactly), the
Jacobian ``dY/dtheta`` (for the local polish and its gradients) and the bounds (the string
``"min_y"`` stands for the smallest observed ``Y``, so ``D`` lies in ``[0, min Y)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from scaling.errors import ScalingError

Bound = tuple[float, float | str]


@dataclass(frozen=True)
class LawForm:
    """A law: its formula, parameter names (artifact order) and the function itself."""

    name: str
    formula: str
    params: tuple[str, ...]
    exponents: tuple[str, ...]
    fn: Callable[..., np.ndarray]
    basis: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    jacobian: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    bounds: Mapping[str, Bound]

    @property
    def linear(self) -> tuple[str, ...]:
        """Parameters solved exactly for fixed exponents, in ``basis`` column order."""
        return tuple(p for p in self.params if p not in self.exponents)

    def design(self, lnN: np.ndarray, lnV: np.ndarray, exps: np.ndarray) -> np.ndarray:
        """Design matrix ``X`` ``(..., n, k)`` at exponent vectors ``exps`` ``(..., E)``."""
        return self.basis(lnN, lnV, exps)

    def __call__(self, llm_params_b, visual_tokens, **params: float) -> np.ndarray:
        return self.fn(np.asarray(llm_params_b, float), np.asarray(visual_tokens, float),
                       **params)


def product(N, V, *, a, alpha, beta, D):
    """``Y = a * N^-alpha * V^-beta + D`` (Li et al., ICLR 2025, eq. 1)."""
    return a * N ** -alpha * V ** -beta + D


def _product_basis(lnN, lnV, exps):
    """``[N^-alpha V^-beta, 1]``."""
    x = np.exp(-exps[..., 0:1] * lnN - exps[..., 1:2] * lnV)
    return np.stack([x, np.ones_like(x)], axis=-1)


def _product_jacobian(N, V, theta):
    """``[x, -a ln N x, -a ln V x, 1]`` with ``x = N^-alpha V^-beta``."""
    a, alpha, beta, _ = theta
    lnN, lnV = np.broadcast_arrays(np.log(N), np.log(V))
    x = np.exp(-alpha * lnN - beta * lnV)
    return np.stack([x, -a * lnN * x, -a * lnV * x, np.ones_like(x)], axis=-1)


def additive(N, V, *, A, alpha, B, beta, D):
    """``Y = A * N^-alpha + B * V^-beta + D`` (Hoffmann et al. 2022 form, V for data)."""
    return A * N ** -alpha + B * V ** -beta + D


def _additive_basis(lnN, lnV, exps):
    """``[N^-alpha, V^-beta, 1]``."""
    u, v = np.broadcast_arrays(np.exp(-exps[..., 0:1] * lnN), np.exp(-exps[..., 1:2] * lnV))
    return np.stack([u, v, np.ones_like(u)], axis=-1)


def _additive_jacobian(N, V, theta):
    """``[u, -A ln N u, v, -B ln V v, 1]`` with ``u = N^-alpha``, ``v = V^-beta``."""
    A, alpha, B, beta, _ = theta
    lnN, lnV = np.broadcast_arrays(np.log(N), np.log(V))
    u, v = np.exp(-alpha * lnN), np.exp(-beta * lnV)
    return np.stack([u, -A * lnN * u, v, -B * lnV * v, np.ones_like(u)], axis=-1)


def loglinear(N, V, *, c, alpha, beta):
    """``Y = c - alpha * ln N - beta * ln V`` (a straight line in log N and log V)."""
    return c - alpha * np.log(N) - beta * np.log(V)


def _loglinear_basis(lnN, lnV, exps):
    """``[1, -ln N, -ln V]`` (no exponents: broadcast over the exponent batch)."""
    lnN, lnV = np.broadcast_arrays(lnN, lnV)
    shape = exps.shape[:-1] + lnN.shape[-1:]
    lnN, lnV = np.broadcast_to(lnN, shape), np.broadcast_to(lnV, shape)
    return np.stack([np.ones(shape), -lnN, -lnV], axis=-1)


def _loglinear_jacobian(N, V, theta):
    """``[1, -ln N, -ln V]``."""
    lnN, lnV = np.broadcast_arrays(np.log(N), np.log(V))
    return np.stack([np.ones_like(lnN), -lnN, -lnV], axis=-1)


INF = float("inf")
DEFAULT_CI_LEVEL = 0.9


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

LAWS: dict[str, LawForm] = {
    "product": LawForm(
        name="product",
        formula="Y = a * N^-alpha * V^-beta + D",
        params=("a", "alpha", "beta", "D"),
        exponents=("alpha", "beta"),
        fn=product,
        basis=_product_basis,
        jacobian=_product_jacobian,
        bounds={"a": (0.0, INF), "alpha": (0.0, INF), "beta": (0.0, INF), "D": (0.0, "min_y")},
    ),
    "additive": LawForm(
        name="additive",
        formula="Y = A * N^-alpha + B * V^-beta + D",
        params=("A", "alpha", "B", "beta", "D"),
        exponents=("alpha", "beta"),
        fn=additive,
        basis=_additive_basis,
        jacobian=_additive_jacobian,
        bounds={"A": (0.0, INF), "alpha": (0.0, INF), "B": (0.0, INF), "beta": (0.0, INF),
                "D": (0.0, "min_y")},
    ),
    "loglinear": LawForm(
        name="loglinear",
        formula="Y = c - alpha * ln N - beta * ln V",
        params=("c", "alpha", "beta"),
        exponents=(),
        fn=loglinear,
        basis=_loglinear_basis,
        jacobian=_loglinear_jacobian,
        bounds={"c": (-INF, INF), "alpha": (0.0, INF), "beta": (0.0, INF)},
    ),
}


def get_law(name: str) -> LawForm:
    """The registered law called ``name``; unknown names list the choices."""
    try:
        return LAWS[name]
    except KeyError:
        raise ScalingError(
            f"unknown law {name!r}; choose one of {', '.join(LAWS)}"
        ) from None


@dataclass(frozen=True)
class FittedLaw:
    """A law form with parameter values: what the planner and the plots consume.

    ``draws`` holds bootstrap parameter draws, shape ``(K, len(form.params))`` in
    ``form.params`` order, or ``None``. :class:`scaling.fit.FitResult` offers the same
    attributes, so either can be planned with.
    """

    law: str
    params: Mapping[str, float]
    draws: np.ndarray | None = None
    label: str = ""
    source: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)

    def predict(self, llm_params_b, visual_tokens) -> np.ndarray:
        """Predicted error at ``N`` billion parameters and ``V`` visual tokens."""
        return get_law(self.law)(llm_params_b, visual_tokens, **self.params)

    def predict_draws(self, llm_params_b, visual_tokens) -> np.ndarray:
        """Predictions under every bootstrap draw: shape ``(K, *broadcast(N, V).shape)``."""
        if self.draws is None:
            raise ScalingError(f"law {self.label or self.law!r} has no bootstrap draws; "
                               "refit with --bootstrap K")
        form = get_law(self.law)
        N = np.asarray(llm_params_b, float)[None]
        V = np.asarray(visual_tokens, float)[None]
        cols = {p: self.draws[:, i].reshape((-1,) + (1,) * max(N.ndim - 1, V.ndim - 1))
                for i, p in enumerate(form.params)}
        return form.fn(N, V, **cols)


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
)
