"""The cost model against PyTorch itself: FlopCounterMode FLOPs, numel() and KV-cache bytes.

Full-size architectures are built with transformers from configs on the meta device (no
weights, no memory). Eager attention is used because CPU SDPA is invisible to
FlopCounterMode; on meta, transformers 5.x cannot build its causal mask (``.item()`` on a
meta tensor), so a prepared 4-D additive mask ``zeros[B, 1, S, S]`` is passed, which the
model uses as is (it makes the count the full-attention one anyway).
"""

from __future__ import annotations

import dataclasses
from unittest import mock

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    AutoModelForCausalLM,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    Qwen2Config,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from scaling.cost.catalog import ENCODERS, LLMS, get_encoder, get_llm
from scaling.cost.flops import encoder_flops, encoder_params, inference_cost, llm_params
from scaling.cost.specs import EncoderSpec, LLMSpec

REL = 1e-6


def hf_text_config(spec: LLMSpec):
    """A transformers config with exactly the spec's shapes (Qwen2 when q/k/v have biases)."""
    common = dict(hidden_size=spec.hidden, intermediate_size=spec.intermediate,
                  num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                  num_key_value_heads=spec.kv_heads, head_dim=spec.head_dim,
                  vocab_size=spec.vocab, tie_word_embeddings=spec.tied_embeddings)
    if spec.qkv_bias:
        return Qwen2Config(**common)
    return LlamaConfig(**common, attention_bias=spec.attn_out_bias, mlp_bias=spec.mlp_bias)


def hf_vision_config(enc: EncoderSpec, *, layers: int | None = None):
    common = dict(hidden_size=enc.hidden, intermediate_size=enc.intermediate,
                  num_hidden_layers=layers or enc.layers, num_attention_heads=enc.heads,
                  image_size=enc.image_size, patch_size=enc.patch_size)
    if enc.cls_token:
        return CLIPVisionConfig(**common, hidden_act="quick_gelu")
    return SiglipVisionConfig(**common, vision_use_head=enc.pooling_head)


def meta_llm(spec: LLMSpec):
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(hf_text_config(spec), attn_implementation="eager")


def meta_encoder(enc: EncoderSpec, *, layers: int | None = None):
    cfg = hf_vision_config(enc, layers=layers)
    cls = CLIPVisionModel if enc.cls_token else SiglipVisionModel
    with torch.device("meta"):
        return cls._from_config(cfg, attn_implementation="eager")


def count(fn) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def llm_forward_flops(spec: LLMSpec, batch: int, seq: int) -> int:
    model = meta_llm(spec)
    ids = torch.zeros(batch, seq, dtype=torch.long, device="meta")
    mask = torch.zeros(batch, 1, seq, seq, device="meta")
    return count(lambda: model(input_ids=ids, attention_mask=mask, use_cache=False))


QWEN2_7B = LLMSpec("qwen2-7b-shaped", layers=28, hidden=3584, heads=28, kv_heads=4,
                   head_dim=128, intermediate=18944, vocab=152064, qkv_bias=True)


@pytest.mark.parametrize(
    ("spec", "batch", "visual", "text"),
    [
        (QWEN2_7B, 1, 576, 50),  # GQA, qkv bias
        (get_llm("qwen1.5-7b"), 2, 64, 37),  # MHA
        (get_llm("llama-3.1-8b"), 1, 144, 21),  # Llama-3-8B shapes, GQA, 128k vocab
    ],
    ids=["qwen2-7b-gqa", "qwen1.5-7b-mha", "llama-3-8b"],
)
def test_llm_full_attention_flops_equal_flop_counter(spec, batch, visual, text):
    measured = llm_forward_flops(spec, batch, visual + text)
    ours = inference_cost(spec, visual_tokens=visual, text_tokens=text, batch=batch)
    assert ours.flops_full_attention_total == pytest.approx(measured, rel=REL)
    # the exact (causal, last-position lm_head) count is strictly smaller
    assert ours.flops_prefill < measured


def test_head_dim_from_config_not_hidden_over_heads():
    # head_dim 128 with hidden 2048 and 32 heads (q_dim 4096 != hidden), GQA 4 KV heads
    spec = LLMSpec("odd-head-dim", layers=2, hidden=2048, heads=32, kv_heads=4, head_dim=128,
                   intermediate=5632, vocab=1000)
    measured = llm_forward_flops(spec, 1, 33)
    assert inference_cost(spec, visual_tokens=30, text_tokens=3).flops_full_attention_total \
        == pytest.approx(measured, rel=REL)
    assert llm_params(spec) == sum(p.numel() for p in meta_llm(spec).parameters())


@pytest.mark.parametrize("name", ["clip-vit-l-14-336", "siglip-so400m-14-384"])
def test_encoder_flops_equal_flop_counter(name):
    enc = get_encoder(name)
    model = meta_encoder(enc)
    px = torch.zeros(1, 3, enc.image_size, enc.image_size, device="meta")
    measured = count(lambda: model(pixel_values=px))
    # a plain forward runs every layer (and SigLIP's pooling head)
    assert encoder_flops(enc, layers=enc.layers, include_head=True) == pytest.approx(
        measured, rel=REL)
    # the exact VLM cost runs layers up to the feature layer (-2) and no head: check it
    # against a tower truncated to those layers
    short = meta_encoder(dataclasses.replace(enc, pooling_head=False), layers=enc.layers_used)
    assert encoder_flops(enc) == pytest.approx(count(lambda: short(pixel_values=px)), rel=REL)


def test_llava_1_5_7b_full_forward_equals_flop_counter():
    """LLaVA-1.5-7B shapes: CLIP ViT-L/14-336 (feature layer -2, CLS dropped),
    mlp2x_gelu projector, Vicuna-7B (vocab 32064 as in llava-hf)."""
    enc = get_encoder("clip-vit-l-14-336")
    llm = dataclasses.replace(get_llm("vicuna-7b"), vocab=32064)
    cfg = LlavaConfig(vision_config=hf_vision_config(enc), text_config=hf_text_config(llm),
                      image_token_index=32000, vision_feature_layer=-2,
                      vision_feature_select_strategy="default", projector_hidden_act="gelu")
    with torch.device("meta"):
        model = LlavaForConditionalGeneration._from_config(cfg, attn_implementation="eager")
    text = 24
    seq = enc.patches + text
    ids = torch.zeros(1, seq, dtype=torch.long, device="meta")
    px = torch.zeros(1, 3, enc.image_size, enc.image_size, device="meta")
    mask = torch.zeros(1, 1, seq, seq, device="meta")
    # the image-token count check calls .item(), impossible on meta: it does no arithmetic
    with mock.patch("transformers.models.llava.modeling_llava.torch_compilable_check",
                    lambda *a, **k: None):
        measured = count(lambda: model(input_ids=ids, pixel_values=px, attention_mask=mask,
                                       use_cache=False))
    ours = inference_cost(llm, encoder=enc, projector="mlp2x_gelu", visual_tokens=enc.patches,
                          text_tokens=text)
    assert ours.flops_full_attention_total == pytest.approx(measured, rel=REL)
    # HF runs all 24 CLIP layers; the exact cost runs the 23 that layer -2 needs
    assert ours.flops_encoder == encoder_flops(enc, layers=23)


@pytest.mark.parametrize("name", sorted(LLMS))
def test_llm_params_equal_numel(name):
    spec = LLMS[name]
    assert llm_params(spec) == sum(p.numel() for p in meta_llm(spec).parameters())


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoder_params_equal_numel(name):
    enc = ENCODERS[name]
    assert encoder_params(enc) == sum(p.numel() for p in meta_encoder(enc).parameters())


def tiny(tied: bool = False) -> tuple[LLMSpec, torch.nn.Module]:
    spec = LLMSpec("tiny", layers=2, hidden=48, heads=4, kv_heads=2, head_dim=16,
                   intermediate=96, vocab=101, tied_embeddings=tied, qkv_bias=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(hf_text_config(spec), attn_implementation="eager")
    return spec, model.eval()


def cache_bytes(cache) -> int:
    return sum(t.numel() * t.element_size() for layer in cache.layers
               for t in (layer.keys, layer.values))


@pytest.mark.parametrize(("dtype", "torch_dtype"), [("fp32", torch.float32),
                                                    ("bf16", torch.bfloat16)])
def test_kv_cache_bytes_equal_past_key_values(dtype, torch_dtype):
    spec, model = tiny()
    model = model.to(torch_dtype)
    batch, visual, text = 3, 5, 4
    ids = torch.randint(0, spec.vocab, (batch, visual + text))
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).past_key_values
    ours = inference_cost(spec, visual_tokens=visual, text_tokens=text, batch=batch,
                          dtype=dtype)
    assert ours.kv_cache_bytes == cache_bytes(cache)
    # after generate(max_new_tokens=G) the cache holds S + G - 1 tokens
    gen = 6
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=gen, min_new_tokens=gen, do_sample=False,
                             return_dict_in_generate=True, pad_token_id=0)
    ours = inference_cost(spec, visual_tokens=visual, text_tokens=text, gen_tokens=gen,
                          batch=batch, dtype=dtype)
    assert out.sequences.shape[1] == visual + text + gen
    assert ours.kv_cache_bytes == cache_bytes(out.past_key_values)


@pytest.mark.parametrize("tied", [False, True])
def test_generate_flops_match_decode_closed_form(tied):
    """generate() = full-attention prefill with lm_head at the last position only, then
    G - 1 decode steps: FlopCounterMode on a real CPU run checks the closed-form sum."""
    spec, model = tiny(tied)
    assert llm_params(spec) == sum(p.numel() for p in model.parameters())
    batch, seq, gen = 2, 9, 7
    ids = torch.randint(0, spec.vocab, (batch, seq))
    measured = count(lambda: model.generate(ids, max_new_tokens=gen, min_new_tokens=gen,
                                            do_sample=False, pad_token_id=0))
    ours = inference_cost(spec, visual_tokens=seq, gen_tokens=gen, batch=batch)
    lm_head_rest = batch * (seq - 1) * 2 * spec.hidden * spec.vocab  # logits HF skips
    causal_saving = batch * (seq * seq - seq * (seq + 1) / 2) * 4 * spec.layers * spec.q_dim
    assert ours.flops_full_attention_total - lm_head_rest == pytest.approx(measured, rel=REL)
    assert ours.flops_prefill + ours.flops_decode + causal_saving == pytest.approx(
        measured, rel=REL)
