"""Training and scoring of one toy VLM on cached frozen features (one thread, seeded).

Training samples ``batch`` questions uniformly from the train split each step (both
families mixed, as they occur), minimises the answer token's cross-entropy with AdamW, a
linear warm-up over the first 5% of steps then cosine decay, and gradient clipping at 1.
Scoring is exact-match accuracy of the arg-max answer on every held-out question.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from scaling.toyvlm import data
from scaling.toyvlm.model import ToyVLM


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 1500
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class TrainResult:
    train_time_s: float
    final_loss: float  # mean train loss over the last 10% of steps
    steps: int


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up to ``lr`` over ``warmup * steps`` steps, then cosine decay to 0."""
    warm = max(1, int(s.warmup * s.steps))
    if step < warm:
        return s.lr * (step + 1) / warm
    t = (step - warm) / max(1, s.steps - warm)
    return s.lr * 0.5 * (1 + math.cos(math.pi * t))


def train(model: ToyVLM, feats: torch.Tensor, split: data.Split,
          settings: TrainSettings) -> TrainResult:
    """Fit ``model`` on ``split``'s questions over the image features ``feats (n, 144, d)``."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    question = torch.from_numpy(split.question)
    answer = torch.from_numpy(split.answer)
    image = torch.from_numpy(split.image_index)
    tail, losses = max(1, settings.steps // 10), []
    model.train()
    t0 = time.perf_counter()
    for step in range(settings.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, settings)
        idx = torch.from_numpy(rng.integers(0, len(answer), settings.batch))
        logits = model(feats[image[idx]], question[idx])
        loss = F.cross_entropy(logits, answer[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step >= settings.steps - tail:
            losses.append(loss.item())
    return TrainResult(time.perf_counter() - t0, float(np.mean(losses)), settings.steps)


@torch.no_grad()
def accuracy(model: ToyVLM, feats: torch.Tensor, split: data.Split, *,
             batch: int = 1024) -> dict[str, float]:
    """Exact-match accuracy per family (``reasoning``, ``text``) and per question type."""
    model.eval()
    question = torch.from_numpy(split.question)
    image = torch.from_numpy(split.image_index)
    pred = np.concatenate([
        model(feats[image[i:i + batch]], question[i:i + batch]).argmax(-1).numpy()
        for i in range(0, len(split.answer), batch)])
    correct = pred == split.answer
    family = np.array([data.FAMILY[t] for t in data.QUESTION_TYPES])[split.qtype]
    out = {f: float(correct[family == f].mean()) for f in data.FAMILIES}
    for t, name in enumerate(data.QUESTION_TYPES):
        if (split.qtype == t).any():
            out[f"acc_{name}"] = float(correct[split.qtype == t].mean())
    return out
