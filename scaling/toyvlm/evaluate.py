"""The ``toyvlm`` sweep evaluator: train one toy VLM for one grid point, score it per family.

``evaluate(config)`` receives the sweep runner's config dict (see
:mod:`scaling.sweep.evaluators`): the axis values ``llm`` (a size name from
:data:`scaling.toyvlm.model.SIZES`, or free parameters ``width`` and ``depth``),
``visual_tokens``, ``compressor`` (default ``avgpool``), ``seed`` (default 0), and
``options`` from the spec:

========================  ========  ==================================================
option                    default   meaning
========================  ========  ==================================================
``steps``                 1500      optimiser steps (a fixed budget for every grid point)
``batch``                 128       questions per step
``lr``                    2e-3      peak learning rate (AdamW, warm-up + cosine)
``weight_decay``          0.01
``n_train`` / ``n_test``  6000/1000 scenes in the train / held-out test split
``data_seed``             0         scenes (the test split uses ``data_seed + 1000003``)
``encoder_steps``         800       encoder pre-training steps on the dense labels
``encoder_channels``      48        encoder conv width (small values: fast test encoders)
``cache_dir``             ~/.cache/scaling/toyvlm (or ``$SCALING_CACHE/toyvlm``)
========================  ========  ==================================================

It returns one row per question family (``task`` = ``reasoning`` | ``text``) with
``accuracy``, ``chance`` (majority answer per question type, what ignoring the image gets),
``llm_params`` (the decoder LM's parameters, embeddings included), ``total_params``
(encoder + compressor + projector + LM), ``visual_tokens``, ``train_time_s``, per-type
accuracies ``acc_<type>``, and ``llm_spec`` (the decoder as LLMSpec fields, for the exact
cost). Same config, same numbers: every random choice comes from ``seed``, one torch thread.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from scaling.errors import ScalingError
from scaling.toyvlm import data
from scaling.toyvlm.encoder import EncoderSettings, Features, feature_cache
from scaling.toyvlm.model import ToyVLM, count, llm_spec, lm_size
from scaling.toyvlm.train import TrainSettings, accuracy, train

OPTIONS = ("steps", "batch", "lr", "weight_decay", "n_train", "n_test", "data_seed",
           "encoder_steps", "encoder_channels", "cache_dir")


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


def evaluate(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Train and score one toy VLM; one row per question family (see the module doc)."""
    torch.set_num_threads(1)
    opts = _options(config)
    size = lm_size(config.get("llm"), width=config.get("width"), depth=config.get("depth"))
    name = str(config.get("llm") or f"toy-w{size.hidden}-d{size.layers}")
    visual_tokens = int(config["visual_tokens"])
    compressor = str(config.get("compressor") or "avgpool")
    seed = int(config.get("seed") or 0)
    enc = EncoderSettings(n_train=int(opts.get("n_train", 6000)),
                          n_test=int(opts.get("n_test", 1000)),
                          data_seed=int(opts.get("data_seed", 0)),
                          steps=int(opts.get("encoder_steps", 800)),
                          channels=int(opts.get("encoder_channels", 48)))
    cache_dir = opts.get("cache_dir")
    features, train_x, test_x, chance = _features(enc, str(Path(cache_dir).expanduser())
                                                  if cache_dir else None)
    settings = TrainSettings(steps=int(opts.get("steps", 1500)), batch=int(opts.get("batch", 128)),
                             lr=float(opts.get("lr", 2e-3)),
                             weight_decay=float(opts.get("weight_decay", 0.01)), seed=seed)
    torch.manual_seed(seed)
    model = ToyVLM(size, visual_tokens=visual_tokens, compressor=compressor,
                   feat_dim=train_x.shape[-1])
    result = train(model, train_x, features.train_split, settings)
    scores = accuracy(model, test_x, features.test_split)
    llm_params = count(model.lm)
    total = features.encoder_params + count(model)
    rows = []
    for family in data.FAMILIES:
        types = [t for t in data.QUESTION_TYPES if data.FAMILY[t] == family]
        rows.append({
            "task": family, "accuracy": scores[family], "chance": chance[family],
            "llm_params": llm_params, "total_params": total, "visual_tokens": visual_tokens,
            "width": size.hidden, "depth": size.layers, "train_time_s": result.train_time_s,
            "train_steps": result.steps, "final_loss": result.final_loss,
            **{f"acc_{t}": scores[f"acc_{t}"] for t in types if f"acc_{t}" in scores},
            "llm_spec": llm_spec(size, name),
        })
    return rows
