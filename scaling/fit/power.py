"""Can a sweep's grid tell alpha from beta? A simulation-based power analysis of its fit.

A sweep's answer is the CI of ``alpha/beta`` from the product law fitted with the
configuration bootstrap (``scaling fit --resample config``). Whether that CI can exclude 1
depends on the true ratio, the grid and the noise, so this script simulates the sweep
(simulation-based power analysis, Gelman & Hill 2007, ch. 20) and refits every simulated
copy exactly as the sweep is fitted; e.g. for the toy study (``results/toyvlm.md``)::

    python -m scaling.fit.power results/toyvlm.csv --group-by task --group reasoning

Noise model, estimated from the sweep (``c`` a configuration, ``s`` a seed)::

    y_cs = a N_c^-alpha V_c^-beta + D + u_c + e_cs,  u_c ~ N(0, sd_config^2),
                                                     e_cs ~ N(0, sd_seed^2)

``sd_seed^2`` is the pooled within-configuration variance of the seeds; ``sd_config^2`` the
variance of the configuration means about the fitted law left after their seed noise,
``max(0, SS_means / (C - p) - sd_seed^2 / k)`` (one-way random-effects ANOVA, ``C``
configurations, ``p`` law parameters, ``k`` mean seeds per configuration). For each true
ratio ``r`` the law keeps the fitted ``beta`` and ``D``, sets ``alpha = r * beta`` and
rescales ``a`` so the error at the grid's geometric centre is unchanged; each of ``studies``
copies draws fresh ``u`` and ``e`` (errors clipped at 0, and at 1 for ``1 - accuracy``) and
is fitted with ``bootstrap`` configuration-resampled draws. Reported per ratio: the median
estimate and CI, how often the CI lies above 1 (``P(lower > 1)``, the power to show
parameters matter more) and below 1 (``P(upper < 1)``, tokens matter more), and the miss
rate ``P(r outside the CI)`` (``1 - ci_level`` when the CI is calibrated). ``--grid K L``
and ``--seeds S`` simulate another design over the same ranges.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.errors import ScalingError
from scaling.fit.fitter import fit_law
from scaling.fit.table import SweepData, from_axes, load_sweep
from scaling.law import get_law

LAW = "product"
PRODUCT = get_law(LAW)  # a N^-alpha V^-beta + D (N in billions)


@dataclass(frozen=True)
class Noise:
    """Seed and configuration noise of one sweep about its fitted law (error units)."""

    sd_seed: float
    sd_config: float
    configs: int
    seeds: float  # mean seeds per configuration


@dataclass(frozen=True)
class PowerRow:
    ratio: float          # the true alpha/beta simulated
    estimate: float       # median fitted alpha/beta
    ci: tuple[float, float]  # median lower and upper CI bounds
    power: float          # P(lower bound > 1): the CI says parameters matter more
    below: float          # P(upper bound < 1): the CI says tokens matter more
    miss: float           # P(true ratio outside the CI)


def configurations(data: SweepData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's configuration (0 .. C-1), and each configuration's ``N`` and ``V``."""
    _, first, inverse = np.unique(data.cluster, return_index=True, return_inverse=True)
    return inverse, data.axes["N"][first], data.axes["V"][first]


def noise(data: SweepData, params: dict[str, float]) -> Noise:
    """The seed and configuration standard deviations of ``data`` about the law ``params``."""
    inverse, n, v = configurations(data)
    counts = np.bincount(inverse)
    means = np.bincount(inverse, weights=data.y) / counts
    dof = int(np.sum(counts - 1))
    if dof == 0:
        raise ScalingError("every configuration has one run: the seed noise cannot be "
                           "estimated; add a second seed to the sweep's seed axis")
    var_seed = float(np.sum((data.y - means[inverse]) ** 2)) / dof
    law = PRODUCT(n, v, **params)
    free = means.size - len(params)
    if free < 1:
        raise ScalingError(f"{means.size} configurations cannot estimate the law's "
                           f"{len(params)} parameters and its lack of fit; add configurations")
    k = float(counts.mean())
    var_config = max(0.0, float(np.sum((means - law) ** 2)) / free - var_seed / k)
    return Noise(var_seed ** 0.5, var_config ** 0.5, int(means.size), k)


def with_ratio(params: dict[str, float], ratio: float, n: np.ndarray,
               v: np.ndarray) -> dict[str, float]:
    """``params`` with ``alpha = ratio * beta`` and ``a`` rescaled to keep the law's value
    at the geometric centre of the grid ``(n, v)``."""
    if not (np.isfinite(ratio) and ratio > 0 and params["beta"] > 0):
        raise ScalingError(f"alpha/beta needs a ratio > 0 and a fitted beta > 0, got ratio "
                           f"{ratio} and beta {params['beta']:.3g}")
    nc = np.sqrt(n.min() * n.max())  # beta is kept, so V's centre drops out
    alpha = ratio * params["beta"]
    a = params["a"] * nc ** (alpha - params["alpha"])
    return {**params, "alpha": alpha, "a": float(a)}


def grid(data: SweepData, sizes: int, tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``sizes x tokens`` grid, log-spaced over ``data``'s ranges of ``N`` and ``V``."""
    if min(sizes, tokens) < 2:
        raise ScalingError(f"a grid needs >= 2 sizes and >= 2 token counts, got {sizes} x "
                           f"{tokens}")
    n, v = data.axes["N"], data.axes["V"]
    gn, gv = np.meshgrid(np.geomspace(n.min(), n.max(), sizes),
                         np.geomspace(v.min(), v.max(), tokens), indexing="ij")
    return gn.ravel(), gv.ravel()


def power(params: dict[str, float], n: np.ndarray, v: np.ndarray, scale: Noise, *,
          ratios: tuple[float, ...], seeds: int = 2, studies: int = 200,
          bootstrap: int = 1000, ci_level: float = 0.9, seed: int = 0,
          clip: tuple[float, float] = (0.0, np.inf)) -> list[PowerRow]:
    """Simulate ``studies`` copies of a sweep over the configurations ``(n, v)`` with
    ``seeds`` runs each, per true ratio, and fit each as the study is (module doc);
    simulated errors are clipped to ``clip`` ((0, 1) for errors that are 1 - accuracy)."""
    if min(seeds, studies, bootstrap) < 1:
        raise ScalingError(f"seeds, studies and bootstrap must be >= 1, got {seeds}, "
                           f"{studies} and {bootstrap}")
    cluster = np.repeat(np.arange(n.size), seeds)
    rows = []
    for ratio in ratios:
        law = with_ratio(params, ratio, n, v)
        mean = PRODUCT(n, v, **law)[cluster]
        rng = np.random.default_rng([seed, int(round(ratio * 1e6))])
        found = []
        for i in range(studies):
            y = mean + rng.normal(0, scale.sd_config, n.size)[cluster] \
                + rng.normal(0, scale.sd_seed, cluster.size)
            sim = from_axes({"N": n[cluster], "V": v[cluster]}, np.clip(y, *clip),
                            cluster=cluster)
            fit = fit_law(sim, law=LAW, bootstrap=bootstrap, resample="config",
                          seed=seed + i, ci_level=ci_level, validation=False)
            got = fit.derived["alpha/beta"]
            found.append([got["value"], *(np.nan if c is None else c for c in got["ci"])])
        f = np.asarray(found, float)
        lower, upper = f[:, 1], np.where(np.isnan(f[:, 2]), np.inf, f[:, 2])
        rows.append(PowerRow(ratio, float(np.median(f[:, 0])),
                             (float(np.median(lower)), float(np.median(upper))),
                             float(np.mean(lower > 1)), float(np.mean(upper < 1)),
                             float(np.mean((lower > ratio) | (upper < ratio)))))
    return rows


def table(rows: list[PowerRow], *, observed: float) -> str:
    """Markdown: one row per simulated true ratio."""
    lines = ["| true alpha/beta | median estimate | median CI | P(lower > 1) | P(upper < 1) "
             "| P(miss) |", "|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        mark = " (fitted)" if r.ratio == observed else ""
        lines.append(f"| {r.ratio:.2f}{mark} | {r.estimate:.2f} | [{r.ci[0]:.2f}, "
                     f"{r.ci[1]:.2f}] | {r.power:.2f} | {r.below:.2f} | {r.miss:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scaling.fit.power",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("table", type=Path, help="a sweep table with repeated seeds (.csv)")
    parser.add_argument("--metric", default="accuracy", help="the column fitted")
    parser.add_argument("--group-by", help="a column that splits the table into groups")
    parser.add_argument("--group", help="the group to analyse (with --group-by)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.0, 2.0, 3.0],
                        help="true alpha/beta values to simulate (the fitted one is added)")
    parser.add_argument("--grid", type=int, nargs=2, metavar=("SIZES", "TOKENS"),
                        help="simulate a log-spaced SIZES x TOKENS grid instead of the sweep's")
    parser.add_argument("--seeds", type=int, help="runs per configuration (default: the sweep's)")
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        groups = load_sweep(args.table, metric=args.metric, group_by=args.group_by).by_group()
        name = args.group or next(iter(groups))
        if name not in groups:
            raise ScalingError(f"no {args.group_by} {name!r} in {args.table.name}; it has "
                               f"{', '.join(groups)}")
        data = groups[name]
        params = fit_law(data, law=LAW, validation=False).params
        scale = noise(data, params)
        observed = params["alpha"] / params["beta"]
        if args.grid:
            n, v = grid(data, *args.grid)
        else:
            _, n, v = configurations(data)
        seeds = args.seeds or max(1, round(scale.seeds))
        rows = power(params, n, v, scale, ratios=tuple(sorted({*args.ratios, observed})),
                     seeds=seeds, studies=args.studies, bootstrap=args.bootstrap,
                     seed=args.seed, clip=(0.0, 1.0 if data.metric.startswith("1 - ")
                                           else np.inf))
    except ScalingError as exc:  # bad input: one line and exit code 2, as the CLI does
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{name}: {scale.configs} configurations x {scale.seeds:g} seeds; fitted "
          f"alpha/beta {observed:.2f}; sd_seed {scale.sd_seed:.4f}, sd_config "
          f"{scale.sd_config:.4f} (error units). Simulated: {n.size} configurations x "
          f"{seeds} seeds, {args.studies} studies, {args.bootstrap} draws each.\n")
    print(table(rows, observed=observed))


if __name__ == "__main__":
    main()
