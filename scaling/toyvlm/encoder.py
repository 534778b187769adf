"""A small conv vision encoder, pretrained once on per-cell and image-level labels, then frozen.

As LLaVA keeps CLIP frozen, every grid point of a sweep shares one encoder: it is trained
on the scenes' per-cell labels (colour, shape, character, part-of-box, and the object: the
colour-shape pair) and on image-level labels (which objects the scene holds and where,
read off the mean of all patch features), then its ``12 x 12`` patch features of the train and test
scenes are cached on disk under a directory keyed by the settings (:func:`feature_cache`),
written atomically under a file lock so parallel sweep workers build it once.

The two object-level targets make the features CLIP-like: CLIP's patch tokens name objects
(its image-level contrastive objective is read off pooled tokens), so a heavily pooled
token still says which objects an image holds, which is why the paper's reasoning
benchmarks survive compression to a few tokens. Characters stay per-cell detail: the mean
of several glyph cells names none of them.
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

LABEL_CLASSES = (len(data.COLOURS) + 1, len(data.SHAPES) + 1, len(data.CHARS) + 1, 5,
                 len(data.COLOURS) * len(data.SHAPES) + 1)
PLANES = ("colour", "shape", "char", "part", "object")


def targets(labels: torch.Tensor) -> torch.Tensor:
    """The pre-training targets ``(B, 5, 12, 12)``: the four label planes of
    :func:`scaling.toyvlm.data.render` plus ``object``, the colour-shape pair of the cell
    (0 none, 1..24): trained on it, a region's mean feature says which objects the region
    holds, not only which colours and which shapes."""
    colour, shape = labels[:, 0], labels[:, 1]
    obj = torch.where(colour > 0, (colour - 1) * len(data.SHAPES) + shape, 0)
    return torch.cat([labels, obj[:, None]], dim=1)


@dataclass(frozen=True)
class EncoderSettings:
    """Everything the cached features depend on (the cache key)."""

    n_train: int = 6000
    n_test: int = 1000
    data_seed: int = 0
    feat_dim: int = 96
    channels: int = 48
    steps: int = 1600
    batch: int = 64
    lr: float = 3e-3
    background_weight: float = 0.1
    seed: int = 0
    version: int = 8

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class ConvEncoder(nn.Module):
    """Three stride-2 3x3 convs (96 -> 12 pixels per side), then the cell's row and column
    (two coordinate channels in [-1, 1], as a ViT adds position embeddings to its patches:
    convolutions alone cannot tell where a cell is), two 3x3 context convs at 12x12 and a
    1x1 projection to ``feat_dim``: one feature vector per ``8 x 8`` cell."""

    def __init__(self, *, channels: int = 32, feat_dim: int = 32):
        super().__init__()
        c = channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU(),
        )
        self.context = nn.Sequential(
            nn.Conv2d(c + 2, c, 3, padding=1), nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
            nn.Conv2d(c, feat_dim, 1),
        )
        ramp = torch.linspace(-1.0, 1.0, data.GRID)
        self.register_buffer("coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="ij")),
                             persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 96, 96)`` -> ``(B, 144, feat_dim)`` patch features, row-major cells."""
        x = self.stem(images)
        x = torch.cat([x, self.coords.expand(len(x), -1, -1, -1)], dim=1)
        return self.context(x).flatten(2).transpose(1, 2)


OBJECTS = LABEL_CLASSES[-1] - 1  # 24 colour-shape pairs


def scene_summary(targets_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The image-level labels, from the ``object`` plane of :func:`targets`: which of the 24
    objects the scene holds ``(B, 24)`` (0/1) and where each is ``(B, 24, 2)``: the mean
    row and column of its cells, scaled to [-1, 1] (0 for an absent object)."""
    obj = targets_[:, PLANES.index("object")].flatten(1)  # (B, 144)
    onehot = F.one_hot(obj, OBJECTS + 1)[..., 1:].float()  # (B, 144, 24)
    cells = onehot.sum(1)
    present = (cells > 0).float()
    ramp = torch.linspace(-1.0, 1.0, data.GRID)
    rows, cols = ramp.repeat_interleave(data.GRID), ramp.repeat(data.GRID)
    where = torch.stack([onehot.transpose(1, 2) @ rows, onehot.transpose(1, 2) @ cols], -1)
    return present, where / cells.clamp(min=1)[..., None]


class Heads(nn.Module):
    """The pre-training heads: a linear classifier per cell for every label plane, and a
    linear ``summary`` head that reads :func:`scene_summary` (which objects, and where) off
    the features' mean over all cells. That is a CLIP-like image-level objective: one
    average-pooled token must say which objects the scene holds and roughly where."""

    def __init__(self, feat_dim: int):
        super().__init__()
        self.cells = nn.Conv2d(feat_dim, sum(LABEL_CLASSES), 1)
        self.summary = nn.Linear(feat_dim, 3 * OBJECTS)

    def forward(self, feats: torch.Tensor
                ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        """Features ``(B, 144, D)`` -> per-plane cell logits, presence logits ``(B, 24)``
        and positions ``(B, 24, 2)``."""
        grid = feats.transpose(1, 2).reshape(len(feats), -1, data.GRID, data.GRID)
        objects = feats.mean(1) * (data.GRID / data.BOX) ** 2  # the mean in units of one object
        summary = self.summary(objects)
        return (self.cells(grid).split(LABEL_CLASSES, dim=1), summary[:, :OBJECTS],
                summary[:, OBJECTS:].view(-1, OBJECTS, 2))


def summary_loss(present_logits: torch.Tensor, where: torch.Tensor,
                 targets_: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on which objects are present plus the squared error of the
    positions of those present."""
    present, true_where = scene_summary(targets_)
    err = ((where - true_where) ** 2).sum(-1)
    return (F.binary_cross_entropy_with_logits(present_logits, present)
            + (err * present).sum() / present.sum().clamp(min=1))


def summary_accuracy(present_logits: torch.Tensor, where: torch.Tensor,
                     targets_: torch.Tensor) -> tuple[float, float]:
    """The share of scenes whose whole object set the summary head reads right, and its mean
    position error in cells over the objects present."""
    present, true_where = scene_summary(targets_)
    exact = float(((present_logits > 0) == (present > 0)).all(1).float().mean())
    cells = (where - true_where).abs().sum(-1) * (data.GRID - 1) / 2 / 2  # per axis, in cells
    return exact, float((cells * present).sum().detach() / present.sum().clamp(min=1))


def pretrain(train: data.Split, settings: EncoderSettings) -> tuple[ConvEncoder, Heads, dict]:
    """Fit the encoder plus :class:`Heads` on the dense labels: cross-entropy summed over the
    label planes (:func:`targets`), the background class (0) weighted
    ``background_weight`` because most cells are empty, plus :func:`summary_loss`. Returns
    the frozen encoder, the heads and their accuracy over the last 20 training batches."""
    torch.manual_seed(settings.seed)
    enc = ConvEncoder(channels=settings.channels, feat_dim=settings.feat_dim)
    heads = Heads(settings.feat_dim)
    params = list(enc.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=settings.steps)
    gen = np.random.default_rng(settings.seed)
    images, labels = torch.from_numpy(train.images), targets(torch.from_numpy(train.labels))
    acc = np.zeros(len(LABEL_CLASSES) + 2)
    weights = [torch.tensor([settings.background_weight] + [1.0] * (n - 1))
               for n in LABEL_CLASSES]
    for step in range(settings.steps):
        idx = torch.from_numpy(gen.integers(0, len(images), settings.batch))
        logits, present, where = heads(enc(images[idx]))
        loss = sum(F.cross_entropy(lg, labels[idx, k], weight=weights[k])
                   for k, lg in enumerate(logits))
        loss = loss + summary_loss(present, where, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step >= settings.steps - 20:
            acc += [*(foreground_accuracy(lg, labels[idx, k]) / 20
                      for k, lg in enumerate(logits)),
                    *(a / 20 for a in summary_accuracy(present, where, labels[idx]))]
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    info = {f"encoder_train_acc_{n}": float(a)
            for n, a in zip((*PLANES, "summary", "where_cells"), acc, strict=True)}
    return enc, heads, info


def foreground_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Per-cell accuracy over the cells that hold something (label > 0)."""
    fg = labels > 0
    return float((logits.argmax(1) == labels)[fg].float().mean()) if fg.any() else float("nan")


@torch.no_grad()
def probe_accuracy(enc: ConvEncoder, heads: Heads, split: data.Split) -> dict[str, float]:
    """Held-out accuracy of the pre-training heads: per plane over the cells that hold
    something; ``summary``, the share of scenes whose whole object set the summary head
    reads right; ``where_cells``, its mean position error per axis in cells."""
    logits, present, where = heads(torch.from_numpy(encode(enc, split.images).astype(np.float32)))
    labels = targets(torch.from_numpy(split.labels))
    out = {f"encoder_test_acc_{n}": foreground_accuracy(lg, labels[:, k])
           for k, (n, lg) in enumerate(zip(PLANES, logits, strict=True))}
    exact, cells = summary_accuracy(present, where, labels)
    out.update(encoder_test_acc_summary=exact, encoder_test_acc_where_cells=cells)
    return out


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
