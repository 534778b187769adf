"""`scaling sweep run|status` through Typer's CliRunner, and a real SIGKILL of a running
sweep followed by a rerun that finds every grid point exactly once."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scaling.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
runner = CliRunner()


def write_spec(tmp_path, function="toy", **changes):
    data = {"name": "cli", "evaluator": {"kind": "python", "function": f"sweep_evals:{function}"},
            "axes": {"llm": ["0.5B", "1.8B"], "visual_tokens": [1, 4, 16]},
            "executor": {"kind": "local", "workers": 2}, "retries": 0,
            "output": str(tmp_path / "out.csv")}
    data.update(changes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_and_status_json(tmp_path):
    spec = write_spec(tmp_path)
    status = runner.invoke(app, ["sweep", "status", str(spec), "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["pending"] == 6
    result = runner.invoke(app, ["sweep", "run", str(spec), "--json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # JSON only on stdout
    assert (report["total"], report["ok"], report["failed"], report["ran"]) == (6, 6, 0, 6)
    assert report["executor"] == "local" and report["workers"] == 1
    status = json.loads(runner.invoke(app, ["sweep", "status", str(spec), "--json"]).stdout)
    assert (status["ok"], status["failed"], status["pending"], status["rows"]) == (6, 0, 0, 6)
    other = tmp_path / "other.csv"
    result = runner.invoke(app, ["sweep", "run", str(spec), "--output", str(other), "--json"])
    assert json.loads(result.stdout)["output"] == str(other) and other.exists()


def test_human_output_lists_failures(tmp_path):
    spec = write_spec(tmp_path, "mixed", axes={"llm": ["0.5B"], "visual_tokens": [4],
                                               "params": {"mode": ["ok", "raise"]}})
    result = runner.invoke(app, ["sweep", "run", str(spec)])
    assert result.exit_code == 1, result.output  # some runs failed
    assert "1 ok, 1 failed, 0 pending of 2 runs" in result.stdout
    assert "error: 1 of 2 runs failed" in result.stderr
    assert "ValueError: evaluator crashed for 0.5B V=4" in result.stdout
    status = runner.invoke(app, ["sweep", "status", str(spec)])
    assert status.exit_code == 0 and "failed" in status.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    spec = write_spec(tmp_path, evaluator={"kind": "python", "function": "sweep_evals:toy",
                                           "optons": {}})
    result = runner.invoke(app, ["sweep", "run", str(spec)])
    assert result.exit_code == 2
    assert "unknown field 'evaluator.optons'; allowed: function, kind, options" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    for args, message in [
        (["sweep", "run", str(tmp_path / "nope.yaml")], "not found"),
        (["sweep", "run", str(write_spec(tmp_path)), "--executor", "slurm"],
         "--executor must be local or dask"),
        (["sweep", "run", str(write_spec(tmp_path)), "--workers", "0"], "--workers must be >= 1"),
        (["sweep", "status", str(write_spec(tmp_path)), "--output", "x.txt"],
         "output must end in .csv or .parquet"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)


def _records(runs_dir):
    return {p.stem: json.loads(p.read_text()) for p in runs_dir.glob("*.json")}


def test_sigkill_part_way_then_rerun_finds_every_grid_point_once(tmp_path):
    spec = write_spec(tmp_path, "sleepy", evaluator={
        "kind": "python", "function": "sweep_evals:sleepy", "options": {"sleep_s": 0.25}},
        axes={"llm": ["0.5B", "1.8B"], "visual_tokens": [1, 2, 4, 8, 16, 32, 64, 128]})
    runs_dir = tmp_path / "out.csv.runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURES),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", "from scaling.cli import main; main()",
                             "sweep", "run", str(spec), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(runs_dir.glob("*.json"))) < 4:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = _records(runs_dir)
    assert 4 <= len(before) < 16, "killed part-way"
    assert all(r["status"] == "ok" for r in before.values())
    # a torn write left behind by a kill is never read as a record
    (runs_dir / ".deadbeef.json.tmp123").write_text('{"run_id": "dead')
    if (tmp_path / "out.csv").exists():  # the table, if any, is whole (older) rows
        rows = list(csv.DictReader(open(tmp_path / "out.csv")))
        assert len({r["run_id"] for r in rows}) == len(rows) <= len(before)

    result = subprocess.run([sys.executable, "-c", "from scaling.cli import main; main()",
                             "sweep", "run", str(spec), "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["skipped"] == len(before) and report["ran"] == 16 - len(before)
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert len(rows) == 16 and len({r["run_id"] for r in rows}) == 16  # each point once
    grid = {(r["llm"], r["visual_tokens"]) for r in rows}
    assert len(grid) == 16 and {r["status"] for r in rows} == {"ok"}
    after = _records(runs_dir)
    for run_id, record in before.items():  # finished runs were kept, not redone
        assert after[run_id] == record


def test_sweep_table_goes_straight_into_fit(tmp_path):
    """A sweep of the paper's law (sweep_evals.toy) fits back to its constants."""
    spec = write_spec(tmp_path, "toy_error", axes={"llm": ["0.5B", "1.8B", "4B", "7B"],
                                                   "visual_tokens": [1, 4, 16, 64, 144, 576]})
    assert runner.invoke(app, ["sweep", "run", str(spec), "--json"]).exit_code == 0
    # no --metric: fit takes the `error` column, the evaluator's metric (the runner's own
    # bookkeeping column is `failure`, so the names cannot clash)
    result = runner.invoke(app, ["fit", str(tmp_path / "out.csv"), "--law", "product",
                                 "--json"])
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    assert fitted["n_points"] == 24
    # reference/README.md: a = 0.5571, alpha = 0.0768, beta = 0.0157, D = 0.0333
    for name, value in {"a": 0.5571, "alpha": 0.0768, "beta": 0.0157, "D": 0.0333}.items():
        assert abs(fitted["params"][name] - value) < 1e-4, name


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_json_stdout_stays_clean_when_evaluators_print(tmp_path, executor):
    spec = write_spec(tmp_path, "chatty")
    env = {**os.environ, "PYTHONPATH": str(FIXTURES)}
    result = subprocess.run([sys.executable, "-c", "from scaling.cli import main; main()",
                             "sweep", "run", str(spec), "--json", "--executor", executor],
                            env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] == 6  # nothing but the JSON on stdout
    assert "training 0.5B with 4 tokens..." in result.stderr
