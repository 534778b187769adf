"""Issue 11's classes of hostile input outside the sweep runner, one test per class (the sweep
runner's classes are in tests/test_sweep_hardening.py). Each fails on the code before it:
the markup, pipe, version, dpi, token-range, config-count and nested-JSON cases raised
tracebacks or exited 1; units, LLaVA defaults, menus and dtype gave silently wrong answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaling.cli import app
from scaling.errors import ScalingError
from scaling.files import atomic_write

ROOT = Path(__file__).parents[1]
PAPER = str(ROOT / "sweeps" / "li2025_visual_reasoning.csv")
runner = CliRunner()


def one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


# --------------------------------------------------------------------------- data loss


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "law.json"
    target.write_text("old")

    def dies_half_way(fh):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(ScalingError, match="disk is full"):
        atomic_write(target, dies_half_way)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["law.json"]  # no temp file left


def test_atomic_write_replaces_a_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out.law.json"
    link.symlink_to(victim)
    atomic_write(link, "new")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "new"


@pytest.mark.parametrize("make_output", [
    lambda tmp: str(tmp),                                  # a folder
    lambda tmp: "/proc/x/out.png",                         # a folder that cannot exist
    lambda tmp: str(Path(tmp, "file.txt", "out.png")),     # under a regular file
])
def test_unwritable_outputs_exit_2(tmp_path, make_output):
    (tmp_path / "file.txt").write_text("x")
    out = make_output(tmp_path)
    one_error_line(runner.invoke(app, ["plot", "frontier", "-o", out]))
    law_out = out if out.endswith(".png") is False else out.replace(".png", ".law.json")
    one_error_line(runner.invoke(app, ["fit", PAPER, "--no-validation", "-o", law_out]))


def test_inputs_that_are_not_regular_files_exit_2(tmp_path):
    fifo = tmp_path / "pipe.law.json"
    os.mkfifo(fifo)
    assert "FIFO" in one_error_line(runner.invoke(app, ["plan", "--flops", "1e13",
                                                        "--law", str(fifo)]))
    assert "folder" in one_error_line(runner.invoke(app, ["plan", "--flops", "1e13",
                                                          "--law", str(tmp_path)]))
    assert "FIFO" in one_error_line(runner.invoke(app, ["cost", "--hf-config", str(fifo),
                                                        "--visual-tokens", "4"]))


def test_deeply_nested_json_exits_2(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested" in one_error_line(runner.invoke(app, ["plan", "--flops", "1e13",
                                                          "--law", str(deep)]))
    assert "nested" in one_error_line(runner.invoke(app, ["cost", "--hf-config", str(deep),
                                                          "--visual-tokens", "4"]))


# --------------------------------------------------------------------------- wrong answers


@pytest.mark.parametrize("change, message", [
    ({"num_attention_heads": 0}, "num_attention_heads must be a positive whole number"),
    ({"num_hidden_layers": float("inf")}, "num_hidden_layers must be a positive whole number"),
    ({"num_hidden_layers": 2.5}, "num_hidden_layers must be a positive whole number"),
    ({"num_hidden_layers": True}, "num_hidden_layers must be a positive whole number"),
    ({"hidden_size": 1000, "num_attention_heads": 3}, "not divisible"),
])
def test_hf_config_counts_are_validated(tmp_path, change, message):
    cfg = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 512,
           "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 1000, **change}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg).replace("Infinity", "1e999"))
    assert message in one_error_line(runner.invoke(
        app, ["cost", "--hf-config", str(path), "--visual-tokens", "4"]))


def test_llava_config_without_vision_config_uses_transformers_default(tmp_path):
    from scaling.cost import from_hf_config, patch_tokens

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llava", "text_config": {"model_type": "llama"}}))
    vlm = from_hf_config(path)
    # transformers' LlavaConfig() builds CLIP ViT-L/14 at 336 px: 24x24 = 576 patch tokens
    assert (vlm.encoder.image_size, vlm.encoder.patch_size, vlm.encoder.layers) == (336, 14, 24)
    assert patch_tokens(vlm.encoder.image_size, vlm.encoder.patch_size) == 576


def test_units_parse_exactly_and_refuse_ambiguous_sizes():
    from scaling.units import parse_flops, parse_params

    assert parse_params("4.1B") == parse_params("4100M") == 4.1e9
    assert parse_params("0.1B") == parse_params("100M")
    for ambiguous in (0.5, 1.8, "4", 7):
        with pytest.raises(ScalingError, match="0.5B|B or"):
            parse_params(ambiguous)
    assert parse_params(9936.0) == 9936.0               # a real (toy) count is kept
    with pytest.raises(ScalingError, match="not a rate"):
        parse_flops("1e13flop/s")
    one_error_line(runner.invoke(app, ["plan", "--flops", "1e13flop/s"]))


def test_repeated_menu_entries_are_merged():
    from scaling import plan

    p = plan(flops=1e13, text_tokens=50, sizes="7B,7B,0.5B", tokens="16,16,1", top=10)
    configs = [(c.llm_params, c.visual_tokens) for c in (p.discrete, *p.alternatives)]
    assert len(configs) == len(set(configs)) == 4


def test_an_option_without_effect_warns():
    from scaling import plan

    assert any("--dtype fp32 has no effect" in w
               for w in plan(flops=1e13, dtype="fp32").warnings)
    assert not any("--dtype" in w for w in plan(flops=1e13, dtype="fp32", cost="exact",
                                                family="qwen1.5").warnings)


# --------------------------------------------------------------------------- tracebacks


def test_rich_markup_in_user_text_is_printed_literally(tmp_path):
    table = tmp_path / "runs[bold].csv"
    rows = Path(PAPER).read_text().splitlines()
    header = rows[0].replace("accuracy", "acc[bold]") + ",task"
    table.write_text("\n".join([header, *(r + ",[red]x[/]" for r in rows[1:])]) + "\n")
    res = runner.invoke(app, ["fit", str(table), "--metric", "acc[bold]", "--no-validation",
                              "--group-by", "task"])
    assert res.exit_code == 0, res.output
    assert "acc[bold]" in res.stdout and "[red]x[/]" in res.stdout
    res = runner.invoke(app, ["fit", str(tmp_path / "missing[/].csv")])
    assert "missing[/].csv" in one_error_line(res)


def test_closed_pipe_exits_0():
    for args in (["plan", "--flops", "1e13"], ["plan", "--flops", "1e13", "--json"]):
        script = (f"{sys.executable} -m scaling.cli {' '.join(args)} | head -c 10 >/dev/null;"
                  " echo ${PIPESTATUS[0]}")
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              timeout=120)
        assert proc.stdout.strip() == "0" and proc.stderr == "", proc


def test_version_and_short_help():
    from scaling import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"scaling {__version__}"
    assert runner.invoke(app, ["-h"]).exit_code == 0
    assert runner.invoke(app, ["plan", "-h"]).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["--dpi", "100000"], "--dpi must be between"),
    (["--token-range", "a:b"], "visual tokens must be a number"),
])
def test_plot_options_out_of_range_exit_2(tmp_path, args, message):
    res = runner.invoke(app, ["plot", "frontier", "-o", str(tmp_path / "f.png"), *args])
    assert message in one_error_line(res)
