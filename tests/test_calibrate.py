"""``scaling calibrate`` and scaling.cost.calibration: vLLM's real result formats, the mfu/mbu
fit (recovers known factors), hardware profiles, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.cost.calibration import (
    Measurement,
    calibrate,
    load_profile,
    read_vllm_benchmark,
    write_profile,
)
from scaling.cost.serving import serving_cost, throughput_at
from scaling.errors import ScalingError

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def test_reads_vllm_bench_throughput_json():
    m = read_vllm_benchmark(DATA / "vllm_bench_throughput.json", output_len=256)
    assert (m.kind, m.requests_per_second, m.num_requests) == ("vllm-throughput", 24.32, 1000)
    assert (m.input_tokens, m.output_tokens) == (256, 256)  # 512000 tokens / 1000 - 256
    with pytest.raises(ScalingError, match="give --output-len"):
        read_vllm_benchmark(DATA / "vllm_bench_throughput.json")
    with pytest.raises(ScalingError, match="do not match"):
        read_vllm_benchmark(DATA / "vllm_bench_throughput.json", input_len=100, output_len=256)


def test_reads_vllm_bench_serve_json():
    m = read_vllm_benchmark(DATA / "vllm_bench_serve.json")
    assert m.kind == "vllm-serve" and m.requests_per_second == 32.42
    assert m.input_tokens == pytest.approx(229.711) and m.output_tokens == pytest.approx(203.068)


@pytest.mark.parametrize("content", [
    '{"law": "product", "params": {"a": 1}}',  # another tool's JSON
    '[{"benchmark": {"name": "vLLM benchmark"}}]',  # the .pytorch.json list
    "accuracy,visual_tokens\n0.5,4\n",  # not JSON at all
])
def test_other_formats_are_refused(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(ScalingError, match="vLLM benchmark|not JSON"):
        read_vllm_benchmark(path, output_len=10)
    result = runner.invoke(app, ["calibrate", str(path), "--gpu", "h100", "--llm",
                                 "llama-3.1-8b", "--output-len", "10"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output


def synthetic(mfu: float, mbu: float, shapes) -> list[Measurement]:
    out = []
    for inp, outp in shapes:
        c = serving_cost("llama-3.1-8b", gpu="h100", visual_tokens=0, text_tokens=inp,
                         gen_tokens=outp, max_batch=4096)
        out.append(Measurement(float(throughput_at(c, mfu, mbu)), inp, outp, 4096))
    return out


def test_two_regimes_recover_both_factors():
    # 2048/2 is prefill (compute) bound, 128/4096 decode bound by KV memory and bandwidth
    runs = synthetic(0.55, 0.8, [(2048, 2), (128, 4096)])
    cal = calibrate(runs, llm="llama-3.1-8b", gpu="h100")
    assert cal.identified == "both"
    assert cal.mfu == pytest.approx(0.55, rel=0.02) and cal.mbu == pytest.approx(0.8, rel=0.02)


def test_one_regime_gives_a_common_factor_and_fixing_one_fits_the_other():
    runs = synthetic(0.5, 0.5, [(128, 4096)])
    cal = calibrate(runs, llm="llama-3.1-8b", gpu="h100")
    assert cal.identified.startswith("common factor")
    assert cal.predicted_rps_after[0] == pytest.approx(runs[0].requests_per_second, rel=0.01)
    fixed = calibrate(synthetic(0.9, 0.4, [(128, 4096)]), llm="llama-3.1-8b", gpu="h100",
                      mfu=0.9)
    assert fixed.mfu == 0.9 and fixed.mbu == pytest.approx(0.4, rel=0.02)


def test_cli_writes_a_profile_that_cost_applies(tmp_path):
    prof = tmp_path / "h100.json"
    result = runner.invoke(app, ["calibrate", str(DATA / "vllm_bench_throughput.json"),
                                 "--gpu", "h100", "--llm", "llama-3.1-8b", "--output-len", "256",
                                 "--max-batch", "256", "-o", str(prof), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["kind"] == "scaling.hardware_profile" and out["gpu"] == "h100"
    assert out["predicted_rps_before"][0] > out["measured_rps"][0]  # the roofline is a bound
    assert out["predicted_rps_after"][0] == pytest.approx(24.32, rel=0.01)
    data = load_profile(prof, gpu="h100")
    assert data["mfu"] == pytest.approx(out["mfu"])
    cost = runner.invoke(app, ["cost", "--llm", "llama-3.1-8b", "--visual-tokens", "1",
                               "--text-tokens", "255", "--gen-tokens", "256", "--gpu", "h100",
                               "--serving", "--max-batch", "256", "--hardware-profile",
                               str(prof), "--json"])
    assert cost.exit_code == 0, cost.output
    assert json.loads(cost.stdout)["serving"]["throughput_rps"] == pytest.approx(24.32, rel=0.01)
    wrong = runner.invoke(app, ["cost", "--llm", "llama-3.1-8b", "--visual-tokens", "1",
                                "--gpu", "h200", "--serving", "--hardware-profile", str(prof)])
    assert wrong.exit_code == 2 and "fitted on 'h100'" in wrong.stderr


def test_profile_roundtrip_and_bad_profiles(tmp_path):
    runs = synthetic(0.5, 0.5, [(128, 4096)])
    cal = calibrate(runs, llm="llama-3.1-8b", gpu="h100")
    path = write_profile(tmp_path / "p.json", cal)
    assert load_profile(path)["mbu"] == pytest.approx(cal.mbu)
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "scaling.hardware_profile", "gpu": "h100", "mfu": 1.5, "mbu": 1}')
    with pytest.raises(ScalingError, match=r"mfu must be in \(0, 1\]"):
        load_profile(bad)
    bad.write_text('{"mfu": 0.5}')
    with pytest.raises(ScalingError, match="is not a hardware profile"):
        load_profile(bad)
