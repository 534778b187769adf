"""The GPU serving benchmark's decoder is the real architecture: its logits equal those of
``transformers``' ``Qwen2ForCausalLM`` with the same weights, for the prefill and a decode
step over the cache; its parameter count equals the cost model's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch  # the test extra installs both: a missing one must fail, not skip
import transformers

_PATH = Path(__file__).parent / "benchmarks" / "bench_serving_gpu.py"
_spec = importlib.util.spec_from_file_location("bench_serving_gpu", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _hf_model(cfg: dict, w: dict):
    conf = transformers.Qwen2Config(
        vocab_size=cfg["vocab"], hidden_size=cfg["hidden"], intermediate_size=cfg["intermediate"],
        num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"],
        num_key_value_heads=cfg["kv_heads"], head_dim=cfg["head_dim"], rms_norm_eps=1e-6,
        rope_theta=cfg["rope_theta"], tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": cfg["rope_theta"]},
        attn_implementation="eager")
    model = transformers.Qwen2ForCausalLM(conf).eval()
    sd = {"model.embed_tokens.weight": w["embed"], "model.norm.weight": w["norm"],
          "lm_head.weight": w["lm_head"]}
    names = {"ln1": "input_layernorm.weight", "ln2": "post_attention_layernorm.weight",
             "wq": "self_attn.q_proj.weight", "wk": "self_attn.k_proj.weight",
             "wv": "self_attn.v_proj.weight", "wo": "self_attn.o_proj.weight",
             "bq": "self_attn.q_proj.bias", "bk": "self_attn.k_proj.bias",
             "bv": "self_attn.v_proj.bias", "wg": "mlp.gate_proj.weight",
             "wu": "mlp.up_proj.weight", "wd": "mlp.down_proj.weight"}
    for i, layer in enumerate(w["layers"]):
        for key, tensor in layer.items():
            sd[f"model.layers.{i}.{names[key]}"] = tensor
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and not [m for m in missing if "rotary" not in m], (missing, unexpected)
    return model


def test_decoder_matches_transformers_qwen2() -> None:
    cfg = bench.CONFIGS["tiny"]
    w = bench.build(torch, cfg, torch.device("cpu"), torch.float32, seed=3)
    w["layers"][0]["ln1"] = w["layers"][0]["ln1"] * 1.5  # non-trivial norms
    model = _hf_model(cfg, w)
    toks = torch.randint(0, cfg["vocab"], (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = model(toks).logits
        cache = bench.make_cache(torch, cfg, 2, 16, torch.device("cpu"), torch.float32)
        full = bench.forward(torch, cfg, w, toks[:, :8], cache, 0, last_only=False)
        step = bench.forward(torch, cfg, w, toks[:, 8:], cache, 8)
    np.testing.assert_allclose(full.numpy(), ref[:, :8].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(step[:, 0].numpy(), ref[:, 8].numpy(), rtol=1e-4, atol=1e-5)


def test_param_count_equals_cost_model() -> None:
    from scaling.cost import llm_params

    cfg = bench.CONFIGS["tiny"]
    w = bench.build(torch, cfg, torch.device("cpu"), torch.float32)
    # the catalog's qwen2.5-7b on the meta device would be too slow to build here; count it
    meta = bench.build(torch, bench.CONFIGS["qwen2.5-7b"], torch.device("meta"), torch.bfloat16)
    assert bench.n_params(meta) == llm_params("qwen2.5-7b")
    assert bench.n_params(w) > 0


def test_tiny_cpu_run_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "tiny.json"
    result = bench.main(["--tiny", "--visual-tokens", "1", "64", "--gen-tokens", "16",
                         "-o", str(out)])
    data = json.loads(out.read_text())
    assert data["backend"] == "torch-cpu" and data["llm"] == "tiny"
    assert len(data["prefill"]) == 2 * 2 and len(data["decode"]) == 2 * 2
    assert {r["context_tokens"] for r in data["decode"]} == {51 + 8, 114 + 8}
    assert all(r["seconds_per_step"] > 0 for r in result["decode"])
