"""Training-compute planning for a law over model size ``N`` and training tokens ``D``.

**Compute-optimal** (Hoffmann et al. 2022, approach 3): minimise the loss ``L(N, D)`` under
the training budget ``C = 6 N D`` (N parameters, D tokens). For the ``chinchilla`` law
``L = E + A N^-alpha + B D^-beta`` the optimum is closed-form,

    N* = G (C/6)^(beta/(alpha+beta)),   D* = G^-1 (C/6)^(alpha/(alpha+beta)),
    G  = (alpha A / (beta B))^(1/(alpha+beta)),

(in the law's own units: ``C/6`` becomes ``C / (6 u_N u_D)`` when ``N`` is read in billions);
any other law over (N, D) is minimised numerically along the budget line.

**Lifetime-optimal** (Sardana et al. 2023, "Beyond Chinchilla-Optimal: Accounting for
Inference in Language Model Scaling Laws"): a model that will serve ``R`` requests of ``Q``
tokens costs ``6 N D + 2 N Q R`` FLOPs over its life. At a fixed lifetime budget ``C`` the
loss is minimised over ``N`` with ``D = (C - 2 N Q R) / (6 N)``: inference makes parameters
dearer, so ``N`` shrinks and ``D`` grows (per parameter) as ``R`` rises.

Both searches are one-dimensional in ``ln N``: a dense grid, then golden-section refinement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling.errors import ScalingError

GRID = 4001
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class TrainingOptimum:
    """Where to spend ``budget_flops``: ``llm_params`` (parameters), ``train_tokens``."""

    budget_flops: float
    llm_params: float
    train_tokens: float
    predicted_loss: float
    train_flops: float
    inference_flops: float
    requests: float
    request_tokens: float
    method: str

    @property
    def tokens_per_param(self) -> float:
        return self.train_tokens / self.llm_params


def _units(law: Any) -> tuple[float, float]:
    axes = tuple(law.axis_names)
    if "N" not in axes or "D" not in axes:
        raise ScalingError(f"training-compute planning needs a law over N (parameters) and D "
                           f"(training tokens); law {law.label or law.law!r} has axes "
                           f"{', '.join(axes)}. Fit one with --law chinchilla --axis "
                           "D=train_tokens")
    if set(axes) - {"N", "D"}:
        raise ScalingError(f"law {law.label or law.law!r} has axes {', '.join(axes)} beyond N "
                           "and D; training planning needs a law over exactly N and D")
    return float(law.axis_unit("N")), float(law.axis_unit("D"))


def _loss(law: Any, n_params: np.ndarray, d_tokens: np.ndarray) -> np.ndarray:
    u_n, u_d = _units(law)
    with np.errstate(all="ignore"):
        return np.asarray(law.evaluate({"N": n_params / u_n, "D": d_tokens / u_d}), float)


def chinchilla_closed_form(params: dict[str, float], budget: float, u_n: float = 1.0,
                           u_d: float = 1.0) -> tuple[float, float]:
    """``(N*, D*)`` in parameters and tokens for ``L = E + A N^-alpha + B D^-beta``."""
    A, a, B, b = params["A"], params["alpha"], params["B"], params["beta"]
    if not (A > 0 and B > 0 and a > 0 and b > 0):
        raise ScalingError("the closed-form optimum needs A, B, alpha, beta > 0; got "
                           f"A={A:g}, B={B:g}, alpha={a:g}, beta={b:g}")
    k = budget / (6.0 * u_n * u_d)               # N D in law units
    G = (a * A / (b * B)) ** (1.0 / (a + b))
    n_law = G * k ** (b / (a + b))
    return n_law * u_n, (k / n_law) * u_d


def _minimise_along(f, lo: float, hi: float) -> float:
    """argmin of ``f(ln N)`` on ``[lo, hi]``: grid, then golden section around the best."""
    x = np.linspace(lo, hi, GRID)
    y = f(x)
    if not np.isfinite(y).any():
        raise ScalingError("the law gives no finite loss anywhere on the budget line")
    i = int(np.nanargmin(np.where(np.isfinite(y), y, np.nan)))
    a, b = x[max(i - 1, 0)], x[min(i + 1, GRID - 1)]
    for _ in range(80):
        c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
        fc, fd = f(np.array([c, d]))
        if fc <= fd:
            b = d
        else:
            a = c
    return 0.5 * (a + b)


def optimum(law: Any, budget_flops: float, *, requests: float = 0.0,
            request_tokens: float = 0.0, llm_range: tuple[float, float] = (1e6, 1e14),
            ) -> TrainingOptimum:
    """The loss-minimising ``(N, D)`` for a lifetime budget (see the module doc).

    With ``requests = 0`` this is the compute-optimal split of a training budget.
    """
    if not (math.isfinite(budget_flops) and budget_flops > 0):
        raise ScalingError(f"--train-flops must be a positive number of FLOPs, got "
                           f"{budget_flops!r}")
    for what, v in (("--requests", requests), ("--request-tokens", request_tokens)):
        if not (math.isfinite(v) and v >= 0):
            raise ScalingError(f"{what} must be >= 0, got {v!r}")
    u_n, u_d = _units(law)
    inference_per_param = 2.0 * request_tokens * requests
    if inference_per_param == 0 and law.law == "chinchilla":
        N, D = chinchilla_closed_form(dict(law.params), budget_flops, u_n, u_d)
        method = "closed form (chinchilla)"
    else:
        hi = math.log(min(llm_range[1], budget_flops / max(inference_per_param, 1e-300)))
        lo = math.log(llm_range[0])
        if hi <= lo:
            raise ScalingError(f"serving {requests:g} requests of {request_tokens:g} tokens "
                               f"costs more than {budget_flops:.3g} FLOPs even for a "
                               f"{llm_range[0]:.0e}-parameter model; raise the budget")

        def along(log_n: np.ndarray) -> np.ndarray:
            n = np.exp(log_n)
            d = (budget_flops - inference_per_param * n) / (6.0 * n)
            return np.where(d > 0, _loss(law, n, np.maximum(d, 1e-300)), np.inf)

        N = math.exp(_minimise_along(along, lo, hi * (1 - 1e-12)))
        D = (budget_flops - inference_per_param * N) / (6.0 * N)
        method = "numeric (1-D search along the budget line)"
    loss = float(_loss(law, np.array(N), np.array(D)))
    return TrainingOptimum(budget_flops=float(budget_flops), llm_params=float(N),
                           train_tokens=float(D), predicted_loss=loss, train_flops=6.0 * N * D,
                           inference_flops=inference_per_param * N, requests=float(requests),
                           request_tokens=float(request_tokens), method=method)


def lifetime_sweep(law: Any, budget_flops: float, *, requests: float, request_tokens: float,
                   factors: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0, 10.0),
                   ) -> list[TrainingOptimum]:
    """The optimum at ``requests * f`` for each factor: how ``N`` and ``D`` move with ``R``."""
    out = []
    for f in factors:
        try:
            out.append(optimum(law, budget_flops, requests=requests * f,
                               request_tokens=request_tokens))
        except ScalingError:
            break  # serving alone exceeds the budget from here on
    return out
