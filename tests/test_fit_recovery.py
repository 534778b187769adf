"""Seeded recovery of known laws: exact without noise, calibrated intervals with noise."""

import numpy as np
import pytest

from scaling.fit.fitter import fit_law
from scaling.fit.table import from_arrays
from scaling.law import get_law

SIZES = np.array([0.5, 1.8, 4, 7, 14]) * 1e9
TOKENS = np.array([1, 4, 16, 64, 256, 576])
N, T = (a.ravel() for a in np.meshgrid(SIZES, TOKENS, indexing="ij"))

TRUTH = {
    "product": {"a": 0.6, "alpha": 0.08, "beta": 0.02, "D": 0.05},
    "additive": {"A": 0.3, "alpha": 0.3, "B": 0.2, "beta": 0.15, "D": 0.1},
    "loglinear": {"c": 0.6, "alpha": 0.04, "beta": 0.01},
}


def clean(law):
    return get_law(law)(N / 1e9, T, **TRUTH[law])


@pytest.mark.parametrize("loss", ["sse", "huber"])
@pytest.mark.parametrize("law", list(TRUTH))
def test_noise_free_recovery(law, loss):
    fit = fit_law(from_arrays(N, T, clean(law)), law=law, loss=loss, validation=False)
    for p, value in TRUTH[law].items():
        assert fit.params[p] == pytest.approx(value, rel=1e-6), p
    assert fit.converged and not fit.warnings


@pytest.mark.parametrize(("law", "replicates", "floor"),
                         [("product", 16, 0.6), ("loglinear", 40, 0.6), ("additive", 8, 0.5)])
def test_bootstrap_interval_coverage(law, replicates, floor):
    """Share of seeded noisy replicates whose 90% case-bootstrap CI holds the truth.

    Measured with these settings: product 0.75-0.81 (16 replicates); with 30 replicates
    and K=200: product 0.93, loglinear 0.80-0.93, additive 0.80-0.87 per parameter. The
    percentile bootstrap under-covers a little on 30 points; the floors are sanity bounds.
    """
    rng = np.random.default_rng(2025)
    y0 = clean(law)
    hits = {p: 0 for p in TRUTH[law]}
    for rep in range(replicates):
        y = y0 + rng.normal(0.0, 0.004, y0.shape)
        fit = fit_law(from_arrays(N, T, y), law=law, bootstrap=120, seed=rep, validation=False)
        for p, value in TRUTH[law].items():
            lo, hi = fit.ci[p]
            hits[p] += lo <= value <= hi
    rates = {p: h / replicates for p, h in hits.items()}
    assert min(rates.values()) >= floor, rates
    assert np.mean(list(rates.values())) >= floor + 0.1, rates  # nominal: 0.9
