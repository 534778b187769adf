"""Issue 11, sweep runner: one regression test per class of fault, real processes where the
fault is about processes (concurrent runners, planted symlinks, the import path, detached
grandchildren, a killed sweep)."""

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from typer.testing import CliRunner

from scaling.cli import app
from scaling.errors import ScalingError
from scaling.sweep import expand, load_spec, parse_spec, run_sweep, sweep_status

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
PROG = str(FIXTURES / "sweep_prog.py")
sys.path.insert(0, str(FIXTURES))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES)])}
#: `scaling ...` as its console script runs it: the working directory is not on sys.path
CLI = [sys.executable, "-c", "import sys; del sys.path[0]; from scaling.cli import main; main()"]
runner = CliRunner()


def spec_data(tmp_path, function="toy", **changes):
    data = {"name": "h", "evaluator": {"kind": "python", "function": f"sweep_evals:{function}"},
            "axes": {"llm": ["0.5B", "1.8B"], "visual_tokens": [1, 4]},
            "executor": {"kind": "local", "workers": 2}, "retries": 0,
            "output": str(tmp_path / "out.csv")}
    data.update(changes)
    return data


def write_spec(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def table(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def gone(pid, within=5.0):
    """Whether process ``pid`` ends (or is a zombie) within ``within`` seconds; kills it if
    not, so a failing test leaves nothing behind."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return False


# --- data loss ------------------------------------------------------------------------

def test_concurrent_sweep_lock(tmp_path):
    data = spec_data(tmp_path, "sleepy", axes={"llm": ["0.5B"], "visual_tokens": [1, 2, 4, 8]},
                     executor={"kind": "local", "workers": 1})
    data["evaluator"]["options"] = {"sleep_s": 0.5}
    spec = write_spec(tmp_path, data)
    runs_dir = tmp_path / "out.csv.runs"
    first = subprocess.Popen([*CLI, "sweep", "run", str(spec), "--json"], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30  # running: it holds the lock, or has saved a run
        while not ((runs_dir / ".lock.owner").exists() or list(runs_dir.glob("*.json"))):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.02)
        second = subprocess.run([*CLI, "sweep", "run", str(spec)], env=ENV, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert f"being written by another sweep (pid {first.pid} on host" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        status = runner.invoke(app, ["sweep", "status", str(spec), "--json"])  # no lock
        assert status.exit_code == 0, status.output
        status = json.loads(status.stdout)
        assert f"pid {first.pid}" in status["running"]
        assert status["ok"] + status["pending"] == 4 and status["failed"] == 0
        waiter = subprocess.run([*CLI, "sweep", "run", str(spec), "--json", "--wait"], env=ENV,
                                capture_output=True, text=True, timeout=60)
        assert first.wait(30) == 0, first.stderr.read()
    finally:
        first.kill()
        first.wait()
    assert waiter.returncode == 0, waiter.stderr
    assert "waiting: the output is being written by another sweep" in waiter.stderr
    report = json.loads(waiter.stdout)
    assert (report["ran"], report["skipped"], report["ok"]) == (0, 4, 4)  # nothing run twice
    rows = table(tmp_path / "out.csv")
    assert len(rows) == 4 and {r["attempts"] for r in rows} == {"1"}
    assert not (runs_dir / ".lock.owner").exists()
    assert sweep_status(load_spec(spec)).running is None


def test_symlink_not_followed(tmp_path):
    """Symlinks planted where the old writer put its temporary files (``.NAME.tmp<pid>``)
    must not redirect a write; a planted lock symlink is refused."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    spec = write_spec(tmp_path, spec_data(tmp_path))
    runs_dir = tmp_path / "out.csv.runs"
    runs_dir.mkdir()
    names = [".out.csv.tmp{pid}"] + [f".runs/.{r.run_id}.json.tmp{{pid}}"
                                     for r in expand(load_spec(spec))]
    plant = ("import os, sys\n"
             "del sys.path[0]\n"
             f"for name in {names!r}:\n"
             "    name = name.format(pid=os.getpid()).replace('.runs/', 'out.csv.runs/')\n"
             f"    os.symlink({str(victim)!r}, os.path.join({str(tmp_path)!r}, name))\n"
             "from scaling.cli import main\n"
             "main()\n")
    result = subprocess.run([sys.executable, "-c", plant, "sweep", "run", str(spec), "--json"],
                            env=ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "out.csv").is_symlink() and len(table(tmp_path / "out.csv")) == 4
    for record in runs_dir.glob("*.json"):
        assert not record.is_symlink() and json.loads(record.read_text())["status"] == "ok"
    (runs_dir / ".lock").unlink()
    (runs_dir / ".lock").symlink_to(victim)
    with pytest.raises(ScalingError, match="is a symbolic link"):
        run_sweep(load_spec(spec))
    assert victim.read_text() == "precious\n"


def test_invalid_records_rerun(tmp_path):
    spec = parse_spec(spec_data(tmp_path))
    run_sweep(spec)
    runs_dir = tmp_path / "out.csv.runs"
    ids = [r.run_id for r in expand(spec)]
    bad = {ids[0]: '{"status": "ok", "rows": []}', ids[1]: "{}", ids[2]: "[]",
           ids[3]: json.dumps({"run_id": ids[3], "status": "ok"}),
           "0123456789abcdef": "[" * 100_000 + "]" * 100_000}  # too deep for json.loads
    for run_id, text in bad.items():
        (runs_dir / f"{run_id}.json").write_text(text)
    status = sweep_status(spec)
    assert (status.ok, status.failed, status.pending) == (0, 0, 4)
    assert set(status.invalid) == set(bad)
    assert "rows: List should have at least 1 item" in status.invalid[ids[0]]
    assert "run_id: Field required" in status.invalid[ids[1]]
    assert "record: Input should be an object" in status.invalid[ids[2]]
    assert "attempts: Field required" in status.invalid[ids[3]]
    shown = runner.invoke(app, ["sweep", "status", str(write_spec(tmp_path, spec_data(
        tmp_path)))])
    assert shown.exit_code == 0, shown.output
    assert "5 invalid run records" in shown.stdout and f"invalid {ids[2]}.json" in shown.stdout
    report = run_sweep(spec)
    assert (report.ran, report.ok) == (4, 4) and set(report.invalid) == set(bad)
    after = sweep_status(spec)
    assert after.ok == 4 and set(after.invalid) == {"0123456789abcdef"}  # not in the grid
    assert len(table(tmp_path / "out.csv")) == 4


# --- code run from the wrong place ------------------------------------------------------

def test_worker_import_path(tmp_path):
    """A `multiprocessing.py` and a `scaling.py` in the working directory are not imported
    by the sweep's workers."""
    (tmp_path / "multiprocessing.py").write_text(
        "open('IMPORTED_multiprocessing', 'w').close()\nraise ImportError('wrong module')\n")
    (tmp_path / "scaling.py").write_text("open('IMPORTED_scaling', 'w').close()\n")
    spec = write_spec(tmp_path, spec_data(tmp_path))
    result = subprocess.run([*CLI, "sweep", "run", str(spec), "--json"], env=ENV,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] == 4
    assert not list(tmp_path.glob("IMPORTED_*"))


def test_grandchildren_killed(tmp_path):
    """Daemons that leave the process group (double fork + setsid) are ended after a run
    that succeeded, timed out or failed."""
    data = spec_data(tmp_path, axes={"llm": ["0.5B"], "visual_tokens": [4],
                                     "params": {"mode": ["detach_ok", "detach_hang"]}},
                     timeout_s=1.5)
    data["evaluator"] = {"kind": "command", "parser": {"kind": "json"},
                         "args": [sys.executable, PROG, "{mode}", "{output_dir}", "4"]}
    report = run_sweep(parse_spec(data))
    assert (report.ok, report.failed) == (1, 1)
    python = spec_data(tmp_path, "detach_then_raise", output=str(tmp_path / "py.csv"),
                       axes={"llm": ["0.5B"], "visual_tokens": [4]})
    assert run_sweep(parse_spec(python)).failed == 1
    pids = [int(p.read_text()) for p in tmp_path.glob("*.runs/*/attempt-1/daemon.pid")]
    assert len(pids) == 3
    assert [pid for pid in pids if not gone(pid)] == []


def test_grandchildren_killed_when_the_sweep_is_killed(tmp_path):
    data = spec_data(tmp_path, axes={"llm": ["0.5B"], "visual_tokens": [4]})
    data["evaluator"] = {"kind": "command", "parser": {"kind": "json"},
                         "args": [sys.executable, PROG, "detach_hang", "{output_dir}", "4"]}
    spec = write_spec(tmp_path, data)
    sweep = subprocess.Popen([*CLI, "sweep", "run", str(spec), "--json"], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("out.csv.runs/*/attempt-1/daemon.pid")):
        assert sweep.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    (pid_file,) = tmp_path.glob("out.csv.runs/*/attempt-1/daemon.pid")
    time.sleep(0.1)
    sweep.kill()
    sweep.wait()
    assert gone(int(pid_file.read_text()))


# --- hostile specs ------------------------------------------------------------------------

BOMB = """name: bomb
evaluator:
  kind: python
  function: sweep_evals:toy
  options:
    a: &a [x, x, x, x, x, x, x, x, x]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
axes: {llm: [0.5B], visual_tokens: [1]}
"""


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


def test_yaml_alias_bomb(tmp_path):
    spec = tmp_path / "bomb.yaml"
    spec.write_text(BOMB)
    assert len(BOMB) < 1100
    t0 = time.monotonic()
    result = subprocess.run([*CLI, "sweep", "status", str(spec)], env=ENV, capture_output=True,
                            text=True, timeout=60, preexec_fn=_limit_memory)
    assert result.returncode == 2, result.stderr[-500:]
    assert "aliases expand to more than 100,000 nodes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and time.monotonic() - t0 < 30


@pytest.mark.parametrize(("content", "message"), [
    ("name: dup\nevaluator: {kind: python, function: sweep_evals:toy}\n"
     "axes: {llm: [0.5B], visual_tokens: [1]}\noutput: a.csv\noutput: b.csv\n",
     "duplicate key 'output' at line 5; give each key once"),  # silently b.csv before
    ("name: a\naxes: {llm: [x], llm: [y]}\n", "duplicate key 'llm' at line 2"),
    (b"name: caf\xe9\n", "is not UTF-8 text"),
    ("x: &a [*a]\n", "recursive alias"),
    (None, "is a folder, not a file"),
])
def test_yaml_refusals_exit_2_with_one_line(tmp_path, content, message):
    spec = tmp_path / "spec.yaml"
    if content is None:
        spec.mkdir()
    elif isinstance(content, bytes):
        spec.write_bytes(content)
    else:
        spec.write_text(content)
    result = runner.invoke(app, ["sweep", "status", str(spec)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_yaml_merge_keys_still_work(tmp_path):
    spec = tmp_path / "spec.yaml"
    data = yaml.safe_dump(spec_data(tmp_path))
    spec.write_text("defaults: &d {kind: local, workers: 1}\n" + data.replace(
        "executor:\n  kind: local\n  workers: 2\n", "executor:\n  <<: *d\n  workers: 2\n"))
    with pytest.raises(ScalingError, match="unknown field 'defaults'"):
        load_spec(spec)  # parsed (merge keys are not duplicates), then validated


def test_infinite_timeout_exits_2(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data(tmp_path)) + "timeout_s: .inf\n")
    result = runner.invoke(app, ["sweep", "run", str(spec)])
    assert result.exit_code == 2 and "timeout_s: Input should be a finite number" in \
        result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- what evaluators return ----------------------------------------------------------------

def test_evaluator_results_validated(tmp_path):
    from sweep_evals import RESULTS

    modes = [m for m in RESULTS if m not in ("bool_and_text", "huge_text")]  # declared text
    data = spec_data(tmp_path, "results", axes={"llm": ["0.5B"], "visual_tokens": [4],
                                                "params": {"mode": modes}})
    report = run_sweep(parse_spec(data))
    rows = {r["mode"]: r for r in table(tmp_path / "out.csv")}
    ok = {m for m, r in rows.items() if r["status"] == "ok"}
    assert ok == {"number", "numpy", "none_with_metric", "axis_echo", "huge_int", "flag_bool",
                  "flag_float"}
    assert report.failed == len(modes) - len(ok)
    assert rows["flag_bool"]["flag"] == "1"  # booleans become 0/1
    assert float(rows["huge_int"]["count"]) == 1e30 and rows["numpy"]["accuracy"] == "0.25"
    failure = {m: r["failure"] for m, r in rows.items() if m not in ok}
    assert failure["nan"] == "metric 'accuracy' is nan; return a finite number (or leave the " \
                             "metric out)"
    assert "is inf" in failure["inf"]
    assert failure["empty"].startswith("evaluator returned no metric (got {})")
    assert failure["only_none"].startswith("evaluator returned no metric")
    assert failure["garbage"].startswith("evaluator returned 'garbage' (str)")
    assert "is text ('garbage'); return a number, or list it in the spec's " \
           "evaluator.text_columns" in failure["text_not_declared"]
    assert "returned llm='someone-else', but this run's llm is '0.5B'" in \
        failure["llm_overwrite"]
    assert "visual_tokens=999" in failure["tokens_overwrite"]
    assert rows["tokens_overwrite"]["visual_tokens"] == "4" and \
        rows["llm_overwrite"]["llm"] == "0.5B"
    assert "reserved key 'status'" in failure["reserved"]
    assert "metric name '' is not a column name" in failure["empty_name"]
    assert "metric name ' accuracy' is not a column name" in failure["padded_name"]
    assert "metric 'accuracy' is a list" in failure["list_value"]
    assert failure["missing_torch"].endswith('install it: pip install "scaling[train]"')
    for m in failure:  # the axes and costs of a failed run are still in its row
        assert rows[m]["accuracy"] == "" and float(rows[m]["flops_paper"]) == 2 * 5e8 * 4
    with open(tmp_path / "out.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert "" not in header and " accuracy" not in header


def test_declared_text_columns(tmp_path):
    data = spec_data(tmp_path, "results", axes={"llm": ["0.5B"], "visual_tokens": [4],
                     "params": {"mode": ["bool_and_text", "huge_text", "text_not_declared"]}})
    data["evaluator"]["text_columns"] = ["answer"]
    run_sweep(parse_spec(data))
    rows = {r["mode"]: r for r in table(tmp_path / "out.csv")}
    assert rows["bool_and_text"]["status"] == "ok" and rows["bool_and_text"]["answer"] == "yes"
    assert "string of 100,000 characters; at most 1,000" in rows["huge_text"]["failure"]
    assert "metric 'accuracy' is text" in rows["text_not_declared"]["failure"]


def test_parquet_with_mixed_types_across_runs(tmp_path):
    import pandas as pd

    data = spec_data(tmp_path, "results", output=str(tmp_path / "out.parquet"),
                     axes={"llm": ["0.5B"], "visual_tokens": [4],
                           "params": {"mode": ["number", "flag_bool", "flag_float", "huge_int"]}})
    run_sweep(parse_spec(data))  # `flag` is a bool in one run and a float in another
    frame = pd.read_parquet(tmp_path / "out.parquet")
    assert len(frame) == 4 and (frame["status"] == "ok").all()
    assert sorted(frame["flag"].dropna()) == [0.5, 1.0] and frame["count"].max() == 1e30


def test_failed_runs_exit_1_with_install_hint_and_a_clear_progress_line(tmp_path):
    data = spec_data(tmp_path, "results", axes={"llm": ["0.5B"], "visual_tokens": [4],
                                                "params": {"mode": ["missing_torch"]}})
    result = runner.invoke(app, ["sweep", "run", str(write_spec(tmp_path, data))])
    assert result.exit_code == 1, result.output
    assert 'install it: pip install "scaling[train]"' in result.stdout
    assert "error: 1 of 1 runs failed" in result.stderr
    assert "1/1 done: 0 ok, 1 failed" in result.stderr
    assert "exit status: 0 all runs ok; 1 some runs failed" in runner.invoke(
        app, ["sweep", "run", "--help"]).stdout.lower()
    good = runner.invoke(app, ["sweep", "run", str(write_spec(tmp_path, spec_data(
        tmp_path, output=str(tmp_path / "good.csv"))))])
    assert good.exit_code == 0 and "4/4 done: 4 ok, 0 failed" in good.stderr


# --- templates -----------------------------------------------------------------------------

def test_template_escapes(tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"accuracy": 0.99}))

    def spec(payload, args_tail, file="metrics.json", seed=0, **changes):
        data = spec_data(tmp_path, axes={"llm": ["0.5B"], "visual_tokens": [4], "seed": [seed],
                                         "params": {"payload": [payload]}}, **changes)
        data["evaluator"] = {"kind": "command", "parser": {"kind": "json", "file": file},
                             "args": [sys.executable, PROG, "ok", "{output_dir}", "4",
                                      *args_tail]}
        return parse_spec(data)

    with pytest.raises(ScalingError, match=r"args\[5\] '\{payload\}' would be '--write=FILE', "
                                           r"which the program reads as an option"):
        run_sweep(spec("--write=FILE", ["{payload}"]))
    assert not (tmp_path / "out.csv.runs").exists()  # refused before anything ran
    assert run_sweep(spec("--write=FILE", ["--opt={payload}"])).ok == 1  # one option's value
    negative = spec("x", ["{seed}"], seed=-1, output=str(tmp_path / "neg.csv"))
    assert run_sweep(negative).ok == 1  # numbers may be negative
    for payload, file in [("../../secret", "{payload}.json"), ("x", "../../../secret.json"),
                          ("x", str(outside))]:
        with pytest.raises(ScalingError, match="leads outside the run's folder"):
            run_sweep(spec(payload, [], file=file, output=str(tmp_path / "esc.csv")))
    data = spec_data(tmp_path, output=str(tmp_path / "link.csv"))
    data["evaluator"] = {"kind": "command", "parser": {"kind": "json"},
                         "args": [sys.executable, PROG, "symlink_out", "{output_dir}", "4",
                                  str(outside)]}
    report = run_sweep(parse_spec(data))
    assert report.ok == 0 and "leads outside the run's folder" in report.failures[0]["failure"]


def test_quick_spec_writes_to_an_ignored_folder():
    output = load_spec(ROOT / "sweeps" / "toyvlm_quick.yaml").output_path()
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert any(line.endswith("/") and str(output).startswith(line) for line in ignored)
