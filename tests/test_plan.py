"""The budget planner: the paper's results, closed form vs numeric, brute-force optimality,
constraints, inverse mode, menus, uncertainty, frontier.

Golden values: Li et al. 2025 (arXiv 2411.03312) and ``shared/reference/README.md``: with the
published law (alpha 0.0768, beta 0.0157) and the paper cost 2N(Q+V), Q = 0 gives the fewest
tokens and the largest LLM, Q = 50 gives V* = beta*Q/(alpha-beta) ~ 12.85 ("about 13 to 14"),
and alpha < beta (their OCR fit, alpha 0.029, beta 0.048) gives the most tokens.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling.errors import ScalingError
from scaling.law import PAPER_LAW, FittedLaw
from scaling.planner.answer import plan
from scaling.planner.problem import frontier, setting, solve
from scaling.planner.solvers import closed_form, numeric

ALPHA, BETA = PAPER_LAW.params["alpha"], PAPER_LAW.params["beta"]
OCR = FittedLaw("product", {"a": 0.8, "alpha": 0.029, "beta": 0.048, "D": 0.1}, label="ocr")
MENU_TOKENS = [1, 4, 16, 36, 64, 144, 576]


# ------------------------------------------------------------------ the paper's results
def test_no_text_tokens_means_fewest_tokens_and_largest_llm():
    p = plan(flops=1e13)
    assert p.method == "closed-form"
    assert p.optimum.visual_tokens == 1.0
    assert p.optimum.llm_params == pytest.approx(1e13 / 2, rel=1e-12)   # 2 N (0 + 1) = C
    assert p.optimum.flops == pytest.approx(1e13, rel=1e-12)
    assert "fewest" in p.why and "alpha 0.0768 > beta 0.0157" in p.why
    assert p.law_label.startswith("Li et al. 2025")


def test_fifty_text_tokens_give_about_13_tokens():
    p = plan(flops=1e13, text_tokens=50)
    v_star = BETA * 50 / (ALPHA - BETA)
    assert 12.5 <= p.optimum.visual_tokens <= 14
    assert p.optimum.visual_tokens == pytest.approx(v_star, rel=1e-12)
    assert p.optimum.llm_params == pytest.approx(1e13 / (2 * (50 + v_star)), rel=1e-12)


@pytest.mark.parametrize("budget", [1e12, 1e14, 1e16])
def test_alpha_below_beta_means_most_tokens(budget):
    p = plan(OCR, flops=budget, text_tokens=50)
    assert p.optimum.visual_tokens == 576
    assert "most visual tokens" in p.why
    wider = plan(OCR, flops=budget, text_tokens=50, token_range=(1, 2048))
    assert wider.optimum.visual_tokens == 2048


def test_llm_cap_sends_the_rest_of_the_budget_to_tokens():
    p = plan(flops=1e13, llm_range=("0.1B", "7B"))
    assert p.optimum.llm_params == 7e9
    assert p.optimum.visual_tokens == 576            # 1e13 / (2 * 7e9) = 714 > 576
    assert "llm_range" in p.optimum.binding and "capped at 7B" in p.why


CASES = [dict(), dict(llm_range=(1e8, 3e10)), dict(llm_range=(2e9, 3e10), token_range=(2, 100)),
         dict(token_range=(20, 576))]


@pytest.mark.parametrize("law", [PAPER_LAW, OCR], ids=["paper", "ocr"])
@pytest.mark.parametrize("text_tokens", [0, 10, 50, 300])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_closed_form_and_numeric_agree_to_1e6(law, text_tokens, case):
    s = setting(law, text_tokens=text_tokens, **CASES[case])
    budgets = np.geomspace(1e10, 1e18, 17)
    a = closed_form(s.law, s.pricer, s.limits, budgets)
    b = numeric(s.predict, s.pricer, s.limits, budgets)
    assert np.array_equal(a.feasible, b.feasible) and a.feasible.sum() >= 10
    for key in ("llm_params", "visual_tokens", "predicted_error"):
        x, y = getattr(a, key)[a.feasible], getattr(b, key)[b.feasible]
        np.testing.assert_allclose(y, x, rtol=1e-6, err_msg=key)


# ------------------------------------------------------------------ brute-force optimality
def _brute(s, budget, n=400):
    """Best predicted error over a dense log grid of feasible (N, V)."""
    (n_lo, n_hi), (v_lo, v_hi) = s.limits.llm_range, s.limits.token_range
    n_hi = min(n_hi, budget)
    N = np.geomspace(n_lo, n_hi, n)[:, None]
    V = np.geomspace(v_lo, v_hi, n)[None]
    q = s.pricer.quantities(N, V)
    ok = q["flops"] <= budget
    if np.isfinite(s.limits.max_memory_bytes):
        ok &= q["memory_bytes"] <= s.limits.max_memory_bytes
    if np.isfinite(s.limits.max_latency_s):
        ok &= q["latency_s"] <= s.limits.max_latency_s
    Y = np.where(ok, s.predict(N, V), np.inf)
    return Y.min(), ok.any()


def _law(kind, x, y, z, w):
    if kind == "product":
        return FittedLaw("product", {"a": 0.1 + x, "alpha": 0.3 * y, "beta": 0.3 * z, "D": w})
    if kind == "additive":
        return FittedLaw("additive", {"A": 0.1 + x, "alpha": 0.5 * y, "B": 0.1 + w,
                                      "beta": 0.5 * z, "D": 0.05})
    return FittedLaw("loglinear", {"c": 1 + x, "alpha": 0.1 * y, "beta": 0.1 * z})


unit = st.floats(0.0, 1.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["product", "additive", "loglinear"]), x=unit, y=unit, z=unit,
       w=unit, log_c=st.floats(10.5, 17), q=st.sampled_from([0, 5, 50, 400]),
       n_hi=st.sampled_from([None, 3e9, 7e10]), v_range=st.sampled_from([None, (4, 64), (1, 2048)]))
def test_no_grid_point_beats_the_planner_paper_cost(kind, x, y, z, w, log_c, q, n_hi, v_range):
    law = _law(kind, x, y, z, w)
    s = setting(law, text_tokens=q, llm_range=None if n_hi is None else (1e8, n_hi),
                token_range=v_range)
    budget = 10.0 ** log_c
    best, any_ok = _brute(s, budget)
    opt = solve(s, [budget])
    assert bool(opt.feasible[0]) == any_ok
    if any_ok:
        Y, N, V = opt.predicted_error[0], opt.llm_params[0], opt.visual_tokens[0]
        assert Y <= best + 1e-12 * abs(best) + 1e-15
        assert 2 * N * (q + V) <= budget * (1 + 1e-9)
        assert s.limits.token_range[0] <= V <= s.limits.token_range[1]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["product", "additive"]), x=unit, y=unit, z=unit, w=unit,
       log_c=st.floats(11.5, 14.5), q=st.sampled_from([0, 50]),
       mem=st.sampled_from([None, 20.0, 60.0]), lat=st.sampled_from([None, 8.0, 30.0]))
def test_no_grid_point_beats_the_planner_exact_cost(kind, x, y, z, w, log_c, q, mem, lat):
    law = _law(kind, x, y, z, w)
    s = setting(law, text_tokens=q, cost="exact", family="qwen1.5", gpu="h100",
                max_memory_gb=mem, max_latency_ms=lat)
    budget = 10.0 ** log_c
    best, any_ok = _brute(s, budget, n=250)
    opt = solve(s, [budget])
    if any_ok:
        assert opt.feasible[0]
        Y = opt.predicted_error[0]
        assert Y <= best + 1e-9 * abs(best)
        got = s.pricer.quantities(opt.llm_params[0], opt.visual_tokens[0])
        assert got["flops"] <= budget * (1 + 1e-9)
        if mem:
            assert got["memory_bytes"] <= mem * 1e9 * (1 + 1e-9)
        if lat:
            assert got["latency_s"] <= lat * 1e-3 * (1 + 1e-9)


def test_law_whose_error_rises_with_size_uses_the_2d_search():
    law = FittedLaw("additive", {"A": 0.5, "alpha": -0.05, "B": 0.3, "beta": 0.2, "D": 0.1})
    s = setting(law, text_tokens=20, llm_range=(1e8, 1e11))
    opt = solve(s, [1e13])
    assert opt.method == "numeric (2-D)"
    best, _ = _brute(s, 1e13)
    assert opt.predicted_error[0] <= best + 1e-9
    assert opt.llm_params[0] == pytest.approx(1e8, rel=1e-3)   # smallest LLM is best here


# ------------------------------------------------------------------ constraints, errors
def test_too_small_budget_names_the_smallest_feasible_budget():
    with pytest.raises(ScalingError, match=r"smallest feasible budget is 1.02e\+10"):
        plan(flops=1e9, text_tokens=50)


def test_memory_limit_binds_and_impossible_memory_names_the_limit():
    p = plan(flops=1e13, text_tokens=50, cost="exact", family="qwen1.5", max_memory_gb=40)
    assert p.optimum.memory_bytes <= 40e9 * (1 + 1e-9)
    assert "memory" in p.optimum.binding and "memory limit" in p.why
    with pytest.raises(ScalingError, match="--max-memory-gb 0.5 is below"):
        plan(flops=1e13, cost="exact", family="qwen1.5", max_memory_gb=0.5)


def test_latency_needs_a_gpu_and_binds():
    with pytest.raises(ScalingError, match="--gpu"):
        plan(flops=1e13, max_latency_ms=10)
    p = plan(flops=1e14, text_tokens=50, cost="exact", family="qwen1.5", gpu="h100",
             max_latency_ms=10)
    assert p.optimum.latency_s <= 0.010 * (1 + 1e-9)
    assert "latency" in p.optimum.binding


def test_bad_options_raise_scaling_errors():
    for kwargs in (dict(cost="roofline"), dict(text_tokens=-1), dict(target_accuracy=1.5),
                   dict(token_range="5:2"), dict(llm_range="1B"), dict(tokens="1,x")):
        with pytest.raises(ScalingError):
            plan(**{"flops": 1e13, **kwargs})
    with pytest.raises(ScalingError, match="--flops"):
        plan()


# ------------------------------------------------------------------ inverse mode
def test_inverse_mode_is_the_cheapest_budget_reaching_the_target():
    p = plan(target_accuracy=0.6, text_tokens=50)
    assert p.optimum.predicted_error <= 0.4 + 1e-12
    assert p.optimum.predicted_error == pytest.approx(0.4, abs=1e-6)
    cheaper = frontier(None, [p.budget_flops * (1 - 1e-5)], text_tokens=50)
    assert cheaper.predicted_error[0] > 0.4
    with pytest.raises(ScalingError, match="out of reach"):
        plan(target_accuracy=0.99)                     # below the law's floor D
    with pytest.raises(ScalingError, match="within --flops"):
        plan(target_accuracy=0.6, flops=1e12, text_tokens=50)


def test_inverse_mode_on_a_menu_picks_the_cheapest_reaching_item():
    sizes, tokens = [0.5e9, 1.8e9, 4e9, 7e9, 14e9], MENU_TOKENS
    p = plan(target_accuracy=0.55, text_tokens=50, sizes=sizes, tokens=tokens)
    N, V = np.meshgrid(sizes, tokens, indexing="ij")
    Y = PAPER_LAW.predict(N / 1e9, V)
    cost = 2 * N * (50 + V)
    i = np.argmin(np.where(Y <= 0.45, cost, np.inf))
    assert (p.discrete.llm_params, p.discrete.visual_tokens) == (N.flat[i], V.flat[i])
    assert all(a.flops >= p.discrete.flops for a in p.alternatives)


# ------------------------------------------------------------------ menus
def test_menu_best_is_the_best_feasible_pair():
    sizes = ["0.5B", "1.8B", "4B", "7B"]
    p = plan(flops=3e12, text_tokens=50, sizes=sizes, tokens=MENU_TOKENS, top=3)
    N, V = np.meshgrid([0.5e9, 1.8e9, 4e9, 7e9], MENU_TOKENS, indexing="ij")
    Y = np.where(2 * N * (50 + V) <= 3e12, PAPER_LAW.predict(N / 1e9, V), np.inf)
    i = np.argmin(Y)
    assert (p.discrete.llm_params, p.discrete.visual_tokens) == (N.flat[i], V.flat[i])
    errors = [c.predicted_error for c in (p.discrete, *p.alternatives)]
    assert errors == sorted(errors) and len(p.alternatives) == 3
    assert p.discrete.predicted_error >= p.optimum.predicted_error


def test_family_menu_is_priced_exactly_at_its_members():
    from scaling.cost.flops import inference_cost

    p = plan(flops=1e13, text_tokens=50, family="qwen1.5", tokens=MENU_TOKENS, cost="exact",
             gpu="h100", top=20)
    fam = setting(None, cost="exact", family="qwen1.5").pricer.family
    assert p.llm_range == fam.hull == (0.5e9, 72e9)        # nominal sizes, as the paper
    for c in (p.discrete, *p.alternatives):
        spec = fam.members[fam.member_names().index(c.llm)]
        ref = inference_cost(spec, encoder="clip-vit-l-14-336", visual_tokens=c.visual_tokens,
                             text_tokens=50, gpu="h100")
        assert c.flops == pytest.approx(ref.flops_total, rel=1e-12)
        assert c.kv_cache_bytes == pytest.approx(ref.kv_cache_bytes, rel=1e-12)
        assert c.latency_s == pytest.approx(ref.latency_s_total, rel=1e-12)
        assert c.flops <= 1e13
    assert p.discrete.llm == "qwen1.5-72b" and p.discrete.visual_tokens == 16


def test_tokens_only_and_sizes_only_menus():
    p = plan(flops=1e13, text_tokens=50, tokens=[1, 16, 576])
    best = {c.visual_tokens: c for c in (p.discrete, *p.alternatives)}
    for v, c in best.items():     # the largest LLM that fits each token count
        assert c.llm_params == pytest.approx(1e13 / (2 * (50 + v)), rel=1e-12)
    p = plan(OCR, flops=1e13, text_tokens=50, sizes=["1B", "7B"])
    for c in (p.discrete, *p.alternatives):   # alpha < beta: as many tokens as the budget allows
        assert c.visual_tokens == pytest.approx(min(576, 1e13 / (2 * c.llm_params) - 50),
                                                rel=1e-6)


def test_actual_law_size_uses_real_parameter_counts():
    from scaling.cost.catalog import llm_family
    from scaling.cost.flops import llm_params

    fam = setting(None, cost="exact", family="qwen1.5", law_size="actual").pricer.family
    np.testing.assert_allclose(fam.law_params, [llm_params(m) for m in llm_family("qwen1.5")])


# ------------------------------------------------------------------ uncertainty
def _bootstrapped(k=200, seed=0):
    rng = np.random.default_rng(seed)
    base = np.array([PAPER_LAW.params[p] for p in ("a", "alpha", "beta", "D")])
    draws = base * (1 + rng.normal(0, [0.02, 0.1, 0.3, 0.1], size=(k, 4)))
    return FittedLaw("product", dict(PAPER_LAW.params), draws=draws, label="bootstrapped")


def test_bootstrap_gives_ci_and_menu_shares():
    law = _bootstrapped()
    p = plan(law, flops=3e12, text_tokens=50, sizes=[1.8e9, 4e9, 7e9], tokens=MENU_TOKENS,
             top=30)
    lo, hi = p.optimum.error_ci
    assert lo < p.optimum.predicted_error < hi
    shares = [c.p_optimal for c in (p.discrete, *p.alternatives)]
    assert sum(shares) == pytest.approx(1.0)
    # the shares are the per-draw argmin, recomputed draw by draw
    feas = [c for c in (p.discrete, *p.alternatives)]
    counts = np.zeros(len(feas))
    for row in law.draws:
        one = FittedLaw("product", dict(zip(("a", "alpha", "beta", "D"), row, strict=True)))
        errs = [one.predict(c.llm_params / 1e9, c.visual_tokens) for c in feas]
        counts[int(np.argmin(errs))] += 1
    np.testing.assert_allclose(shares, counts / len(law.draws))
    across = p.uncertainty["optimum_across_draws"]
    assert across["n_draws"] == 200
    assert across["visual_tokens"]["interval"][0] <= p.optimum.visual_tokens * 1.01


# ------------------------------------------------------------------ frontier
def test_frontier_is_vectorised_plan():
    budgets = np.geomspace(1e9, 1e16, 40)
    f = frontier(None, budgets, text_tokens=50)
    assert not f.feasible[0] and np.isnan(f.llm_params[0])
    for i in (8, 20, 39):
        p = plan(flops=budgets[i], text_tokens=50)
        assert f.llm_params[i] == pytest.approx(p.optimum.llm_params, rel=1e-12)
        assert f.visual_tokens[i] == pytest.approx(p.optimum.visual_tokens, rel=1e-12)
    ok = f.feasible
    assert np.all(np.diff(f.predicted_error[ok]) < 0)       # more budget, less error
    g = frontier(None, budgets, text_tokens=50, method="numeric")
    np.testing.assert_allclose(g.visual_tokens[ok], f.visual_tokens[ok], rtol=1e-6)


def test_optimal_visual_tokens_is_the_paper_formula():
    """V* = beta*Q/(alpha-beta) (Li et al. 2025, sec. 3.3); inf when alpha <= beta."""
    from scaling.law import optimal_visual_tokens

    assert optimal_visual_tokens(0.0768, 0.0157, 50) == pytest.approx(0.0157 * 50 / 0.0611)
    assert optimal_visual_tokens(0.0768, 0.0157, 0) == 0.0
    assert optimal_visual_tokens(0.029, 0.048, 50) == float("inf")
    out = optimal_visual_tokens(np.array([0.08, 0.01]), np.array([0.02, 0.02]), 10)
    assert out[0] == pytest.approx(10 / 3) and np.isinf(out[1])
