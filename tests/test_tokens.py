"""Visual-token counting: patch grids, LLaVA-NeXT anyres, tokens per megapixel."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaling.cost.tokens import (
    LLAVA_NEXT_PINPOINTS,
    anyres_tokens,
    compression_ratio,
    encoder_tokens,
    patch_tokens,
    select_best_resolution,
    tokens_per_megapixel,
)
from scaling.errors import ScalingError


@pytest.mark.parametrize(
    ("encoder", "tokens"),
    # the standard grids: 7x7, 14x14, 16x16, 24x24, 27x27
    [("clip-vit-b-32-224", 49), ("clip-vit-b-16-224", 196), ("clip-vit-l-14-224", 256),
     ("clip-vit-l-14-336", 576), ("siglip-so400m-14-384", 729)],
)
def test_native_tokens(encoder, tokens):
    assert encoder_tokens(encoder) == tokens


def test_cls_and_non_square_and_errors():
    assert patch_tokens(336, 14, cls_token=True) == 577
    assert patch_tokens((336, 672), 14) == 24 * 48
    assert patch_tokens(350, 14) == 625  # stride-p conv drops leftover pixels
    assert encoder_tokens("siglip-so400m-14-384", cls_token=True) == 729  # SigLIP has no CLS
    with pytest.raises(ScalingError, match="smaller than one 14x14 patch"):
        patch_tokens(13, 14)
    with pytest.raises(ScalingError, match="must be > 0"):
        compression_ratio(576, 0)


def test_tokens_per_megapixel_and_compression():
    assert tokens_per_megapixel("clip-vit-l-14-336") == pytest.approx(576 / 0.112896)
    assert compression_ratio(576, 64) == 9.0


@pytest.mark.parametrize(
    ("h", "w", "grid", "tokens"),
    [
        (672, 672, (2, 2), 576 + 48 * 48 + 48),  # 2928, LLaVA-NeXT's square maximum
        (336, 336, (1, 2), 576 + 24 * 24 + 24),  # least wasted canvas, then un-padded
        (336, 672, (1, 2), 576 + 24 * 48 + 24),
        (1000, 300, (3, 1), None),
    ],
)
def test_anyres(h, w, grid, tokens):
    out = anyres_tokens(h, w)
    assert out.grid == grid and out.crops == 1 + grid[0] * grid[1]
    assert out.visual_tokens == out.base_tokens + out.tile_tokens + out.newline_tokens
    if tokens is not None:
        assert out.visual_tokens == tokens


def test_select_best_resolution_matches_transformers():
    from transformers.image_processing_utils import select_best_resolution as hf_select

    for h, w in [(480, 640), (1000, 300), (336, 336), (800, 1200), (50, 900), (2000, 2000)]:
        ours = select_best_resolution(h, w, LLAVA_NEXT_PINPOINTS)
        theirs = hf_select((h, w), [list(p) for p in LLAVA_NEXT_PINPOINTS])
        assert ours == tuple(theirs)


def test_anyres_unpad_matches_transformers_feature_count():
    """Same count as LlavaNextProcessor._get_number_of_features (default strategy)."""
    from transformers.models.llava_next.processing_llava_next import LlavaNextProcessor

    class _Proc:  # the method only reads these attributes
        patch_size = 14
        num_additional_image_tokens = 1
        vision_feature_select_strategy = "default"

        class image_processor:  # noqa: N801
            image_grid_pinpoints = [list(p) for p in LLAVA_NEXT_PINPOINTS]

    proc = _Proc()
    proc._get_unpadded_features = lambda *a: LlavaNextProcessor._get_unpadded_features(proc, *a)
    for h, w in [(480, 640), (1000, 300), (800, 1200), (50, 900), (672, 672)]:
        theirs = LlavaNextProcessor._get_number_of_features(proc, h, w, 336, 336)
        assert anyres_tokens(h, w).visual_tokens == theirs - 1  # "default" drops the CLS


@given(size=st.integers(14, 4000), patch=st.integers(1, 64))
def test_patch_tokens_property(size, patch):
    if size < patch:
        with pytest.raises(ScalingError):
            patch_tokens(size, patch)
    else:
        n = patch_tokens(size, patch)
        assert n == (size // patch) ** 2 >= 1
        assert patch_tokens(size + patch, patch) > n
