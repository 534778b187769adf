"""The design block, the answer, the criterion and the adaptive loop (in memory, no runner).

Golden values: the paper's law (Li et al. 2025, eq. 1 with the published constants in
scaling.law.PAPER_LAW) and V* = beta Q / (alpha - beta) (its sec. 3.3)."""

import numpy as np
import pytest

from scaling import fit_law, load_sweep, optimal_visual_tokens
from scaling.design import design_of, in_memory, simulate
from scaling.design.answer import answer, point_answer
from scaling.design.campaign import fit_data, space_filling
from scaling.design.criterion import rank
from scaling.design.log import load, log_path, save
from scaling.errors import ScalingError
from scaling.sweep import parse_spec

PAPER = "sweeps/li2025_visual_reasoning.csv"
BLOCK = {"law": "product", "metric": "accuracy", "question": {"flops": 1e12, "text_tokens": 50},
         "initial": 6, "batch": 2, "max_runs": 14, "target": 0.1}


@pytest.fixture(scope="module")
def paper():
    data = load_sweep(PAPER, metric="accuracy")
    return data, in_memory(BLOCK, data.llm_params, data.visual_tokens)


def sweep(**design):
    return parse_spec({"name": "d", "evaluator": {"kind": "python", "function": "m:f"},
                       "axes": {"llm": ["0.5B", "1.8B", "4B", "7B"],
                                "visual_tokens": [1, 4, 16, 64, 576]},
                       "text_tokens": 50, "design": {**BLOCK, **design}})


@pytest.mark.parametrize("change, message", [
    ({"initial": 3}, "design.initial is 3 but law 'product' has 4 parameters"),
    ({"max_runs": 5}, "design.max_runs (5) is below initial (6)"),
    ({"run_cost": "llm_params * steps"}, "names unknown column 'steps'; allowed: "),
    ({"run_cost": "visual_tokens - 4"}, "is -3.0 for the run llm=0.5B, visual_tokens=1"),
    ({"run_cost": "__import__('os').system('x')"}, "only numbers, column names"),
    ({"run_cost": "llm_params *"}, "is not an arithmetic expression"),
    ({"question": {"flops": 1e9, "text_tokens": 50}},
     "the budget 1e+09 FLOPs affords no configuration of the menu; the cheapest, 500M with 1 "
     "tokens, needs 5.1e+10 FLOPs"),
    ({"question": {"flops": "lots"}}, "design.question.flops"),
    ({"law": "cubic"}, "unknown law 'cubic'; choose one of product, additive, loglinear"),
    ({"law": "chinchilla"}, "a design needs a law of N and V; 'chinchilla'; choose one of"),
    ({"batch": 0}, "design.batch"),
    ({"initial": 40}, "but the grid has only 20 runs"),
    ({"qestion": 1}, "unknown field; allowed: batch, bootstrap"),
])
def test_bad_design_is_one_line_naming_the_value(change, message):
    with pytest.raises(ScalingError) as err:
        design_of(sweep(**change))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_design_needs_sizes_before_it_runs_and_a_block():
    spec = parse_spec({"name": "d", "evaluator": {"kind": "python", "function": "m:f"},
                       "axes": {"llm": ["toy-a", "toy-b"], "visual_tokens": [1, 4]},
                       "design": {**BLOCK, "initial": 4, "max_runs": 4}})
    with pytest.raises(ScalingError, match=r"size of llm 'toy-a' is unknown before it runs; "
                                           r"write it as \{name: toy-a, params: ...\}"):
        design_of(spec)
    with pytest.raises(ScalingError, match="has no design: block"):
        design_of(parse_spec({"name": "d", "evaluator": {"kind": "python", "function": "m:f"},
                              "axes": {"llm": ["1B"], "visual_tokens": [1]}}))


def test_design_of_a_sweep_prices_every_run():
    d = design_of(sweep(run_cost="flops_paper"))
    assert d.cost.size == 20 and d.initial == 6 and d.max_runs == 14
    # flops_paper = 2 N (Q + V) (Li et al. 2025), the runner's own annotation
    assert d.cost[0] == 2 * 0.5e9 * (50 + 1) and d.cost[-1] == 2 * 7e9 * (50 + 576)
    assert d.labels[0] == "0.5B x 1"


def test_point_answer_is_the_planner_and_the_papers_closed_form(paper):
    data, design = paper
    a = point_answer(design, "product", {"a": 0.5571, "alpha": 0.0768, "beta": 0.0157,
                                         "D": 0.0333})
    assert a.v_star == pytest.approx(optimal_visual_tokens(0.0768, 0.0157, 50), rel=1e-6)
    assert a.n_star == pytest.approx(1e12 / (2 * (50 + a.v_star)), rel=1e-6)
    assert (a.llm_params, a.visual_tokens) == (7e9, 16)  # 2 * 7e9 * (50 + 16) <= 1e12


def test_answer_ci_from_draws_brackets_the_point_answer(paper):
    data, design = paper
    fit = fit_law(data, law="product", bootstrap=200, seed=1, validation=False)
    a = answer(design, fit)
    lo, hi = a.ci["visual_tokens"]
    assert lo <= a.v_star <= hi and a.p_choice > 0.9
    assert (hi - lo) / hi <= a.rel_width < 1  # widest relative CI: V*'s here


def test_space_filling_start_skips_the_costliest_corner(paper):
    _, design = paper
    picks = space_filling(design, 6, set())
    labels = [design.labels[p.index] for p in picks]
    assert labels[:4] == ["500M x 1", "500M x 576", "7B x 1", "1.8B x 16"]
    assert "7B x 576" not in labels and len(set(labels)) == 6
    assert all(design.cost[p.index] <= np.median(design.cost) for p in picks[4:])


def test_rank_is_deterministic_for_a_seed_and_scores_per_cost(paper):
    data, design = paper
    first = [0, 6, 21, 9, 2, 7]
    d = {i: (data.llm_params[i], data.y[i]) for i in first}
    free = np.setdiff1d(np.arange(28), first)
    a = rank(design, fit_data(design, d), free, 3)
    b = rank(design, fit_data(design, d), free, 3)
    assert [(p.index, p.score, p.why) for p in a] == [(p.index, p.score, p.why) for p in b]
    assert len({p.index for p in a}) == 3 and not {p.index for p in a} & set(first)
    assert all("expected to remove" in p.why and "the mean run" in p.why for p in a)
    # doubling every cost halves every score: the criterion is per unit run_cost
    dear = in_memory(BLOCK, data.llm_params, data.visual_tokens, cost=design.cost * 2)
    c = rank(dear, fit_data(dear, d), free, 1)
    assert c[0].index == a[0].index and c[0].score == pytest.approx(a[0].score)


def test_simulated_campaign_on_the_papers_points_reaches_the_full_grid_answer(paper):
    data, design = paper
    out = simulate(design, data.y)
    full = point_answer(design, "product", fit_law(data, law="product").params)
    done = [r for r in out.rounds if r.done]
    assert out.answer.matches(full)
    assert done[-1].runs_used <= 14 and done[-1].cost_used <= 0.5 * design.cost.sum()
    assert [r.kind for r in done][:2] == ["initial", "criterion"]
    chosen = [p.index for r in done for p in r.picks]
    assert len(chosen) == len(set(chosen)) == done[-1].runs_used


def test_failed_runs_never_block_the_design(paper):
    data, design = paper
    start = [p.index for p in space_filling(design, 6, set())]
    failed = set(start[:3])  # half the start fails: too few points to fit
    out = simulate(design, data.y, failed=failed)
    done = [r for r in out.rounds if r.done]
    assert set(done[0].failed) == failed and done[0].fit is None
    assert done[1].kind == "fill"  # fills the space until the law can be fitted
    assert "criterion" in [r.kind for r in done] and out.answer is not None
    chosen = [p.index for r in done for p in r.picks]
    assert len(chosen) == len(set(chosen))  # a failed run is never chosen again
    assert done[-1].runs_used == 14 and out.stopped.startswith("max_runs reached")


def test_target_stops_after_two_settled_rounds():
    data = load_sweep(PAPER, metric="accuracy")
    exact = 0.5571 * (data.llm_params / 1e9) ** -0.0768 * data.visual_tokens ** -0.0157 + 0.0333
    design = in_memory({**BLOCK, "target": 0.05}, data.llm_params, data.visual_tokens)
    out = simulate(design, exact)  # the paper's law, noiseless: settled at once
    assert out.stopped.startswith("target reached") and len(out.rounds) == 2


def test_log_round_trip_and_refusal_of_another_design(tmp_path, paper):
    data, design = paper
    out = simulate(design, data.y)
    path = log_path(tmp_path / "x.csv")
    save(path, design, list(out.rounds), out.stopped)
    back = load(path, design)
    assert [(r.index, r.kind, [p.index for p in r.picks], r.runs_used, r.answer.v_star)
            for r in back] == [(r.index, r.kind, [p.index for p in r.picks], r.runs_used,
                                r.answer.v_star) for r in out.rounds]
    other = in_memory({**BLOCK, "law": "loglinear"}, data.llm_params, data.visual_tokens)
    with pytest.raises(ScalingError, match="written for another design or grid"):
        load(path, other)
    raised = in_memory({**BLOCK, "max_runs": 20, "target": 0.01}, data.llm_params,
                       data.visual_tokens)
    assert len(load(path, raised)) == len(out.rounds)  # the stopping rule may change
