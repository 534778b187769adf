"""The LLaVA-shaped toy VLM: frozen features -> compressor -> MLP projector -> decoder LM.

A 2-D position embedding (row code + column code) is added to every cell of the frozen
feature grid before compression, so a compressed token keeps the coarse position of the
region it summarises (without it, left-of/above questions cannot be answered from the
tokens). The decoder LM is a pre-LayerNorm causal transformer (learned positions, tied
input/output embeddings, GELU MLP of 4x width, heads of 16 channels). Its width and depth set
N (:data:`SIZES` spans > 100x). The sequence is ``[question][V visual tokens][?]`` and the
answer is read at the final ``?``: the prompt holds ``V + QUESTION_LEN`` tokens. The question
comes first so that in a two- or three-layer decoder every visual token can already attend
to it (is this the object asked about?); with the image first, the final position has to
find the asked object in one hop after reading the question, which such shallow decoders
learn far more slowly. Depth is at least 2. The position table always has
``144 + QUESTION_LEN`` rows (the most tokens any compressor emits) so a size's parameter
count does not depend on V.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from scaling.errors import ScalingError
from scaling.toyvlm import data
from scaling.toyvlm.compressors import make_compressor

HEAD_DIM = 16


@dataclass(frozen=True)
class ToySize:
    """A decoder LM shape: ``hidden`` width and ``layers`` depth (heads of 16 channels)."""

    hidden: int
    layers: int

    @property
    def heads(self) -> int:
        return self.hidden // HEAD_DIM


SIZES: dict[str, ToySize] = {
    "toy-xs": ToySize(16, 2),
    "toy-s": ToySize(32, 2),
    "toy-m": ToySize(64, 3),
    "toy-l": ToySize(96, 3),
    "toy-xl": ToySize(128, 4),
}


def lm_size(name: str | None = None, *, width: int | None = None,
            depth: int | None = None) -> ToySize:
    """A size by name (:data:`SIZES`), optionally with ``width``/``depth`` overridden, or
    free ``width`` (a multiple of 16) and ``depth``."""
    if name is not None:
        if name not in SIZES:
            raise ScalingError(f"unknown toyvlm llm {name!r}; choose one of "
                               f"{', '.join(SIZES)} or give width and depth")
        base = SIZES[name]
        width = base.hidden if width is None else width
        depth = base.layers if depth is None else depth
    if width is None or depth is None:
        raise ScalingError("toyvlm needs llm (a size name) or both width and depth")
    width, depth = int(width), int(depth)
    if width < HEAD_DIM or width % HEAD_DIM:
        raise ScalingError(f"toyvlm width must be a positive multiple of {HEAD_DIM}, got {width}")
    if depth < 2:
        raise ScalingError(
            f"toyvlm depth must be >= 2, got {depth}: the answer is read at the final '?', and "
            "a one-layer decoder cannot let that position condition on the question before "
            "it attends to the image (such a model stays at chance)")
    return ToySize(width, depth)


def count(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


class Block(nn.Module):
    """``x + Attn(LN(x))`` (causal), then ``x + MLP(LN(x))``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, *, last_only: bool = False) -> torch.Tensor:
        """The block on every position, or (``last_only``) the final position's output
        alone ``(B, 1, width)``: its query attends to every key, which is what the causal
        mask gives the last row, so the answer's logits are unchanged and the last block
        skips the queries, projections and MLP of the positions nobody reads."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        if last_only:
            q, x = q[:, -1:], x[:, -1:]
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2), is_causal=not last_only)
        x = x + self.proj(att.transpose(1, 2).reshape(b, x.shape[1], d))
        return x + self.mlp(self.ln2(x))


class DecoderLM(nn.Module):
    """Token + position embeddings, ``depth`` blocks, final LN, tied output head."""

    def __init__(self, *, width: int, depth: int, heads: int, vocab: int, max_len: int):
        super().__init__()
        if width % heads:
            raise ScalingError(f"width {width} must be divisible by heads {heads}")
        self.embed = nn.Embedding(vocab, width)
        # token and position tables start at the projected visual tokens' scale (~0.3), so
        # neither the question nor the positions are drowned out at initialisation
        nn.init.normal_(self.embed.weight, std=0.3)
        self.pos = nn.Parameter(torch.randn(max_len, width) * 0.3)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)

    def forward(self, visual: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, vocab)`` at the last position of
        ``[embed(tokens[:-1])][visual][embed(tokens[-1])]`` (the question, the image, its
        closing ``?``)."""
        x = torch.cat([self.embed(tokens[:, :-1]), visual, self.embed(tokens[:, -1:])], dim=1)
        x = x + self.pos[: x.shape[1]]
        for block in self.blocks[:-1]:
            x = block(x)
        x = self.blocks[-1](x, last_only=True)
        return self.ln_f(x[:, -1]) @ self.embed.weight.T


class ToyVLM(nn.Module):
    """Grid features ``(B, 144, D)`` + question ``(B, Q)`` -> answer logits ``(B, vocab)``."""

    def __init__(self, size: ToySize, *, visual_tokens: int, compressor: str, feat_dim: int,
                 grid: int = data.GRID, vocab: int = len(data.VOCAB),
                 question_len: int = data.QUESTION_LEN):
        super().__init__()
        width, depth, heads = size.hidden, size.layers, size.heads
        # 2-D position embedding added to every cell before compression: a row code plus a
        # column code (learned; initialised as linear ramps along random directions, so
        # order along each axis is there from the start); a pooled region keeps the mean
        # code of its cells, i.e. its coarse position
        ramp = torch.linspace(-1.0, 1.0, grid)
        self.row_pos = nn.Parameter(ramp[:, None, None] * torch.randn(1, 1, feat_dim))
        self.col_pos = nn.Parameter(ramp[None, :, None] * torch.randn(1, 1, feat_dim))
        self.compressor = make_compressor(compressor, dim=feat_dim, grid=grid,
                                          visual_tokens=visual_tokens, vocab=vocab)
        self.pool_once = getattr(self.compressor, "linear", False)  # see image_inputs
        self.size = size
        self.projector = nn.Sequential(nn.LayerNorm(feat_dim), nn.Linear(feat_dim, width),
                                       nn.GELU(), nn.Linear(width, width))
        self.lm = DecoderLM(width=width, depth=depth, heads=heads, vocab=vocab,
                            max_len=grid * grid + question_len)
        self.visual_tokens = visual_tokens

    def image_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """What :meth:`answer_logits` reads per image, computed once per set of images.

        Average pooling is linear, so ``pool(f + p) = pool(f) + pool(p)``: for ``avgpool``
        this is the pooled frozen features ``(n, V, D)`` (the position code is pooled in
        :meth:`visual`, where it gets its gradient), and a training step reads V instead of
        144 cells per image. Every other compressor reads the whole grid: ``features``.
        """
        return self.compressor(features) if self.pool_once else features

    def visual(self, inputs: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        """The V projected visual tokens ``(B, V, width)`` of :meth:`image_inputs` rows."""
        grid_pos = (self.row_pos + self.col_pos).flatten(0, 1)  # (H*W, D), row-major
        if self.pool_once:
            tokens = inputs + self.compressor(grid_pos[None])
        else:
            tokens = self.compressor(inputs + grid_pos, question)
        assert tokens.shape[1] == self.visual_tokens, tokens.shape
        return self.projector(tokens)

    def answer_logits(self, inputs: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        """Answer logits ``(B, vocab)`` from :meth:`image_inputs` rows and the questions."""
        return self.lm(self.visual(inputs, question), question)

    def forward(self, features: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return self.answer_logits(self.image_inputs(features), question)


def llm_spec(size: ToySize, name: str) -> dict:
    """The decoder as :class:`scaling.cost.specs.LLMSpec` fields (for the exact cost model):
    biased linears, LayerNorm, plain GELU MLP, tied embeddings. The learned position table
    (``(144 + Q) * hidden``) is the only LM parameter the spec does not count."""
    return {"name": name, "layers": size.layers, "hidden": size.hidden, "heads": size.heads,
            "kv_heads": size.heads, "head_dim": HEAD_DIM, "intermediate": 4 * size.hidden,
            "vocab": len(data.VOCAB), "gated_mlp": False, "tied_embeddings": True,
            "qkv_bias": True, "attn_out_bias": True, "mlp_bias": True, "norm": "layernorm"}
