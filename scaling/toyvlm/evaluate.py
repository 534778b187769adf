"""The ``toyvlm`` sweep evaluator: train one toy VLM for one grid point, score it per family.

``evaluate(config)`` receives the sweep runner's config dict (see
:mod:`scaling.sweep.evaluators`): the axis values ``llm`` (a size name from
:data:`scaling.toyvlm.model.SIZES`, or free parameters ``width`` and ``depth``),
``visual_tokens``, ``compressor`` (default ``avgpool``), ``seed`` (default 0), ``task``
(``reasoning`` or ``text``: the question family to train and score; without it, one model
per family, trained one after the other), and ``options`` from the spec:

========================  ========  ==================================================
option                    default   meaning
========================  ========  ==================================================
``max_steps``             6000      optimiser steps at most (training stops earlier at a
                                    plateau of the validation loss: :mod:`.train`)
``min_steps``             0         no plateau is counted before this step (the initial
                                    plateau near chance is not convergence)
``batch``                 64        questions per step
``lr``                    2e-3      peak learning rate (AdamW, warm-up, drops on plateaus)
``weight_decay``          0.01
``eval_every``            200       steps between validation evaluations
``patience``              3         evaluations without improvement that make a plateau
``anneal``                0         share of ``max_steps`` at its end over which the rate
                                    decays linearly towards 0 (0: no decay)
``keep``                  best      ``best``: the lowest-validation-loss checkpoint;
                                    ``last``: the final weights
``n_train`` / ``n_test``  6000/1000 scenes in the train / held-out test split
``n_val``                 400       train scenes held out for early stopping
``data_seed``             0         scenes (the test split uses ``data_seed + 1000003``)
``encoder_steps``         1600      encoder pre-training steps on the dense labels
``encoder_channels``      48        encoder conv width (small values: fast test encoders)
``cache_dir``             ~/.cache/scaling/toyvlm (or ``$SCALING_CACHE/toyvlm``)
========================  ========  ==================================================

It returns one row per question family trained (``task`` = ``reasoning`` | ``text``) with
``accuracy``, ``chance`` (majority answer per question type, what ignoring the image gets),
``llm_params`` (the decoder LM's parameters, embeddings included), ``total_params``
(encoder + compressor + projector + LM), ``visual_tokens``, ``train_time_s``, the training
record (``train_steps`` taken, ``best_step`` kept, ``stopped`` = ``plateau`` or
``max_steps``, ``val_loss``, ``curve``: the learning curve as a JSON string, see
:func:`curve_json`), per-type accuracies ``acc_<type>``, and ``llm_spec`` (the decoder
as LLMSpec fields, for the exact cost). Same config, same numbers: every random choice
comes from ``seed``, one torch thread.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaling.errors import ScalingError
from scaling.toyvlm import data
from scaling.toyvlm.encoder import EncoderSettings, Features, feature_cache
from scaling.toyvlm.model import ToyVLM, count, llm_spec, lm_size
from scaling.toyvlm.train import TrainResult, TrainSettings, accuracy, train

OPTIONS = ("max_steps", "min_steps", "batch", "lr", "weight_decay", "eval_every", "patience",
           "anneal", "keep", "n_train", "n_val", "n_test", "data_seed", "encoder_steps",
           "encoder_channels", "cache_dir")


@functools.lru_cache(maxsize=2)
def _features(settings: EncoderSettings, cache_dir: str | None) -> tuple[Features, torch.Tensor,
                                                                        torch.Tensor, dict]:
    """Cached features as float32 tensors standardised per channel with the train split's
    mean and standard deviation, and the chance accuracies (per process)."""
    f = feature_cache(settings, cache_dir)
    chance = data.prior_accuracy(f.train_split, f.test_split)
    train = f.train.astype("float32")
    mean, std = train.mean((0, 1)), train.std((0, 1)) + 1e-6
    test = (f.test.astype("float32") - mean) / std
    return f, torch.from_numpy((train - mean) / std), torch.from_numpy(test), chance


def _options(config: dict[str, Any]) -> dict[str, Any]:
    options = dict(config.get("options") or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ScalingError(f"unknown toyvlm option(s) {', '.join(unknown)}; allowed: "
                           f"{', '.join(OPTIONS)}")
    return options


def curve_json(result: TrainResult) -> str:
    """The learning curve as compact JSON: ``{"step": [...], "train_loss": [...],
    "val_loss": [...], "val_accuracy": [...]}`` (one entry per validation evaluation; about
    25 characters each, so the sweep runner's 1,000-character limit on a text metric holds
    about 40 evaluations: keep ``max_steps / eval_every`` below that)."""
    return json.dumps({"step": [p.step for p in result.curve],
                       "train_loss": [round(p.train_loss, 3) for p in result.curve],
                       "val_loss": [round(p.val_loss, 3) for p in result.curve],
                       "val_accuracy": [round(p.val_accuracy, 3) for p in result.curve]},
                      separators=(",", ":"))


def evaluate(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Train and score one toy VLM; one row per question family (see the module doc)."""
    torch.set_num_threads(1)
    opts = _options(config)
    size = lm_size(config.get("llm"), width=config.get("width"), depth=config.get("depth"))
    name = str(config.get("llm") or f"toy-w{size.hidden}-d{size.layers}")
    visual_tokens = int(config["visual_tokens"])
    compressor = str(config.get("compressor") or "avgpool")
    seed = int(config.get("seed") or 0)
    d = EncoderSettings()
    enc = EncoderSettings(n_train=int(opts.get("n_train", d.n_train)),
                          n_test=int(opts.get("n_test", d.n_test)),
                          data_seed=int(opts.get("data_seed", d.data_seed)),
                          steps=int(opts.get("encoder_steps", d.steps)),
                          channels=int(opts.get("encoder_channels", d.channels)))
    cache_dir = opts.get("cache_dir")
    features, train_x, test_x, chance = _features(enc, str(Path(cache_dir).expanduser())
                                                  if cache_dir else None)
    default = TrainSettings()
    settings = TrainSettings(
        max_steps=int(opts.get("max_steps", default.max_steps)),
        min_steps=int(opts.get("min_steps", default.min_steps)),
        batch=int(opts.get("batch", default.batch)), lr=float(opts.get("lr", default.lr)),
        weight_decay=float(opts.get("weight_decay", default.weight_decay)),
        eval_every=int(opts.get("eval_every", default.eval_every)),
        patience=int(opts.get("patience", default.patience)),
        anneal=float(opts.get("anneal", default.anneal)),
        keep=str(opts.get("keep", default.keep)), seed=seed)
    if not 0.0 <= settings.anneal < 1.0:
        raise ScalingError(f"toyvlm anneal is the share of max_steps to decay over: it must be "
                           f"in [0, 1), got {settings.anneal}")
    if settings.keep not in ("best", "last"):
        raise ScalingError(f"toyvlm keep must be 'best' (lowest validation loss) or 'last' "
                           f"(final weights), got {settings.keep!r}")
    n_val = int(opts.get("n_val", 400))
    if not 0 < n_val < enc.n_train:
        raise ScalingError(f"toyvlm n_val must be between 1 and n_train - 1 = "
                           f"{enc.n_train - 1}, got {n_val}")
    fit_images = np.arange(enc.n_train - n_val)
    held_out = np.arange(enc.n_train - n_val, enc.n_train)
    task = config.get("task")
    if task is not None and task not in data.FAMILIES:
        raise ScalingError(f"toyvlm task must be one of {', '.join(data.FAMILIES)}, got "
                           f"{task!r}")
    rows = []
    for family in [task] if task else data.FAMILIES:
        torch.manual_seed(seed)
        model = ToyVLM(size, visual_tokens=visual_tokens, compressor=compressor,
                       feat_dim=train_x.shape[-1])
        result = train(model, train_x, data.questions_on(features.train_split, fit_images, family),
                       data.questions_on(features.train_split, held_out, family), settings)
        scores = accuracy(model, test_x, data.questions_on(features.test_split, None, family))
        rows.append({
            "task": family, "accuracy": scores[family], "chance": chance[family],
            "llm_params": count(model.lm), "total_params": features.encoder_params + count(model),
            "visual_tokens": visual_tokens, "width": size.hidden, "depth": size.layers,
            "train_time_s": result.train_time_s, "train_steps": result.steps,
            "best_step": result.best_step, "stopped": result.stopped,
            "val_loss": result.best_val_loss, "curve": curve_json(result),
            **{k: v for k, v in scores.items() if k.startswith("acc_")},
            "llm_spec": llm_spec(size, name),
        })
    return rows
