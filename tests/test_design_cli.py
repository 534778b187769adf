"""`scaling sweep suggest` and `scaling sweep run --adaptive` end to end: the CLI through Typer's
CliRunner, a real SIGKILL of an adaptive sweep that resumes at its round, and the local pool and
Dask making identical choices.

The evaluator is the paper's law (Li et al. 2025, the published constants) plus a fixed
pseudo-random error per grid point (sd ~0.004, the paper fit's residual size), so fits have
residuals and the choices are real but reproducible."""

import hashlib
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
from scaling.units import parse_params

HERE = Path(__file__).parent
runner = CliRunner()


def paper_law(config):
    """Accuracy from the paper's product law plus a fixed error per (llm, visual_tokens)."""
    n, v = parse_params(config["llm"]) / 1e9, config["visual_tokens"]
    digest = hashlib.sha256(f"{config['llm']}/{v}".encode()).digest()
    noise = (int.from_bytes(digest[:4], "big") / 2 ** 32 - 0.5) * 0.014
    time.sleep(float(config["options"].get("sleep_s", 0)))
    return {"accuracy": 1 - (0.5571 * n ** -0.0768 * v ** -0.0157 + 0.0333) + noise}


def failing_law(config):
    """``paper_law``, but 1.8B runs always fail and 7B runs fail on their first attempt."""
    if config["llm"] == "1.8B" or (config["llm"] == "7B" and config["attempt"] == 1):
        raise RuntimeError(f"simulated failure of {config['llm']} (attempt {config['attempt']})")
    return paper_law(config)


def write_spec(tmp_path, name="spec.yaml", design=None, **changes):
    data = {"name": "adaptive",
            "evaluator": {"kind": "python", "function": "test_design_cli:paper_law"},
            "axes": {"llm": ["0.5B", "1.8B", "4B", "7B"], "visual_tokens": [1, 4, 16, 64, 576]},
            "text_tokens": 50, "executor": {"kind": "local", "workers": 2}, "retries": 0,
            "output": str(tmp_path / "out.csv"),
            "design": {"law": "product", "metric": "accuracy",
                       "question": {"flops": 1e12, "text_tokens": 50}, "initial": 5, "batch": 2,
                       "max_runs": 11, "target": 0, **(design or {})}}
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def rounds_of(log_file):
    log = json.loads(Path(log_file).read_text())
    return [[(p["label"], round(p["score"], 9)) for p in r["points"]] for r in log["rounds"]]


@pytest.fixture(scope="module")
def adaptive(tmp_path_factory):
    """One adaptive sweep on the local pool, shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("adaptive")
    spec = write_spec(tmp)
    result = runner.invoke(app, ["sweep", "run", str(spec), "--adaptive", "--json"])
    assert result.exit_code == 0, result.output
    return spec, json.loads(result.stdout), tmp / "out.csv.design.json"


def test_suggest_before_any_run_is_the_space_filling_start(tmp_path):
    spec = write_spec(tmp_path)
    first = runner.invoke(app, ["sweep", "suggest", str(spec), "--json"])
    assert first.exit_code == 0, first.output
    points = json.loads(first.stdout)
    assert len(points) == 5 and "corner of the grid" in points[0]["why"]
    assert {"run_id", "llm", "visual_tokens", "llm_params", "cost", "score", "why"} <= \
        set(points[0])
    assert points[0]["llm"] == "0.5B" and points[0]["visual_tokens"] == 1  # the axis values
    assert len(json.loads(runner.invoke(app, ["sweep", "suggest", str(spec), "--k", "2",
                                              "--json"]).stdout)) == 2
    assert not (tmp_path / "out.csv.runs").exists()  # suggest runs nothing


def test_suggest_after_runs_is_deterministic_and_says_why(adaptive):
    spec, _, _ = adaptive
    human = runner.invoke(app, ["sweep", "suggest", str(spec), "--k", "3"])
    assert human.exit_code == 0, human.output
    assert "11 runs measured; next points (by the criterion, then by coverage):" in human.stdout
    assert human.stdout.count("expected to remove") == 2  # half of the batch by the criterion
    assert human.stdout.count("fills the design space") == 1  # the other half by coverage
    assert "current answer: 7B with 16" in human.stdout
    again = json.loads(runner.invoke(app, ["sweep", "suggest", str(spec), "--k", "3",
                                           "--json"]).stdout)
    assert again == json.loads(runner.invoke(app, ["sweep", "suggest", str(spec), "--k", "3",
                                                   "--json"]).stdout)  # deterministic
    assert [p["why"] for p in again] == [
        line.split(": ", 1)[1] for line in human.stdout.splitlines() if "run_id" in line]


def test_adaptive_run_log_table_status_and_rerun(adaptive):
    spec, report, log_file = adaptive
    assert report["stopped"] == "max_runs reached (11 runs)" and report["runs_used"] == 11
    assert report["rounds"] == 4 and report["cost_fraction"] < 0.5
    assert report["answer"]["choice"]["llm_params"] == 7e9
    assert report["answer"]["choice"]["visual_tokens"] == 16
    log = json.loads(log_file.read_text())
    assert [r["kind"] for r in log["rounds"]] == ["initial", "criterion", "criterion",
                                                  "criterion"]
    for r in log["rounds"]:
        assert r["done"] and r["fit"]["law"] == "product" and r["answer"]["ci"] is not None
    rows = (log_file.parent / "out.csv").read_text().splitlines()
    assert len(rows) == 12  # header + every run of the design, not just the last round's
    status = runner.invoke(app, ["sweep", "status", str(spec), "--json"])
    payload = json.loads(status.stdout)
    assert payload["ok"] == 11 and payload["pending"] == 9
    assert payload["design"]["answer"] == report["answer"]
    human = runner.invoke(app, ["sweep", "status", str(spec)])
    assert "design: 4 rounds, 11 runs" in human.stdout and "current answer: 7B with 16 visual" \
        in human.stdout and "V* = " in human.stdout
    before = rounds_of(log_file)
    rerun = runner.invoke(app, ["sweep", "run", str(spec), "--adaptive"])
    assert rerun.exit_code == 0 and "resumed at round 4" in rerun.stdout
    assert "stopped after 4 rounds, 11 of 20 runs" in rerun.stdout
    assert rounds_of(log_file) == before


def test_bad_design_exits_2_with_one_line_before_any_run(tmp_path):
    for design, message in [
        ({"initial": 2}, "design.initial is 2 but law 'product' has 4 parameters"),
        ({"max_runs": 4}, "design.max_runs (4) is below initial (5)"),
        ({"run_cost": "llm_params * gpu_hours"}, "names unknown column 'gpu_hours'"),
        ({"run_cost": "0 * llm_params"}, "the cost of a run must be a positive number"),
        ({"question": {"flops": 1e10, "text_tokens": 50}}, "affords no configuration"),
    ]:
        spec = write_spec(tmp_path, design=design)
        for args in (["sweep", "run", str(spec), "--adaptive"], ["sweep", "suggest", str(spec)]):
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (design, result.output)
            assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
            assert "Traceback" not in result.output
        assert not (tmp_path / "out.csv.runs").exists()  # nothing ran
    no_design = write_spec(tmp_path)
    data = yaml.safe_load(no_design.read_text())
    del data["design"]
    no_design.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["sweep", "suggest", str(no_design)])
    assert result.exit_code == 2 and "has no design: block" in result.stderr


def test_failed_runs_are_retried_then_skipped_and_the_design_goes_on(tmp_path):
    spec = write_spec(tmp_path, evaluator={"kind": "python",
                                           "function": "test_design_cli:failing_law"},
                      retries=1, design={"max_runs": 8, "initial": 6})
    result = runner.invoke(app, ["sweep", "run", str(spec), "--adaptive", "--json"])
    assert result.exit_code == 0, result.output
    log = json.loads((tmp_path / "out.csv.design.json").read_text())
    first = log["rounds"][0]
    llm = {p["run_id"]: p["llm"] for r in log["rounds"] for p in r["points"]}
    assert "1.8B x 16" in [p["label"] for p in first["points"]]  # the centre: always fails
    assert {llm[k] for r in log["rounds"] for k in r["failed"]} == {"1.8B"}
    assert "7B" in {llm[k] for k in first["ok"]}  # failed once, rescued by the retry
    records = [json.loads(p.read_text()) for p in (tmp_path / "out.csv.runs").glob("*.json")]
    assert {r["attempts"] for r in records if r["status"] == "failed"} == {2}
    chosen = [p["run_id"] for r in log["rounds"] for p in r["points"]]
    assert len(chosen) == len(set(chosen)) == 8  # never chosen again; the design went on
    assert json.loads(result.stdout)["runs_used"] == 8 and log["answer"] is not None


def test_sigkill_adaptive_sweep_resumes_at_its_round(tmp_path, adaptive):
    """A real process, SIGKILLed while a round's runs are in flight, resumes at that round:
    finished runs are kept, and the rounds (points and scores) are those of an uninterrupted
    design."""
    reference = adaptive[2]
    spec = write_spec(tmp_path, evaluator={"kind": "python",
                                           "function": "test_design_cli:paper_law",
                                           "options": {"sleep_s": 0.4}})
    log_file = tmp_path / "out.csv.design.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH",
                                                                                   "")])}
    cmd = [sys.executable, "-c", "from scaling.cli import main; main()", "sweep", "run",
           str(spec), "--adaptive", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while True:  # wait for round 2 to be chosen and running (round 0 and 1 done)
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the adaptive sweep made no progress"
        try:
            rounds = json.loads(log_file.read_text())["rounds"]
        except (FileNotFoundError, ValueError):
            rounds = []
        if len(rounds) == 3 and not rounds[2]["done"]:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = json.loads(log_file.read_text())
    assert [r["done"] for r in killed["rounds"]] == [True, True, False]
    records = {p.stem: json.loads(p.read_text())
               for p in (tmp_path / "out.csv.runs").glob("*.json")}
    assert len(records) < 11

    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resumed_at"] == 2 and report["runs_used"] == 11
    after = {p.stem: json.loads(p.read_text())
             for p in (tmp_path / "out.csv.runs").glob("*.json")}
    assert len(after) == 11 and all(after[k] == v for k, v in records.items())  # kept

    assert rounds_of(log_file) == rounds_of(reference)  # an uninterrupted design's rounds


def test_local_pool_and_dask_make_identical_choices(tmp_path, adaptive):
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        dask = write_spec(tmp_path, "dask.yaml", output=str(tmp_path / "dask.csv"))
        result = runner.invoke(app, ["sweep", "run", str(dask), "--adaptive", "--address",
                                     cluster.scheduler_address, "--json"])
    assert result.exit_code == 0, result.output
    local, dask = rounds_of(adaptive[2]), rounds_of(tmp_path / "dask.csv.design.json")
    assert local == dask and len(local) == 4 and sum(len(r) for r in local) == 11
    assert json.loads(result.stdout)["answer"] == adaptive[1]["answer"]
