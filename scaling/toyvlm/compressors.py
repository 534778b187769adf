"""Token compressors: a ``(B, H*W, D)`` grid of frozen patch features to exactly V tokens.

Every compressor maps ``x: (B, H*W, D)`` (row-major cells) and the question ids
``q: (B, Q)`` to ``(B, V, D)``; only the query-aware one reads ``q``. The methods follow the
seeds and the paper:

- ``avgpool``: adaptive average pooling of the grid to ``h x w = V`` regions (LLaVA-style
  spatial pooling). Parameter-free.
- ``conv``: the paper's compressor (Li et al. 2025, after TokenPacker-style local attention):
  a depthwise 3x3 conv, downsampled to ``h x w`` regions, gives one query per region; each
  query attends only to the cells of its own region (local attention); ``out = q + attn``.
- ``queries``: V learned queries cross-attend to all cells (Q-Former / Perceiver resampler).
- ``quecc``: ``conv`` with the question injected into every query and key (QueCC, Li et
  al. 2025): the question decides what each region keeps.
- ``tome``: bipartite soft matching (ToMe, Bolya et al. 2023) merges the most similar pair
  partners (size-weighted means) round by round until V tokens remain. Parameter-free.
- ``prune``: a learned query scores every cell (attention scores); the top-V cells are kept in
  raster order (attention-score pruning, FastV-style); the kept tokens carry a
  straight-through score gate so the scorer trains.

The grid kinds (:data:`GRID_KINDS`) pool ``s x s`` regions, so they need ``V = s^2`` with
``s`` dividing 12 (1, 4, 9, 16, 36, 144); the others take any V from 1 to 144.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from scaling.errors import ScalingError
from scaling.toyvlm.data import GRID

COMPRESSORS = ("avgpool", "conv", "queries", "quecc", "tome", "prune")
GRID_KINDS = ("avgpool", "conv", "quecc")  # need V = s*s with s dividing the grid side
PATCHES = GRID * GRID


def region_shape(visual_tokens: int) -> tuple[int, int]:
    """``(h, w)`` with ``h * w = V``, ``h`` the largest divisor of V not above sqrt(V)."""
    h = max(d for d in range(1, math.isqrt(visual_tokens) + 1) if visual_tokens % d == 0)
    return h, visual_tokens // h


def region_index(grid: int, visual_tokens: int) -> torch.Tensor:
    """For each cell (row-major), the index of its adaptive-pooling region ``(grid*grid,)``:
    region boundaries ``floor(i*grid/h)`` as in ``adaptive_avg_pool2d``."""
    h, w = region_shape(visual_tokens)
    rows = torch.arange(grid) * h // grid
    cols = torch.arange(grid) * w // grid
    return (rows[:, None] * w + cols[None, :]).reshape(-1)


def _check(kind: str, visual_tokens: int, grid: int) -> None:
    if kind in GRID_KINDS:
        side = math.isqrt(max(visual_tokens, 0))
        if side * side != visual_tokens or side < 1 or grid % side:
            ok = ", ".join(str((grid // d) ** 2) for d in range(grid, 0, -1) if grid % d == 0)
            raise ScalingError(
                f"compressor {kind!r} needs visual_tokens a square whose side divides {grid} "
                f"({ok}), got {visual_tokens}")
    elif not 1 <= visual_tokens <= grid * grid:
        raise ScalingError(f"visual_tokens must be between 1 and {grid * grid}, got "
                           f"{visual_tokens}")


class AvgPool(nn.Module):
    linear = True  # pool(a + b) = pool(a) + pool(b): ToyVLM pools the frozen features once

    def __init__(self, dim: int, grid: int, visual_tokens: int, vocab: int):
        super().__init__()
        self.grid, self.hw = grid, region_shape(visual_tokens)

    def forward(self, x: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        img = x.transpose(1, 2).reshape(b, d, self.grid, self.grid)
        return F.adaptive_avg_pool2d(img, self.hw).flatten(2).transpose(1, 2)


class ConvLocalAttention(nn.Module):
    """Depthwise conv + downsample queries, attention restricted to each query's region.

    ``q_r = pool_r(DWConv(x)) [+ u(question)]``, ``k = W_k x [+ u]``, ``v = W_v x``,
    ``out_r = q_r + W_o softmax_{cells in r}(q_r k^T / sqrt(D)) v``.
    """

    def __init__(self, dim: int, grid: int, visual_tokens: int, vocab: int,
                 *, query_aware: bool = False):
        super().__init__()
        self.grid, self.hw = grid, region_shape(visual_tokens)
        self.dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.q, self.k = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v, self.o = nn.Linear(dim, dim), nn.Linear(dim, dim)
        region = region_index(grid, visual_tokens)
        mask = region[None, :] == torch.arange(visual_tokens)[:, None]  # (V, cells)
        self.register_buffer("mask", mask, persistent=False)
        self.question = None
        if query_aware:
            self.question = nn.Sequential(nn.Embedding(vocab, dim, padding_idx=0),
                                          nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def _question_vector(self, q: torch.Tensor) -> torch.Tensor:
        emb, mlp = self.question[0], self.question[1:]
        tokens = emb(q)  # (B, Q, D); pad rows are zero
        n = (q != 0).sum(1, keepdim=True).clamp(min=1)
        return mlp(tokens.sum(1) / n)[:, None, :]  # (B, 1, D)

    def forward(self, x: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        img = x.transpose(1, 2).reshape(b, d, self.grid, self.grid)
        pooled = F.adaptive_avg_pool2d(self.dw(img), self.hw).flatten(2).transpose(1, 2)
        query, keys = self.q(pooled), self.k(x)
        if self.question is not None:
            u = self._question_vector(q)
            query, keys = query + u, keys + u
        out = F.scaled_dot_product_attention(query, keys, self.v(x), attn_mask=self.mask)
        return pooled + self.o(out)


class LearnedQueries(nn.Module):
    """V learned queries, one multi-head cross-attention over all cells, then an MLP."""

    def __init__(self, dim: int, grid: int, visual_tokens: int, vocab: int, heads: int = 4):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(visual_tokens, dim) * 0.02)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        query = self.queries.expand(x.shape[0], -1, -1)
        h = query + self.attn(query, x, x, need_weights=False)[0]
        return h + self.mlp(self.norm(h))


def bipartite_merge(x: torch.Tensor, size: torch.Tensor, r: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """One ToMe round: alternate tokens into sets A and B, match each A token to its most
    cosine-similar B token, and merge the ``r`` best-matched A tokens into their partners as
    size-weighted means. ``x (B, n, D)``, ``size (B, n)`` -> ``(B, n - r, D)``, ``(B, n - r)``;
    ``sum(size * x)`` and ``sum(size)`` are preserved."""
    d = x.shape[-1]
    a, b = x[:, ::2], x[:, 1::2]
    sa, sb = size[:, ::2], size[:, 1::2]
    assert 0 <= r <= a.shape[1], (r, a.shape)
    best, partner = (F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(1, 2)).max(-1)
    order = best.argsort(dim=-1, descending=True, stable=True)
    merged, kept = order[:, :r], order[:, r:].sort(dim=-1).values
    dst = partner.gather(1, merged)
    mass = (sb[..., None] * b).scatter_add(
        1, dst[..., None].expand(-1, -1, d),
        (sa.gather(1, merged)[..., None] * a.gather(1, merged[..., None].expand(-1, -1, d))))
    sb = sb.scatter_add(1, dst, sa.gather(1, merged))
    x = torch.cat([a.gather(1, kept[..., None].expand(-1, -1, d)), mass / sb[..., None]], 1)
    return x, torch.cat([sa.gather(1, kept), sb], dim=1)


class ToMe(nn.Module):
    """Bipartite soft matching (:func:`bipartite_merge`) round by round, merging
    ``r = min(|A|, n - V)`` tokens per round, until exactly V tokens remain."""

    def __init__(self, dim: int, grid: int, visual_tokens: int, vocab: int):
        super().__init__()
        self.visual_tokens = visual_tokens

    def forward(self, x: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        size = torch.ones(x.shape[:2], dtype=x.dtype)
        while x.shape[1] > self.visual_tokens:
            r = min((x.shape[1] + 1) // 2, x.shape[1] - self.visual_tokens)
            x, size = bipartite_merge(x, size, r)
        return x


class ScorePrune(nn.Module):
    """Keep the V cells with the highest attention score from a learned query."""

    def __init__(self, dim: int, grid: int, visual_tokens: int, vocab: int):
        super().__init__()
        self.visual_tokens = visual_tokens
        self.query = nn.Parameter(torch.randn(dim) * 0.02)
        self.key = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        scores = torch.softmax(self.key(x) @ self.query / math.sqrt(x.shape[-1]), dim=-1)
        idx = scores.topk(self.visual_tokens, dim=-1).indices.sort(dim=-1).values
        kept = x.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))
        s = scores.gather(1, idx)[..., None]
        return kept * (1 + s - s.detach())  # value unchanged, gradient reaches the scorer


def make_compressor(name: str, *, dim: int, visual_tokens: int, vocab: int,
                    grid: int = GRID) -> nn.Module:
    """The compressor called ``name`` mapping ``grid*grid`` tokens of width ``dim`` to V."""
    if name not in COMPRESSORS:
        raise ScalingError(f"unknown compressor {name!r}; choose one of {', '.join(COMPRESSORS)}")
    _check(name, visual_tokens, grid)
    args = (dim, grid, visual_tokens, vocab)
    if name == "avgpool":
        return AvgPool(*args)
    if name == "conv":
        return ConvLocalAttention(*args)
    if name == "quecc":
        return ConvLocalAttention(*args, query_aware=True)
    if name == "queries":
        return LearnedQueries(*args)
    if name == "tome":
        return ToMe(*args)
    if name == "prune":
        return ScorePrune(*args)
    raise ScalingError(f"unknown compressor {name!r}; choose one of {', '.join(COMPRESSORS)}")
