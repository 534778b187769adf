"""``scaling plot`` through Typer's CliRunner, plus real end-to-end runs of the command."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.fit.fitter import fit_groups, save_laws
from scaling.fit.table import from_arrays
from scaling.law import PAPER_LAW, FittedLaw

ROOT = Path(__file__).resolve().parents[1]
LAW = str(ROOT / "results" / "li2025_visual_reasoning.law.json")
SWEEP = str(ROOT / "sweeps" / "li2025_visual_reasoning.csv")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [*args])


def run_json(*args):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind, fmt, curves, points", [
    ("frontier", "svg", 4, 28), ("isoflop", "png", 9, 0), ("heatmap", "pdf", 0, 28),
    ("fit", "png", 4, 28)])
def test_each_kind_json(kind, fmt, curves, points, tmp_path):
    out = tmp_path / f"{kind}.{fmt}"
    extra = {"isoflop": ["-q", "0,50,200"], "frontier": ["-q", "50", "--budget", "1T"],
             "heatmap": ["-q", "50", "--budget", "1T"], "fit": []}[kind]
    got = run_json("plot", kind, "--law", LAW, "--data", SWEEP, *extra, "-o", str(out))
    assert got["output"] == str(out) and got["kind"] == kind and got["format"] == fmt
    assert got["curves"] == curves and got["points"] == points
    assert got["law_file"] == LAW and got["law"] == "product law fitted on 1 - accuracy"
    assert out.stat().st_size > 5000
    assert all(p["xlabel"] and p["ylabel"] for p in got["panels"])


def test_frontier_optimum_matches_scaling_plan(tmp_path):
    got = run_json("plot", "frontier", "--law", LAW, "--data", SWEEP, "-q", "50",
                   "--budget", "2T", "-o", str(tmp_path / "f.png"))
    planned = run_json("plan", "--law", LAW, "-q", "50", "--flops", "2T")
    for key in ("llm_params", "visual_tokens", "predicted_error", "flops"):
        assert got["optimum"][key] == pytest.approx(planned["optimum"][key], rel=1e-12)
    exact = run_json("plot", "frontier", "--law", LAW, "-q", "50", "--budget", "2T",
                     "--cost", "exact", "-o", str(tmp_path / "e.png"))
    planned = run_json("plan", "--law", LAW, "-q", "50", "--flops", "2T", "--cost", "exact")
    assert exact["cost_model"] == "exact"
    assert exact["optimum"]["llm_params"] == pytest.approx(planned["optimum"]["llm_params"])
    assert exact["optimum"]["visual_tokens"] == pytest.approx(
        planned["optimum"]["visual_tokens"])


def test_no_law_is_the_papers_and_human_output(tmp_path):
    out = tmp_path / "f.png"
    got = run_json("plot", "frontier", "--budget", "1e13", "-o", str(out))
    assert got["law"] == PAPER_LAW.label and got["law_file"] is None
    assert got["optimum"]["visual_tokens"] == 1 and got["optimum"]["llm_params"] == 5e12
    human = run("plot", "isoflop", "-q", "0,50", "--budget", "1e12,3e12", "-o", str(out))
    assert human.exit_code == 0, human.output
    assert "wrote" in human.stdout and "planner optimum" in human.stdout
    assert human.stdout.count("planner optimum") == 4


def test_options_reach_the_figure(tmp_path):
    got = run_json("plot", "frontier", "--law", LAW, "--data", SWEEP, "--accuracy",
                   "--sizes", "1B,3B", "--holdout", "none", "--title", "T",
                   "--width", "5", "--height", "3", "--dpi", "80", "--token-range", "4:144",
                   "-o", str(tmp_path / "f.png"))
    assert got["curves"] == 2 and got["panels"][0]["ylabel"].startswith("predicted accuracy")
    many = run_json("plot", "frontier", "--law", LAW, "-q", "10", "--gen-tokens", "20",
                    "--llm-range", "0.5B:7B", "--budget", "1T", "-o", str(tmp_path / "g.png"))
    assert many["optimum"]["llm_params"] <= 7e9 * (1 + 1e-9)
    assert "G = 20 generated" in many["panels"][0]["xlabel"]


def test_grouped_law_file(tmp_path):
    import numpy as np

    n, v = np.meshgrid([0.5e9, 1.8e9, 4e9, 7e9], [1, 4, 16, 64, 576])
    n, v = np.tile(n.ravel(), 2), np.tile(v.ravel(), 2)
    task = np.repeat(["ocr", "reasoning"], n.size // 2)
    ocr = FittedLaw("product", {"a": 0.9, "alpha": 0.03, "beta": 0.05, "D": 0.05})
    y = [(ocr if t == "ocr" else PAPER_LAW).predict(a / 1e9, b)
         for t, a, b in zip(task, n, v, strict=True)]
    csv = tmp_path / "tasks.csv"
    csv.write_text("task,llm_params,visual_tokens,error\n" + "".join(
        f"{t},{a:g},{b:g},{float(e)!r}\n" for t, a, b, e in zip(task, n, v, y, strict=True)))
    data = from_arrays(n, v, y, group=task)
    data = type(data)(**{**data.__dict__, "group_by": "task"})
    law = tmp_path / "tasks.law.json"
    save_laws(fit_groups(data, validation=False), law, group_by="task")
    both = run_json("plot", "fit", "--law", str(law), "--data", str(csv),
                    "-o", str(tmp_path / "g.svg"))
    assert [p["group"] for p in both["panels"]] == ["ocr", "reasoning"]
    assert [p["points"] for p in both["panels"]] == [20, 20]
    one = run_json("plot", "frontier", "--law", str(law), "--group", "ocr", "--data", str(csv),
                   "--budget", "1T", "-o", str(tmp_path / "o.png"))
    assert [p["group"] for p in one["panels"]] == ["ocr"] and one["points"] == 20
    bad = run("plot", "frontier", "--law", str(law), "--group", "nope", "-o",
              str(tmp_path / "x.png"))
    assert bad.exit_code == 2 and "group 'nope' is not in" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (["pie", "-o", "x.png"], "unknown plot 'pie'"),
    (["frontier", "-o", "x.jpg"], "must end in .png, .svg or .pdf"),
    (["frontier", "-o", "missing/x.png"], "does not exist"),
    (["fit", "-o", "x.png"], "needs measured points"),
    (["fit", "--data", SWEEP, "--budget", "1T", "-o", "x.png"], "plot fit draws the law"),
    (["frontier", "-q", "0,50", "-o", "x.png"], "a list is for plot isoflop"),
    (["frontier", "--budget", "1T,2T", "-o", "x.png"], "a list is for plot isoflop"),
    (["frontier", "--budget", "lots", "-o", "x.png"], "lots"),
    (["frontier", "-q", "-3", "-o", "x.png"], "--text-tokens must be >= 0"),
    (["frontier", "--group", "a", "-o", "x.png"], "--group needs --law"),
    (["frontier", "--law", "nope.law.json", "-o", "x.png"], "nope.law.json"),
    (["frontier", "--cost", "guess", "-o", "x.png"], "cost model must be one of"),
    (["frontier", "--data", "nope.csv", "-o", "x.png"], "nope.csv"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("plot", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_help_does_not_import_matplotlib():
    code = ("import sys; from typer.testing import CliRunner; from scaling.cli import app; "
            "r = CliRunner().invoke(app, ['plot', '--help']); assert r.exit_code == 0; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_real_command_twice_gives_identical_svg(tmp_path):
    """End to end: the installed console script, twice, byte-identical SVG."""
    outputs = []
    for i in range(2):
        out = tmp_path / f"frontier{i}.svg"
        proc = subprocess.run(
            ["scaling", "plot", "frontier", "--law", LAW, "--data", SWEEP, "-q", "50",
             "--budget", "1T", "-o", str(out), "--json"],
            capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["output"] == str(out)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and outputs[0].startswith(b"<?xml")
