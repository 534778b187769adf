"""The cost model: golden values, invariants, vectorisation and property tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling.cost.catalog import LLMS, get_encoder, get_llm, llm_family
from scaling.cost.flops import (
    encoder_flops,
    inference_cost,
    llm_params,
    paper_flops,
    projector_flops,
)
from scaling.cost.hardware import GPUS, get_gpu
from scaling.cost.specs import stack_llms
from scaling.errors import ScalingError

CLIP = get_encoder("clip-vit-l-14-336")


def test_paper_flops_golden():
    # Li et al. 2025: FLOPs = 2 N (Q + V); 7B, Q = 50, V = 576
    assert paper_flops(7e9, 576, 50) == 2 * 7e9 * 626
    np.testing.assert_array_equal(paper_flops(1e9, np.array([1, 4]), 0), [2e9, 8e9])
    c = inference_cost("qwen1.5-7b", visual_tokens=576, text_tokens=50)
    assert c.flops_paper == paper_flops(llm_params("qwen1.5-7b"), 576, 50)


def test_qwen15_7b_prefill_golden_by_hand():
    """Prefill of S = 626 tokens for Qwen1.5-7B, written out term by term."""
    L, h, inter, vocab, S = 32, 4096, 11008, 151936, 626
    per_token = 2 * L * (4 * h * h + 3 * h * inter)  # q,k,v,o (MHA) + gate, up, down
    pairs = S * (S + 1) // 2
    attention = 2 * 2 * L * h * pairs  # QK^T and AV over causal pairs
    lm_head = 2 * h * vocab  # last position only
    c = inference_cost("qwen1.5-7b", visual_tokens=576, text_tokens=50)
    assert c.flops_prefill == S * per_token + attention + lm_head
    assert c.flops_decode == 0 and c.flops_vision == 0
    assert c.flops_full_attention_total == S * per_token + 4 * L * h * S * S + S * lm_head


def test_decode_closed_form_equals_step_sum():
    spec = get_llm("qwen2.5-7b")
    S, G = 300, 17
    step = [inference_cost(spec, visual_tokens=S + j, text_tokens=0).flops_prefill
            - inference_cost(spec, visual_tokens=S + j - 1, text_tokens=0).flops_prefill
            for j in range(1, G)]  # adding token S+j to a causal prefill = one decode step
    lm_head = 2 * spec.hidden * spec.vocab
    c = inference_cost(spec, visual_tokens=S, gen_tokens=G)
    assert c.flops_decode == pytest.approx(sum(step) + (G - 1) * lm_head, rel=1e-12)
    assert c.cached_tokens == S + G - 1


def test_kv_cache_bytes_golden():
    # 2 (K and V) * L * kv_heads * head_dim * bytes * tokens * batch
    c = inference_cost("llama-3.1-8b", visual_tokens=576, text_tokens=24, batch=4)
    assert c.kv_cache_bytes == 2 * 32 * 8 * 128 * 2 * 600 * 4
    c8 = inference_cost("llama-3.1-8b", visual_tokens=576, text_tokens=24, batch=4,
                        dtype="bf16", kv_dtype="fp8")
    assert c8.kv_cache_bytes == c.kv_cache_bytes / 2


def test_batch_scales_flops_linearly_not_weights():
    one = inference_cost("qwen2.5-3b", encoder=CLIP, visual_tokens=64, text_tokens=30,
                         gen_tokens=10)
    four = inference_cost("qwen2.5-3b", encoder=CLIP, visual_tokens=64, text_tokens=30,
                          gen_tokens=10, batch=4)
    assert four.flops_total == pytest.approx(4 * one.flops_total)
    assert four.kv_cache_bytes == 4 * one.kv_cache_bytes
    assert four.weight_bytes == one.weight_bytes


def test_vision_encoder_and_projector():
    c = inference_cost("vicuna-7b", encoder=CLIP, visual_tokens=576, text_tokens=10)
    assert c.projector == "mlp2x_gelu"
    assert c.flops_encoder == encoder_flops(CLIP) == encoder_flops(CLIP, layers=23)
    assert c.flops_projector == 2 * 576 * (1024 * 4096 + 4096 * 4096)
    assert c.flops_vision == c.flops_encoder + c.flops_projector
    assert c.flops_total == c.flops_vision + c.flops_prefill + c.flops_decode
    # fewer tokens: the paper's compressor is chosen and costs more than the MLP on V tokens
    small = inference_cost("vicuna-7b", encoder=CLIP, visual_tokens=16, text_tokens=10)
    assert small.projector == "conv_attn"
    assert small.flops_projector > projector_flops("avgpool", encoder=CLIP, llm_hidden=4096,
                                                   visual_tokens=16)
    # anyres: 5 crops run the encoder 5 times
    crops = inference_cost("vicuna-7b", encoder=CLIP, visual_tokens=2928, crops=5)
    assert crops.flops_encoder == 5 * encoder_flops(CLIP)
    assert crops.flops_projector == 2 * 2880 * (1024 * 4096 + 4096 * 4096)


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu", "avgpool", "conv_attn", "queries"])
def test_projector_kinds_positive_and_monotone(kind):
    v = np.array([1, 4, 16, 64, 144, 576])
    f = projector_flops(kind, encoder=CLIP, llm_hidden=4096, visual_tokens=v)
    assert np.all(f > 0) and np.all(np.diff(f) >= 0)


def test_stacked_llms_equal_one_by_one():
    specs = list(LLMS.values())
    stack = stack_llms(specs)
    v = np.arange(len(specs)) * 37 + 1
    many = inference_cost(stack, encoder=CLIP, visual_tokens=v, text_tokens=50, gen_tokens=20,
                          gpu="h100")
    for i, spec in enumerate(specs):
        one = inference_cost(spec, encoder=CLIP, visual_tokens=int(v[i]), text_tokens=50,
                             gen_tokens=20, gpu="h100")
        for field in ("flops_total", "flops_full_attention_total", "kv_cache_bytes",
                      "weight_bytes", "latency_s_total", "flops_paper"):
            assert getattr(many, field)[i] == pytest.approx(getattr(one, field), rel=1e-12)


def test_grid_broadcasting_over_tokens_and_llms():
    stack = stack_llms(llm_family("qwen1.5"))
    grid = inference_cost(stack.take(np.arange(7)[:, None]), visual_tokens=[[1, 16, 576]],
                          text_tokens=50)
    assert grid.flops_total.shape == (7, 3)
    assert np.all(np.diff(grid.flops_total, axis=0) > 0)  # bigger LLM, more FLOPs
    assert np.all(np.diff(grid.flops_total, axis=1) > 0)  # more tokens, more FLOPs


def test_roofline_decode_is_memory_bound_and_prefill_compute_bound():
    gpu = get_gpu("h100")
    spec = get_llm("qwen1.5-7b")
    c1 = inference_cost(spec, visual_tokens=576, text_tokens=50, gen_tokens=1, gpu=gpu)
    c2 = inference_cost(spec, visual_tokens=576, text_tokens=50, gen_tokens=2, gpu=gpu)
    step = c2.latency_s_decode - c1.latency_s_decode
    # one step reads every weight matrix except the input embedding, plus the KV cache
    weights = (llm_params(spec) - spec.vocab * spec.hidden) * 2
    assert step == pytest.approx((weights + c1.kv_cache_bytes) / gpu.hbm_bytes_per_s, rel=0.01)
    # a long prefill runs near peak: FLOPs / peak <= time, within 10% (the lm_head of the
    # last position and the attention ops are memory-bound)
    ideal = c1.flops_prefill / gpu.peak_flops("bf16")
    assert ideal <= c1.latency_s_prefill <= 1.1 * ideal
    no_gpu = inference_cost(spec, visual_tokens=576)
    assert np.isnan(no_gpu.latency_s_total) and no_gpu.fits_memory is None


def test_fits_memory():
    big = get_llm("qwen1.5-72b")  # ~145 GB of bf16 weights
    assert not inference_cost(big, visual_tokens=576, gpu="h100").fits_memory
    assert inference_cost(big, visual_tokens=576, gpu="b200").fits_memory
    assert inference_cost(big, visual_tokens=576, gpu="h100", dtype="fp8").fits_memory


def test_hardware_table():
    assert set(GPUS) == {"h100", "h200", "a100-80gb", "l40s", "rtx4090", "b200"}
    assert get_gpu("H100").peak_flops("bf16") == pytest.approx(989.4e12)
    assert get_gpu("h200").hbm_bytes_per_s == 4.8e12
    with pytest.raises(ScalingError, match="no fp8"):
        get_gpu("a100-80gb").peak_flops("fp8")
    with pytest.raises(ScalingError, match="did you mean 'h100'"):
        get_gpu("h10")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"visual_tokens": -1}, "visual_tokens must be a finite number >= 0"),
        ({"visual_tokens": 10, "text_tokens": float("nan")}, "text_tokens"),
        ({"visual_tokens": 0, "text_tokens": 0}, "prompt is empty"),
        ({"visual_tokens": 10, "batch": 0}, "batch must be"),
        ({"visual_tokens": 10, "dtype": "fp4"}, "unknown dtype"),
        ({"visual_tokens": 600, "encoder": "clip-vit-l-14-336", "projector": "avgpool"},
         "exceeds the 576 patch tokens"),
        ({"visual_tokens": 10, "projector": "mlp2x_gelu"}, "needs an encoder"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ScalingError, match=match):
        inference_cost("qwen1.5-0.5b", **kwargs)


def test_bad_token_in_array_is_named():
    with pytest.raises(ScalingError, match=r"got -3 \(entry 2\)"):
        inference_cost("qwen1.5-0.5b", visual_tokens=np.array([1, 2, -3]))


tokens = st.integers(0, 5000)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(name=st.sampled_from(sorted(LLMS)), v=st.integers(1, 5000), q=tokens, g=tokens,
       b=st.integers(1, 64), d=st.integers(1, 500), which=st.sampled_from(["v", "q", "g", "b"]),
       enc=st.sampled_from([None, "clip-vit-l-14-336", "siglip-so400m-14-384"]))
def test_costs_finite_nonnegative_monotone(name, v, q, g, b, d, which, enc):
    base = dict(visual_tokens=v, text_tokens=q, gen_tokens=g, batch=b)
    more = dict(base)
    more[{"v": "visual_tokens", "q": "text_tokens", "g": "gen_tokens", "b": "batch"}[which]] += d
    kw = dict(encoder=enc, projector="conv_attn" if enc else None, gpu="h100")
    if enc:  # keep the compressor's output within its input
        patches = get_encoder(enc).patches
        base["visual_tokens"] = min(base["visual_tokens"], patches - 1)
        more["visual_tokens"] = min(more["visual_tokens"], patches)
    lo = inference_cost(name, **kw, **base)
    hi = inference_cost(name, **kw, **more)
    # conv_attn's depthwise kernel covers n/V patches, so its weights shrink as V grows:
    # weights (and memory) are monotone in every token count except that one
    skip = ("weight_bytes", "memory_bytes") if enc and which == "v" else ()
    for f in dataclasses.fields(lo):
        a, z = getattr(lo, f.name), getattr(hi, f.name)
        if f.name in skip:
            continue
        if isinstance(a, float) and f.name.startswith(("flops", "kv", "memory", "latency")):
            assert np.isfinite(a) and a >= 0, f.name
            assert z >= a * (1 - 1e-12), (f.name, a, z)
    assert lo.flops_full_attention_total >= lo.flops_prefill + lo.flops_decode


@settings(max_examples=40, deadline=None, derandomize=True)
@given(v=st.floats(0.5, 1e5), q=st.floats(0, 1e4), g=st.floats(0, 1e4))
def test_non_integer_tokens_are_priced_smoothly(v, q, g):
    # the planner prices continuous optima; no integer rounding inside
    c = inference_cost("qwen2.5-1.5b", visual_tokens=v, text_tokens=q, gen_tokens=g)
    assert np.isfinite(c.flops_total) and c.flops_total > 0
    assert c.flops_prefill <= c.flops_total
