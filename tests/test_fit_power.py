"""The power analysis of a sweep's design (scaling.fit.power): noise recovered from seeded
synthetic sweeps, the ratio change that keeps the law at the grid's centre, power that
rises with the true ratio, and the script's exit codes."""

import numpy as np
import pytest

from scaling.errors import ScalingError
from scaling.fit.power import PRODUCT, Noise, main, noise, power, with_ratio
from scaling.fit.table import from_arrays

LAW = {"a": 0.0155, "alpha": 0.262, "beta": 0.197, "D": 0.0}  # the study's reasoning fit
N = np.repeat([9936, 32160, 163456.0], 3)
V = np.tile([1, 4, 16.0], 3)


def sweep(seeds, sd_seed, sd_config, seed=0):
    rng = np.random.default_rng(seed)
    mean = PRODUCT(N / 1e9, V, **LAW) + rng.normal(0, sd_config, N.size)
    n, v = np.repeat(N, seeds), np.repeat(V, seeds)
    return from_arrays(n, v, np.repeat(mean, seeds) + rng.normal(0, sd_seed, n.size))


def test_noise_recovers_seed_and_configuration_spread():
    """200 seeds per configuration pin sd_seed; sd_config (9 draws, 5 degrees of freedom
    after the fit's 4 parameters) is recovered to within its sampling error."""
    est = noise(sweep(200, 0.04, 0.03), LAW)
    assert est.sd_seed == pytest.approx(0.04, rel=0.05)
    assert est.sd_config == pytest.approx(0.03, rel=0.5)
    assert (est.configs, est.seeds) == (9, 200)
    assert noise(sweep(200, 0.04, 0.0), LAW).sd_config < 0.01


def test_one_seed_per_configuration_cannot_measure_seed_noise():
    with pytest.raises(ScalingError, match="add a second seed"):
        noise(sweep(1, 0.04, 0.03), LAW)


def test_with_ratio_sets_alpha_and_keeps_the_centre():
    n, v = N / 1e9, V
    law = with_ratio(LAW, 3.0, n, v)
    assert law["alpha"] == pytest.approx(3 * LAW["beta"])
    assert law["beta"] == LAW["beta"] and law["D"] == LAW["D"]
    centre = np.sqrt(n.min() * n.max()), np.sqrt(v.min() * v.max())
    assert PRODUCT(*centre, **law) == pytest.approx(PRODUCT(*centre, **LAW), rel=1e-12)


def test_power_rises_with_the_true_ratio_and_is_seeded():
    scale = Noise(sd_seed=0.01, sd_config=0.005, configs=9, seeds=2)
    kw = {"ratios": (0.25, 1.0, 4.0), "studies": 12, "bootstrap": 200, "seed": 3}
    rows = power(LAW, N / 1e9, V, scale, **kw)
    assert rows == power(LAW, N / 1e9, V, scale, **kw)
    low, even, high = rows
    assert high.power == 1 and high.below == 0 and high.ci[0] > 1
    assert low.below == 1 and low.power == 0 and low.ci[1] < 1
    assert even.power <= 0.25 and even.below <= 0.25
    assert [r.estimate for r in rows] == pytest.approx([0.25, 1.0, 4.0], rel=0.2)


def test_script_prints_the_table_and_exits_2_on_bad_input(tmp_path, capsys):
    rows = ["llm_params,visual_tokens,task,seed,accuracy"]
    rng = np.random.default_rng(0)
    for n, v in zip(N, V, strict=True):
        for s in (0, 1):
            acc = 1 - PRODUCT(n / 1e9, v, **LAW) + rng.normal(0, 0.02)
            rows += [f"{n},{v},reasoning,{s},{acc}", f"{n},{v},text,{s},{acc}"]
    table = tmp_path / "runs.csv"
    table.write_text("\n".join(rows) + "\n")
    main([str(table), "--group-by", "task", "--group", "text", "--studies", "2",
          "--bootstrap", "50", "--ratios", "2"])
    out = capsys.readouterr().out
    assert "9 configurations x 2 seeds" in out and "| 2.00 |" in out and "(fitted)" in out
    with pytest.raises(SystemExit) as exc:
        main([str(table), "--group-by", "task", "--group", "ocr"])
    assert exc.value.code == 2
    assert "no task 'ocr' in runs.csv; it has reasoning, text" in capsys.readouterr().err
    single = tmp_path / "one.csv"
    single.write_text("\n".join(r for r in rows if ",reasoning,1," not in r) + "\n")
    with pytest.raises(SystemExit) as exc:
        main([str(single), "--group-by", "task", "--group", "reasoning"])
    assert exc.value.code == 2
    assert "add a second seed" in capsys.readouterr().err
