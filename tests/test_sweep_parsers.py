"""Results parsers: lmms-eval's results file (fixture of the 0.7.x shape) and generic JSON."""

import json
import os
import shutil
from pathlib import Path

import pytest

from scaling.sweep.evaluators import EvaluatorFailure
from scaling.sweep.evaluators.parsers import (
    ResultsMissing,
    json_metrics,
    lmms_eval_rows,
    newest,
    parse,
)
from scaling.sweep.spec import JsonParser, LmmsEvalParser

FIXTURE = Path(__file__).parent / "fixtures" / "lmms_eval_results.json"


def test_lmms_eval_rows_from_fixture():
    data = json.loads(FIXTURE.read_text())
    rows = {r["task"]: r for r in lmms_eval_rows(data)}
    assert set(rows) == {"gqa", "mme", "ai2d"}
    assert rows["gqa"]["exact_match"] == pytest.approx(0.6124185080299257)
    assert rows["gqa"]["exact_match_stderr"] is None  # "N/A"
    assert rows["gqa"]["n_samples"] == 500  # effective, not original
    assert rows["mme"]["mme_perception_score"] == pytest.approx(1390.7826130452181)
    # a filter other than "none" is kept in the column name
    assert rows["ai2d"]["exact_match_flexible-extract"] == pytest.approx(0.5553756476683938)
    assert rows["ai2d"]["exact_match_stderr_flexible-extract"] == pytest.approx(0.0089432048)
    assert "alias" not in rows["gqa"]


def test_lmms_eval_score_column():
    data = json.loads(FIXTURE.read_text())
    score = LmmsEvalParser(kind="lmms_eval", score={
        "mme": {"metric": "mme_perception_score,none", "divide_by": 2000},
        "gqa": {"metric": "exact_match,none"}}).score
    rows = {r["task"]: r for r in lmms_eval_rows(data, score=score)}
    assert rows["mme"]["score"] == pytest.approx(1390.7826130452181 / 2000)
    assert rows["gqa"]["score"] == pytest.approx(0.6124185080299257)
    assert "score" not in rows["ai2d"]
    bad = LmmsEvalParser(kind="lmms_eval", score={"gqa": {"metric": "acc,none"}}).score
    with pytest.raises(EvaluatorFailure, match="no number at 'acc,none'"):
        lmms_eval_rows(data, score=bad)


def test_lmms_eval_finds_the_newest_results_file_below_the_output_dir(tmp_path):
    model = tmp_path / "__ckpt__llava"
    model.mkdir()
    old = model / "20250101_000000_results.json"
    old.write_text(json.dumps({"results": {"gqa": {"exact_match,none": 0.1}}}))
    os.utime(old, (1, 1))
    shutil.copy(FIXTURE, model / "20250315_101502_results.json")
    (model / "20250315_101502_samples_gqa.jsonl").write_text("{}\n")
    rows = parse(LmmsEvalParser(kind="lmms_eval"), output_dir=tmp_path,
                 stdout_path=tmp_path / "stdout.log", fields={"output_dir": str(tmp_path)})
    assert {r["task"] for r in rows} == {"gqa", "mme", "ai2d"}


def test_lmms_eval_failures(tmp_path):
    parser = LmmsEvalParser(kind="lmms_eval")
    kw = {"output_dir": tmp_path, "stdout_path": tmp_path / "so", "fields": {
        "output_dir": str(tmp_path)}}
    with pytest.raises(ResultsMissing, match="no results file matching"):
        parse(parser, **kw)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x_results.json").write_text('{"results": {}}')
    with pytest.raises(EvaluatorFailure, match="no 'results' mapping"):
        parse(parser, **kw)
    (tmp_path / "m" / "x_results.json").write_text("garbage{")
    with pytest.raises(EvaluatorFailure, match="is not valid JSON"):
        parse(parser, **kw)


def test_json_key_paths():
    data = {"results": {"acc": 0.7, "per": [{"f1": 0.2}, {"f1": 0.3}]}, "name": "x",
            "nested": {"a": 1}}
    assert json_metrics(data, keys={"accuracy": "results.acc", "f1": "results.per.-1.f1"},
                        source="f") == {"accuracy": 0.7, "f1": 0.3}
    assert json_metrics(data, keys=None, source="f") == {"name": "x"}  # top-level scalars
    with pytest.raises(EvaluatorFailure, match="key path 'results.acc2' not found"):
        json_metrics(data, keys={"a": "results.acc2"}, source="f")
    with pytest.raises(EvaluatorFailure, match="is a dict, not a number"):
        json_metrics(data, keys={"a": "nested"}, source="f")
    with pytest.raises(EvaluatorFailure, match="expected a JSON object"):
        json_metrics([1, 2], keys=None, source="f")


def test_json_parser_templates_globs_and_stdout(tmp_path):
    (tmp_path / "eval-7").mkdir()
    (tmp_path / "eval-7" / "m.json").write_text('{"acc": 0.5}')
    parser = JsonParser(kind="json", file="eval-{seed}/*.json")
    assert parse(parser, output_dir=tmp_path, stdout_path=tmp_path / "so",
                 fields={"seed": 7}) == {"acc": 0.5}
    so = tmp_path / "stdout.log"
    so.write_text('loading...\n{"acc": 0.25}\n\n')
    assert parse(JsonParser(kind="json", file="-"), output_dir=tmp_path, stdout_path=so,
                 fields={}) == {"acc": 0.25}
    so.write_text("Segmentation fault\n")
    with pytest.raises(EvaluatorFailure, match="last line of stdout is not JSON"):
        parse(JsonParser(kind="json", file="-"), output_dir=tmp_path, stdout_path=so, fields={})
    with pytest.raises(ResultsMissing):
        newest(str(tmp_path / "nothing*.json"))
