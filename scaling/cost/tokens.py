"""Visual-token counting: patches per image, LLaVA-NeXT "anyres" tiling, tokens per
megapixel and compression ratio.

A ViT cuts an ``H x W`` image into ``floor(H/p) * floor(W/p)`` patches of ``p x p`` pixels
(the patch convolution has stride ``p``; leftover pixels are dropped), plus one CLS token
inside encoders that have one. LLaVA-style VLMs pass the patch tokens (not the CLS token)
through the projector, so "visual tokens" below are patch tokens unless ``cls_token=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaling.cost.catalog import get_encoder
from scaling.cost.specs import EncoderSpec
from scaling.errors import ScalingError

#: LLaVA-NeXT (LLaVA-1.6) ``image_grid_pinpoints`` for 336-px CLIP: (height, width) pairs.
LLAVA_NEXT_PINPOINTS: tuple[tuple[int, int], ...] = (
    (336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008),
)


def _hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        return int(image_size), int(image_size)
    try:
        h, w = image_size  # type: ignore[misc]
        return int(h), int(w)
    except (TypeError, ValueError):
        raise ScalingError(f"image size must be an int or (height, width), got "
                           f"{image_size!r}") from None


def patch_tokens(image_size: int | Sequence[int], patch_size: int, *,
                 cls_token: bool = False) -> int:
    """Tokens from one image: ``floor(H/p) * floor(W/p)`` (+1 with a CLS token).

    >>> patch_tokens(336, 14)
    576
    """
    h, w = _hw(image_size)
    if patch_size < 1:
        raise ScalingError(f"patch_size must be >= 1, got {patch_size}")
    if h < patch_size or w < patch_size:
        raise ScalingError(f"image {h}x{w} px is smaller than one {patch_size}x{patch_size} "
                           f"patch; use an image of at least {patch_size} px per side")
    return (h // patch_size) * (w // patch_size) + int(cls_token)


def encoder_tokens(encoder: str | EncoderSpec, image_size: int | Sequence[int] | None = None,
                   *, cls_token: bool = False) -> int:
    """Patch tokens the encoder makes from an image (its native size by default)."""
    enc = get_encoder(encoder)
    size = enc.image_size if image_size is None else image_size
    return patch_tokens(size, enc.patch_size, cls_token=cls_token and enc.cls_token)


def tokens_per_megapixel(encoder: str | EncoderSpec,
                         image_size: int | Sequence[int] | None = None) -> float:
    """Patch tokens per million input pixels (576 tokens / 0.113 MP = 5102 for CLIP-L/14-336)."""
    enc = get_encoder(encoder)
    h, w = _hw(enc.image_size if image_size is None else image_size)
    return encoder_tokens(enc, (h, w)) / (h * w / 1e6)


def compression_ratio(encoder_tokens: float, visual_tokens: float) -> float:
    """How many encoder patch tokens each visual token stands for (576 -> 64 gives 9.0)."""
    if visual_tokens <= 0 or encoder_tokens <= 0:
        raise ScalingError(f"token counts must be > 0, got encoder_tokens={encoder_tokens}, "
                           f"visual_tokens={visual_tokens}")
    return encoder_tokens / visual_tokens


def select_best_resolution(height: int, width: int,
                           pinpoints: Sequence[Sequence[int]] = LLAVA_NEXT_PINPOINTS,
                           ) -> tuple[int, int]:
    """LLaVA-NeXT's choice of canvas: the pinpoint that keeps the most image pixels after an
    aspect-preserving resize, ties broken by the least wasted canvas (LLaVA-NeXT
    ``select_best_resolution``)."""
    best, best_eff, best_waste = None, -1, float("inf")
    for ph, pw in pinpoints:
        scale = min(pw / width, ph / height)
        eff = min(int(width * scale) * int(height * scale), width * height)
        waste = pw * ph - eff
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = (int(ph), int(pw)), eff, waste
    assert best is not None
    return best


@dataclass(frozen=True)
class AnyresTokens:
    """LLaVA-NeXT token budget of one image."""

    canvas: tuple[int, int]  # chosen (height, width) pinpoint
    grid: tuple[int, int]  # tiles (rows, cols)
    crops: int  # encoder passes: 1 base image + rows * cols tiles
    base_tokens: int  # patch tokens of the downsized whole image
    tile_tokens: int  # patch tokens kept from the tiles after un-padding
    newline_tokens: int  # one image_newline token per row of the tile feature map
    visual_tokens: int  # base + tile + newline tokens reaching the LLM


def anyres_tokens(height: int, width: int, *, encoder: str | EncoderSpec = "clip-vit-l-14-336",
                  pinpoints: Sequence[Sequence[int]] = LLAVA_NEXT_PINPOINTS,
                  unpad: bool = True, newline: bool = True) -> AnyresTokens:
    """Visual tokens of an ``height x width`` image under LLaVA-NeXT "anyres" tiling.

    The image is placed on the best pinpoint canvas, cut into encoder-sized tiles, and the
    tiles' patch grid is cropped back to the image's aspect ratio ("unpad"), with one newline
    token per row; a downsized copy of the whole image adds ``encoder.patches`` tokens.
    Mirrors ``LlavaNextProcessor._get_number_of_features`` (patch features, CLS dropped).
    """
    enc = get_encoder(encoder)
    if height < 1 or width < 1:
        raise ScalingError(f"image size must be >= 1 px, got {height}x{width}")
    ch, cw = select_best_resolution(height, width, pinpoints)
    rows, cols = ch // enc.image_size, cw // enc.image_size
    if rows < 1 or cols < 1:
        raise ScalingError(f"pinpoint {ch}x{cw} is smaller than the encoder's "
                           f"{enc.image_size}-px input")
    cur_h, cur_w = enc.grid * rows, enc.grid * cols
    if unpad:
        if width / height > cur_w / cur_h:
            new_h = int(round(height * (cur_w / width), 7))
            cur_h -= 2 * ((cur_h - new_h) // 2)
        else:
            new_w = int(round(width * (cur_h / height), 7))
            cur_w -= 2 * ((cur_w - new_w) // 2)
    tile = cur_h * cur_w
    lines = cur_h if newline else 0
    return AnyresTokens(canvas=(ch, cw), grid=(rows, cols), crops=1 + rows * cols,
                        base_tokens=enc.patches, tile_tokens=tile, newline_tokens=lines,
                        visual_tokens=enc.patches + tile + lines)


TILINGS = ("auto", "anyres", "native")


def parse_image_size(text: str | int) -> tuple[int, int]:
    """``"672"`` -> (672, 672); ``"1344x672"`` (WIDTH x HEIGHT, as image sizes are written)
    -> (height 672, width 1344). Returns ``(height, width)``."""
    raw = str(text).strip().lower().replace("×", "x")
    parts = raw.split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise ScalingError(f"image size must be PIXELS or WIDTHxHEIGHT (e.g. 672 or 1344x672), "
                           f"got {text!r}") from None
    if len(nums) not in (1, 2) or min(nums) < 1:
        raise ScalingError(f"image size must be PIXELS or WIDTHxHEIGHT with sides >= 1 px "
                           f"(e.g. 672 or 1344x672), got {text!r}")
    width, height = (nums[0], nums[0]) if len(nums) == 1 else nums
    return height, width


@dataclass(frozen=True)
class ImageTokens:
    """Visual tokens and encoder passes of one request's images (all frames of a video)."""

    visual_tokens: int  # reaching the LLM, all frames
    crops: int  # encoder passes (at the encoder's input size), all frames
    frames: int
    tiling: str  # "anyres" or "native"
    encoder_image_size: int  # the side the encoder runs at
    anyres: AnyresTokens | None = None  # per frame, when tiled


def image_tokens(encoder: str | EncoderSpec, image_size: str | int | Sequence[int], *,
                 tiling: str = "auto", frames: int = 1) -> ImageTokens:
    """Visual tokens of an image (or ``frames`` video frames) of ``image_size``.

    ``tiling``: ``anyres`` places the image on LLaVA-NeXT's best pinpoint canvas and encodes
    ``1 + rows * cols`` crops at the encoder's input size (:func:`anyres_tokens`); ``native``
    runs the ViT at the image's own (square) size, ``floor(H/p) * floor(W/p)`` tokens;
    ``auto`` (default) tiles images larger than the encoder's input and runs smaller ones
    natively. A video is ``frames`` such images: tokens and crops times ``frames``.
    """
    enc = get_encoder(encoder)
    if tiling not in TILINGS:
        raise ScalingError(f"tiling must be one of {', '.join(TILINGS)}, got {tiling!r}")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ScalingError(f"frames must be an integer >= 1, got {frames!r}")
    if isinstance(image_size, str):
        h, w = parse_image_size(image_size)
    else:
        h, w = _hw(image_size)
        if h < 1 or w < 1:
            raise ScalingError(f"image size must be >= 1 px per side, got {h}x{w}")
    if tiling == "auto":
        tiling = "anyres" if max(h, w) > enc.image_size else "native"
    if tiling == "anyres":
        a = anyres_tokens(h, w, encoder=enc)
        return ImageTokens(a.visual_tokens * frames, a.crops * frames, frames, "anyres",
                           enc.image_size, a)
    if h != w:
        raise ScalingError(f"native tiling runs the ViT on a square image, got {w}x{h} "
                           "(WIDTHxHEIGHT); use --tiling anyres for non-square images")
    v = patch_tokens(h, enc.patch_size)
    return ImageTokens(v * frames, frames, frames, "native", h)
