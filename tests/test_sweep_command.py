"""The command evaluator: no shell, timeouts that kill the process group, lmms-eval parsing,
and programs that crash, hang, exit 0 without results or write garbage."""

import csv
import os
import sys
import time
from pathlib import Path

import pytest

from scaling.sweep import parse_spec, run_sweep

PROG = str(Path(__file__).parent / "fixtures" / "sweep_prog.py")


def make_spec(tmp_path, args, parser=None, env=None, cwd=None, text_columns=(), **changes):
    data = {"name": "cmd", "axes": {"llm": ["0.5B"], "visual_tokens": [4]},
            "evaluator": {"kind": "command", "args": args, "env": env or {}, "cwd": cwd,
                          "parser": parser or {"kind": "json", "file": "metrics.json"},
                          "text_columns": list(text_columns)},
            "executor": {"kind": "local", "workers": 2}, "retries": 0,
            "output": str(tmp_path / "out.csv")}
    data.update(changes)
    return parse_spec(data)


def table(tmp_path):
    with open(tmp_path / "out.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_failures_are_recorded_with_their_reason(tmp_path):
    spec = make_spec(
        tmp_path, [sys.executable, PROG, "{mode}", "{output_dir}", "{visual_tokens}"],
        {"kind": "json", "file": "metrics.json", "keys": {"accuracy": "accuracy",
                                                          "n_first": "detail.n.0"}},
        timeout_s=1.5,
        axes={"llm": ["0.5B"], "visual_tokens": [4],
              "params": {"mode": ["ok", "crash", "hang_tree", "noresults", "garbage"]}})
    t0 = time.monotonic()
    report = run_sweep(spec)
    assert time.monotonic() - t0 < 12  # the hang was cut at 1.5 s
    assert (report.ok, report.failed, report.pending) == (1, 4, 0)
    rows = {r["mode"]: r for r in table(tmp_path)}
    assert rows["ok"]["status"] == "ok"
    assert float(rows["ok"]["accuracy"]) == pytest.approx(0.504) and rows["ok"]["n_first"] == "10"
    crash = rows["crash"]["failure"]
    assert crash.startswith("exited with code 3 and wrote no results")
    assert "RuntimeError: CUDA out of memory" in crash  # the stderr tail
    assert rows["hang_tree"]["failure"].startswith("timed out after 1.5 s (process group killed)")
    assert "loading checkpoint" in rows["hang_tree"]["failure"]
    assert rows["noresults"]["failure"].startswith("exited with code 0 and wrote no results")
    assert "dataset not found" in rows["noresults"]["failure"]
    assert "is not valid JSON" in rows["garbage"]["failure"]
    # the hung program's grandchild died with its process group
    (pid_file,) = (tmp_path / "out.csv.runs").glob("*/attempt-1/grandchild.pid")
    pid = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} of the timed-out command is still alive")
    # logs stay in the attempt's scratch dir for debugging
    assert any((tmp_path / "out.csv.runs").glob("*/attempt-1/stderr.log"))


@pytest.mark.parametrize("payload", [
    "a; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "x && touch PWNED || true",
    "'quoted' \"double\" | cat > PWNED", "*", "two words\nnewline", "{braces}", "",
])
def test_template_values_reach_the_program_as_one_literal_argument(tmp_path, payload):
    spec = make_spec(
        tmp_path, [sys.executable, PROG, "argv", "{output_dir}", "1", "{payload}",
                   "--flag={payload}", "{{literal}}"],
        {"kind": "json", "keys": {"arg0": "argv.0", "arg1": "argv.1", "arg2": "argv.2"}},
        text_columns=["arg0", "arg1", "arg2"], cwd=str(tmp_path),
        axes={"llm": ["0.5B"], "visual_tokens": [4], "params": {"payload": [payload]}})
    assert run_sweep(spec).ok == 1
    (row,) = table(tmp_path)
    argv_file = next((tmp_path / "out.csv.runs").glob("*/attempt-1/metrics.json"))
    import json

    assert json.loads(argv_file.read_text())["argv"] == [payload, f"--flag={payload}",
                                                         "{literal}"]
    assert row["arg1"] == f"--flag={payload}"
    assert not list(tmp_path.rglob("PWNED"))


def test_lmms_eval_program_rows_and_its_exit_0_failure(tmp_path):
    spec = make_spec(
        tmp_path, [sys.executable, PROG, "{mode}", "{output_dir}", "{visual_tokens}"],
        {"kind": "lmms_eval", "score": {"mme": {"metric": "mme_perception_score,none",
                                                "divide_by": 2000}}},
        axes={"llm": ["qwen1.5-0.5b"], "visual_tokens": [16],
              "params": {"mode": ["lmms", "lmms_fail"]}},
        env={"HF_HUB_OFFLINE": "1"})
    report = run_sweep(spec)
    assert (report.ok, report.failed, report.rows) == (1, 1, 4)
    rows = table(tmp_path)
    ok = {r["task"]: r for r in rows if r["status"] == "ok"}
    assert set(ok) == {"gqa", "mme", "ai2d"}
    assert float(ok["mme"]["score"]) == pytest.approx(1390.7826130452181 / 2000)
    assert ok["gqa"]["exact_match_stderr"] == "" and ok["gqa"]["n_samples"] == "500"
    assert len({r["run_id"] for r in ok.values()}) == 1
    assert all(float(r["flops_paper"]) == 2 * 5e8 * 16 for r in ok.values())
    (failed,) = [r for r in rows if r["status"] == "failed"]
    assert failed["failure"].startswith("exited with code 0 and wrote no results")
    assert "FileNotFoundError: checkpoint" in failed["failure"]


def test_env_additions_stdout_parser_and_missing_program(tmp_path):
    code = "import json, os; print(json.dumps({{'offline': os.environ['HF_HUB_OFFLINE'], " \
           "'omp': os.environ['OMP_NUM_THREADS'], 'tag': os.environ['TAG']}}))"  # {{ }}: braces
    spec = make_spec(tmp_path, [sys.executable, "-c", code], {"kind": "json", "file": "-"},
                     env={"HF_HUB_OFFLINE": "1", "TAG": "v{visual_tokens}"},
                     text_columns=["offline", "omp", "tag"])
    run_sweep(spec)
    (row,) = table(tmp_path)
    assert (row["offline"], row["omp"], row["tag"]) == ("1", "1", "v4")
    missing = make_spec(tmp_path, ["no-such-program-xyz", "{llm}"],
                        output=str(tmp_path / "o2.csv"))
    report = run_sweep(missing)
    assert report.failed == 1
    assert report.failures[0]["failure"].startswith("cannot start 'no-such-program-xyz'")
