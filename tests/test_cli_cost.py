"""``scaling cost`` through Typer's CliRunner, plus one real subprocess run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.cost.flops import inference_cost

runner = CliRunner()

EXAMPLE = ["cost", "--llm", "qwen1.5-7b", "--encoder", "clip-vit-l-14-336", "--visual-tokens",
           "576", "--text-tokens", "50", "--gen-tokens", "128", "--gpu", "h100"]


def run_json(args: list[str]) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_keys_and_values_match_library():
    out = run_json(EXAMPLE)
    ref = inference_cost("qwen1.5-7b", encoder="clip-vit-l-14-336", visual_tokens=576,
                         text_tokens=50, gen_tokens=128, gpu="h100")
    assert out["flops"]["total"] == ref.flops_total
    assert out["flops"]["prefill"] == ref.flops_prefill
    assert out["flops"]["decode"] == ref.flops_decode
    assert out["flops"]["vision"] == ref.flops_vision
    assert out["flops_full_attention"]["total"] == ref.flops_full_attention_total
    assert out["kv_cache_bytes"] == ref.kv_cache_bytes
    assert out["weight_bytes"] == ref.weight_bytes
    assert out["latency_s"]["total"] == pytest.approx(ref.latency_s_total)
    assert out["fits_memory"] is True
    assert out["flops_paper"]["formula"] == "2*N*(Q+V)"
    assert out["flops_paper"]["total"] == 2 * out["params"]["llm"] * (576 + 50)
    assert out["projector"] == "mlp2x_gelu" and out["cost_model"] == "exact"


def test_no_gpu_no_latency_and_encoder_default_tokens():
    out = run_json(["cost", "--llm", "qwen2.5-0.5b", "--encoder", "siglip-so400m-14-384"])
    assert out["visual_tokens"] == 729 and "latency_s" not in out and "fits_memory" not in out


def test_image_size_sets_tokens_and_encoder_resolution():
    out = run_json(["cost", "--llm", "qwen2.5-0.5b", "--encoder", "clip-vit-l-14-336",
                    "--image-size", "224"])
    assert out["visual_tokens"] == 256
    native = run_json(["cost", "--llm", "qwen2.5-0.5b", "--encoder", "clip-vit-l-14-336"])
    assert out["flops"]["encoder"] < native["flops"]["encoder"]


def test_table_output_is_readable():
    result = runner.invoke(app, EXAMPLE)
    assert result.exit_code == 0
    for text in ("FLOPs total (exact)", "FLOPs full attention", "2*N*(Q+V)", "KV cache",
                 "latency total", "fits in 80 GB"):
        assert text in result.stdout


def test_hf_config_llava(tmp_path):
    cfg = {"model_type": "llava", "vision_feature_layer": -2,
           "text_config": {"model_type": "llama", "vocab_size": 32064},
           "vision_config": {"hidden_size": 1024, "image_size": 336, "intermediate_size": 4096,
                             "num_attention_heads": 16, "num_hidden_layers": 24,
                             "patch_size": 14}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = run_json(["cost", "--hf-config", str(tmp_path), "--text-tokens", "20"])
    assert out["visual_tokens"] == 576 and out["encoder"].endswith(":vision")
    assert out["params"]["llm"] == pytest.approx(6.74e9, rel=0.01)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm", "qwen1.5-7x", "--visual-tokens", "4"], "did you mean 'qwen1.5-7b'"),
        (["--llm", "qwen1.5-7b", "--visual-tokens", "0"], "--visual-tokens must be >= 1"),
        (["--llm", "qwen1.5-7b", "--visual-tokens", "-5"], "--visual-tokens must be >= 1"),
        (["--llm", "qwen1.5-7b", "--visual-tokens", "4", "--text-tokens", "-1"],
         "--text-tokens must be >= 0"),
        (["--llm", "qwen1.5-7b", "--visual-tokens", "4", "--batch", "0"], "--batch must be >= 1"),
        (["--llm", "qwen1.5-7b", "--encoder", "clip-vit-l-14-336", "--image-size", "10"],
         "smaller than one 14x14 patch"),
        (["--llm", "qwen1.5-7b", "--encoder", "clip-vit-l-14-999"], "unknown vision encoder"),
        (["--llm", "qwen1.5-7b", "--visual-tokens", "4", "--gpu", "h1000"], "unknown GPU"),
        (["--llm", "qwen1.5-7b", "--visual-tokens", "4", "--gpu", "a100-80gb", "--dtype",
          "fp8"], "no fp8"),
        (["--llm", "qwen1.5-7b"], "give --visual-tokens"),
        (["--visual-tokens", "4"], "exactly one of --llm"),
        (["--llm", "qwen1.5-7b", "--image-size", "336"], "needs --encoder"),
    ],
)
def test_bad_input_exit_2_one_line(args, message):
    result = runner.invoke(app, ["cost", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_malformed_config_json(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": ')
    result = runner.invoke(app, ["cost", "--hf-config", str(bad), "--visual-tokens", "4"])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    bad.write_text('{"model_type": "llama", "hidden_size": 64}')
    result = runner.invoke(app, ["cost", "--hf-config", str(bad), "--visual-tokens", "4"])
    assert result.exit_code == 2 and "no 'num_attention_heads'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_real_command_imports_no_torch_transformers_matplotlib():
    code = (
        "import sys, json\n"
        "from scaling.cli import app\n"
        "try:\n"
        "    app(['cost', '--llm', 'qwen1.5-7b', '--encoder', 'clip-vit-l-14-336',\n"
        "         '--visual-tokens', '576', '--gen-tokens', '8', '--gpu', 'h100', '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY=' + json.dumps(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["flops"]["total"] > 0
    assert "HEAVY=[]" in proc.stderr, proc.stderr
