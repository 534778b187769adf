"""The toy VLM: data, compressors, model sizes, training, the evaluator and its sweep.

Everything trains on a small cached feature set (2,000 scenes, a briefly pre-trained 16-channel
encoder: the settings of sweeps/toyvlm_quick.yaml) built once per session in a temporary cache
directory, so CI starts cold and pays ~25 s for it once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from scaling.errors import ScalingError
from scaling.toyvlm import COMPRESSORS, SIZES, data, evaluate, lm_size
from scaling.toyvlm.compressors import GRID_KINDS, PATCHES, bipartite_merge, make_compressor
from scaling.toyvlm.curves import plot_curves
from scaling.toyvlm.encoder import (
    ConvEncoder,
    EncoderSettings,
    feature_cache,
    scene_summary,
    targets,
)
from scaling.toyvlm.model import ToyVLM, count, llm_spec
from scaling.toyvlm.train import TrainSettings, cooldown, predict, train

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_train": 2000, "n_test": 300, "encoder_steps": 600, "encoder_channels": 16}
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
        # one cell per character, every TEXT_STRIDE cells from TEXT_COL, in one row
        assert len(set(rows)) == 1 and len(cols) == data.STRING_LEN
        assert list(cols) == [data.TEXT_COL + data.TEXT_STRIDE * i
                              for i in range(data.STRING_LEN)]
        char = data.CHARS[labels[rows[0], cols[k - 1]] - 1]
        assert data.VOCAB[split.answer[j]] == f"'{char}'"


def test_relations_are_asked_only_of_boxes_apart_along_the_axis():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scene = data.sample_scene(rng)
        where = {c: (r, col) for c, _, r, col in scene.shapes}
        for kind, q, a in data.questions(scene, rng):
            if kind not in ("left", "above"):
                continue
            words = [data.VOCAB[t] for t in q if t != data.PAD]
            first, second = where[words[1]], where[words[-2]]
            axis = 1 if kind == "left" else 0
            assert abs(first[axis] - second[axis]) >= data.BOX
            assert data.VOCAB[a] == ("yes" if first[axis] < second[axis] else "no")


def test_questions_on_filters_images_and_family():
    split = data.make_split(10, 0)
    text = data.questions_on(split, np.arange(5), "text")
    assert set(text.image_index) == set(range(5))
    assert {data.FAMILY[data.QUESTION_TYPES[t]] for t in text.qtype} == {"text"}
    assert len(text.answer) == 5 * data.STRING_LEN
    reasoning = data.questions_on(split, None, "reasoning")
    assert len(reasoning.answer) + len(data.questions_on(split, None, "text").answer) == \
        len(split.answer)


# --- encoder ----------------------------------------------------------------------------

def test_scene_summary_names_each_object_and_its_centre():
    """Hand-placed scene: a red circle in the top-left 2x2 box, a blue square in the
    bottom-right one. The summary marks exactly those two of the 24 colour-shape objects,
    at their box centres (cell 0.5 and 10.5 on the [-1, 1] ramp over 12 cells)."""
    scene = data.Scene((("red", "circle", 0, 0), ("blue", "square", 10, 10)), "ABCEF", 5, 1)
    _, labels = data.render(scene, np.random.default_rng(0))
    present, where = scene_summary(targets(torch.from_numpy(labels)[None]))
    red_circle = list(data.COLOURS).index("red") * len(data.SHAPES) + data.SHAPES.index("circle")
    blue_square = list(data.COLOURS).index("blue") * len(data.SHAPES) + data.SHAPES.index("square")
    assert present.shape == (1, 24) and torch.nonzero(present[0]).flatten().tolist() == \
        sorted([red_circle, blue_square])
    centre = 2 * 0.5 / (data.GRID - 1) - 1  # cell 0.5 -> -10/11
    torch.testing.assert_close(where[0, red_circle], torch.tensor([centre, centre]))
    torch.testing.assert_close(where[0, blue_square], torch.tensor([-centre, -centre]))
    assert where[0, present[0] == 0].abs().max() == 0


def test_encoder_features_know_where_a_cell_is():
    """Coordinate channels: on a blank image, two interior cells (where zero padding cannot
    tell them apart) get different features."""
    torch.manual_seed(0)
    feats = ConvEncoder(channels=8, feat_dim=4)(torch.zeros(1, 3, data.IMAGE, data.IMAGE))[0]
    a, b = feats[5 * data.GRID + 5], feats[5 * data.GRID + 6]
    assert (a - b).abs().max() > 1e-4


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
    val = data.questions_on(f.train_split, np.arange(100))
    result = train(model, feats, f.train_split, val,
                   TrainSettings(max_steps=25, batch=32, lr=3e-3, warmup=1, eval_every=25))
    assert result.best_val_loss < math.log(len(data.VOCAB))  # below a uniform guess
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


def test_pooled_tokens_keep_coarse_position():
    """With the 2-D position embedding added before compression, average pooling of an
    empty feature grid still gives each region its own token, ordered along each axis."""
    model = ToyVLM(SIZES["toy-xs"], visual_tokens=4, compressor="avgpool", feat_dim=8)
    empty = torch.zeros(1, PATCHES, 8)
    grid_pos = (model.row_pos + model.col_pos).flatten(0, 1)
    tokens = model.compressor(empty + grid_pos)[0]  # (4, 8): regions TL, TR, BL, BR
    assert torch.cdist(tokens, tokens).fill_diagonal_(1.0).min() > 1e-3
    # the column code of the right regions minus the left ones is the same in both rows
    torch.testing.assert_close(tokens[1] - tokens[0], tokens[3] - tokens[2])


def test_pooling_once_and_last_position_only_change_nothing():
    """Both shortcuts of a training step are exact: pooling the frozen features once
    (``pool(f + p) = pool(f) + pool(p)``) and running the last block on the final position
    only give the logits, and the position code's gradient, of the plain computation (every
    block on every position of ``[question][pool(f + p)][?]``)."""
    torch.manual_seed(0)
    model = ToyVLM(SIZES["toy-m"], visual_tokens=4, compressor="avgpool", feat_dim=8)
    feats = torch.randn(5, PATCHES, 8)
    q = torch.randint(1, len(data.VOCAB), (5, data.QUESTION_LEN))
    lm, grid_pos = model.lm, (model.row_pos + model.col_pos).flatten(0, 1)
    visual = model.projector(model.compressor(feats + grid_pos))
    x = torch.cat([lm.embed(q[:, :-1]), visual, lm.embed(q[:, -1:])], 1)
    x = x + lm.pos[: x.shape[1]]
    for block in lm.blocks:
        x = block(x)
    reference = lm.ln_f(x[:, -1]) @ lm.embed.weight.T
    assert model.image_inputs(feats).shape == (5, 4, 8)
    logits = model(feats, q)
    torch.testing.assert_close(logits, reference)
    grads = [torch.autograd.grad(out.square().sum(), model.row_pos)[0]
             for out in (logits, reference)]
    torch.testing.assert_close(*grads)


def test_llm_params_do_not_depend_on_visual_tokens():
    counts = {count(ToyVLM(SIZES["toy-s"], visual_tokens=v, compressor="avgpool",
                           feat_dim=32).lm) for v in (1, 16, 144)}
    assert len(counts) == 1


# --- the evaluator ----------------------------------------------------------------------

def test_evaluate_learns_and_beats_chance(cache):
    """A small model trained for seconds on the text family with V = 16 (most characters
    alone in a token) starts reading: above chance by more than 4 standard errors of the
    1,500 test questions (the study's models need ~1,000+ steps to read well); the row
    carries its training record."""
    rows = evaluate({"llm": "toy-s", "visual_tokens": 16, "seed": 0, "task": "text",
                     "options": _options(cache, max_steps=600, eval_every=200, lr=4e-3)})
    assert [r["task"] for r in rows] == ["text"]
    text = rows[0]
    assert text["accuracy"] >= text["chance"] + 0.02, text
    assert text["llm_params"] == count(ToyVLM(SIZES["toy-s"], visual_tokens=16,
                                              compressor="avgpool", feat_dim=32).lm)
    assert text["total_params"] > text["llm_params"] and text["visual_tokens"] == 16
    assert 0 < text["chance"] < 1 and text["train_time_s"] > 0
    assert text["llm_spec"]["hidden"] == 32 and text["llm_spec"]["layers"] == 2
    curve = json.loads(text["curve"])
    assert curve["step"] == [200, 400, 600] and text["best_step"] in curve["step"]
    assert min(curve["val_loss"]) == pytest.approx(text["val_loss"], abs=1e-3)
    assert text["stopped"] in ("plateau", "max_steps")


def test_training_stops_at_a_plateau_and_keeps_the_best_checkpoint(cache):
    """With a zero learning rate the validation loss never improves after the first
    evaluation: one plateau drops the rate, the next ends training; the first checkpoint is
    the one kept (the model's parameters are those it had then)."""
    f = feature_cache(TINY_ENCODER, cache)
    feats = torch.from_numpy(f.train.astype(np.float32))
    torch.manual_seed(0)
    model = ToyVLM(SIZES["toy-xs"], visual_tokens=1, compressor="avgpool",
                   feat_dim=feats.shape[-1])
    start = [p.detach().clone() for p in model.parameters()]
    val = data.questions_on(f.train_split, np.arange(50), "reasoning")
    result = train(model, feats, data.questions_on(f.train_split, np.arange(50, 500)), val,
                   TrainSettings(max_steps=1000, batch=8, lr=0.0, eval_every=5, patience=1))
    assert result.stopped == "plateau" and result.steps == 15 and result.best_step == 5
    assert [p.step for p in result.curve] == [5, 10, 15]
    assert all(torch.equal(a, b) for a, b in zip(start, model.parameters(), strict=True))


def test_no_plateau_is_counted_before_min_steps(cache):
    """The same frozen model with ``min_steps = 10``: the evaluation at step 10 does not
    count, so the rate drops at 15 and training ends at 20 instead of 15."""
    f = feature_cache(TINY_ENCODER, cache)
    feats = torch.from_numpy(f.train.astype(np.float32))
    torch.manual_seed(0)
    model = ToyVLM(SIZES["toy-xs"], visual_tokens=1, compressor="avgpool",
                   feat_dim=feats.shape[-1])
    val = data.questions_on(f.train_split, np.arange(50), "reasoning")
    result = train(model, feats, data.questions_on(f.train_split, np.arange(50, 500)), val,
                   TrainSettings(max_steps=1000, batch=8, lr=0.0, eval_every=5, patience=1,
                                 min_steps=10))
    assert result.stopped == "plateau" and result.steps == 20 and result.best_step == 5


def test_keep_last_scores_the_final_weights(cache):
    """``keep="last"``: the model is left with the weights of the last step, whose
    validation evaluation is the curve's last point; ``keep="best"`` (same seed, same
    steps) goes back to the lowest-validation-loss checkpoint. Trained on ten scenes, the
    validation loss is lowest at step 50 of 60."""
    f = feature_cache(TINY_ENCODER, cache)
    feats = torch.from_numpy(f.train.astype(np.float32))
    fit, val = (data.questions_on(f.train_split, np.arange(50, 60), "reasoning"),
                data.questions_on(f.train_split, np.arange(50), "reasoning"))
    runs = {}
    for keep in ("last", "best"):
        torch.manual_seed(0)
        model = ToyVLM(SIZES["toy-xs"], visual_tokens=1, compressor="avgpool",
                       feat_dim=feats.shape[-1])
        result = train(model, feats, fit, val, TrainSettings(
            max_steps=60, min_steps=60, batch=8, lr=0.01, eval_every=5, keep=keep))
        pred, val_loss = predict(model, feats, val)
        runs[keep] = result, val_loss, float((pred == val.answer).mean())
    last, last_loss, last_acc = runs["last"]
    best, best_loss, _ = runs["best"]
    assert last.steps == last.best_step == 60 and last.stopped == "max_steps"
    assert last_loss == pytest.approx(last.curve[-1].val_loss, rel=1e-5)
    assert last_acc == pytest.approx(last.curve[-1].val_accuracy)
    assert [p.val_loss for p in best.curve] == [p.val_loss for p in last.curve]
    assert best_loss == pytest.approx(min(p.val_loss for p in best.curve), rel=1e-5)
    assert best.best_step == 50 and best_loss < last_loss


def test_cooldown_decays_the_rate_linearly_over_the_last_share_of_the_cap():
    """anneal = 0.2 of 100 steps: full rate through step 80, then (101 - step) / 20, down to
    1/20 at the cap; anneal = 0 never decays."""
    s = TrainSettings(max_steps=100, anneal=0.2)
    assert [cooldown(k, s) for k in (1, 80, 81)] == [1.0, 1.0, 1.0]
    assert cooldown(90, s) == pytest.approx(0.55) and cooldown(100, s) == pytest.approx(0.05)
    assert all(cooldown(k, TrainSettings(max_steps=100)) == 1.0 for k in range(1, 101))


def test_same_seed_same_accuracy(cache):
    config = {"llm": "toy-xs", "visual_tokens": 9, "compressor": "quecc",
              "options": _options(cache, max_steps=20, eval_every=10)}
    first = evaluate({**config, "seed": 1})
    again = evaluate({**config, "seed": 1})
    other = evaluate({**config, "seed": 2})
    assert [r["task"] for r in first] == list(data.FAMILIES)  # no task: one model per family
    strip = [{k: v for k, v in r.items() if k != "train_time_s"} for r in first]
    assert strip == [{k: v for k, v in r.items() if k != "train_time_s"} for r in again]
    assert [r["curve"] for r in other] != [r["curve"] for r in first]


def test_evaluate_rejects_bad_options(cache):
    with pytest.raises(ScalingError, match="unknown toyvlm option"):
        evaluate({"llm": "toy-xs", "visual_tokens": 4, "options": {"stpes": 3}})
    with pytest.raises(ScalingError, match="visual_tokens a square"):
        evaluate({"llm": "toy-xs", "visual_tokens": 5, "compressor": "avgpool",
                  "options": _options(cache, max_steps=1)})
    with pytest.raises(ScalingError, match=r"anneal .* in \[0, 1\), got 1.5"):
        evaluate({"llm": "toy-xs", "visual_tokens": 4,
                  "options": _options(cache, max_steps=1, anneal=1.5)})
    with pytest.raises(ScalingError, match="keep must be 'best' .* got 'final'"):
        evaluate({"llm": "toy-xs", "visual_tokens": 4,
                  "options": _options(cache, max_steps=1, keep="final")})
    with pytest.raises(ScalingError, match="task must be one of"):
        evaluate({"llm": "toy-xs", "visual_tokens": 4, "task": "ocr",
                  "options": _options(cache, max_steps=1)})


# --- the sweep specs --------------------------------------------------------------------

def test_shipped_specs_validate():
    from scaling.sweep.spec import load_spec

    quick = load_spec(ROOT / "sweeps" / "toyvlm_quick.yaml")
    full = load_spec(ROOT / "sweeps" / "toyvlm.yaml")
    assert quick.evaluator.kind == full.evaluator.kind == "toyvlm"
    sizes = [count(ToyVLM(lm_size(e.name), visual_tokens=1, compressor="avgpool",
                          feat_dim=32).lm) for e in full.axes.llm]
    assert len(sizes) >= 3 and max(sizes) / min(sizes) >= 15
    assert sorted(full.axes.visual_tokens) == [1, 4, 16]
    assert len(full.axes.seed) >= 2 and sorted(full.axes.task) == ["reasoning", "text"]
    assert set(quick.evaluator.options) <= set(TINY) | {"max_steps", "batch", "lr",
                                                        "eval_every", "patience", "n_val",
                                                        "anneal"}


def test_adaptive_and_compressor_specs_train_as_the_study_does():
    """sweeps/toyvlm_adaptive.yaml must stay in step with sweeps/toyvlm.yaml (its comment
    says its runs can be replayed from the study's records): same evaluator options and the
    same axis values, restricted to the reasoning family. The compressor comparison says it
    trains as the study does (its avgpool rows repeat the study's)."""
    from scaling.sweep.spec import load_spec

    full = load_spec(ROOT / "sweeps" / "toyvlm.yaml")
    adaptive = load_spec(ROOT / "sweeps" / "toyvlm_adaptive.yaml")
    compressors = load_spec(ROOT / "sweeps" / "toyvlm_compressors.yaml")
    assert adaptive.evaluator.options == full.evaluator.options
    assert compressors.evaluator.options == full.evaluator.options
    assert [e.name for e in adaptive.axes.llm] == [e.name for e in full.axes.llm]
    for axis in ("visual_tokens", "compressor", "seed"):
        assert getattr(adaptive.axes, axis) == getattr(full.axes, axis), axis
    assert adaptive.axes.task == ["reasoning"] and adaptive.text_tokens == full.text_tokens


def test_low_rate_spec_changes_only_rate_steps_and_checkpoint():
    """sweeps/toyvlm_lowlr.yaml is the study's reasoning grid at a third of its rate
    (results/toyvlm.md compares the two): every other option and every axis as the study's."""
    from scaling.sweep.spec import load_spec

    full = load_spec(ROOT / "sweeps" / "toyvlm.yaml")
    low = load_spec(ROOT / "sweeps" / "toyvlm_lowlr.yaml")
    changed = {"lr", "max_steps", "min_steps", "eval_every", "keep"}
    same = {k: v for k, v in full.evaluator.options.items() if k not in changed}
    assert {k: v for k, v in low.evaluator.options.items() if k not in changed} == same
    assert low.evaluator.options["lr"] == pytest.approx(full.evaluator.options["lr"] / 3)
    assert low.evaluator.options["keep"] == "last"
    assert low.evaluator.options["min_steps"] == low.evaluator.options["max_steps"]
    assert [e.name for e in low.axes.llm] == [e.name for e in full.axes.llm]
    for axis in ("visual_tokens", "compressor", "seed"):
        assert getattr(low.axes, axis) == getattr(full.axes, axis), axis
    assert low.axes.task == ["reasoning"]


def test_report_tables_give_mean_and_half_range_over_seeds():
    import pandas as pd

    from scaling.toyvlm.report import grid_table, seed_spread, type_table

    rows = [{"task": "text", "llm": "toy-xs", "llm_params": 9936, "visual_tokens": v,
             "seed": s, "accuracy": acc, "acc_read": acc, "train_steps": 100,
             "stopped": "plateau", "status": "ok"}
            for v, s, acc in ((1, 0, 0.10), (1, 1, 0.14), (16, 0, 0.50), (16, 1, 0.40))]
    table = pd.DataFrame(rows + [{**rows[0], "accuracy": 0.9, "status": "failed"}])
    assert "| text | toy-xs (9,936) | 0.120 ± 0.020 | 0.450 ± 0.050 |" in grid_table(table)
    assert seed_spread(table)["text"] == pytest.approx((0.07, 0.10))
    assert "| toy-xs | 16 | 0.45 | 100, 100 | plateau, plateau |" in type_table(table, "text")
    with pytest.raises(ScalingError, match="no seed column"):
        grid_table(table.drop(columns="seed"))


@pytest.mark.parametrize("module", ["report", "curves"])
def test_report_and_curves_scripts_exit_2_on_a_table_that_is_not_a_toyvlm_sweep(
        module, tmp_path, capsys):
    import importlib

    table = tmp_path / "runs.csv"
    table.write_text("llm_params,visual_tokens,accuracy\n1e9,4,0.5\n")
    main = importlib.import_module(f"scaling.toyvlm.{module}").main
    with pytest.raises(SystemExit) as exit_:
        main([str(table)] + (["-o", str(tmp_path / "c.png")] if module == "curves" else []))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "column" in err and len(err.splitlines()) == 1


def test_quick_spec_runs_through_the_sweep_runner(cache, tmp_path):
    """sweeps/toyvlm_quick.yaml (shortened) through ``scaling sweep run``: one row per run
    and task, cost-annotated from the returned llm_spec, ready for ``scaling fit``."""
    import pandas as pd
    from typer.testing import CliRunner

    from scaling.cli import app

    spec = yaml.safe_load((ROOT / "sweeps" / "toyvlm_quick.yaml").read_text())
    spec["evaluator"]["options"].update(cache_dir=cache, max_steps=20, eval_every=10)
    spec["axes"]["visual_tokens"] = [1]  # 2 sizes x 2 families keep the test short
    spec["executor"]["workers"] = 1
    spec["output"] = str(tmp_path / "quick.csv")
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["sweep", "run", str(path), "--json"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "quick.csv")
    assert len(table) == 2 * 2  # llm x task
    assert set(table["task"]) == {"reasoning", "text"}
    assert (table["status"] == "ok").all()
    assert table["flops"].notna().all() and table["flops_paper"].notna().all()
    small = table[table["llm"] == "toy-xs"]["llm_params"].iloc[0]
    assert small == count(ToyVLM(SIZES["toy-xs"], visual_tokens=1, compressor="avgpool",
                                 feat_dim=32).lm)
    png = plot_curves(table, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- probes -----------------------------------------------------------------------------

def test_probe_label_readers_match_the_scenes():
    from scaling.toyvlm.probe import characters, colour_boxes

    rng = np.random.default_rng(5)
    scenes = [data.sample_scene(rng) for _ in range(40)]
    labels = np.stack([data.render(s, rng)[1] for s in scenes])
    boxes, chars = colour_boxes(labels), characters(labels)
    for scene, box, line in zip(scenes, boxes, chars, strict=True):
        held = {list(data.COLOURS).index(c): (r, col) for c, _, r, col in scene.shapes}
        for k in range(len(data.COLOURS)):
            if k in held:
                assert tuple(box[k]) == held[k]
            else:
                assert np.isnan(box[k]).all()
        assert "".join(data.CHARS[i] for i in line) == scene.text


def test_relation_answers_from_the_true_boxes_are_always_right():
    """The probe's answer rule is the questions' rule: given each colour's true box it
    answers every left/above question right, and given boxes mirrored left-right it gets
    every left-of question wrong."""
    from scaling.toyvlm.probe import colour_boxes, relation_accuracy

    split = data.make_split(60, 2)
    boxes = colour_boxes(split.labels)
    assert relation_accuracy(boxes, split) == {"left": 1.0, "above": 1.0}
    mirrored = boxes.copy()
    mirrored[..., 1] = -mirrored[..., 1]
    assert relation_accuracy(mirrored, split)["left"] == 0.0


def test_ridge_recovers_a_linear_map_and_shrinks_with_the_penalty():
    from scaling.toyvlm.probe import ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    w = rng.normal(size=(5, 2))
    y = x @ w + 3.0
    fit = ridge(x, y, penalty=1e-9)
    np.testing.assert_allclose(fit[:-1], w, atol=1e-6)
    np.testing.assert_allclose(fit[-1], [3.0, 3.0], atol=1e-6)  # the bias is not penalised
    assert np.abs(ridge(x, y, penalty=1e4)[:-1]).sum() < 0.2 * np.abs(w).sum()


def test_probes_read_more_from_more_tokens(cache):
    from scaling.toyvlm.probe import probe

    features = feature_cache(TINY_ENCODER, cache)
    one, many = probe(features, 1), probe(features, 16)
    assert set(one) == {"left", "above", "read"}
    assert all(0.0 <= s <= 1.0 for s in (*one.values(), *many.values()))
    # this 16-channel test encoder: V = 1 -> 16 gives left 0.55 -> 0.75, above 0.57 -> 0.82,
    # read 0.10 -> 0.15 (the study's encoder: results/toyvlm.md)
    assert many["read"] > one["read"] + 0.03
    for kind in ("left", "above"):
        assert many[kind] > max(0.65, one[kind] + 0.1), kind  # chance is 0.5


def test_probe_script_exits_2_on_bad_token_counts(capsys):
    from scaling.toyvlm.probe import main

    for bad in ("2", "1,x"):
        with pytest.raises(SystemExit) as exit_:
            main(["--tokens", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.splitlines()) == 1
