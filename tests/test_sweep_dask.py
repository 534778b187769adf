"""Dask distributed: the same spec gives the same table as the local pool; each run executes
in a worker process of its own on the Dask worker, so a crash, a hang in a C call (the
backstop) and leftover processes are handled as locally."""

import csv
import logging
import sys
from pathlib import Path

import pytest

from scaling.sweep import parse_spec, run_sweep

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
TIMING = ("started_at", "duration_s")


def make_spec(tmp_path, name, **changes):
    data = {"name": "d", "evaluator": {"kind": "python", "function": "sweep_evals:zoo"},
            "axes": {"llm": ["qwen1.5-0.5b", "1.8B"], "visual_tokens": [16],
                     "params": {"mode": ["ok", "raise", "rows", "flaky", "badtype", "hang"]}},
            "encoder": "clip-vit-l-14-336", "text_tokens": 10, "retries": 1, "timeout_s": 0.5,
            "output": str(tmp_path / name)}
    data.update(changes)
    return parse_spec(data)


def table_without_timing(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c for c in reader.fieldnames if c not in TIMING]
        rows = sorted(tuple(row[c] for c in columns) for row in reader)
    return columns, rows


def test_local_pool_and_dask_give_identical_tables(tmp_path):
    local = run_sweep(make_spec(tmp_path, "local.csv"), executor="local", workers=2)
    dask = run_sweep(make_spec(tmp_path, "dask.csv"), executor="dask", workers=2)
    assert dask.executor == "dask" and local.executor == "local"
    assert (local.ok, local.failed, local.rows) == (dask.ok, dask.failed, dask.rows) == \
        (6, 6, 16)
    local_table = table_without_timing(tmp_path / "local.csv")
    dask_table = table_without_timing(tmp_path / "dask.csv")
    assert local_table[0] == dask_table[0]  # same columns in the same order
    assert local_table[1] == dask_table[1]  # same rows, values, errors, attempts and costs
    with open(tmp_path / "local.csv") as a, open(tmp_path / "dask.csv") as b:
        a_rows, b_rows = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [r["run_id"] for r in a_rows] == [r["run_id"] for r in b_rows]  # both grid order
    errors = {r["mode"]: r["failure"] for r in b_rows}
    assert errors["hang"] == "timed out after 0.5 s"  # the in-thread timeout works on Dask too
    assert errors["badtype"].startswith("evaluator returned 'not a dict' (str)")
    assert {r["attempts"] for r in b_rows if r["mode"] == "flaky"} == {"2"}


@pytest.fixture(scope="module")
def scheduler():
    """An existing cluster, as `--address` users have (tolerating 1 worker death per task)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    yield cluster.scheduler_address
    cluster.close()


def test_existing_scheduler_and_crashing_run(tmp_path, scheduler):
    spec = make_spec(tmp_path, "addr.csv", evaluator={"kind": "python",
                                                      "function": "sweep_evals:mixed"},
                     axes={"llm": ["0.5B"], "visual_tokens": [4],
                           "params": {"mode": ["ok", "die", "raise"]}}, retries=0)
    report = run_sweep(spec, address=scheduler)
    assert report.executor == "dask" and (report.ok, report.failed) == (1, 2)
    rows = {r["mode"]: r for r in csv.DictReader(open(tmp_path / "addr.csv"))}
    assert rows["die"]["failure"] == "worker process exited with code 3"  # the Dask worker lives
    assert rows["die"]["attempts"] == "1" and rows["ok"]["status"] == "ok"
    assert rows["raise"]["failure"] == "ValueError: evaluator crashed for 0.5B V=4"
    again = run_sweep(spec, address=scheduler, executor="dask")  # resume works the same way
    assert (again.skipped, again.ran, again.ok, again.failed) == (1, 2, 1, 2)
    rows = {r["mode"]: r for r in csv.DictReader(open(tmp_path / "addr.csv"))}
    assert rows["die"]["failure"] == "worker process exited with code 3"
    assert rows["die"]["attempts"] == "2" and len(rows) == 3


def test_dask_backstop_ends_a_run_stuck_in_a_c_call(tmp_path, scheduler, monkeypatch):
    import time

    import scaling.sweep.runner as runner_module

    monkeypatch.setattr(runner_module, "BACKSTOP_GRACE_S", 0.5)
    spec = make_spec(tmp_path, "stuck.csv", evaluator={"kind": "python",
                                                       "function": "sweep_evals:mixed"},
                     axes={"llm": ["0.5B"], "visual_tokens": [4],
                           "params": {"mode": ["sleep_in_c", "ok"]}}, retries=0)
    t0 = time.monotonic()
    report = run_sweep(spec, address=scheduler)
    assert time.monotonic() - t0 < 20  # the C call sleeps 600 s
    assert (report.ok, report.failed) == (1, 1)
    (stuck,) = [r for r in csv.DictReader(open(tmp_path / "stuck.csv"))
                if r["mode"] == "sleep_in_c"]
    assert stuck["failure"] == "worker process ran past the backstop deadline of 1.5 s"
