"""Task mix: one LLM, per-task token counts, the same average FLOPs.

The OCR-like law uses the paper's OCR exponents (alpha 0.029 < beta 0.048, Li et al. 2025),
with illustrative a and D.
"""

import numpy as np
import pytest

from scaling.errors import ScalingError
from scaling.law import PAPER_LAW, FittedLaw
from scaling.planner.answer import plan
from scaling.planner.mix import parse_mix, plan_mix

OCR = FittedLaw("product", {"a": 0.8, "alpha": 0.029, "beta": 0.048, "D": 0.1}, label="ocr")
LAWS = {"reasoning": PAPER_LAW, "ocr": OCR}


def test_parse_mix_normalises_and_rejects_bad_forms():
    assert parse_mix("reasoning=7,ocr=3") == pytest.approx({"reasoning": 0.7, "ocr": 0.3})
    for bad in ("reasoning", "a=1,a=2", "a=-1", "a=x", "=1", "a=0"):
        with pytest.raises(ScalingError, match="--mix"):
            parse_mix(bad)
    with pytest.raises(ScalingError, match="lacks"):
        plan_mix(LAWS, "reasoning=0.5,chart=0.5", flops=1e13)


def test_identical_tasks_gain_nothing_and_match_the_plan():
    m = plan_mix({"a": PAPER_LAW, "b": PAPER_LAW}, "a=0.7,b=0.3", flops=1e13, text_tokens=50)
    p = plan(flops=1e13, text_tokens=50)
    assert m.gain == pytest.approx(0.0, abs=1e-12)
    assert m.visual_tokens["a"] == pytest.approx(p.optimum.visual_tokens, rel=1e-6)
    assert m.llm_params == pytest.approx(p.optimum.llm_params, rel=1e-6)


def test_reasoning_plus_ocr_mix_gains_and_is_not_beaten_by_a_grid():
    C, Q = 1e13, 50
    m = plan_mix(LAWS, "reasoning=0.7,ocr=0.3", flops=C, text_tokens=Q)
    assert m.gain > 1e-3                                  # per-task tokens help
    assert m.visual_tokens["ocr"] > m.visual_tokens["reasoning"]
    assert m.flops <= C * (1 + 1e-9)
    w = np.array([0.7, 0.3])
    # brute force: for each LLM size on a grid and each reasoning token count, the OCR task
    # gets whatever tokens the average budget leaves (error falls with tokens)
    N = np.geomspace(1e9, 2e11, 600)[:, None]
    Vr = np.geomspace(1, 576, 600)[None]
    Vo = np.clip((C / (2 * N) - Q - w[0] * Vr) / w[1], 0, 576)
    ok = (Vo >= 1) & (2 * N * (Q + w[0] * Vr + w[1] * np.maximum(Vo, 1)) <= C * (1 + 1e-12))
    E = np.where(ok, w[0] * PAPER_LAW.predict(N / 1e9, Vr)
                 + w[1] * OCR.predict(N / 1e9, np.maximum(Vo, 1)), np.inf)
    assert m.expected_error <= E.min() + 1e-9
    assert m.expected_error < m.single_expected_error


def test_a_single_task_mix_is_the_plain_optimum():
    m = plan_mix(LAWS, "ocr=1", flops=1e14, text_tokens=50)
    p = plan(OCR, flops=1e14, text_tokens=50)
    assert m.visual_tokens["ocr"] == pytest.approx(p.optimum.visual_tokens, rel=1e-6)
    assert m.expected_error == pytest.approx(p.optimum.predicted_error, rel=1e-9)


def test_mix_under_exact_cost_stays_in_budget():
    m = plan_mix(LAWS, "reasoning=0.5,ocr=0.5", flops=2e13, text_tokens=50, cost="exact",
                 family="qwen1.5")
    assert m.flops <= 2e13 * (1 + 1e-9)
    assert 0.5e9 <= m.llm_params <= 72e9
    assert m.gain >= 0
