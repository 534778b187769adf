"""The built-in catalog: published ``config.json`` values of common VLM building blocks.

Every entry copies the shapes from the model's Hugging Face ``config.json`` (repo id in
``source``). Things worth knowing:

- Qwen1.5 and Qwen2.5 use the ``qwen2`` architecture: q/k/v projections carry a bias, the
  output projection does not; SwiGLU MLP; RMSNorm. Qwen1.5 is multi-head attention except
  32B (GQA, 8 KV heads); Qwen2.5 is GQA throughout. Tied input/output embeddings:
  Qwen1.5-0.5B (its config.json says ``tie_word_embeddings: true``; the Hub's "0.6B" label
  counts the output matrix as a separate tensor), Qwen2.5-0.5B/1.5B/3B, Llama-3.2-1B/3B.
- Vocabulary: 151936 for Qwen1.5 <= 7B and Qwen2.5 <= 3B; 152064 for the larger ones.
- Vicuna v1.5 has Llama-2 shapes (vocab 32000).
- CLIP vision towers: patch conv without bias, CLS token, ``pre_layrnorm``, quick-GELU MLP.
  SigLIP so400m/14-384: patch conv with bias, no CLS, no pre-norm, 729 patches and an
  attention-pooling ("MAP") head that LLaVA-style VLMs do not use (the cost model leaves it
  out of VLM costs; :func:`scaling.cost.encoder_flops` counts it with ``include_head=True``).
- ``feature_layer=-2``: LLaVA reads the penultimate layer's patch features (and LLaVA-style
  SigLIP VLMs drop the last layer too), so the last encoder layer is not needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scaling.cost.specs import EncoderSpec, LLMSpec, LLMStack, count_llm_params, stack_llms
from scaling.errors import ScalingError, unknown_name


def _qwen(name: str, family: str, nominal: float, layers: int, hidden: int, heads: int,
          kv_heads: int, intermediate: int, vocab: int, tied: bool, repo: str) -> LLMSpec:
    return LLMSpec(name=name, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                   head_dim=hidden // heads, intermediate=intermediate, vocab=vocab,
                   gated_mlp=True, tied_embeddings=tied, qkv_bias=True, family=family,
                   nominal_params=nominal, source=f"https://huggingface.co/{repo}")


def _llama(name: str, family: str, nominal: float, layers: int, hidden: int, heads: int,
           kv_heads: int, intermediate: int, vocab: int, tied: bool, repo: str,
           head_dim: int | None = None) -> LLMSpec:
    return LLMSpec(name=name, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                   head_dim=head_dim or hidden // heads, intermediate=intermediate,
                   vocab=vocab, gated_mlp=True, tied_embeddings=tied, family=family,
                   nominal_params=nominal, source=f"https://huggingface.co/{repo}")


_LLM_LIST = (
    #      name             family    nominal layers hidden heads kv  inter   vocab   tied
    _qwen("qwen1.5-0.5b", "qwen1.5", 0.5e9, 24, 1024, 16, 16, 2816, 151936, True,
          "Qwen/Qwen1.5-0.5B"),
    _qwen("qwen1.5-1.8b", "qwen1.5", 1.8e9, 24, 2048, 16, 16, 5504, 151936, False,
          "Qwen/Qwen1.5-1.8B"),
    _qwen("qwen1.5-4b", "qwen1.5", 4e9, 40, 2560, 20, 20, 6912, 151936, False,
          "Qwen/Qwen1.5-4B"),
    _qwen("qwen1.5-7b", "qwen1.5", 7e9, 32, 4096, 32, 32, 11008, 151936, False,
          "Qwen/Qwen1.5-7B"),
    _qwen("qwen1.5-14b", "qwen1.5", 14e9, 40, 5120, 40, 40, 13696, 152064, False,
          "Qwen/Qwen1.5-14B"),
    _qwen("qwen1.5-32b", "qwen1.5", 32e9, 64, 5120, 40, 8, 27392, 152064, False,
          "Qwen/Qwen1.5-32B"),
    _qwen("qwen1.5-72b", "qwen1.5", 72e9, 80, 8192, 64, 64, 24576, 152064, False,
          "Qwen/Qwen1.5-72B"),
    _qwen("qwen2.5-0.5b", "qwen2.5", 0.5e9, 24, 896, 14, 2, 4864, 151936, True,
          "Qwen/Qwen2.5-0.5B"),
    _qwen("qwen2.5-1.5b", "qwen2.5", 1.5e9, 28, 1536, 12, 2, 8960, 151936, True,
          "Qwen/Qwen2.5-1.5B"),
    _qwen("qwen2.5-3b", "qwen2.5", 3e9, 36, 2048, 16, 2, 11008, 151936, True,
          "Qwen/Qwen2.5-3B"),
    _qwen("qwen2.5-7b", "qwen2.5", 7e9, 28, 3584, 28, 4, 18944, 152064, False,
          "Qwen/Qwen2.5-7B"),
    _qwen("qwen2.5-14b", "qwen2.5", 14e9, 48, 5120, 40, 8, 13824, 152064, False,
          "Qwen/Qwen2.5-14B"),
    _qwen("qwen2.5-32b", "qwen2.5", 32e9, 64, 5120, 40, 8, 27648, 152064, False,
          "Qwen/Qwen2.5-32B"),
    _qwen("qwen2.5-72b", "qwen2.5", 72e9, 80, 8192, 64, 8, 29568, 152064, False,
          "Qwen/Qwen2.5-72B"),
    _llama("llama-3.2-1b", "llama3", 1e9, 16, 2048, 32, 8, 8192, 128256, True,
           "meta-llama/Llama-3.2-1B", head_dim=64),
    _llama("llama-3.2-3b", "llama3", 3e9, 28, 3072, 24, 8, 8192, 128256, True,
           "meta-llama/Llama-3.2-3B", head_dim=128),
    _llama("llama-3.1-8b", "llama3", 8e9, 32, 4096, 32, 8, 14336, 128256, False,
           "meta-llama/Llama-3.1-8B"),
    _llama("llama-3.1-70b", "llama3", 70e9, 80, 8192, 64, 8, 28672, 128256, False,
           "meta-llama/Llama-3.1-70B"),
    _llama("vicuna-7b", "vicuna", 7e9, 32, 4096, 32, 32, 11008, 32000, False,
           "lmsys/vicuna-7b-v1.5"),
    _llama("vicuna-13b", "vicuna", 13e9, 40, 5120, 40, 40, 13824, 32000, False,
           "lmsys/vicuna-13b-v1.5"),
)

LLMS: dict[str, LLMSpec] = {spec.name: spec for spec in _LLM_LIST}

# Other spellings of the same architectures (lower-case, organisation prefix removed).
LLM_ALIASES: dict[str, str] = {
    "llama-3-8b": "llama-3.1-8b",
    "meta-llama-3-8b": "llama-3.1-8b",
    "meta-llama-3.1-8b": "llama-3.1-8b",
    "llama-3-70b": "llama-3.1-70b",
    "meta-llama-3-70b": "llama-3.1-70b",
    "meta-llama-3.1-70b": "llama-3.1-70b",
    "llama3-8b": "llama-3.1-8b",
    "llama3-70b": "llama-3.1-70b",
    "llama3.2-1b": "llama-3.2-1b",
    "llama3.2-3b": "llama-3.2-3b",
    "vicuna-7b-v1.5": "vicuna-7b",
    "vicuna-13b-v1.5": "vicuna-13b",
}


def _clip(name: str, image: int, patch: int, layers: int, hidden: int, heads: int,
          inter: int, repo: str) -> EncoderSpec:
    return EncoderSpec(name=name, image_size=image, patch_size=patch, layers=layers,
                       hidden=hidden, heads=heads, intermediate=inter, cls_token=True,
                       pooling_head=False, patch_bias=False, pre_norm=True,
                       feature_layer=-2, source=f"https://huggingface.co/{repo}")


_ENCODER_LIST = (
    _clip("clip-vit-b-32-224", 224, 32, 12, 768, 12, 3072, "openai/clip-vit-base-patch32"),
    _clip("clip-vit-b-16-224", 224, 16, 12, 768, 12, 3072, "openai/clip-vit-base-patch16"),
    _clip("clip-vit-l-14-224", 224, 14, 24, 1024, 16, 4096, "openai/clip-vit-large-patch14"),
    _clip("clip-vit-l-14-336", 336, 14, 24, 1024, 16, 4096,
          "openai/clip-vit-large-patch14-336"),
    EncoderSpec(name="siglip-so400m-14-384", image_size=384, patch_size=14, layers=27,
                hidden=1152, heads=16, intermediate=4304, cls_token=False, pooling_head=True,
                patch_bias=True, pre_norm=False, feature_layer=-2,
                source="https://huggingface.co/google/siglip-so400m-patch14-384"),
)

ENCODERS: dict[str, EncoderSpec] = {spec.name: spec for spec in _ENCODER_LIST}

ENCODER_ALIASES: dict[str, str] = {
    "clip-vit-base-patch32": "clip-vit-b-32-224",
    "clip-vit-base-patch16": "clip-vit-b-16-224",
    "clip-vit-large-patch14": "clip-vit-l-14-224",
    "clip-vit-large-patch14-336": "clip-vit-l-14-336",
    "clip-vit-l-14": "clip-vit-l-14-224",
    "clip-l-14-336": "clip-vit-l-14-336",
    "siglip-so400m-patch14-384": "siglip-so400m-14-384",
    "siglip-so400m": "siglip-so400m-14-384",
}


# --------------------------------------------------------------------------- lookups


def _normalise(name: str) -> str:
    key = name.strip().lower()
    key = key.rsplit("/", 1)[-1]  # "Qwen/Qwen1.5-7B" -> "qwen1.5-7b"
    key = re.sub(r"[\s_]+", "-", key)
    return key


def _lookup(name: str, table: Mapping[str, Any], aliases: Mapping[str, str], what: str) -> Any:
    if not isinstance(name, str) or not name.strip():
        raise ScalingError(f"{what} name must be a non-empty string, got {name!r}")
    key = _normalise(name)
    key = aliases.get(key, key)
    if key in table:
        return table[key]
    stripped = re.sub(r"-(chat|instruct|hf|v1\.[35])$", "", key)
    stripped = aliases.get(stripped, stripped)
    if stripped in table:
        return table[stripped]
    raise unknown_name(what, name, table, key=key, cutoff=0.5)


def get_llm(name: str) -> LLMSpec:
    """Catalog LLM by name (``"qwen1.5-7b"``; Hugging Face ids such as
    ``"Qwen/Qwen1.5-7B-Chat"`` work too). Unknown names suggest close matches."""
    if isinstance(name, LLMSpec):
        return name
    return _lookup(name, LLMS, LLM_ALIASES, "LLM")


def get_encoder(name: str) -> EncoderSpec:
    """Catalog vision encoder by name (``"clip-vit-l-14-336"``, ``"siglip-so400m-14-384"``)."""
    if isinstance(name, EncoderSpec):
        return name
    return _lookup(name, ENCODERS, ENCODER_ALIASES, "vision encoder")


def llm_names() -> tuple[str, ...]:
    """All catalog LLM names."""
    return tuple(LLMS)


def encoder_names() -> tuple[str, ...]:
    """All catalog encoder names."""
    return tuple(ENCODERS)


def llm_family(name: str) -> tuple[LLMSpec, ...]:
    """The catalog LLMs of a family (``qwen1.5``, ``qwen2.5``, ``llama3``, ``vicuna``),
    sorted by parameter count."""
    key = str(name).strip().lower().replace("_", "-")
    key = {"llama-3": "llama3", "llama3.1": "llama3", "llama3.2": "llama3", "qwen1-5": "qwen1.5",
           "qwen2-5": "qwen2.5"}.get(key, key)
    members = [s for s in LLMS.values() if s.family == key]
    if not members:
        families = sorted({s.family for s in LLMS.values()})
        raise unknown_name("LLM family", name, families, key=key)
    return tuple(sorted(members, key=lambda s: float(count_llm_params(stack_llms(s)))))


def llm_specs(names: Sequence[str | LLMSpec]) -> tuple[LLMSpec, ...]:
    """Resolve several catalog names (or specs) at once."""
    return tuple(get_llm(n) for n in names)


def as_stack(llms: str | LLMSpec | LLMStack | Iterable[str | LLMSpec]) -> LLMStack:
    """:func:`~scaling.cost.specs.stack_llms` that also takes catalog names."""
    if isinstance(llms, str):
        return stack_llms(get_llm(llms))
    if isinstance(llms, (LLMSpec, LLMStack)):
        return stack_llms(llms)
    return stack_llms([get_llm(s) if isinstance(s, str) else s for s in llms])


_SIZE_IN_NAME = re.compile(r"(?:^|[-_])(\d+(?:\.\d+)?)([bm])(?=$|[-_])", re.IGNORECASE)


def nominal_params(spec: Any) -> float | None:
    """The nominal size of a catalog model in parameters (``qwen1.5-1.8b`` -> 1.8e9).

    Uses a ``nominal_params`` attribute when the spec has one, else the size in its name;
    ``None`` when neither is there.
    """
    value = getattr(spec, "nominal_params", None)
    if value:
        return float(value)
    hits = _SIZE_IN_NAME.findall(str(getattr(spec, "name", "")))
    if not hits:
        return None
    number, unit = hits[-1]
    return float(number) * (1e9 if unit.lower() == "b" else 1e6)
