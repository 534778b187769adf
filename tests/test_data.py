"""Sweep-table loading: shapes, metrics, units and one precise error per bad input."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling.errors import ScalingError
from scaling.fit.fitter import fit_law
from scaling.fit.table import from_arrays, load_sweep

PAPER = Path(__file__).parents[1] / "sweeps" / "li2025_visual_reasoning.csv"


def write(tmp_path, text, name="runs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = ("llm_params,visual_tokens,accuracy\n0.5B,1,0.40\n0.5B,16,0.42\n500M,576,0.45\n"
        "7e9,1,0.48\n7B,16,0.50\n7000M,576,0.53\n")


def test_paper_table_loads_as_error():
    data = load_sweep(PAPER)
    assert data.n_points == 28
    assert data.metric == "1 - accuracy"
    # first row of the reference CSV: qwen1.5-0.5b, V=1, accuracy 0.3855
    assert data.y[0] == 1 - 0.3855 and data.llm_params_b[0] == 0.5
    assert len(data.sha256) == 64 and data.sha256 == load_sweep(PAPER).sha256


def test_units_and_wide_mean(tmp_path):
    path = write(tmp_path, "llm_params,visual_tokens,gqa,pope\n0.5B,1,0.4,0.6\n500M,4,0.5,0.7\n"
                 "7B,1,0.6,0.8\n7e9,4,0.7,0.9\n")
    data = load_sweep(path, metric="mean:gqa,pope")
    np.testing.assert_allclose(data.y, [0.5, 0.4, 0.3, 0.2])
    np.testing.assert_array_equal(data.llm_params, [5e8, 5e8, 7e9, 7e9])
    assert load_sweep(path, metric=["gqa", "pope"]).sha256 == data.sha256
    assert load_sweep(path, metric="gqa").metric == "1 - gqa"


def test_tidy_table_pivots_and_groups(tmp_path):
    rows = ["llm_params,visual_tokens,benchmark,score"]
    for n in ("0.5B", "7B"):
        for t in (1, 4):
            rows += [f"{n},{t},gqa,0.5", f"{n},{t},pope,0.7"]
    path = write(tmp_path, "\n".join(rows) + "\n")
    data = load_sweep(path, metric="mean:gqa,pope")
    assert data.n_points == 4 and np.allclose(data.y, 0.4)
    grouped = load_sweep(path, group_by="benchmark")
    assert set(grouped.by_group()) == {"gqa", "pope"}
    assert np.allclose(grouped.by_group()["pope"].y, 0.3)
    with pytest.raises(ScalingError, match="several benchmarks.*--metric"):
        load_sweep(path)


def test_error_column_used_as_is_and_multiple_files(tmp_path):
    a = write(tmp_path, "llm_params,visual_tokens,error\n1B,1,0.5\n1B,4,0.4\n", "a.csv")
    b = write(tmp_path, "llm_params,visual_tokens,error\n2B,1,0.45\n2B,4,0.35\n", "b.csv")
    data = load_sweep([a, b])
    np.testing.assert_allclose(data.y, [0.5, 0.4, 0.45, 0.35])
    assert data.metric == "error" and len(data.file_sha256) == 2


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"llm_params": [5e8, 5e8, 7e9, 7e9], "visual_tokens": [1, 4, 1, 4],
                      "accuracy": [0.4, 0.45, 0.5, 0.55]})
    pq.write_table(table, tmp_path / "runs.parquet")
    data = load_sweep(tmp_path / "runs.parquet")
    np.testing.assert_allclose(data.y, [0.6, 0.55, 0.5, 0.45])


def test_replicates_with_seed_column_share_a_cluster(tmp_path):
    path = write(tmp_path, "llm_params,visual_tokens,seed,accuracy\n1B,1,0,0.4\n1B,1,1,0.41\n"
                 "2B,4,0,0.5\n2B,4,1,0.52\n")
    data = load_sweep(path)
    assert data.n_points == 4 and data.cluster.tolist() == [0, 0, 1, 1]


def test_exact_duplicates_are_reported_not_silent(tmp_path):
    path = write(tmp_path, GOOD + "7B,16,0.50\n")
    data = load_sweep(path)
    assert data.n_points == 6 and "duplicate" in data.notes[0] and "row 7" in data.notes[0]


@pytest.mark.parametrize(("text", "message"), [
    ("llm_params,accuracy\n1B,0.5\n", r"needs axis V but the table binds only "
     "N=llm_params; bind a column with --axis V=COLUMN"),
    ("llm_params,visual_tokens,accuracy\n1B,1,\n", r"row 1 of runs.csv, column 'accuracy': "
     "missing value"),
    ("llm_params,visual_tokens,accuracy\n1B,1,nan\n", r"row 1 of runs.csv, column 'accuracy': "
     "'nan' is not a finite number"),
    ("llm_params,visual_tokens,accuracy\n1B,1,0.5\n1B,four,0.5\n",
     r"row 2 of runs.csv, column 'visual_tokens': text 'four' in a number column"),
    ("llm_params,visual_tokens,accuracy\n1B,0,0.5\n", r"row 1 of runs.csv, column "
     "'visual_tokens': '0' must be a whole number >= 1"),
    ("llm_params,visual_tokens,accuracy\n1B,2.5,0.5\n", r"'2.5' must be a whole number"),
    ("llm_params,visual_tokens,accuracy\n1B,1,53.2\n", r"row 1 of runs.csv, column 'accuracy': "
     r"accuracy 53.2 is outside \[0, 1\]"),
    ("llm_params,visual_tokens,accuracy\n1Q,1,0.5\n", r"row 1 of runs.csv, column 'llm_params'"
     ".*'1Q'"),
    ("llm_params,visual_tokens,accuracy\n1B,1,0.5\n1B,1,0.6\n", r"row 2 of runs.csv repeats the "
     r"configuration of row 1 of runs.csv \(llm_params=1e\+09, visual_tokens=1\) with a "
     "different accuracy"),
    ("llm_params,visual_tokens,accuracy\n1B,1,0.5\n1B,4,0.6\n", r"at least 2 distinct "
     r"llm_params values.*\[1000000000.0\]"),
    ("llm_params,visual_tokens,accuracy\n1B,4,0.5\n2B,4,0.6\n", r"at least 2 distinct "
     "visual_tokens"),
    ("llm_params,visual_tokens,error\n1B,1,-0.1\n", r"column 'error': error-like value -0.1 is "
     "negative"),
    ("llm_params,visual_tokens,accuracy\n1B,1,0.5,9\n", r"row 1 of runs.csv has 4 fields but "
     "the header has 3"),
    ("", r"runs.csv is empty"),
    ("llm_params,visual_tokens,accuracy\n", r"no data rows"),
])
def test_bad_input_names_file_row_column_value(tmp_path, text, message):
    """Table errors stop the load; axis errors (missing, constant) stop the product fit."""
    with pytest.raises(ScalingError, match=message):
        fit_law(load_sweep(write(tmp_path, text)), law="product", validation=False)


def test_bad_metric_and_files(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ScalingError, match="runs.csv has no column 'gqa'; its columns are"):
        load_sweep(path, metric="gqa")
    with pytest.raises(ScalingError, match="not found"):
        load_sweep(tmp_path / "missing.csv")
    with pytest.raises(ScalingError, match="unsupported data file"):
        load_sweep(write(tmp_path, GOOD, "runs.xlsx"))
    with pytest.raises(ScalingError, match="metric kind"):
        load_sweep(path, kind="higher")


def test_from_arrays_rejects_bad_values():
    with pytest.raises(ScalingError):
        from_arrays([1e9, 2e9], [0, 4], [0.5, 0.4])


CELLS = st.one_of(st.just(""), st.just("nan"), st.just("inf"), st.just("-1"), st.just("0"),
                  st.just("1.5"), st.just("0.5B"), st.just("abc"), st.just("7e9"), st.just("576"),
                  st.just("2"), st.just('"'), st.text(max_size=4))
COLUMNS = st.lists(st.sampled_from(["llm_params", "visual_tokens", "accuracy", "error", "seed",
                                    "benchmark", "score", "x"]), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=COLUMNS, cells=st.lists(st.lists(CELLS, min_size=0, max_size=6), max_size=6),
       metric=st.sampled_from([None, "accuracy", "mean:accuracy,error", "score"]))
def test_malformed_tables_never_traceback(tmp_path, columns, cells, metric):
    text = ",".join(columns) + "\n" + "\n".join(",".join(c.replace("\n", " ") for c in row)
                                                for row in cells)
    path = tmp_path / "fuzz.csv"
    path.write_text(text)
    try:
        data = load_sweep(path, metric=metric)
    except ScalingError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert np.all(np.isfinite(data.y)) and np.all(data.visual_tokens >= 1)


def test_failed_sweep_rows_are_left_out_with_a_note(tmp_path):
    """Tables written by `scaling sweep run` carry status ok|failed; failed rows have no metric."""
    path = tmp_path / "sweep.csv"
    path.write_text("run_id,status,failure,llm_params,visual_tokens,accuracy\n"
                    "a,ok,,0.5B,1,0.40\nb,ok,,0.5B,4,0.42\nc,failed,boom,1B,1,\n"
                    "d,ok,,1B,1,0.45\ne,ok,,1B,4,0.47\n")
    data = load_sweep(path)
    assert data.n_points == 4
    assert any("status is not 'ok'" in note for note in data.notes)


def test_files_of_different_shapes_do_not_share_a_metric_choice(tmp_path):
    """Each file picks its metric; files that pick differently are refused, not silently fitted
    with the last file's choice (the old loader reused it after its loop)."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("llm_params,visual_tokens,accuracy\n1B,4,0.5\n2B,4,0.6\n")
    b.write_text("llm_params,visual_tokens,error\n1B,16,0.4\n2B,16,0.3\n")
    with pytest.raises(ScalingError, match="different metrics: a.csv -> 1 - accuracy, b.csv -> "
                                           "error"):
        load_sweep([a, b])
