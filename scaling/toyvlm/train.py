"""Training of one toy VLM to a plateau on held-out data, and its scoring (one thread, seeded).

Each step samples ``batch`` questions uniformly from the train split and minimises the
answer token's cross-entropy with AdamW (linear warm-up over ``warmup`` steps, then a
constant rate up to the cooldown below; gradients clipped at 1). The evaluator trains one
model per question family: trained together, the text family's larger loss starves the
reasoning family for thousands of steps. Every ``eval_every`` steps the model is scored on a
validation split of scenes it never trains on. Early stopping on that split: when the
validation loss has not improved by ``min_delta`` (relative) for ``patience`` evaluations,
the learning rate drops by ``decay`` (at most ``drops`` times); after the last drop the next
plateau ends training. The best checkpoint by validation loss is kept (``keep = "best"``),
so every grid point is scored at its own plateau whatever its sequence length, not at a
fixed step count (``max_steps`` is a cap; :class:`TrainResult` says whether it was hit);
``keep = "last"`` keeps the final weights instead, for a fixed budget that ends in the
cooldown below, scored where its schedule ends (validation loss can rise while accuracy
still does, as a model grows overconfident on questions it already answers). A run that
reaches the last ``anneal`` share of the cap has its rate decayed linearly towards 0
(:func:`cooldown`), the decay phase of a warmup-stable-decay schedule (Hu et al. 2024,
MiniCPM): a capped run is then scored cooled down, as the plateaued ones are after their
drop, not at its peak rate. No plateau is counted before ``min_steps``: small transformers
sit on a long initial plateau near chance before their loss drops, and early stopping alone
cannot tell that plateau from convergence. Scoring is exact-match accuracy of the arg-max
answer on every held-out question.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from scaling.toyvlm import data
from scaling.toyvlm.model import ToyVLM


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int = 6000
    min_steps: int = 0
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: int = 100
    eval_every: int = 200
    patience: int = 3
    min_delta: float = 0.005
    decay: float = 0.2
    drops: int = 1
    anneal: float = 0.0
    keep: str = "best"  # or "last"
    seed: int = 0


@dataclass(frozen=True)
class CurvePoint:
    """One evaluation: ``step``, mean train loss since the previous one, validation loss and
    validation accuracy."""

    step: int
    train_loss: float
    val_loss: float
    val_accuracy: float


@dataclass(frozen=True)
class TrainResult:
    train_time_s: float
    best_step: int  # the checkpoint kept (lowest validation loss, or the last with keep="last")
    steps: int  # steps taken
    stopped: str  # "plateau" or "max_steps"
    best_val_loss: float
    curve: tuple[CurvePoint, ...]


@torch.no_grad()
def predict(model: ToyVLM, feats: torch.Tensor, split: data.Split, *,
            batch: int = 1024) -> tuple[np.ndarray, float]:
    """Arg-max answers for every question of ``split`` and their mean cross-entropy."""
    return _predict(model, model.image_inputs(feats), split, batch=batch)


@torch.no_grad()
def _predict(model: ToyVLM, inputs: torch.Tensor, split: data.Split, *,
             batch: int = 1024) -> tuple[np.ndarray, float]:
    """:func:`predict` on the model's per-image inputs (:meth:`ToyVLM.image_inputs`)."""
    model.eval()
    question = torch.from_numpy(split.question)
    answer = torch.from_numpy(split.answer)
    image = torch.from_numpy(split.image_index)
    preds, loss = [], 0.0
    for i in range(0, len(answer), batch):
        logits = model.answer_logits(inputs[image[i:i + batch]], question[i:i + batch])
        loss += float(F.cross_entropy(logits, answer[i:i + batch], reduction="sum"))
        preds.append(logits.argmax(-1).numpy())
    model.train()
    return np.concatenate(preds), loss / len(answer)


def accuracy_by_type(pred: np.ndarray, split: data.Split) -> dict[str, float]:
    """Exact-match accuracy over all questions (``all``), per family present (``reasoning``,
    ``text``) and per question type present (``acc_<type>``)."""
    correct = pred == split.answer
    family = np.array([data.FAMILY[t] for t in data.QUESTION_TYPES])[split.qtype]
    out = {"all": float(correct.mean())}
    out.update({f: float(correct[family == f].mean()) for f in data.FAMILIES
                if (family == f).any()})
    for t, name in enumerate(data.QUESTION_TYPES):
        if (split.qtype == t).any():
            out[f"acc_{name}"] = float(correct[split.qtype == t].mean())
    return out


def accuracy(model: ToyVLM, feats: torch.Tensor, split: data.Split) -> dict[str, float]:
    """Exact-match accuracy of ``model`` on ``split`` (see :func:`accuracy_by_type`)."""
    return accuracy_by_type(predict(model, feats, split)[0], split)


def cooldown(step: int, s: TrainSettings) -> float:
    """The learning-rate factor of the final ``anneal * max_steps`` steps: a linear decay
    from 1 to ``1 / (anneal * max_steps)`` at ``max_steps`` (1 before them, or if
    ``anneal`` is 0)."""
    span = s.anneal * s.max_steps
    return 1.0 if span < 1 else min(1.0, (s.max_steps - step + 1) / span)


def train(model: ToyVLM, feats: torch.Tensor, split: data.Split, val: data.Split,
          settings: TrainSettings) -> TrainResult:
    """Fit ``model`` on ``split``'s questions over the image features ``feats (n, 144, d)``
    until the loss on ``val`` (questions on other images of ``feats``) plateaus; the model is
    left at its best validation checkpoint."""
    s = settings
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    question = torch.from_numpy(split.question)
    answer = torch.from_numpy(split.answer)
    image = torch.from_numpy(split.image_index)
    with torch.no_grad():
        inputs = model.image_inputs(feats)  # the frozen features, pooled once if linear
    best, best_step, best_state = float("inf"), 0, copy.deepcopy(model.state_dict())
    lr, drops, bad, losses, curve = s.lr, 0, 0, [], []
    stopped = "max_steps"
    model.train()
    t0 = time.perf_counter()
    step = 0
    while step < s.max_steps:
        step += 1
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / max(1, s.warmup)) * cooldown(step, s)
        idx = torch.from_numpy(rng.integers(0, len(answer), s.batch))
        loss = F.cross_entropy(model.answer_logits(inputs[image[idx]], question[idx]), answer[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if step % s.eval_every and step < s.max_steps:
            continue
        pred, val_loss = _predict(model, inputs, val)
        curve.append(CurvePoint(step, float(np.mean(losses)), val_loss,
                                float((pred == val.answer).mean())))
        losses = []
        if val_loss < best * (1 - s.min_delta):
            best, best_step, bad = val_loss, step, 0
            best_state = copy.deepcopy(model.state_dict())
            continue
        if val_loss < best:  # a small gain: keep the checkpoint, still count a plateau step
            best, best_step = val_loss, step
            best_state = copy.deepcopy(model.state_dict())
        if step <= s.min_steps:  # too early to call a plateau (the initial one is not the end)
            continue
        bad += 1
        if bad >= s.patience:
            if drops >= s.drops:
                stopped = "plateau"
                break
            lr, drops, bad = lr * s.decay, drops + 1, 0
    if s.keep == "last":
        best_step, best = step, curve[-1].val_loss
    else:
        model.load_state_dict(best_state)
    return TrainResult(time.perf_counter() - t0, best_step, step, stopped, best,
                       tuple(curve))
