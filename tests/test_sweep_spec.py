"""Sweep specs: validation messages, templates, grid expansion and the stable run_id."""

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from scaling.errors import ScalingError
from scaling.sweep import expand, load_spec, parse_spec, run_id

ROOT = Path(__file__).resolve().parents[1]
BASE = {"name": "t", "evaluator": {"kind": "python", "function": "m:f"},
        "axes": {"llm": ["0.5B", "qwen1.5-1.8b"], "visual_tokens": [1, 4, 16]}}


def spec(**changes):
    return parse_spec({**BASE, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"evaluatr": {}}, "unknown field 'evaluatr'; allowed: axes, description, design, "
                       "encoder, evaluator, executor"),
    ({"axes": {"llm": ["a"], "visual_tokens": [1], "tasks": ["x"]}},
     "unknown field 'axes.tasks'; allowed: compressor, llm, params, seed, task, visual_tokens"),
    ({"executor": {"kind": "dask", "adress": "x"}},
     "unknown field 'executor.adress'; allowed: address, kind, workers"),
    ({"evaluator": {"kind": "command", "args": ["x"], "parser": {"kind": "json", "fle": "a"}}},
     "unknown field 'evaluator.parser.fle'; allowed: file, keys, kind"),
    ({"axes": {"llm": [{"name": "a", "parm": 1}], "visual_tokens": [1]}},
     "unknown field 'axes.llm.0.parm'; allowed: arch, name, params, path"),
    ({"axes": {"llm": ["a"], "visual_tokens": [0]}},
     "axes.visual_tokens.0: Input should be greater than or equal to 1 (got 0)"),
    ({"axes": {"llm": ["a"], "visual_tokens": [1, 1]}}, "axis 'visual_tokens' repeats 1"),
    ({"axes": {"llm": ["a"], "visual_tokens": [1], "params": {"seed": [1]}}},
     "parameter name 'seed' is reserved"),
    ({"axes": {"llm": ["a"], "visual_tokens": [1], "task": []}}, "needs at least one value"),
    ({"evaluator": {"kind": "pythn"}}, "Input tag 'pythn'"),
    ({"evaluator": {"kind": "python", "function": "no_colon"}}, "evaluator.function"),
    ({"evaluator": {"kind": "command", "args": ["run", "{tsk}"], "parser": {"kind": "json"}}},
     "evaluator.args[1]: unknown template field {tsk}"),
    ({"evaluator": {"kind": "command", "args": ["{task}"], "parser": {"kind": "json"}}},
     "unknown template field {task}"),  # no task axis in BASE
    ({"evaluator": {"kind": "command", "args": ["{llm"], "parser": {"kind": "json"}}},
     "bad template '{llm'"),
    ({"retries": -1}, "retries: Input should be greater than or equal to 0"),
])
def test_bad_specs_name_the_field(changes, message):
    with pytest.raises(ScalingError) as err:
        spec(**changes)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_spec_file_errors(tmp_path):
    with pytest.raises(ScalingError, match="not found"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScalingError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ScalingError, match="a sweep spec is a YAML mapping"):
        load_spec(bad)
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ScalingError, match="not valid YAML"):  # safe_load refuses tags
        load_spec(unsafe)


def test_grid_is_the_cross_product_in_order():
    s = spec(axes={"llm": ["0.5B", {"name": "mine", "params": "3B", "path": "/c"}],
                   "visual_tokens": [1, 4], "task": ["gqa", "mme"], "seed": [0],
                   "params": {"lr": [0.1, 0.01]}})
    runs = expand(s)
    assert len(runs) == 2 * 2 * 2 * 1 * 2
    assert list(runs[0].axes) == ["llm", "visual_tokens", "task", "seed", "lr"]
    assert runs[0].axes == {"llm": "0.5B", "visual_tokens": 1, "task": "gqa", "seed": 0,
                            "lr": 0.1}
    assert runs[1].axes["lr"] == 0.01  # the last axis varies fastest
    assert runs[-1].llm.params == 3e9 and runs[-1].llm.path == "/c"
    assert len({r.run_id for r in runs}) == len(runs)
    assert [r.index for r in runs] == list(range(len(runs)))


def test_run_id_is_stable_and_depends_only_on_the_measurement():
    a = expand(spec())
    # same axes values in another order, another executor / retries / timeout: same ids
    b = expand(spec(axes={"visual_tokens": [16, 4, 1], "llm": ["qwen1.5-1.8b", "0.5B"]},
                    executor={"kind": "dask"}, retries=5, timeout_s=3))
    assert {r.run_id for r in a} == {r.run_id for r in b}
    assert a[0].run_id == run_id({"llm": "0.5B", "visual_tokens": 1}, {})
    # options change the measurement, so they change every id
    c = expand(spec(evaluator={"kind": "python", "function": "m:f", "options": {"steps": 2}}))
    assert not {r.run_id for r in a} & {r.run_id for r in c}


def test_run_id_golden():
    import hashlib

    text = '{"llm":"0.5B","options":{},"visual_tokens":1}'
    assert run_id({"visual_tokens": 1, "llm": "0.5B"}, {}) == \
        hashlib.sha256(text.encode()).hexdigest()[:16]


@given(st.dictionaries(st.text(min_size=1, max_size=5),
                       st.one_of(st.integers(), st.text(max_size=5), st.booleans()),
                       max_size=5))
def test_run_id_ignores_key_order(axes):
    reordered = dict(reversed(list(axes.items())))
    assert run_id(axes, {"k": 1}) == run_id(reordered, {"k": 1})


def test_output_path_and_suffix():
    assert str(spec().output_path()) == "results/t.csv"
    assert str(spec(output="x/y.parquet").output_path()) == "x/y.parquet"
    assert str(spec(output="x/y.csv").output_path("z.csv")) == "z.csv"
    with pytest.raises(ScalingError, match=r"\.csv or \.parquet"):
        spec().output_path("table.xlsx")


def test_lmms_eval_example_spec_is_valid():
    s = load_spec(ROOT / "sweeps" / "lmms_eval_example.yaml")
    assert s.evaluator.kind == "command" and s.evaluator.parser.kind == "lmms_eval"
    assert s.evaluator.env["HF_HUB_OFFLINE"] == "1"
    assert len(expand(s)) == 4 * 7 * 3
    raw = yaml.safe_load((ROOT / "sweeps" / "lmms_eval_example.yaml").read_text())
    assert raw["evaluator"]["args"][:3] == ["python", "-m", "lmms_eval"]


def test_toyvlm_evaluator_is_the_builtin_trainer():
    s = spec(evaluator={"kind": "toyvlm", "options": {"steps": 5}})
    assert s.evaluator.function == "scaling.toyvlm:evaluate"
    assert s.evaluator.options == {"steps": 5}


def test_lmms_eval_example_renders_one_literal_argument_list():
    from scaling.sweep.evaluators.command import render

    s = load_spec(ROOT / "sweeps" / "lmms_eval_example.yaml")
    run = expand(s)[1]
    fields = {**run.axes, "llm_path": run.llm.name, "options": s.evaluator.options,
              "output_dir": "/scratch/x", "run_id": run.run_id, "attempt": 1}
    args = [render(a, fields) for a in s.evaluator.args]
    assert args[6] == ("pretrained=/path/to/your/checkpoints/llava-qwen1.5-0.5b-v1,"
                       "conv_template=qwen_1_5")
    assert args[args.index("--tasks") + 1] == "mme"
    assert args[-2:] == ["--output_path", "/scratch/x"]
