"""`scaling fit` through Typer's CliRunner, plus the real console script once."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.fit.fitter import load_laws

ROOT = Path(__file__).parents[1]
PAPER = str(ROOT / "sweeps" / "li2025_visual_reasoning.csv")
runner = CliRunner()


def test_fit_json_has_design_keys(tmp_path):
    out = tmp_path / "paper.law.json"
    res = runner.invoke(app, ["fit", PAPER, "--law", "product", "--loss", "sse",
                              "--bootstrap", "200", "--seed", "3", "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    for key in ("law", "params", "ci", "loss", "objective", "n_points", "warnings",
                "data_sha256"):
        assert key in payload, key
    assert payload["objective"] <= 3.7938e-4 and payload["n_points"] == 28
    assert set(payload["ci"]) == {"a", "alpha", "beta", "D"}
    assert any("D = 0 sits at its lower bound" in w for w in payload["warnings"])
    assert load_laws(out)["all"].params == payload["params"]
    again = runner.invoke(app, ["fit", PAPER, "--bootstrap", "200", "--seed", "3", "--json"])
    assert json.loads(again.stdout)["ci"] == payload["ci"]


def test_fit_report_for_people():
    res = runner.invoke(app, ["fit", PAPER, "--bootstrap", "50"])
    assert res.exit_code == 0, res.output
    for text in ("Y = a * N^-alpha * V^-beta + D", "90% CI", "alpha", "held out: largest LLM",
                 "leave-one-size-out RMSE", "warning: D = 0 sits at its lower bound"):
        assert text in res.stdout, text


def test_group_by_and_auto(tmp_path):
    rows = ["llm_params,visual_tokens,benchmark,score"]
    for n in (0.5, 2, 7):
        for t in (1, 16, 64, 576):
            rows.append(f"{n}B,{t},gqa,{1 - 0.6 * n ** -0.08 * t ** -0.02:.6f}")
            rows.append(f"{n}B,{t},textvqa,{1 - 0.5 * n ** -0.03 * t ** -0.05:.6f}")
    path = tmp_path / "tidy.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "g.law.json"
    res = runner.invoke(app, ["fit", str(path), "--group-by", "benchmark", "--law", "auto",
                              "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert set(payload["groups"]) == {"gqa", "textvqa"}
    assert set(json.loads(out.read_text())["groups"]) == {"gqa", "textvqa"}
    assert payload["groups"]["gqa"]["validation"]["auto"]["chosen"] in (
        "product", "additive", "loglinear")


@pytest.mark.parametrize(("text", "args", "message"), [
    ("llm_params,accuracy\n1B,0.5\n", [], "has no column 'visual_tokens'"),
    ("llm_params,visual_tokens,accuracy\n1B,1,\n", [], "row 1 of bad.csv, column 'accuracy': "
     "missing value"),
    ("llm_params,visual_tokens,accuracy\n1B,1,nan\n", [], "'nan' is not a finite number"),
    ("llm_params,visual_tokens,accuracy\n1B,x,0.5\n", [], "text 'x' in a number column"),
    ("llm_params,visual_tokens,accuracy\n1B,0,0.5\n", [], "'0' must be a whole number >= 1"),
    ("llm_params,visual_tokens,accuracy\n1B,1,1.7\n", [], "accuracy 1.7 is outside [0, 1]"),
    ("llm_params,visual_tokens,accuracy\n1B,1,.5\n1B,1,.6\n", [], "repeats the configuration"),
    ("llm_params,visual_tokens,accuracy\n1B,1,.5\n1B,4,.6\n", [], "at least 2 distinct "
     "llm_params"),
    ("llm_params,visual_tokens,accuracy\n1B,4,.5\n2B,4,.6\n", [], "at least 2 distinct "
     "visual_tokens"),
    ("llm_params,visual_tokens,accuracy\n1B,1,.5\n2B,4,.6\n", ["--law", "cubic"],
     "unknown law 'cubic'"),
    ("llm_params,visual_tokens,accuracy\n1B,1,.5\n2B,4,.6\n", ["--loss", "l1"],
     "unknown loss 'l1'"),
    ("llm_params,visual_tokens,accuracy\n1B,1,.5\n2B,4,.6\n", [],
     "4 parameters but only 2 distinct points"),
])
def test_bad_input_exit_2_one_line(tmp_path, text, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    res = runner.invoke(app, ["fit", str(path), *args])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    line = res.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and message in line, line
    assert "Traceback" not in res.output


def test_missing_file_exit_2():
    res = runner.invoke(app, ["fit", "no/such.csv", "--json"])
    assert res.exit_code == 2 and "not found" in res.stderr and res.stdout == ""


def test_console_script_does_not_import_torch_or_matplotlib(tmp_path):
    """`scaling fit` end to end in a fresh interpreter; heavy modules stay unloaded."""
    code = ("import sys; from scaling.cli import app\n"
            "try:\n    app(['fit', sys.argv[1], '--json', '--no-validation'])\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "heavy = [m for m in ('torch', 'matplotlib', 'pandas', 'pyarrow', 'transformers',"
            " 'dask') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)\nassert not heavy, heavy\n")
    res = subprocess.run([sys.executable, "-c", code, PAPER], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["law"] == "product"
    assert "HEAVY []" in res.stderr


def test_bundled_law_artifact_matches_refit():
    laws = load_laws(ROOT / "results" / "li2025_visual_reasoning.law.json")
    law = laws["all"]
    assert law.law == "product" and law.draws is not None and len(law.draws) >= 1000
    assert law.objective <= 3.7938e-4
    assert law.data_sha256 == __import__("scaling.fit.table", fromlist=["x"]).load_sweep(
        PAPER).sha256
    N, T = np.array([0.5, 7, 14]), np.array([1, 16, 576])
    assert np.all(np.isfinite(law.predict_draws(N, T)))


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CELL = st.sampled_from(["", "nan", "-1", "0", "1", "0.5", "0.5B", "7B", "abc", "576", "1.2",
                        "4", "16"])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=0, max_size=8),
       law=st.sampled_from(["product", "loglinear", "auto"]))
def test_cli_random_tables_exit_0_or_2(tmp_path, rows, law):
    path = tmp_path / "fuzz.csv"
    path.write_text("llm_params,visual_tokens,accuracy\n" + "\n".join(",".join(r) for r in rows))
    res = runner.invoke(app, ["fit", str(path), "--law", law, "--no-validation", "--json"])
    assert res.exit_code in (0, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    if res.exit_code == 2:
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1


def test_constant_metric_fits_without_traceback(tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("llm_params,visual_tokens,error\n" + "".join(
        f"{n},{t},0.3\n" for n in ("0.5B", "1B", "2B") for t in (1, 4, 16)))
    result = CliRunner().invoke(app, ["fit", str(path), "--json"])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
