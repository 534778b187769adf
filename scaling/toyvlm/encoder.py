"""A small conv vision encoder, pretrained once on dense per-cell labels, then frozen.

As LLaVA keeps CLIP frozen, every grid point of a sweep shares one encoder: it is trained
on the scenes' per-cell labels (colour, shape, character, part-of-box), then its ``12 x 12``
patch features of the train and test scenes are cached on disk under a directory keyed by
the settings (:func:`feature_cache`), written atomically under a file lock so parallel
sweep workers build it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from scaling.files import atomic_write
from scaling.toyvlm import data

LABEL_CLASSES = (len(data.COLOURS) + 1, len(data.SHAPES) + 1, len(data.CHARS) + 1, 5)


@dataclass(frozen=True)
class EncoderSettings:
    """Everything the cached features depend on (the cache key)."""

    n_train: int = 6000
    n_test: int = 1000
    data_seed: int = 0
    feat_dim: int = 32
    channels: int = 48
    steps: int = 800
    batch: int = 64
    lr: float = 3e-3
    background_weight: float = 0.1
    seed: int = 0
    version: int = 3

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class ConvEncoder(nn.Module):
    """Three stride-2 3x3 convs (96 -> 12 pixels per side), two 3x3 context convs at 12x12,
    then a 1x1 projection to ``feat_dim``: one feature vector per ``8 x 8`` cell."""

    def __init__(self, *, channels: int = 32, feat_dim: int = 32):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
            nn.Conv2d(c, feat_dim, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 96, 96)`` -> ``(B, 144, feat_dim)`` patch features, row-major cells."""
        return self.net(images).flatten(2).transpose(1, 2)


def pretrain(train: data.Split, settings: EncoderSettings
             ) -> tuple[ConvEncoder, nn.Conv2d, dict]:
    """Fit the encoder plus linear per-cell heads on the dense labels: cross-entropy summed
    over the four label planes, the background class (0) weighted ``background_weight``
    because most cells are empty. Returns the frozen encoder, the heads and their
    foreground accuracy over the last 20 training batches."""
    torch.manual_seed(settings.seed)
    enc = ConvEncoder(channels=settings.channels, feat_dim=settings.feat_dim)
    heads = nn.Conv2d(settings.feat_dim, sum(LABEL_CLASSES), 1)
    params = list(enc.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=settings.steps)
    gen = np.random.default_rng(settings.seed)
    images, labels = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    acc = np.zeros(len(LABEL_CLASSES))
    weights = [torch.tensor([settings.background_weight] + [1.0] * (n - 1))
               for n in LABEL_CLASSES]
    for step in range(settings.steps):
        idx = torch.from_numpy(gen.integers(0, len(images), settings.batch))
        feats = enc(images[idx]).transpose(1, 2).reshape(len(idx), -1, data.GRID, data.GRID)
        logits = heads(feats).split(LABEL_CLASSES, dim=1)
        loss = sum(F.cross_entropy(lg, labels[idx, k], weight=weights[k])
                   for k, lg in enumerate(logits))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step >= settings.steps - 20:
            acc += [foreground_accuracy(lg, labels[idx, k]) / 20 for k, lg in enumerate(logits)]
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    info = {f"encoder_train_acc_{n}": float(a) for n, a in zip(PLANES, acc, strict=True)}
    return enc, heads, info


PLANES = ("colour", "shape", "char", "part")


def foreground_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Per-cell accuracy over the cells that hold something (label > 0)."""
    fg = labels > 0
    return float((logits.argmax(1) == labels)[fg].float().mean()) if fg.any() else float("nan")


@torch.no_grad()
def probe_accuracy(enc: ConvEncoder, heads: nn.Conv2d, split: data.Split) -> dict[str, float]:
    """Foreground accuracy of the pre-training heads on a held-out split."""
    feats = torch.from_numpy(encode(enc, split.images).astype(np.float32))
    grid = feats.transpose(1, 2).reshape(len(feats), -1, data.GRID, data.GRID)
    logits = heads(grid).split(LABEL_CLASSES, dim=1)
    labels = torch.from_numpy(split.labels)
    return {f"encoder_test_acc_{n}": foreground_accuracy(lg, labels[:, k])
            for k, (n, lg) in enumerate(zip(PLANES, logits, strict=True))}


@torch.no_grad()
def encode(enc: ConvEncoder, images: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Frozen features of ``images`` as float16 ``(n, 144, feat_dim)``."""
    out = [enc(torch.from_numpy(images[i:i + batch])).to(torch.float16).numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


@dataclass(frozen=True)
class Features:
    """Cached frozen features and the questions of the train and test splits."""

    train: np.ndarray
    test: np.ndarray
    train_split: data.Split
    test_split: data.Split
    encoder_params: int
    info: dict


def default_cache_dir() -> Path:
    return Path(os.environ.get("SCALING_CACHE", Path.home() / ".cache" / "scaling")) / "toyvlm"


def feature_cache(settings: EncoderSettings, cache_dir: str | Path | None = None) -> Features:
    """Load the cached features for ``settings`` or build them once (pretrain + encode).

    The cache lives in ``cache_dir / <settings key>.npz``; a lock file serialises builders so
    concurrent workers pretrain the encoder only once.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"features-{settings.key()}.npz"
    with open(root / f"features-{settings.key()}.lock", "a") as lock:  # never truncates
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            _build(settings, path)
    z = np.load(path, allow_pickle=False)

    def split(prefix: str) -> data.Split:
        return data.Split(np.zeros((0, 3, data.IMAGE, data.IMAGE), np.float32),
                          z[f"{prefix}_labels"], z[f"{prefix}_image_index"],
                          z[f"{prefix}_question"], z[f"{prefix}_answer"], z[f"{prefix}_qtype"])

    info = json.loads(str(z["info"]))
    return Features(z["train_features"], z["test_features"], split("train"), split("test"),
                    int(info["encoder_params"]), info)


def _build(settings: EncoderSettings, path: Path) -> None:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    train = data.make_split(settings.n_train, settings.data_seed)
    test = data.make_split(settings.n_test, settings.data_seed + 1_000_003)
    enc, heads, info = pretrain(train, settings)
    info.update(probe_accuracy(enc, heads, test))
    info["encoder_params"] = sum(p.numel() for p in enc.parameters())
    info["settings"] = asdict(settings)
    arrays = {"train_features": encode(enc, train.images),
              "test_features": encode(enc, test.images)}
    info["build_time_s"] = time.perf_counter() - t0
    for prefix, s in (("train", train), ("test", test)):
        for name in ("labels", "image_index", "question", "answer", "qtype"):
            arrays[f"{prefix}_{name}"] = getattr(s, name)
    atomic_write(path, lambda fh: np.savez(fh, info=np.array(json.dumps(info)), **arrays))
