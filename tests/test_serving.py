"""The serving cost model (scaling.cost.serving): every quantity by hand for one architecture,
the invariants of the steady state, and the published measurements it must not undershoot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling.cost.catalog import LLMS
from scaling.cost.flops import inference_cost
from scaling.cost.serving import serving_cost, tensor_parallel_check, throughput_at
from scaling.errors import ScalingError

DATA = Path(__file__).parent / "data"

# Qwen2.5-7B (config.json: 28 layers, hidden 3584, 28 heads, 4 KV heads, head_dim 128,
# intermediate 18944, vocab 152064, untied, q/k/v bias) on one H100 SXM (80 GB, 3.35 TB/s,
# 989.4 TFLOP/s dense bf16), V = 576, Q = 50, G = 128, bf16, no vision encoder.
N_PARAMS = 7_615_616_512  # Hugging Face numel() of Qwen2.5-7B
F_TOK = 2 * 28 * (2 * 3584 * 3584 + 2 * 3584 * 512 + 3 * 3584 * 18944)  # 13,050,576,896
F_HEAD = 2 * 3584 * 152064  # lm_head, 1,089,994,752
F_PAIR = 4 * 28 * 3584  # per attended (query, key) pair, 401,408
S, G, D = 626, 128, 127
KV_TOK = 2 * 28 * 4 * 128 * 2  # 57,344 bytes per cached token
WEIGHTS = N_PARAMS * 2
RESERVE = 8192 * (4 * 3584 + (3584 + 2 * 512 + 2 * 18944)) * 2 + 1e9  # 1,931,135,488
POOL = 0.9 * 80e9 - WEIGHTS - RESERVE
KV_REQ = 16 * math.ceil((S + G) / 16) * KV_TOK  # 48 blocks = 768 tokens
BATCH = math.floor(POOL / KV_REQ)  # 1245
CTX = S + (D + 1) / 2  # 690: the mean context of the 127 decode steps
F_STEP = F_TOK + F_HEAD + CTX * F_PAIR  # decode FLOPs per request and step
F_PREFILL = S * F_TOK + S * (S + 1) / 2 * F_PAIR + F_HEAD
PEAK, BW = 989.4e12, 3.35e12


def hand() -> dict[str, float]:
    t_comp = BATCH * F_STEP / PEAK
    t_mem = (WEIGHTS - 152064 * 3584 * 2 + BATCH * CTX * KV_TOK) / BW  # embedding rows not read
    t_step = max(t_comp, t_mem)
    t_pre = F_PREFILL / PEAK
    x = 1 / (t_pre + D * t_step / BATCH)
    return {"t_comp": t_comp, "t_mem": t_mem, "t_step": t_step, "t_pre": t_pre, "x": x,
            "tpot": t_step + (BATCH - 1) * t_pre / D}


def qwen7b(**kw):
    args = dict(gpu="h100", visual_tokens=576, text_tokens=50, gen_tokens=128)
    args.update(kw)
    return serving_cost("qwen2.5-7b", **args)


def test_every_quantity_by_hand():
    c, h = qwen7b(usd_per_gpu_hour=2.0), hand()
    assert BATCH == 1245 and KV_REQ == 44_040_192 and F_STEP == 14_417_543_168
    assert c.weight_bytes_per_gpu == WEIGHTS
    assert c.activation_reserve_bytes == RESERVE
    assert c.kv_pool_bytes == pytest.approx(POOL, rel=1e-12)
    assert c.kv_bytes_per_request == KV_REQ
    assert c.max_batch == c.max_batch_memory == BATCH
    assert c.step_compute_s == pytest.approx(h["t_comp"], rel=1e-12)
    assert c.step_memory_s == pytest.approx(h["t_mem"], rel=1e-12)
    assert c.step_s == pytest.approx(h["t_step"], rel=1e-12)
    assert c.prefill_s == c.ttft_s == pytest.approx(h["t_pre"], rel=1e-12)
    assert c.throughput_rps == pytest.approx(h["x"], rel=1e-12)
    assert c.gpu_seconds_per_request == pytest.approx(1 / h["x"], rel=1e-12)
    assert c.tpot_s == pytest.approx(h["tpot"], rel=1e-12)
    assert c.usd_per_million == pytest.approx(1e6 / h["x"] * 2.0 / 3600, rel=1e-12)
    assert c.binding == "compute"  # prefill is most of the GPU time here
    # the decode FLOPs per step are the exact cost model's, spread over the D steps
    ref = inference_cost("qwen2.5-7b", visual_tokens=576, text_tokens=50, gen_tokens=128)
    assert ref.flops_decode / D == pytest.approx(F_STEP, rel=1e-12)
    assert ref.flops_prefill == pytest.approx(F_PREFILL, rel=1e-12)


def test_vision_encoder_adds_its_flops_to_prefill_and_weights():
    with_enc, without = qwen7b(encoder="clip-vit-l-14-336"), qwen7b()
    ref = inference_cost("qwen2.5-7b", encoder="clip-vit-l-14-336", visual_tokens=576,
                         text_tokens=50, gen_tokens=128)
    assert with_enc.prefill_s == pytest.approx((ref.flops_prefill + ref.flops_vision) / PEAK)
    assert with_enc.weight_bytes_per_gpu == ref.weight_bytes > WEIGHTS
    # the encoder's weights take memory (a smaller batch) but are not read by decode steps
    assert with_enc.max_batch < without.max_batch
    b = with_enc.max_batch
    assert with_enc.step_memory_s == pytest.approx(
        (WEIGHTS - 152064 * 3584 * 2 + b * CTX * KV_TOK) / BW, rel=1e-12)


def test_tensor_parallel_shards_weights_and_kv_heads():
    one, two = qwen7b(), qwen7b(gpus=2)
    assert two.weight_bytes_per_gpu == pytest.approx(WEIGHTS / 2)
    assert two.kv_bytes_per_request == pytest.approx(KV_REQ / 2)  # 4 KV heads -> 2 per GPU
    eight = serving_cost("qwen2.5-7b", gpu="h100", gpus=4, visual_tokens=576, text_tokens=50,
                         gen_tokens=128)
    assert eight.kv_bytes_per_request == pytest.approx(KV_REQ / 4)
    assert two.throughput_rps > one.throughput_rps


def test_kv_heads_are_replicated_beyond_their_count():
    # qwen2.5-0.5b: 14 heads, 2 KV heads; on 14 GPUs... use qwen2.5-3b: 16 heads, 2 KV heads
    c = serving_cost("qwen2.5-3b", gpu="h100", gpus=4, visual_tokens=1, text_tokens=15,
                     gen_tokens=16)
    per_tok = 2 * 36 * 1 * 128 * 2  # one KV head per GPU (replicated), not 0.5
    assert c.kv_bytes_per_request == 32 * per_tok


def test_max_batch_caps_and_is_reported_as_binding():
    c = qwen7b(gen_tokens=1024, max_batch=64)
    assert c.max_batch == 64 and c.max_batch_memory > 64 and c.binding == "max-batch"
    free = qwen7b(gen_tokens=1024)
    assert free.binding == "kv-memory" and free.throughput_rps > c.throughput_rps


def test_g1_is_prefill_only():
    c = qwen7b(gen_tokens=1)
    assert math.isnan(c.tpot_s) and c.prefill_share == 1.0
    assert c.gpu_seconds_per_request == pytest.approx(c.prefill_s)


def test_efficiency_factors_scale_times_and_throughput_at_agrees():
    base, slow = qwen7b(gen_tokens=1024), qwen7b(gen_tokens=1024, mfu=0.5, mbu=0.25)
    assert slow.prefill_s == pytest.approx(2 * base.prefill_s)
    assert slow.step_memory_s == pytest.approx(4 * base.step_memory_s)
    assert throughput_at(base, 0.5, 0.25) == pytest.approx(slow.throughput_rps)


# ---------------------------------------------------------------- invariants

NAMES = sorted(LLMS)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(NAMES), q=st.integers(0, 400), g=st.integers(1, 3000),
       gpu=st.sampled_from(["h100", "h200", "a100-80gb", "b200"]),
       gpus=st.sampled_from([1, 2, 4, 8]), util=st.floats(0.5, 1.0))
def test_invariants(name, q, g, gpu, gpus, util):
    spec = LLMS[name]
    if spec.heads % gpus or (spec.kv_heads % gpus and gpus % spec.kv_heads):
        with pytest.raises(ScalingError, match="tensor"):
            tensor_parallel_check(spec, gpus)
        return
    V = np.array([1.0, 4, 16, 64, 144, 256, 576, 1024, 2880])
    c = serving_cost(spec, gpu=gpu, gpus=gpus, visual_tokens=V, text_tokens=q, gen_tokens=g,
                     gpu_memory_utilization=util, strict=False)
    x, gs, b = (np.asarray(a) for a in (c.throughput_rps, c.gpu_seconds_per_request,
                                        c.max_batch))
    ok = b >= 1
    # GPU-seconds x throughput = GPUs
    np.testing.assert_allclose(gs[ok] * x[ok], gpus, rtol=1e-12)
    # batch x KV per request <= KV pool
    used = b * np.asarray(c.kv_bytes_per_request)
    assert np.all(used[ok] <= np.asarray(c.kv_pool_bytes)[ok] + 1e-3)
    assert np.all(x[~ok] == 0) and np.all(np.isinf(gs[~ok]))
    # decode tokens/s <= the compute roofline T P / F_step and the bandwidth roofline
    # (weights read once per step at least)
    f_step = np.asarray(inference_cost(spec, visual_tokens=V, text_tokens=q,
                                       gen_tokens=g).flops_decode) / max(g - 1, 1)
    from scaling.cost.hardware import get_gpu
    spec_gpu = get_gpu(gpu)
    tok_s = np.asarray(c.decode_tokens_per_s)
    if g > 1:
        assert np.all(tok_s[ok] <= gpus * spec_gpu.peak_flops("bf16") / f_step[ok] * (1 + 1e-9))
        assert np.all(np.asarray(c.step_s)[ok] >= np.asarray(c.step_memory_s)[ok])
    # more visual tokens never raise throughput
    assert np.all(np.diff(x) <= 1e-9 * x[:-1])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gpus": 3}, "do not divide its 28 attention heads"),
    ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization must be in (0, 1]"),
    ({"gpu_memory_utilization": 0.0}, "gpu_memory_utilization must be in (0, 1]"),
    ({"mfu": 0.0}, "mfu must be in (0, 1]"),
    ({"max_batch": 0}, "max_batch must be an integer >= 1"),
    ({"usd_per_gpu_hour": -1.0}, "usd_per_gpu_hour must be > 0"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ScalingError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("]", r"\]")):
        qwen7b(**kwargs)


def test_model_that_does_not_fit_says_how_much_it_needs():
    with pytest.raises(ScalingError, match=r"qwen2.5-72b does not fit on 1 x h100 even at batch "
                                           r"1: it needs 1[45]\d\.\d GB per GPU"):
        serving_cost("qwen2.5-72b", gpu="h100", visual_tokens=576, text_tokens=50,
                     gen_tokens=128)
    ok = serving_cost("qwen2.5-72b", gpu="h100", gpus=4, visual_tokens=576, text_tokens=50,
                      gen_tokens=128)
    assert ok.max_batch >= 1


# ---------------------------------------------------------------- published measurements


def published() -> list[dict]:
    return json.loads((DATA / "published_serving.json").read_text())["measurements"]


def predict(m: dict, **kw):
    cap = m["max_batch"] if m["max_batch"] is not None else m["num_requests"]
    return serving_cost(m["llm"], gpu=m["gpu"], gpus=m["gpus"], visual_tokens=0,
                        text_tokens=m["input_tokens"], gen_tokens=m["output_tokens"],
                        dtype=m["dtype"], kv_dtype=m["kv_dtype"], max_batch=cap,
                        gpu_memory_utilization=m["gpu_memory_utilization"], **kw)


def test_roofline_never_predicts_below_a_published_measurement():
    rows = published()
    assert len(rows) >= 2 and {r["source"].split(",")[0] for r in rows} >= {
        "vLLM pull request #7117", "TensorRT-LLM docs"}
    for m in rows:
        assert predict(m).throughput_rps >= m["requests_per_second"], m["id"]


def test_calibrating_on_one_published_point_reproduces_it():
    from scaling.cost.calibration import Measurement, calibrate

    m = next(r for r in published() if r["id"] == "trtllm-llama3.1-8b-fp8-h100-1000-1000")
    run = Measurement(m["requests_per_second"], m["input_tokens"], m["output_tokens"],
                      m["num_requests"])
    cal = calibrate([run], llm=m["llm"], gpu="h100", dtype="fp8", kv_dtype="fp8",
                    gpu_memory_utilization=0.95)
    assert cal.predicted_rps_after[0] == pytest.approx(m["requests_per_second"], rel=0.01)
    assert 0 < cal.mfu <= 1 and 0 < cal.mbu <= 1
