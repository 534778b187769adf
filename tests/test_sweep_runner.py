"""The sweep runner on the local process pool: tables, costs, resume, retries, failures."""

import json
import sys
from pathlib import Path

import pytest

from scaling.errors import ScalingError
from scaling.sweep import expand, parse_spec, run_sweep, sweep_status

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))  # the sweep_evals module, also for pool workers


def make_spec(tmp_path, function="toy", **changes):
    data = {"name": "t", "evaluator": {"kind": "python", "function": f"sweep_evals:{function}"},
            "axes": {"llm": ["0.5B", "1.8B"], "visual_tokens": [1, 16]},
            "executor": {"kind": "local", "workers": 2}, "retries": 0,
            "output": str(tmp_path / "out.csv")}
    data.update(changes)
    return parse_spec(data)


def read_table(path):
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_table_columns_costs_and_fit_ready(tmp_path):
    from scaling.cost.catalog import get_encoder, get_llm
    from scaling.cost.flops import inference_cost, llm_params
    from scaling.fit.table import load_sweep

    spec = make_spec(tmp_path, axes={
        "llm": ["qwen1.5-0.5b", "1.8B", {"name": "mine", "params": "3B", "arch": "qwen1.5-4b"}],
        "visual_tokens": [1, 16], "compressor": ["conv_attn"]},
        text_tokens=50, gen_tokens=2, encoder="clip-vit-l-14-336")
    report = run_sweep(spec)
    assert (report.total, report.ok, report.failed, report.ran, report.rows) == (6, 6, 0, 6, 6)
    rows = read_table(tmp_path / "out.csv")
    assert list(rows[0])[:9] == ["run_id", "status", "failure", "attempts", "llm", "visual_tokens",
                                 "compressor", "llm_params", "llm_params_actual"]
    assert list(rows[0])[-2:] == ["started_at", "duration_s"]
    assert [r["llm"] for r in rows] == ["qwen1.5-0.5b"] * 2 + ["1.8B"] * 2 + ["mine"] * 2
    assert [r["run_id"] for r in rows] == [r.run_id for r in expand(spec)]  # grid order
    by = {(r["llm"], int(r["visual_tokens"])): r for r in rows}
    qwen = get_llm("qwen1.5-0.5b")
    # llm_params: the nominal size for a catalog model (as the paper and the planner use),
    # the parsed size, or the entry's params; the real count beside it where known
    assert float(by["qwen1.5-0.5b", 1]["llm_params"]) == 5e8
    assert float(by["qwen1.5-0.5b", 1]["llm_params_actual"]) == llm_params(qwen)
    assert float(by["1.8B", 1]["llm_params"]) == 1.8e9 and by["1.8B", 1]["flops"] == ""
    assert float(by["mine", 16]["llm_params"]) == 3e9
    for (_, v), r in by.items():  # flops_paper = 2 N (Q + V)  (Li et al. 2025)
        assert float(r["flops_paper"]) == pytest.approx(2 * float(r["llm_params"]) * (50 + v))
        assert r["status"] == "ok" and r["attempts"] == "1" and r["failure"] == ""
    exact = inference_cost(qwen, encoder=get_encoder("clip-vit-l-14-336"), projector="conv_attn",
                           visual_tokens=16, text_tokens=50, gen_tokens=2)
    row = by["qwen1.5-0.5b", 16]
    assert float(row["flops"]) == pytest.approx(exact.flops_total, rel=1e-12)
    assert float(row["flops_full_attention"]) == pytest.approx(exact.flops_full_attention_total)
    assert float(row["kv_cache_bytes"]) == pytest.approx(exact.kv_cache_bytes)
    assert float(row["flops_full_attention"]) > float(row["flops"])
    data = load_sweep(tmp_path / "out.csv", metric="accuracy")  # straight into `scaling fit`
    assert len(data.y) == 6 and data.metric == "1 - accuracy"
    leftovers = [p.name for p in (tmp_path / "out.csv.runs").iterdir() if p.name != ".lock"]
    assert sorted(leftovers) == sorted(f"{r['run_id']}.json" for r in rows)  # no tmp, no dirs


def test_resume_skips_ok_runs_and_retries_failed_ones(tmp_path):
    spec = make_spec(tmp_path, "flaky")
    first = run_sweep(spec)
    assert (first.ok, first.failed, first.ran) == (0, 4, 4)
    assert first.failures[0]["failure"] == "RuntimeError: transient failure on attempt 1"
    assert sweep_status(spec).failed == 4
    second = run_sweep(spec)  # failed runs get new attempts; attempts keep counting
    assert (second.ok, second.failed, second.ran, second.skipped) == (4, 0, 4, 0)
    rows = read_table(tmp_path / "out.csv")
    assert {r["attempts"] for r in rows} == {"2"} and {r["attempt_seen"] for r in rows} == {"2"}
    third = run_sweep(spec)
    assert (third.ran, third.skipped, third.ok) == (0, 4, 4)
    assert read_table(tmp_path / "out.csv") == rows  # nothing re-run, nothing duplicated


def test_retries_within_one_invocation(tmp_path):
    report = run_sweep(make_spec(tmp_path, "flaky", retries=1))
    assert (report.ok, report.failed) == (4, 0)
    assert {r["attempts"] for r in read_table(tmp_path / "out.csv")} == {"2"}


def test_crash_death_hang_and_bad_results_are_recorded_and_the_rest_completes(tmp_path):
    spec = make_spec(tmp_path, "mixed", timeout_s=1.0, axes={
        "llm": ["0.5B"], "visual_tokens": [4],
        "params": {"mode": ["ok", "raise", "die", "hang", "badtype", "ok2"]}})
    report = run_sweep(spec)
    assert (report.ok, report.failed, report.pending) == (2, 4, 0)
    errors = {r["mode"]: r for r in read_table(tmp_path / "out.csv")}
    assert errors["ok"]["status"] == errors["ok2"]["status"] == "ok"
    assert float(errors["ok"]["accuracy"]) > 0
    assert errors["raise"]["failure"] == "ValueError: evaluator crashed for 0.5B V=4"
    assert errors["die"]["failure"] == "worker process exited with code 3"
    assert errors["hang"]["failure"] == "timed out after 1 s"
    assert "evaluator returned 'not a dict' (str)" in errors["badtype"]["failure"]
    for mode in ("raise", "die", "hang", "badtype"):
        assert errors[mode]["status"] == "failed" and errors[mode]["attempts"] == "1"
        assert errors[mode]["accuracy"] == ""
        assert float(errors[mode]["flops_paper"]) == 2 * 5e8 * 4  # costs still annotated


def test_dead_worker_is_replaced_and_its_run_retried(tmp_path):
    report = run_sweep(make_spec(tmp_path, "mixed", retries=1, axes={
        "llm": ["0.5B"], "visual_tokens": [4], "params": {"mode": ["die", "ok"]}}))
    assert (report.ok, report.failed) == (1, 1)
    die = [r for r in read_table(tmp_path / "out.csv") if r["mode"] == "die"][0]
    assert die["attempts"] == "2" and die["failure"] == "worker process exited with code 3"


def test_several_rows_per_run_share_the_run_id(tmp_path):
    spec = make_spec(tmp_path, "per_task", axes={"llm": ["0.5B"], "visual_tokens": [1, 4]})
    assert run_sweep(spec).rows == 6
    rows = read_table(tmp_path / "out.csv")
    keys = [(r["run_id"], r["task"]) for r in rows]
    assert len(set(keys)) == 6 and len({r["run_id"] for r in rows}) == 2
    assert sweep_status(spec).ok == 2 and sweep_status(spec).rows == 6


def test_custom_architecture_from_the_evaluator(tmp_path):
    from scaling.cost.flops import inference_cost
    from scaling.cost.specs import LLMSpec

    spec = make_spec(tmp_path, "custom_arch", axes={"llm": ["tiny"], "visual_tokens": [8]},
                     text_tokens=4)
    run_sweep(spec)
    (row,) = read_table(tmp_path / "out.csv")
    tiny = LLMSpec(name="tiny", layers=2, hidden=64, heads=4, kv_heads=4, head_dim=16,
                   intermediate=128, vocab=100)
    assert float(row["llm_params"]) == 1.23e6  # the evaluator's value wins
    assert float(row["flops"]) == pytest.approx(
        inference_cost(tiny, visual_tokens=8, text_tokens=4).flops_total)
    assert "llm_spec" not in row


def test_evaluator_config_and_thread_pinning(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # workers inherit it, then pin to 1
    spec = make_spec(tmp_path, "echo", axes={
        "llm": [{"name": "m", "params": 1e9, "path": "/ckpt/m"}], "visual_tokens": [2]},
        evaluator={"kind": "python", "function": "sweep_evals:echo", "options": {"k": "v"},
                   "text_columns": ["seen_llm_path", "seen_option", "seen_run_id"]})
    run_sweep(spec, workers=1)
    (row,) = read_table(tmp_path / "out.csv")
    assert row["seen_llm_path"] == "/ckpt/m" and row["seen_option"] == "v"
    assert row["seen_run_id"] == row["run_id"] and row["has_output_dir"] == "1"  # bool -> 0/1
    assert row["omp_threads"] == "1"


def test_output_guard_and_preflight_errors(tmp_path):
    foreign = tmp_path / "out.csv"
    foreign.write_text("llm_params,visual_tokens,accuracy\n5e8,1,0.4\n")
    with pytest.raises(ScalingError, match="was not written by a sweep"):
        run_sweep(make_spec(tmp_path))
    assert foreign.read_text().startswith("llm_params")  # untouched
    with pytest.raises(ScalingError, match="module 'no_such_module' not found"):
        run_sweep(parse_spec({"name": "t", "evaluator": {"kind": "python",
                              "function": "no_such_module:f"},
                              "axes": {"llm": ["1B"], "visual_tokens": [1]}}),
                  output=tmp_path / "o2.csv")
    with pytest.raises(ScalingError, match="unknown vision encoder"):
        run_sweep(make_spec(tmp_path, encoder="clip-vit-huge"), output=tmp_path / "o3.csv")
    with pytest.raises(ScalingError, match="--address needs the dask executor"):
        run_sweep(make_spec(tmp_path), output=tmp_path / "o4.csv", executor="local",
                  address="tcp://x:1")


def test_parquet_output_and_missing_llm_params_warning(tmp_path):
    import pandas as pd

    spec = make_spec(tmp_path, "noop", axes={"llm": ["mystery-model"], "visual_tokens": [1]},
                     output=str(tmp_path / "out.parquet"))
    report = run_sweep(spec)
    frame = pd.read_parquet(tmp_path / "out.parquet")
    assert list(frame["status"]) == ["ok"] and frame["llm"][0] == "mystery-model"
    assert frame["llm_params"].isna().all() and frame["llm_params"].dtype == float
    assert report.warnings and "mystery-model" in report.warnings[0]


def test_records_are_whole_json_files(tmp_path):
    spec = make_spec(tmp_path)
    run_sweep(spec)
    for path in (tmp_path / "out.csv.runs").glob("*.json"):
        record = json.loads(path.read_text())
        assert set(record) == {"run_id", "status", "attempts", "rows"}
        assert path.stem == record["run_id"] == record["rows"][0]["run_id"]


def test_workers_see_the_current_environment(tmp_path, monkeypatch):
    run_sweep(make_spec(tmp_path, "noop"), output=tmp_path / "warm.csv")  # pool started before
    monkeypatch.setenv("SWEEP_TEST_TAG", "late")
    spec = make_spec(tmp_path, axes={"llm": ["1B"], "visual_tokens": [1]}, evaluator={
        "kind": "python", "function": "sweep_evals:env_tag", "text_columns": ["tag"]})
    run_sweep(spec)
    (row,) = read_table(tmp_path / "out.csv")
    assert row["tag"] == "late"


def test_backstop_kills_a_worker_stuck_in_a_c_call(tmp_path, monkeypatch):
    import scaling.sweep.runner as runner_module

    monkeypatch.setattr(runner_module, "BACKSTOP_GRACE_S", 0.5)
    spec = make_spec(tmp_path, "mixed", timeout_s=0.5, axes={
        "llm": ["0.5B"], "visual_tokens": [4], "params": {"mode": ["sleep_in_c", "ok"]}})
    report = run_sweep(spec)
    assert (report.ok, report.failed) == (1, 1)
    (stuck,) = [r for r in read_table(tmp_path / "out.csv") if r["mode"] == "sleep_in_c"]
    assert stuck["failure"] == "worker process ran past the backstop deadline of 1.5 s"
