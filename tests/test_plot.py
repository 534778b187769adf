"""scaling.plot: figure content (curves, points, labels, the planner's optimum), every format,
grouped laws, the exact cost model, and byte-identical SVG/PDF.

Checks read the returned PlotResult and the matplotlib artists (by gid), never pixels.
Golden value: the bundled fit's V*(Q=50) = beta*50/(alpha-beta) = 13.52 (Li et al. 2025 sec. 4:
V* = beta Q / (alpha - beta); results/li2025_visual_reasoning.law.json, derived["V*(Q=50)"]).
"""

from pathlib import Path

import numpy as np
import pytest

from scaling import plot as P
from scaling.errors import ScalingError
from scaling.fit.fitter import fit_groups, load_laws
from scaling.fit.table import from_arrays
from scaling.law import PAPER_LAW, FittedLaw
from scaling.planner.answer import frontier, plan
from scaling.planner.pricing import make_pricer

ROOT = Path(__file__).resolve().parents[1]
LAW_FILE = ROOT / "results" / "li2025_visual_reasoning.law.json"
SWEEP = ROOT / "sweeps" / "li2025_visual_reasoning.csv"
MAGIC = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}
Q, BUDGET = 50.0, 1e12


@pytest.fixture(scope="module")
def laws():
    return load_laws(LAW_FILE)


@pytest.fixture(scope="module")
def law(laws):
    return laws["all"]


@pytest.fixture(scope="module")
def measured(laws):
    return P.load_measured(SWEEP, laws)


@pytest.fixture(scope="module")
def figures(laws, measured):
    """One figure of each kind from the bundled paper data (drawn once, saved per format)."""
    return {
        "frontier": P.plot("frontier", laws, measured=measured, text_tokens=Q, budget=BUDGET),
        "isoflop": P.plot("isoflop", laws, measured=measured, text_tokens=[0, Q, 200]),
        "heatmap": P.plot("heatmap", laws, measured=measured, text_tokens=Q, budget=BUDGET),
        "fit": P.plot("fit", laws, measured=measured),
    }


def gids(ax, prefix):
    return [a for a in (*ax.lines, *ax.collections) if (a.get_gid() or "").startswith(prefix)]


def star_xy(ax, gid):
    (star,) = [c for c in ax.collections if c.get_gid() == gid]
    return tuple(np.asarray(star.get_offsets(), float)[0])


def same_choice(a, b):
    for key in ("llm_params", "visual_tokens", "predicted_error", "flops"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-12), key


# ---------------------------------------------------------------- every kind, every format


@pytest.mark.parametrize("fmt", P.FORMATS)
@pytest.mark.parametrize("kind", P.KINDS)
def test_every_kind_to_every_format(figures, kind, fmt, tmp_path):
    out = tmp_path / f"{kind}.{fmt}"
    path = P.save_figure(figures[kind].figure, out)
    data = Path(path).read_bytes()
    assert data.startswith(MAGIC[fmt]) and len(data) > 5000
    if fmt == "svg":
        text = data.decode()
        drawn = "<image" if kind == "heatmap" else 'id="curve-0-0"'
        assert drawn in text  # what was drawn is in the file (curves by gid)
        if kind in ("frontier", "heatmap"):
            assert 'id="optimum-0"' in text and 'id="frontier-0"' in text


def test_plot_writes_the_requested_file(laws, measured, tmp_path):
    out = tmp_path / "f.pdf"
    result = P.plot("fit", laws, measured=measured, output=out)
    assert result.output == str(out) and out.read_bytes().startswith(b"%PDF")
    assert result.summary()["format"] == "pdf" and result.summary()["output"] == str(out)


# ---------------------------------------------------------------- frontier


def test_frontier_content(figures, law, measured):
    r = figures["frontier"]
    (panel,) = r.panels
    ax = r.figure.axes[0]
    assert r.curves == 4 and len(gids(ax, "curve-0-")) == 4  # 0.5B, 1.8B, 4B, 7B
    assert r.points == 28 == len(measured)
    assert sum(len(c.get_offsets()) for c in gids(ax, "points-0")) == 28
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel().startswith("inference FLOPs per request")
    assert "paper cost 2N(Q+V)" in ax.get_xlabel() and "Q = 50 text tokens" in ax.get_xlabel()
    assert ax.get_ylabel() == "predicted error = 1 − accuracy"
    assert panel.title == law.label
    # the curves are the law along the paper cost: x = 2 N (Q + V), y = Y(N, V)
    x, y = panel.curves["7B (law)"]
    v = x / (2 * 7e9) - Q
    np.testing.assert_allclose(v[[0, -1]], [1, 576], rtol=1e-9)
    np.testing.assert_allclose(y, law.predict(7.0, v), rtol=1e-12)


def test_frontier_optimum_is_the_planners(figures, law):
    r = figures["frontier"]
    answer = plan(law, flops=BUDGET, text_tokens=Q)
    (best,) = r.optima
    same_choice(best, answer.optimum)
    # the star is drawn at the planner's (FLOPs, error)
    x, y = star_xy(r.figure.axes[0], "optimum-0")
    assert x == pytest.approx(answer.optimum.flops) and y == pytest.approx(
        answer.optimum.predicted_error)
    assert r.summary()["optimum"]["visual_tokens"] == pytest.approx(13.5232, rel=1e-4)
    assert law.derived["V*(Q=50)"]["value"] == pytest.approx(best.visual_tokens, rel=1e-9)


def test_frontier_line_is_the_planners_frontier(figures, law):
    r = figures["frontier"]
    fx, fy = r.panels[0].frontier
    ref = frontier(law, fx, text_tokens=Q)
    np.testing.assert_allclose(fy, ref.predicted_error, rtol=1e-12)
    (line,) = gids(r.figure.axes[0], "frontier-0")
    np.testing.assert_allclose(line.get_xdata(), fx)
    # the frontier never lies above any size's curve at the same FLOPs (it is the optimum)
    for cx, cy in r.panels[0].curves.values():
        inside = (cx >= fx.min()) & (cx <= fx.max())
        assert np.all(np.interp(np.log(cx[inside]), np.log(fx), fy) <= cy[inside] + 1e-9)


def test_frontier_accuracy_and_paper_law_default():
    r = P.frontier_figure(None, text_tokens=10, budget=1e13, accuracy=True)
    assert r.law_label == PAPER_LAW.label and r.points == 0
    assert r.curves == len(P.DEFAULT_SIZES)
    answer = plan(None, flops=1e13, text_tokens=10)
    x, y = star_xy(r.figure.axes[0], "optimum-0")
    assert y == pytest.approx(1 - answer.optimum.predicted_error)
    assert "accuracy" in r.figure.axes[0].get_ylabel()
    assert "higher is better" in r.figure.axes[0].get_ylabel()


def test_frontier_exact_cost(law, measured):
    r = P.plot("frontier", law, measured=measured, cost="exact", text_tokens=Q, budget=BUDGET)
    answer = plan(law, flops=BUDGET, text_tokens=Q, cost="exact")
    same_choice(r.optima[0], answer.optimum)
    assert "exact cost: qwen1.5 + clip-vit-l-14-336" in r.panels[0].xlabel
    pricer = make_pricer(cost="exact", text_tokens=Q)
    px, _ = r.panels[0].points
    np.testing.assert_allclose(px, pricer.flops(measured.llm_params, measured.visual_tokens))
    assert r.cost_model == "exact"


# ---------------------------------------------------------------- isoflop


def test_isoflop_optima_are_the_planners(figures, law):
    r = figures["isoflop"]
    assert [p.text_tokens for p in r.panels] == [0, Q, 200]
    assert r.curves == 9 and r.points == 0  # 3 budgets x 3 text-token counts
    for k, panel in enumerate(r.panels):
        ax = r.figure.axes[k]
        assert ax.get_xlabel() == "visual tokens per image V (N set by the budget)"
        assert ax.get_xscale() == "log"
        for i, (label, choice) in enumerate(zip(panel.curves, panel.optima, strict=True)):
            budget = float(choice.flops)
            assert label == f"C = {P._flops_label(budget)}"
            same_choice(choice, plan(law, flops=budget, text_tokens=panel.text_tokens).optimum)
            assert star_xy(ax, f"optimum-{k}-{i}") == pytest.approx(
                (choice.visual_tokens, choice.predicted_error))
            # the star is the curve's minimum
            v, y = panel.curves[label]
            assert np.nanmin(y) >= choice.predicted_error - 1e-12
    a, b = law.params["alpha"], law.params["beta"]
    v_star = [p.optima[0].visual_tokens for p in r.panels]
    assert v_star == pytest.approx([1.0, b * Q / (a - b), b * 200 / (a - b)], rel=1e-9)
    assert v_star[1] == pytest.approx(13.52, abs=0.01)


def test_isoflop_given_budgets_and_exact_cost(law):
    r = P.isoflop_figure(law, cost="exact", text_tokens=Q, budgets=[1e12, 3e12])
    assert r.curves == 2
    for c, best in zip([1e12, 3e12], r.optima, strict=True):
        same_choice(best, plan(law, flops=c, text_tokens=Q, cost="exact").optimum)


# ---------------------------------------------------------------- heatmap


def test_heatmap_path_and_optimum(figures, law):
    r = figures["heatmap"]
    (panel,) = r.panels
    ax = r.figure.axes[0]
    assert ax.get_xlabel().startswith("LLM parameters N (billions)")
    assert ax.get_ylabel() == "visual tokens per image V"
    assert r.points == 28 and len(gids(ax, "heatmap-0")) == 1
    same_choice(r.optima[0], plan(law, flops=BUDGET, text_tokens=Q).optimum)
    best = r.optima[0]
    assert star_xy(ax, "optimum-0") == pytest.approx((best.llm_params / 1e9,
                                                      best.visual_tokens))
    fn, fv = panel.frontier
    np.testing.assert_allclose(fv, law.params["beta"] * Q / (law.params["alpha"]
                                                              - law.params["beta"]))
    # the colour bar is labelled with the predicted quantity
    assert any(a.get_ylabel() == "predicted error" for a in r.figure.axes[1:])


# ---------------------------------------------------------------- fit


def test_fit_content(figures, law, measured):
    r = figures["fit"]
    (panel,) = r.panels
    top, bottom = r.figure.axes[:2]
    assert r.curves == 4 and r.points == 28
    assert len(gids(top, "band-0-")) == 4  # the bundled law has 1,000 bootstrap draws
    assert bottom.get_xlabel() == "visual tokens per image V"
    assert bottom.get_ylabel() == "residual (measured − law)"
    assert top.get_ylabel() == "measured and predicted error = 1 − accuracy"
    # hold-out points: the 7B size the fitter held out (validation.holdout_largest), hollow
    assert P.holdout_sizes(law) == (7e9,)
    held = [c for c in gids(top, "points-0") if c.get_gid().endswith("-1")]
    assert len(held) == 1 and len(held[0].get_offsets()) == 7
    assert np.all(held[0].get_facecolors()[:, 3] == 0)
    residuals = np.concatenate([c.get_offsets()[:, 1] for c in gids(bottom, "residuals-0")])
    expected = measured.error - law.predict(measured.llm_params / 1e9, measured.visual_tokens)
    np.testing.assert_allclose(np.sort(residuals), np.sort(expected), atol=1e-12)
    assert f"RMSE {law.validation['rmse']:.3g}" in panel.title


def test_fit_curves_and_band_stay_in_the_metric_range(law, measured):
    """An error of ``1 - accuracy`` lies in [0, 1]: where a law (here the bundled one with
    ``a`` and its draws scaled 1.8x) predicts more, the curves stop and the band is capped."""
    from dataclasses import replace

    a = law.form.params.index("a")
    draws = np.array(law.draws, float)
    draws[:, a] *= 1.8
    big = replace(law, params={**law.params, "a": law.params["a"] * 1.8}, draws=draws)
    assert big.predict(0.5, 1.0) > 1
    top = P.fit_figure(big, measured=measured).figure.axes[0]
    band = np.concatenate([p.vertices[:, 1] for c in gids(top, "band-0-")
                           for p in c.get_paths()])
    curves = np.concatenate([line.get_ydata() for line in gids(top, "curve-0-")])
    assert band.max() == 1.0 and band.min() >= 0
    assert np.isnan(curves).any() and np.nanmax(curves) <= 1


def test_fit_without_draws_has_no_band(measured):
    r = P.fit_figure(PAPER_LAW, measured=measured)
    assert not gids(r.figure.axes[0], "band-")
    assert "bootstrap" not in r.panels[0].title


# ---------------------------------------------------------------- grouped laws


@pytest.fixture(scope="module")
def grouped():
    """Two tasks from two known product laws (seeded): a grouped fit and its points."""
    rng = np.random.default_rng(0)
    n, v = np.meshgrid([0.5e9, 1.8e9, 4e9, 7e9], [1, 4, 16, 64, 144, 576])
    n, v = np.tile(n.ravel(), 2), np.tile(v.ravel(), 2)
    task = np.repeat(["ocr", "reasoning"], n.size // 2)
    truth = {"ocr": FittedLaw("product", {"a": 0.9, "alpha": 0.03, "beta": 0.05, "D": 0.05}),
             "reasoning": PAPER_LAW}
    y = np.array([truth[t].predict(a / 1e9, b) for t, a, b in zip(task, n, v, strict=True)])
    data = from_arrays(n, v, y + rng.normal(0, 1e-3, y.size), group=task)
    data = type(data)(**{**data.__dict__, "group_by": "task"})
    return fit_groups(data, validation=False), P.Measured.from_sweep(data)


@pytest.mark.parametrize("kind", ["frontier", "heatmap", "fit"])
def test_grouped_law_one_panel_per_group(grouped, kind):
    laws, measured = grouped
    options = {"budget": 1e12, "text_tokens": Q} if kind != "fit" else {}
    r = P.plot(kind, laws, measured=measured, **options)
    assert [p.group for p in r.panels] == ["ocr", "reasoning"]
    assert [p.n_points for p in r.panels] == [24, 24]
    for p in r.panels:
        assert p.title.startswith(p.group) and f"{p.group}: {p.group}" not in p.title
        for best in p.optima:
            same_choice(best, plan(laws[p.group], flops=1e12, text_tokens=Q).optimum)
    if kind == "frontier":  # alpha < beta for "ocr": the optimum takes the most tokens
        assert r.panels[0].optima[0].visual_tokens == pytest.approx(576)


def test_grouped_isoflop_rows(grouped):
    laws, _ = grouped
    r = P.isoflop_figure(laws, text_tokens=[0, Q], budgets=[1e12])
    assert [(p.group, p.text_tokens) for p in r.panels] == [
        ("ocr", 0), ("ocr", Q), ("reasoning", 0), ("reasoning", Q)]


# ---------------------------------------------------------------- determinism and errors


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_same_inputs_give_identical_bytes(laws, measured, tmp_path, fmt):
    paths = []
    for i in range(2):  # two separate figures from the same inputs
        r = P.plot("frontier", laws, measured=measured, text_tokens=Q, budget=BUDGET,
                   output=tmp_path / f"{i}.{fmt}")
        paths.append(Path(r.output))
    a, b = (p.read_bytes() for p in paths)
    assert a == b
    if fmt == "svg":
        assert b"<dc:date>" not in a and b"scaling" in a


def test_png_repr_for_notebooks(figures):
    assert figures["fit"]._repr_png_().startswith(b"\x89PNG")


@pytest.mark.parametrize("call, match", [
    (lambda t: P.plot("pie", None, output=t / "x.png"), "unknown plot 'pie'"),
    (lambda t: P.plot("frontier", None, output=t / "x.jpg"), r"must end in \.png, \.svg"),
    (lambda t: P.plot("frontier", None, output=t / "no" / "x.png"), "does not exist"),
    (lambda t: P.plot("fit", None), "needs measured points"),
    (lambda t: P.plot("frontier", None, plan_options={"bogus": 1}), "unknown planner option"),
    (lambda t: P.plot("frontier", None, sizes=[0]), "positive parameter counts"),
    (lambda t: P.plot("frontier", None, cost="guess"), "cost model must be one of"),
    (lambda t: P.plot("frontier", {}), "no law to plot"),
])
def test_errors_name_the_problem(tmp_path, call, match):
    with pytest.raises(ScalingError, match=match):
        call(tmp_path)
