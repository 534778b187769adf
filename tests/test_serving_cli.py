"""``scaling cost --serving``, token counting options and ``scaling plan --cost serving``
through Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.cost.serving import serving_cost
from scaling.planner.serving import plan_serving

runner = CliRunner()
SERVE = ["cost", "--llm", "qwen2.5-7b", "--encoder", "clip-vit-l-14-336", "--visual-tokens",
         "576", "--text-tokens", "50", "--gen-tokens", "128", "--gpu", "h100", "--serving"]


def run_json(args: list[str]) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cost_serving_json_has_the_design_keys_and_library_values():
    out = run_json([*SERVE, "--gpu-hour-usd", "2.5"])["serving"]
    for key in ("max_batch", "kv_pool_bytes", "kv_bytes_per_request", "throughput_rps",
                "gpu_seconds_per_request", "ttft_s", "tpot_s", "gpus", "usd_per_million"):
        assert key in out
    ref = serving_cost("qwen2.5-7b", gpu="h100", encoder="clip-vit-l-14-336",
                       visual_tokens=576, text_tokens=50, gen_tokens=128, usd_per_gpu_hour=2.5)
    assert out["throughput_rps"] == ref.throughput_rps and out["gpus"] == 1
    assert out["usd_per_million"] == pytest.approx(ref.usd_per_million)
    assert "usd_per_million" not in run_json(SERVE)["serving"]


def test_cost_serving_table():
    result = runner.invoke(app, SERVE)
    assert result.exit_code == 0 and "KV pool per GPU" in result.stdout
    assert "req/s" in result.stdout and "TPOT" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--gpus", "3"], "3 GPUs do not divide its 28 attention heads"),
    (["--gpu-memory-utilization", "1.2"], "gpu_memory_utilization must be in (0, 1]"),
    (["--gpu-memory-utilization", "0"], "gpu_memory_utilization must be in (0, 1]"),
    (["--mbu", "2"], "mbu must be in (0, 1]"),
    (["--max-batch", "0"], "max_batch must be an integer >= 1"),
])
def test_cost_serving_bad_input(args, message):
    result = runner.invoke(app, [*SERVE, *args])
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_cost_serving_model_too_big_and_missing_gpu():
    big = runner.invoke(app, ["cost", "--llm", "qwen2.5-72b", "--visual-tokens", "576",
                              "--gen-tokens", "128", "--gpu", "h100", "--serving"])
    assert big.exit_code == 2 and "does not fit on 1 x h100 even at batch 1" in big.stderr
    assert "GB per GPU" in big.stderr and len(big.stderr.strip().splitlines()) == 1
    nogpu = runner.invoke(app, ["cost", "--llm", "qwen2.5-7b", "--visual-tokens", "4",
                                "--serving"])
    assert nogpu.exit_code == 2 and "--serving needs --gpu" in nogpu.stderr
    stray = runner.invoke(app, ["cost", "--llm", "qwen2.5-7b", "--visual-tokens", "4",
                                "--gpus", "2"])
    assert stray.exit_code == 2 and "need --serving" in stray.stderr


# ---------------------------------------------------------------- token counting


def tokens(*args: str) -> dict:
    return run_json(["cost", "--llm", "qwen2.5-7b", "--encoder", "clip-vit-l-14-336", *args])


def test_image_size_672_uses_llava_next_anyres():
    out = tokens("--image-size", "672")
    assert out["visual_tokens"] == 576 + 2304 + 48 == 2928 and out["crops"] == 5
    native = tokens("--image-size", "672", "--tiling", "native")
    assert native["visual_tokens"] == 2304 and native["crops"] == 1
    one = tokens("--image-size", "336")  # 5 crops cost 5 encoder passes at 336 px
    assert out["flops"]["encoder"] == pytest.approx(5 * one["flops"]["encoder"])


def test_non_square_image_is_width_x_height():
    wide = tokens("--image-size", "1344x672")  # canvas 336x672: 2 tiles + the base image
    assert wide["visual_tokens"] == 576 + 1152 + 24 and wide["crops"] == 3
    tall = tokens("--image-size", "672x1344")
    assert tall["crops"] == 3 and tall["visual_tokens"] == 576 + 1152 + 48


def test_video_frames_multiply_tokens_and_crops():
    video = tokens("--visual-tokens", "144", "--frames", "8")
    assert video["visual_tokens"] == 1152 and video["crops"] == 8 and video["frames"] == 8
    tiled = tokens("--image-size", "672", "--frames", "2")
    assert tiled["visual_tokens"] == 2 * 2928 and tiled["crops"] == 10


@pytest.mark.parametrize(("args", "message"), [
    (["--image-size", "672xabc"], "image size must be PIXELS or WIDTHxHEIGHT"),
    (["--image-size", "0x336"], "sides >= 1 px"),
    (["--image-size", "1344x672", "--tiling", "native"], "use --tiling anyres"),
    (["--image-size", "336", "--tiling", "tiles"], "tiling must be one of"),
    (["--visual-tokens", "4", "--frames", "0"], "--frames must be >= 1"),
])
def test_token_options_bad_input(args, message):
    result = runner.invoke(app, ["cost", "--llm", "qwen2.5-7b", "--encoder", "clip-vit-l-14-336",
                                 *args])
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the serving planner


def test_plan_serving_agrees_with_flops_at_g1_and_parts_at_long_generations():
    short = plan_serving(gpu="h100", text_tokens=50, gen_tokens=1, gpu_seconds=0.02)
    assert (short.choice.llm, short.choice.visual_tokens) == (
        short.flop_optimum.llm, short.flop_optimum.visual_tokens)
    long = plan_serving(gpu="h100", text_tokens=50, gen_tokens=1024, gpu_seconds=0.02)
    c, f = long.choice, long.flop_optimum
    assert (c.llm, c.visual_tokens) != (f.llm, f.visual_tokens)
    assert f.predicted_error < c.predicted_error  # the FLOP pick is better... on paper
    assert f.gpu_seconds_per_request > 0.02 >= c.gpu_seconds_per_request  # but over budget
    assert "kv-memory" in (c.binding, f.binding) and "KV" in long.why


def test_plan_serving_tpot_objective_is_met_by_a_smaller_batch():
    free = plan_serving(gpu="h100", text_tokens=50, gen_tokens=1024, gpu_seconds=0.05)
    slo = plan_serving(gpu="h100", text_tokens=50, gen_tokens=1024, gpu_seconds=0.05,
                       max_tpot_ms=10)
    assert slo.choice.tpot_s * 1e3 <= 10 < free.choice.tpot_s * 1e3
    assert slo.choice.llm == free.choice.llm and slo.choice.max_batch < free.choice.max_batch
    assert slo.choice.binding == "max-batch" and "TPOT objective" in slo.why
    tight = plan_serving(gpu="h100", text_tokens=50, gen_tokens=1024, gpu_seconds=0.05,
                         max_tpot_ms=5)
    assert tight.choice.predicted_error > free.choice.predicted_error


def test_plan_serving_throughput_target():
    p = plan_serving(gpu="h100", text_tokens=50, gen_tokens=128, throughput=100, gpus=8)
    assert p.choice.capacity_rps >= 100
    bigger = plan_serving(gpu="h100", text_tokens=50, gen_tokens=128, throughput=10, gpus=8)
    assert bigger.choice.predicted_error <= p.choice.predicted_error


def test_plan_cost_serving_cli_json_and_errors():
    out = run_json(["plan", "--cost", "serving", "--gpu", "h100", "--usd-per-million", "20",
                    "--gpu-hour-usd", "2.5", "--text-tokens", "50", "--gen-tokens", "128"])
    assert out["cost_model"] == "serving" and out["discrete"]["usd_per_million"] <= 20
    assert out["flop_optimum"]["llm"] and out["why"]
    low = runner.invoke(app, ["plan", "--cost", "serving", "--gpu", "h100", "--gpu-seconds",
                              "1e-5", "--gen-tokens", "128"])
    assert low.exit_code == 2 and "the cheapest feasible is qwen2.5-0.5b" in low.stderr
    assert len(low.stderr.strip().splitlines()) == 1
    for args, message in ((["--gpu-seconds", "0.1", "--flops", "1e13"], "not --flops"),
                          (["--throughput", "10"], "--throughput needs --gpus"),
                          (["--usd-per-million", "5"], "needs --gpu-hour-usd"),
                          ([], "give one serving budget")):
        r = runner.invoke(app, ["plan", "--cost", "serving", "--gpu", "h100", *args])
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)
    stray = runner.invoke(app, ["plan", "--flops", "1e13", "--gpu-seconds", "1"])
    assert stray.exit_code == 2 and "belong to --cost serving" in stray.stderr


def test_plot_frontier_cost_serving(tmp_path):
    out = tmp_path / "serving.png"
    result = runner.invoke(app, ["plot", "frontier", "--cost", "serving", "--gpu", "h100",
                                 "--text-tokens", "50", "--gen-tokens", "1,1024", "--budget",
                                 "0.01", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert out.stat().st_size > 10_000 and summary["cost_model"] == "serving"
    assert len(summary["panels"]) == 2 and all(p["frontier"] for p in summary["panels"])
    short, long = (p["optima"] for p in summary["panels"])
    assert short[0]["visual_tokens"] == short[1]["visual_tokens"]  # G = 1: the planners agree
    assert long[0]["visual_tokens"] < long[1]["visual_tokens"]  # G = 1024: serving takes fewer
    bad = runner.invoke(app, ["plot", "isoflop", "--cost", "serving", "-o", str(out)])
    assert bad.exit_code == 2 and "frontier only" in bad.stderr
