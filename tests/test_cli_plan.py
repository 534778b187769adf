"""``scaling plan`` through Typer's CliRunner, law files, and a fresh-process import check."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.fit.fitter import FitResult, save_laws
from scaling.law import PAPER_LAW

runner = CliRunner()
MENU = ["--family", "qwen1.5", "--tokens", "1,4,16,36,64,144,576", "--cost", "exact",
        "--gpu", "h100"]


def run(*args):
    return runner.invoke(app, ["plan", *args])


def run_json(*args):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_default_json_contract():
    out = run_json("--flops", "1e13")
    assert out["budget_flops"] == 1e13 and out["cost_model"] == "paper"
    assert set(out["optimum"]) >= {"llm_params", "visual_tokens", "predicted_error", "flops"}
    assert out["text_tokens"] == 50                 # the paper's running example by default
    # the headline is a real catalog model with a whole number of tokens; the continuous
    # optimum is bounded by the largest catalog model of the default family
    d = out["discrete"]
    assert d["llm"] == "qwen1.5-72b" and d["llm_params"] == 72e9 and d["visual_tokens"] == 19
    assert set(d) >= {"llm", "llm_params", "visual_tokens", "predicted_error", "flops"}
    assert out["optimum"]["llm_params"] == 72e9
    assert out["optimum"]["visual_tokens"] == pytest.approx(1e13 / (2 * 72e9) - 50)
    assert out["law"]["label"].startswith("Li et al. 2025")
    q0 = run_json("--flops", "1e13", "--text-tokens", "0", "--llm-range", "1e8:inf")
    assert q0["optimum"]["visual_tokens"] == 1 and q0["optimum"]["llm_params"] == 5e12
    assert q0["discrete"] is None                   # a size range given: no default menu


@pytest.mark.parametrize("form", ["1e13", "10T", "10TFLOP", "10000G"])
def test_flops_forms(form):
    assert run_json("--flops", form)["budget_flops"] == pytest.approx(1e13)


def test_family_menu_json_and_table():
    out = run_json("--flops", "1e13", "--text-tokens", "50", *MENU)
    d = out["discrete"]
    assert set(d) >= {"llm_params", "visual_tokens", "predicted_error", "flops", "kv_cache_bytes",
                      "latency_s", "memory_bytes", "llm"}
    assert d["llm"] == "qwen1.5-72b" and d["llm_params"] == 72e9 and d["flops"] <= 1e13
    assert out["cost_model"] == "exact" and len(out["alternatives"]) == 5
    text = run("--flops", "1e13", "--text-tokens", "50", *MENU).stdout
    assert "qwen1.5-72b" in text and "Runners-up" in text and "Why" in text
    assert text.index("Use") < text.index("Runners-up")        # the answer comes first


@pytest.mark.parametrize(("args", "message"), [
    (["--flops", "2X"], "--flops must look like"),
    (["--flops", "1e9", "--text-tokens", "50"], "smallest feasible budget"),
    (["--flops", "1e13", "--cost", "roofline"], "--cost"),
    ([], "--flops"),
    (["--flops", "1e13", "--family", "nope"], "unknown LLM family"),
    (["--flops", "1e13", "--mix", "a=1"], "--mix needs per-task laws"),
    (["--flops", "1e13", "--max-latency-ms", "5"], "--gpu"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def _fit(params, *, seed=0, label=""):
    rng = np.random.default_rng(seed)
    base = np.array([params[k] for k in ("a", "alpha", "beta", "D")])
    draws = base * (1 + rng.normal(0, 0.05, size=(100, 4)))
    return FitResult(law="product", params=params, draws=draws, label=label, n_points=28,
                     objective=4e-4, data_sha256="0" * 64)


@pytest.fixture
def grouped(tmp_path):
    laws = {"reasoning": _fit(dict(PAPER_LAW.params)),
            "ocr": _fit({"a": 0.8, "alpha": 0.029, "beta": 0.048, "D": 0.1}, seed=1)}
    return save_laws(laws, tmp_path / "tasks.law.json", group_by="task")


def test_law_file_with_draws_gives_ci(tmp_path):
    path = _fit(dict(PAPER_LAW.params)).save(tmp_path / "one.law.json")
    out = run_json("--flops", "1e13", "--text-tokens", "50", "--law", str(path),
                   "--sizes", "1.8B,4B,7B", "--tokens", "1,16,64")
    lo, hi = out["optimum"]["error_ci"]
    assert lo < out["optimum"]["predicted_error"] < hi
    assert out["law"]["draws"] == 100 and out["law"]["label"] == "one.law.json"
    assert sum(c["p_optimal"] for c in out["uncertainty"]["menu_p_optimal"]) <= 1 + 1e-12


def test_grouped_law_file_needs_group_or_mix(grouped):
    result = run("--flops", "1e13", "--law", str(grouped))
    assert result.exit_code == 2 and "--group" in result.stderr
    out = run_json("--flops", "1e13", "--text-tokens", "50", "--law", str(grouped),
                   "--group", "ocr")
    assert out["optimum"]["visual_tokens"] == 576          # alpha < beta
    mix = run_json("--flops", "1e13", "--text-tokens", "50", "--law", str(grouped),
                   "--mix", "reasoning=0.7,ocr=0.3")
    assert mix["gain"] > 0 and set(mix["mix"]["visual_tokens"]) == {"reasoning", "ocr"}
    assert mix["optimum"]["flops"] <= 1e13 * (1 + 1e-9)
    text = runner.invoke(app, ["plan", "--flops", "1e13", "-q", "50", "--law", str(grouped),
                               "--mix", "reasoning=0.7,ocr=0.3"]).stdout
    assert "gain" in text and "reasoning" in text


def test_target_accuracy_cli():
    out = run_json("--target-accuracy", "0.6", "--text-tokens", "50")
    assert out["optimum"]["predicted_error"] == pytest.approx(0.4, abs=1e-6)
    assert out["target_accuracy"] == 0.6


def test_fresh_process_plans_without_torch_or_matplotlib():
    code = (
        "import sys, atexit\n"
        "heavy = ('torch', 'matplotlib', 'transformers', 'pandas', 'pyarrow', 'dask')\n"
        "atexit.register(lambda: print('HEAVY=' + ','.join(m for m in heavy if m in "
        "sys.modules), file=sys.stderr))\n"
        "from scaling.cli import main\n"
        "sys.argv = ['scaling', 'plan', '--flops', '1e13', '--json']\n"
        "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["discrete"]["llm"] == "qwen1.5-72b"
    assert "HEAVY=\n" in proc.stderr or proc.stderr.rstrip().endswith("HEAVY="), proc.stderr
