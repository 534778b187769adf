"""Named axes, new laws, formulas, unit invariance, artifacts and bad input (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.errors import ScalingError
from scaling.fit.fitter import fit_law, load_laws
from scaling.fit.table import from_axes, load_sweep
from scaling.law import LAWS, law_form

ROOT = Path(__file__).parents[1]
EPOCH = ROOT / "sweeps" / "epoch_chinchilla.csv"
runner = CliRunner()


def grid(*axes):
    mesh = np.meshgrid(*axes, indexing="ij")
    return [m.ravel() for m in mesh]


def test_registry_has_the_issue_laws():
    assert {"product", "additive", "loglinear", "tokens", "tokens-loglinear",
            "chinchilla"} <= set(LAWS)
    assert LAWS["tokens"].axes == ("V",) and LAWS["chinchilla"].axes == ("N", "D")
    assert LAWS["chinchilla"].linear == ("E", "A", "B")


def test_three_axis_formula_recovers_noise_free_law():
    N, V, R = grid([0.5, 1.8, 4, 7, 14], [1, 16, 64, 576], [224, 336, 448, 672])
    truth = {"a": 0.9, "alpha": 0.08, "beta": 0.03, "gamma": 0.12, "E": 0.05}
    form = law_form("a * N^-alpha * V^-beta * R^-gamma + E", ("N", "V", "R"))
    y = form.evaluate({"N": N, "V": V, "R": R, **truth})
    fit = fit_law(from_axes({"N": N, "V": V, "R": R}, y), law=form.formula.split("=", 1)[1],
                  validation=False)
    assert fit.law == "formula"
    for p, v in truth.items():
        assert fit.params[p] == pytest.approx(v, rel=1e-6), p


@pytest.mark.parametrize("law, truth", [
    ("tokens", {"B": 0.3, "beta": 0.4, "E": 0.2}),
    ("tokens-loglinear", {"c": 0.6, "beta": 0.02}),
])
def test_one_axis_laws_recover(law, truth):
    V = np.array([2.0, 4, 8, 16, 36, 64, 144, 256])
    y = LAWS[law](V, **truth)
    fit = fit_law(from_axes({"V": V}, y), law=law, validation=False)
    for p, v in truth.items():
        assert fit.params[p] == pytest.approx(v, rel=1e-6), p


@pytest.mark.parametrize("law", ["product", "chinchilla", "tokens"])
def test_unit_invariance(law):
    """Scaling one axis column changes only the coefficient it scales (1e-9 relative)."""
    rng = np.random.default_rng(4)
    form = LAWS[law]
    axes = {"N": np.repeat([0.07, 0.3, 1.2, 4.0, 16.0], 6),
            "V": np.tile([1.0, 4, 16, 64, 144, 576], 5),
            "D": np.geomspace(1e9, 3e11, 30)[rng.permutation(30)]}
    axes = {a: axes[a] for a in form.axes}
    truth = {"product": dict(a=0.6, alpha=0.08, beta=0.02, D=0.05),
             "chinchilla": dict(E=1.8, A=0.4, alpha=0.34, B=2000.0, beta=0.37),
             "tokens": dict(B=0.3, beta=0.4, E=0.2)}[law]
    y = form.evaluate({**axes, **truth}) * np.exp(rng.normal(0, 0.01, 30))
    base = fit_law(from_axes(axes, y), law=law, validation=False)
    axis = form.axes[-1]
    c = 1e9 if axis != "V" else 1e-3
    scaled = fit_law(from_axes({**axes, axis: axes[axis] * c}, y), law=law, validation=False)
    assert scaled.objective == pytest.approx(base.objective, rel=1e-9)
    pred0 = base.evaluate(axes)
    pred1 = scaled.evaluate({**axes, axis: axes[axis] * c})
    np.testing.assert_allclose(pred1, pred0, rtol=1e-9)
    for p in form.params:
        if p in form.exponents or p in ("E", "D"):
            assert scaled.params[p] == pytest.approx(base.params[p], rel=1e-7, abs=1e-12), p


def test_epoch_raw_units_reach_the_optimum():
    """Chinchilla in raw parameters and tokens: same optimum as Epoch's plain-Huber fit.

    Source: Epoch AI, analyzing-chinchilla/data_analysis.ipynb ("Replicate exactly"): best
    Huber objective 0.0010182740 at A 477.84, B 2143.86, E 1.8172, alpha 0.3473, beta 0.3672.
    """
    data = load_sweep(EPOCH, metric="loss", axes={"N": "Model Size", "D": "train_tokens"})
    assert data.n_points == 240
    fit = fit_law(data, law="chinchilla", loss="huber", validation=False)
    epoch = {"E": 1.8172, "A": 477.84, "alpha": 0.3473, "B": 2143.86, "beta": 0.3672}
    assert fit.objective <= 0.0010182741
    for p, v in epoch.items():
        assert fit.params[p] == pytest.approx(v, rel=2e-3), p


def test_formula_equals_registered_chinchilla():
    data = load_sweep(EPOCH, metric="loss", axes={"D": "train_tokens"})
    reg = fit_law(data, law="chinchilla", validation=False)
    formula = fit_law(data, law="E + A*N^-alpha + B*D^-beta", validation=False)
    assert formula.objective == pytest.approx(reg.objective, rel=1e-9)
    for p in reg.params:
        assert formula.params[p] == pytest.approx(reg.params[p], rel=1e-6)


def test_many_sizes_use_k_fold_and_artifact_records_axes(tmp_path):
    data = load_sweep(EPOCH, metric="loss", axes={"D": "train_tokens"})
    fit = fit_law(data, law="chinchilla", loss="huber")
    cv = fit.validation["leave_one_size_out"]
    assert cv["scheme"] == "10-fold by size" and len(cv["folds"]) == 10
    path = fit.save(tmp_path / "epoch.law.json")
    payload = json.loads(path.read_text())
    assert payload["schema"] == "scaling.law/2"
    assert payload["axes"] == {"N": {"column": "llm_params", "unit": 1e9},
                               "D": {"column": "train_tokens", "unit": 1.0}}
    assert payload["axis_ranges"]["N"][0] == pytest.approx(0.0573, rel=0.01)
    again = load_laws(path)["all"]
    np.testing.assert_array_equal(again.evaluate(data.axes), fit.evaluate(data.axes))


def test_formula_artifact_round_trip(tmp_path):
    V = np.array([2.0, 4, 8, 16, 36, 64, 144, 256])
    fit = fit_law(from_axes({"V": V}, 0.2 + 0.3 * V ** -0.4), law="E + B*V^-beta",
                  bootstrap=50, validation=False)
    loaded = load_laws(fit.save(tmp_path / "f.law.json"))["all"]
    assert loaded.law == "formula" and loaded.formula == "Y = E + B*V^-beta"
    np.testing.assert_array_equal(loaded.evaluate_draws({"V": V}), fit.evaluate_draws({"V": V}))


def test_old_artifacts_load():
    """Every shipped law file loads; schema-1 files (no axes) read as N, V laws. The schema-1
    file in tests/data is the grouped toy-VLM artifact as version 0.1 wrote it."""
    versions = set()
    paths = [*(ROOT / "results").glob("*.law.json"), ROOT / "tests/data/toyvlm_schema1.law.json"]
    for path in sorted(paths):
        schema = json.loads(path.read_text()).get("schema")
        versions.add(schema)
        for law in load_laws(path).values():
            assert schema != "scaling.law/1" or law.form.axes == ("N", "V")
    assert versions == {"scaling.law/1", "scaling.law/2"}


def _cli(args, tmp_path=None):
    res = runner.invoke(app, args)
    return res.exit_code, (res.stderr or "").strip()


@pytest.mark.parametrize("args, message", [
    (["--law", "E + A*N^-alpha + sin(D)"], "unknown function 'sin'"),
    (["--law", "E + A*N^-alpha + B*D^("], "not a valid expression"),
    (["--law", "N.__class__ + A"], "attribute access"),
    (["--law", "E + A*Q^-alpha"], "none of the bound axes"),
    (["--law", "chinchilla", "--axis", "D=train_tokens", "--axis", "D=loss"], "bound twice"),
    (["--law", "chinchilla", "--axis", "D=tokens"], "has no column 'tokens'"),
    (["--law", "chinchilla", "--axis", "D=train_tokens", "--bound", "gamma=0:1"],
     "has no parameter 'gamma'"),
    (["--law", "chinchilla"], "needs axis D"),
    (["--law", "chinchilla", "--axis", "D=train_tokens", "--bootstrap", "1000000000"],
     "too many"),
    (["--law", "chinchilla", "--axis", "D=train_tokens", "--bootstrap", "10", "--seed", "-1"],
     "--seed must be"),
    (["--law", "chinchillla", "--axis", "D=train_tokens"], "did you mean 'chinchilla'"),
])
def test_bad_fit_input_is_one_line_exit_2(args, message):
    code, err = _cli(["fit", str(EPOCH), "--metric", "loss", "--no-validation", *args])
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert message in err, err


def test_zero_axis_value_and_too_many_parameters(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("visual_tokens,size,accuracy\n1,0,0.5\n4,1,0.6\n8,2,0.7\n")
    code, err = _cli(["fit", str(path), "--law", "E + B*R^-beta", "--axis", "R=size"])
    assert code == 2 and "must be > 0" in err, err
    path.write_text("visual_tokens,accuracy\n1,0.5\n4,0.6\n")
    code, err = _cli(["fit", str(path), "--law", "tokens"])
    assert code == 2 and "3 parameters but only 2 distinct points" in err, err


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(schema="scaling.law/9"), "cannot read"),
    (lambda p: p["params"].update(a=-0.5), "outside its bounds"),
    (lambda p: p["params"].update(alpha=-0.1), "outside its bounds"),
    (lambda p: p.update(draws=[], draw_params=["a", "alpha", "beta", "D"]), "empty"),
])
def test_law_files_validated_on_load(tmp_path, edit, message):
    payload = json.loads((ROOT / "results" / "li2025_visual_reasoning.law.json").read_text())
    edit(payload)
    path = tmp_path / "bad.law.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ScalingError, match=message):
        load_laws(path)
    code, err = _cli(["plan", "--flops", "1e13", "--law", str(path)])
    assert code == 2 and message in err, err


def test_all_bootstrap_draws_dropped_is_a_warning():
    """Three points, three parameters: every resample with a repeat is unidentifiable."""
    data = from_axes({"V": np.array([1.0, 2, 4])}, [0.5, 0.4, 0.35])
    fit = fit_law(data, law="tokens", bootstrap=4, seed=0, validation=False)
    assert fit.draws is None and not fit.ci
    assert any("all 4 bootstrap draws were dropped" in w for w in fit.warnings)


def test_plan_beyond_fitted_range_warns_and_never_shows_impossible_accuracy():
    """Issue 11: a loglinear law at 1e18 FLOPs printed 104.1% accuracy."""
    from scaling.law import FittedLaw
    from scaling.planner.answer import plan

    law = FittedLaw("loglinear", {"c": 0.6, "alpha": 0.05, "beta": 0.01},
                    axis_ranges={"N": (0.5, 7.0), "V": (1.0, 576.0)})
    p = plan(law, flops=1e18)
    assert 0.0 <= p.optimum.predicted_accuracy <= 1.0
    assert any("outside the sizes the law was fitted on" in w for w in p.warnings)
    assert any("outside [0, 1]" in w for w in p.warnings)


def test_token_plan_per_benchmark_and_training_plan(tmp_path):
    from scaling.fit.fitter import fit_groups
    from scaling.planner.tokens_only import plan_tokens
    from scaling.planner.training import chinchilla_closed_form, optimum

    data = load_sweep(ROOT / "sweeps" / "tokenflex.csv", group_by="benchmark", need=("V",))
    laws = fit_groups(data, law="tokens", validation=False)
    knees = {b: plan_tokens(laws[b], llm="qwen2.5-7b", min_gain=0.005,
                            token_range=(1, 576)).knee for b in ("OCRBench", "MMB1.1")}
    assert knees["OCRBench"] is None          # OCR still gains >= 0.5 points per doubling
    assert knees["MMB1.1"].visual_tokens < 16  # general VQA saturates early
    p = plan_tokens(laws["OpenCompass"], llm="qwen2.5-7b", flops=3e12, text_tokens=50)
    assert p.best.flops <= 3e12 and p.best.visual_tokens > 1
    epoch = fit_law(load_sweep(EPOCH, metric="loss", axes={"D": "train_tokens"}),
                    law="chinchilla", validation=False)
    best = optimum(epoch, 5.76e23)
    assert best.method.startswith("closed form")
    assert 6 * best.llm_params * best.train_tokens == pytest.approx(5.76e23, rel=1e-9)
    numeric = optimum(epoch, 5.76e23, requests=1e-300, request_tokens=1.0)
    assert numeric.llm_params == pytest.approx(best.llm_params, rel=1e-6)
    raw = chinchilla_closed_form(dict(epoch.params), 5.76e23, 1e9, 1.0)
    assert raw[0] == pytest.approx(best.llm_params, rel=1e-12)
    lifetime = [optimum(epoch, 5.76e23, requests=r, request_tokens=2000)
                for r in (1e7, 1e9)]
    assert lifetime[1].llm_params < lifetime[0].llm_params < best.llm_params
    assert lifetime[1].tokens_per_param > lifetime[0].tokens_per_param


def test_cli_token_and_training_plans(tmp_path):
    law = tmp_path / "epoch.law.json"
    code, _ = _cli(["fit", str(EPOCH), "--metric", "loss", "--law", "chinchilla", "--axis",
                    "D=train_tokens", "--no-validation", "-o", str(law)])
    assert code == 0
    res = runner.invoke(app, ["plan", "--law", str(law), "--train-flops", "5.76e23",
                              "--requests", "1e9", "--request-tokens", "2000", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["optimum"]["train_tokens"] > 0 and len(out["lifetime_sweep"]) >= 4
    res = runner.invoke(app, ["plan", "--llm", "qwen2.5-7b", "--flops", "2T", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["optimum"]["visual_tokens"] >= 1
    code, err = _cli(["plan", "--law", str(law), "--flops", "1e13"])
    assert code == 2 and "plan it with --train-flops" in err, err


def test_plots_for_one_and_three_axis_laws(tmp_path):
    from scaling.plot import Measured, plot

    N, V, R = grid([0.5, 4, 14], [1, 16, 64, 576], [224, 448])
    form = law_form("a * N^-alpha * V^-beta * R^-gamma + E", ("N", "V", "R"))
    y = form.evaluate({"N": N, "V": V, "R": R, "a": 0.9, "alpha": 0.08, "beta": 0.03,
                       "gamma": 0.12, "E": 0.05})
    data = from_axes({"N": N, "V": V, "R": R}, y, metric="1 - accuracy")
    fit = fit_law(data, law="a * N^-alpha * V^-beta * R^-gamma + E", validation=False)
    result = plot("fit", fit, measured=Measured.from_sweep(data), output=tmp_path / "3.png")
    assert len(result.panels) == 2 and result.curves == 6
    with pytest.raises(ScalingError, match="needs a law over N .* and V"):
        plot("frontier", fit)


def test_repeated_configurations_collapse_to_sufficient_statistics(tmp_path):
    """A table of seeds fits on its distinct points; the objective is the SSE of all rows."""
    rng = np.random.default_rng(0)
    paper = load_sweep(ROOT / "sweeps" / "li2025_visual_reasoning.csv")
    reps = 50
    n, v = np.repeat(paper.llm_params, reps), np.repeat(paper.visual_tokens, reps)
    acc = 1 - np.repeat(paper.y, reps) + rng.normal(0, 0.01, n.size)
    path = tmp_path / "seeds.csv"
    path.write_text("llm_params,visual_tokens,seed,accuracy\n" + "\n".join(
        f"{float(a)!r},{int(b)},{i % reps},{float(c)!r}" for i, (a, b, c) in
        enumerate(zip(n, v, acc, strict=True))))
    data = load_sweep(path)
    assert data.n_points == 28 * reps
    fit = fit_law(data, law="product", validation=False)
    pred = fit.evaluate(data.axes)
    assert fit.objective == pytest.approx(float(np.sum((pred - data.y) ** 2)), rel=1e-9)
    means = fit_law(from_axes(paper.axes, [data.y[data.cluster == c].mean() for c in range(28)]),
                    law="product", validation=False)
    for p in ("alpha", "beta"):
        assert fit.params[p] == pytest.approx(means.params[p], rel=1e-6)
