"""Architecture specs, the catalog and config.json import."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scaling.cost.catalog import LLMS, get_encoder, get_llm, llm_family
from scaling.cost.flops import llm_params
from scaling.cost.specs import (
    EncoderSpec,
    LLMSpec,
    LLMStack,
    ProjectorSpec,
    VLMSpec,
    from_hf_config,
    get_projector,
    stack_llms,
)
from scaling.errors import ScalingError


def test_catalog_golden_shapes():
    # values from the models' config.json on the Hugging Face Hub
    q = get_llm("qwen1.5-7b")
    assert (q.layers, q.hidden, q.heads, q.kv_heads, q.intermediate, q.vocab) == \
        (32, 4096, 32, 32, 11008, 151936)
    assert q.qkv_bias and not q.tied_embeddings
    assert get_llm("qwen1.5-32b").kv_heads == 8  # the one GQA model of Qwen1.5
    assert all(s.kv_heads == s.heads for s in llm_family("qwen1.5") if s.name != "qwen1.5-32b")
    assert get_llm("qwen2.5-7b").kv_heads == 4 and get_llm("qwen2.5-72b").intermediate == 29568
    assert [s.tied_embeddings for s in llm_family("qwen2.5")] == [True] * 3 + [False] * 4
    l1 = get_llm("llama-3.2-1b")
    assert (l1.head_dim, l1.kv_heads, l1.vocab, l1.tied_embeddings) == (64, 8, 128256, True)
    assert get_llm("vicuna-13b").hidden == 5120
    enc = get_encoder("clip-vit-l-14-336")
    assert (enc.patches, enc.tokens, enc.layers_used) == (576, 577, 23)
    sig = get_encoder("siglip-so400m-14-384")
    assert (sig.patches, sig.tokens, sig.pooling_head, sig.cls_token) == (729, 729, True, False)


def test_published_parameter_counts():
    # Qwen2.5 model cards: 0.49B (0.36B non-embedding), 7.61B (6.53B); Llama-3.1-8B: 8.03B
    assert llm_params("qwen2.5-0.5b") == pytest.approx(0.49e9, rel=0.01)
    assert llm_params("qwen2.5-0.5b", embeddings=False) == pytest.approx(0.36e9, rel=0.01)
    assert llm_params("qwen2.5-7b") == pytest.approx(7.61e9, rel=0.001)
    assert llm_params("qwen2.5-7b", embeddings=False) == pytest.approx(6.53e9, rel=0.001)
    assert llm_params("llama-3.1-8b") == pytest.approx(8.03e9, rel=0.001)


@pytest.mark.parametrize(("family", "n"), [("qwen1.5", 7), ("qwen2.5", 7), ("llama3", 4),
                                           ("vicuna", 2)])
def test_families_sorted_by_size(family, n):
    members = llm_family(family)
    assert len(members) == n
    sizes = [llm_params(s) for s in members]
    assert sizes == sorted(sizes)


def test_lookup_aliases_and_suggestions():
    assert get_llm("Qwen/Qwen1.5-7B-Chat") is LLMS["qwen1.5-7b"]
    assert get_llm("meta-llama/Meta-Llama-3-8B") is LLMS["llama-3.1-8b"]
    assert get_encoder("openai/clip-vit-large-patch14-336").name == "clip-vit-l-14-336"
    with pytest.raises(ScalingError, match="did you mean 'qwen1.5-7b'"):
        get_llm("qwen1.5-7")
    with pytest.raises(ScalingError, match="unknown vision encoder"):
        get_encoder("resnet50")
    with pytest.raises(ScalingError, match="unknown LLM family"):
        llm_family("gpt")
    with pytest.raises(ScalingError, match="did you mean 'avgpool'"):
        get_projector("avgpol")


def test_spec_validation():
    with pytest.raises(ScalingError, match="multiple of kv_heads"):
        LLMSpec("bad", layers=2, hidden=64, heads=6, kv_heads=4, head_dim=16,
                intermediate=128, vocab=10)
    with pytest.raises(ScalingError, match="layers must be a positive integer"):
        LLMSpec("bad", layers=0, hidden=64, heads=4, kv_heads=4, head_dim=16,
                intermediate=128, vocab=10)
    with pytest.raises(ScalingError, match="smaller than one patch"):
        EncoderSpec("bad", image_size=10, patch_size=14, layers=2, hidden=64, heads=4,
                    intermediate=128)
    with pytest.raises(ScalingError, match="unknown projector kind"):
        ProjectorSpec(kind="resampler")


def test_stack_llms_arrays_and_take():
    specs = llm_family("qwen1.5")
    stack = stack_llms(specs)
    assert isinstance(stack, LLMStack) and len(stack) == 7
    np.testing.assert_array_equal(stack.kv_heads, [s.kv_heads for s in specs])
    np.testing.assert_array_equal(llm_params(stack), [llm_params(s) for s in specs])
    taken = stack.take(np.array([3, 3, 0]))
    assert taken.names == ("qwen1.5-7b", "qwen1.5-7b", "qwen1.5-0.5b")
    assert np.shape(stack_llms(specs[0]).hidden) == ()


def _write(tmp_path, cfg, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def test_from_hf_config_llm_roundtrip(tmp_path):
    cfg = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
           "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
           "vocab_size": 152064, "tie_word_embeddings": False}
    spec = from_hf_config(_write(tmp_path, cfg))
    assert isinstance(spec, LLMSpec)
    assert (spec.head_dim, spec.kv_heads, spec.qkv_bias) == (128, 4, True)
    assert llm_params(spec) == llm_params("qwen2.5-7b")
    # a folder works too, and head_dim is read when present
    spec2 = from_hf_config({**cfg, "model_type": "llama", "head_dim": 96})
    assert spec2.head_dim == 96 and not spec2.qkv_bias


def test_from_hf_config_llava(tmp_path):
    cfg = {"model_type": "llava", "vision_feature_layer": -2, "projector_hidden_act": "gelu",
           "text_config": {"model_type": "llama", "vocab_size": 32064},
           "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024,
                             "image_size": 336, "intermediate_size": 4096,
                             "num_attention_heads": 16, "num_hidden_layers": 24,
                             "patch_size": 14}}
    path = _write(tmp_path, cfg)
    vlm = from_hf_config(tmp_path)
    assert isinstance(vlm, VLMSpec)
    assert vlm.llm.hidden == 4096 and vlm.llm.vocab == 32064  # Llama defaults filled in
    assert vlm.encoder.patches == 576 and vlm.encoder.layers_used == 23
    assert vlm.projector.kind == "mlp2x_gelu"
    assert path.exists()


def test_from_hf_config_encoders():
    clip = from_hf_config({"model_type": "clip", "text_config": {},
                           "vision_config": {"hidden_size": 1024, "intermediate_size": 4096,
                                             "num_hidden_layers": 24, "num_attention_heads": 16,
                                             "image_size": 224, "patch_size": 14}})
    assert isinstance(clip, EncoderSpec) and clip.patches == 256 and clip.cls_token
    sig = from_hf_config({"model_type": "siglip_vision_model", "hidden_size": 1152,
                          "intermediate_size": 4304, "num_hidden_layers": 27,
                          "num_attention_heads": 16, "image_size": 384, "patch_size": 14})
    assert not sig.cls_token and sig.pooling_head and sig.patches == 729


def test_from_hf_config_errors(tmp_path):
    with pytest.raises(ScalingError, match="no such file"):
        from_hf_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScalingError, match="not valid JSON"):
        from_hf_config(bad)
    with pytest.raises(ScalingError, match="no 'hidden_size'"):
        from_hf_config(_write(tmp_path, {"model_type": "llama"}, "x.json"))
    with pytest.raises(ScalingError, match="expected a JSON object"):
        from_hf_config(_write(tmp_path, [1, 2], "list.json"))
