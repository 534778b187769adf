"""The toy VLM: data, compressors, model sizes, training, the evaluator and its sweep.

Everything trains on a small cached feature set (2,000 scenes, a briefly pre-trained 16-channel
encoder: the settings of sweeps/toyvlm_quick.yaml) built once per session in a temporary cache
directory, so CI starts cold and pays ~20 s for it once.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from scaling.errors import ScalingError
from scaling.toyvlm import COMPRESSORS, SIZES, data, evaluate, lm_size
from scaling.toyvlm.compressors import GRID_KINDS, PATCHES, bipartite_merge, make_compressor
from scaling.toyvlm.encoder import EncoderSettings, feature_cache
from scaling.toyvlm.model import ToyVLM, count, llm_spec
from scaling.toyvlm.train import TrainSettings, train

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_train": 2000, "n_test": 300, "encoder_steps": 250, "encoder_channels": 16}
TINY_ENCODER = EncoderSettings(n_train=TINY["n_train"], n_test=TINY["n_test"],
                               steps=TINY["encoder_steps"], channels=TINY["encoder_channels"])


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("toyvlm_cache")
    feature_cache(TINY_ENCODER, path)
    return str(path)


def _options(cache: str, **extra) -> dict:
    return {**TINY, "cache_dir": cache, "batch": 64, "lr": 3e-3, **extra}


# --- data -------------------------------------------------------------------------------

def test_split_is_a_pure_function_of_the_seed():
    a, b, c = data.make_split(20, 3), data.make_split(20, 3), data.make_split(20, 4)
    for name in ("images", "labels", "question", "answer", "qtype", "image_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.images, c.images)


def test_questions_match_the_scene_labels():
    split = data.make_split(50, 0)
    assert split.images.shape == (50, 3, data.IMAGE, data.IMAGE)
    assert split.question.shape[1] == data.QUESTION_LEN
    assert set(np.unique(split.qtype)) == set(range(len(data.QUESTION_TYPES)))
    read = data.QUESTION_TYPES.index("read")
    for j in np.flatnonzero(split.qtype == read)[:30]:
        k = int(data.VOCAB[split.question[j][3]][1:])  # '#k'
        labels = split.labels[split.image_index[j], 2]
        rows, cols = np.nonzero(labels)
        # the string's k-th 2x2 box, left to right
        col = sorted(set(cols))[2 * (k - 1)]
        char = data.CHARS[labels[rows.min(), col] - 1]
        assert data.VOCAB[split.answer[j]] == f"'{char}'"


# --- compressors ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", COMPRESSORS)
def test_every_compressor_returns_exactly_v_tokens(kind):
    torch.manual_seed(0)
    feats = torch.randn(3, PATCHES, 8, requires_grad=True)
    question = torch.randint(0, len(data.VOCAB), (3, data.QUESTION_LEN))
    counts = (1, 4, 9, 16, 36, 144) if kind in GRID_KINDS else (1, 5, 9, 36, 71, 143)
    for v in counts:
        comp = make_compressor(kind, dim=8, visual_tokens=v, vocab=len(data.VOCAB))
        out = comp(feats, question)
        assert out.shape == (3, v, 8)
        assert torch.isfinite(out).all()
        feats.grad = None
        out.square().sum().backward()
        assert feats.grad is not None and torch.isfinite(feats.grad).all()
        assert all(p.grad is not None for p in comp.parameters())


@pytest.mark.parametrize("kind", GRID_KINDS)
def test_grid_compressors_reject_counts_off_the_grid(kind):
    with pytest.raises(ScalingError, match="visual_tokens a square"):
        make_compressor(kind, dim=8, visual_tokens=5, vocab=10)


def test_unknown_compressor_and_bad_token_count_are_named():
    with pytest.raises(ScalingError, match="unknown compressor 'bogus'"):
        make_compressor("bogus", dim=8, visual_tokens=4, vocab=10)
    with pytest.raises(ScalingError, match="got 145"):
        make_compressor("tome", dim=8, visual_tokens=145, vocab=10)


def test_tome_merge_preserves_total_mass():
    """Size-weighted merging keeps sum(size * token) and the total size."""
    torch.manual_seed(1)
    x, size = torch.randn(2, 10, 4), torch.ones(2, 10)
    y, new_size = bipartite_merge(x, size, 3)
    assert y.shape == (2, 7, 4) and new_size.shape == (2, 7)
    torch.testing.assert_close((y * new_size[..., None]).sum(1), x.sum(1))
    torch.testing.assert_close(new_size.sum(1), size.sum(1))


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_every_compressor_trains(cache, kind):
    """A few optimiser steps of the whole model through each compressor lower the loss."""
    f = feature_cache(TINY_ENCODER, cache)
    feats = torch.from_numpy(f.train.astype(np.float32))
    feats = (feats - feats.mean((0, 1))) / feats.std((0, 1))
    torch.manual_seed(0)
    model = ToyVLM(SIZES["toy-xs"], visual_tokens=4, compressor=kind, feat_dim=feats.shape[-1])
    before = [p.detach().clone() for p in model.parameters()]
    result = train(model, feats, f.train_split, TrainSettings(steps=25, batch=32, lr=3e-3))
    assert math.isfinite(result.final_loss)
    assert result.final_loss < math.log(len(data.VOCAB))  # below a uniform guess
    moved = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(moved)


# --- model sizes ------------------------------------------------------------------------

def test_sizes_span_more_than_30x_and_match_the_llm_spec():
    from scaling.cost import flops as cost
    from scaling.cost.specs import LLMSpec

    params = {}
    for name, size in SIZES.items():
        model = ToyVLM(size, visual_tokens=4, compressor="avgpool", feat_dim=32)
        params[name] = count(model.lm)
        spec = LLMSpec(**llm_spec(size, name))
        position_table = (PATCHES + data.QUESTION_LEN) * size.hidden
        assert cost.llm_params(spec) == params[name] - position_table
    ordered = [params[n] for n in SIZES]
    assert ordered == sorted(ordered)
    assert ordered[-1] / ordered[0] >= 30


def test_free_width_and_depth():
    assert lm_size(width=80, depth=3).hidden == 80
    assert lm_size("toy-m", depth=5).layers == 5
    with pytest.raises(ScalingError, match="unknown toyvlm llm 'huge'"):
        lm_size("huge")
    with pytest.raises(ScalingError, match="multiple of 16"):
        lm_size(width=20, depth=2)
    with pytest.raises(ScalingError, match="depth must be >= 2"):
        lm_size(width=32, depth=1)


def test_llm_params_do_not_depend_on_visual_tokens():
    counts = {count(ToyVLM(SIZES["toy-s"], visual_tokens=v, compressor="avgpool",
                           feat_dim=32).lm) for v in (1, 16, 144)}
    assert len(counts) == 1


# --- the evaluator ----------------------------------------------------------------------

def test_evaluate_learns_and_beats_chance(cache):
    """A small model trained for seconds reads the text far above chance (the reading family
    learns first; the reasoning family needs the full study's longer training)."""
    rows = evaluate({"llm": "toy-m", "visual_tokens": 4, "seed": 0,
                     "options": _options(cache, steps=500)})
    by_task = {r["task"]: r for r in rows}
    assert set(by_task) == {"reasoning", "text"}
    text, reasoning = by_task["text"], by_task["reasoning"]
    assert text["accuracy"] >= 2 * text["chance"] and text["accuracy"] >= 0.1, text
    assert reasoning["accuracy"] >= reasoning["chance"] - 0.05, reasoning  # not collapsed
    for r in rows:
        assert r["llm_params"] == count(ToyVLM(SIZES["toy-m"], visual_tokens=4,
                                               compressor="avgpool", feat_dim=32).lm)
        assert r["total_params"] > r["llm_params"] and r["visual_tokens"] == 4
        assert 0 < r["chance"] < 1 and r["train_time_s"] > 0
        assert r["llm_spec"]["hidden"] == 64 and r["llm_spec"]["layers"] == 3


def test_same_seed_same_accuracy(cache):
    config = {"llm": "toy-xs", "visual_tokens": 9, "compressor": "quecc",
              "options": _options(cache, steps=40)}
    first = evaluate({**config, "seed": 1})
    again = evaluate({**config, "seed": 1})
    other = evaluate({**config, "seed": 2})
    strip = [{k: v for k, v in r.items() if k != "train_time_s"} for r in first]
    assert strip == [{k: v for k, v in r.items() if k != "train_time_s"} for r in again]
    assert [r["final_loss"] for r in other] != [r["final_loss"] for r in first]


def test_evaluate_rejects_bad_options(cache):
    with pytest.raises(ScalingError, match="unknown toyvlm option"):
        evaluate({"llm": "toy-xs", "visual_tokens": 4, "options": {"stpes": 3}})
    with pytest.raises(ScalingError, match="visual_tokens a square"):
        evaluate({"llm": "toy-xs", "visual_tokens": 5, "compressor": "avgpool",
                  "options": _options(cache, steps=1)})


# --- the sweep specs --------------------------------------------------------------------

def test_shipped_specs_validate():
    from scaling.sweep.spec import load_spec

    quick = load_spec(ROOT / "sweeps" / "toyvlm_quick.yaml")
    full = load_spec(ROOT / "sweeps" / "toyvlm.yaml")
    assert quick.evaluator.kind == full.evaluator.kind == "toyvlm"
    sizes = [count(ToyVLM(lm_size(e.name), visual_tokens=1, compressor="avgpool",
                          feat_dim=32).lm) for e in full.axes.llm]
    assert len(sizes) >= 4 and max(sizes) / min(sizes) >= 30
    assert sorted(full.axes.visual_tokens) == [1, 4, 9, 16, 36]
    assert set(quick.evaluator.options) <= set(TINY) | {"steps", "batch", "lr"}


def test_quick_spec_runs_through_the_sweep_runner(cache, tmp_path):
    """sweeps/toyvlm_quick.yaml (shortened) through ``scaling sweep run``: one row per run
    and task, cost-annotated from the returned llm_spec, ready for ``scaling fit``."""
    import pandas as pd
    from typer.testing import CliRunner

    from scaling.cli import app

    spec = yaml.safe_load((ROOT / "sweeps" / "toyvlm_quick.yaml").read_text())
    spec["evaluator"]["options"].update(cache_dir=cache, steps=20)
    spec["executor"]["workers"] = 1
    spec["output"] = str(tmp_path / "quick.csv")
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["sweep", "run", str(path), "--json"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "quick.csv")
    assert len(table) == 2 * 2 * 2  # llm x visual_tokens x task
    assert set(table["task"]) == {"reasoning", "text"}
    assert (table["status"] == "ok").all()
    assert table["flops"].notna().all() and table["flops_paper"].notna().all()
    small = table[table["llm"] == "toy-xs"]["llm_params"].iloc[0]
    assert small == count(ToyVLM(SIZES["toy-xs"], visual_tokens=1, compressor="avgpool",
                                 feat_dim=32).lm)
