"""Architecture specs: LLMs, vision encoders, projectors/compressors, and config.json import.

Three frozen dataclasses carry exactly the shapes the cost model needs:

- :class:`LLMSpec`: a decoder-only LLM (layers, hidden, heads, kv_heads, head_dim,
  intermediate, vocab, gated MLP, tied embeddings, biases).
- :class:`EncoderSpec`: a ViT image encoder (image/patch size, width, depth, CLS token,
  attention-pooling head, which hidden layer the VLM reads: ``feature_layer``).
- :class:`ProjectorSpec`: how encoder features become the LLM's visual tokens
  (LLaVA ``mlp2x_gelu``, k x k average pooling, the paper's conv + local-attention
  compressor, learned queries).

The built-in catalog (published ``config.json`` values) and its lookups (``get_llm``,
``get_encoder``, ``llm_family``) live in :mod:`scaling.cost.catalog`, one step up the chain.
:func:`stack_llms` turns several LLMs into one :class:`LLMStack` of array-valued dims so
the cost model prices many different LLMs in one vectorised call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from scaling.errors import ScalingError, unknown_name
from scaling.files import check_input_file


def _require_positive(owner: str, **values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ScalingError(f"{owner}: {key} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class LLMSpec:
    """A decoder-only transformer LLM as its ``config.json`` describes it.

    ``head_dim`` is taken from the config (it may differ from ``hidden // heads``, e.g.
    Llama-3.2-1B has 64 with hidden 2048 and 32 heads: equal there, but not in Gemma-style
    configs). ``kv_heads < heads`` is grouped-query attention (GQA).
    """

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    gated_mlp: bool = True
    tied_embeddings: bool = False
    qkv_bias: bool = False
    attn_out_bias: bool = False
    mlp_bias: bool = False
    norm: str = "rmsnorm"  # "rmsnorm" (weight only) or "layernorm" (weight + bias)
    family: str = ""
    nominal_params: float | None = None  # the size in the model's name, e.g. 7e9
    source: str = ""  # where the numbers come from (Hugging Face repo id)

    def __post_init__(self) -> None:
        _require_positive(f"LLM {self.name!r}", layers=self.layers, hidden=self.hidden,
                          heads=self.heads, kv_heads=self.kv_heads, head_dim=self.head_dim,
                          intermediate=self.intermediate, vocab=self.vocab)
        if self.heads % self.kv_heads:
            raise ScalingError(f"LLM {self.name!r}: heads ({self.heads}) must be a multiple of "
                               f"kv_heads ({self.kv_heads})")
        if self.norm not in ("rmsnorm", "layernorm"):
            raise ScalingError(f"LLM {self.name!r}: norm must be 'rmsnorm' or 'layernorm', "
                               f"got {self.norm!r}")

    @property
    def q_dim(self) -> int:
        """Width of the query projection output, ``heads * head_dim``."""
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of each of the K and V projection outputs, ``kv_heads * head_dim``."""
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class EncoderSpec:
    """A ViT image encoder (CLIP / SigLIP style).

    ``feature_layer`` is the index into the encoder's ``hidden_states`` that the VLM reads
    (LLaVA: ``-2``, the penultimate layer); layers after it are not needed, so the exact
    cost model runs ``layers_used`` layers while a plain Hugging Face forward runs all.
    """

    name: str
    image_size: int
    patch_size: int
    layers: int
    hidden: int
    heads: int
    intermediate: int
    cls_token: bool = True
    pooling_head: bool = False  # SigLIP's attention-pooling (MAP) head
    patch_bias: bool = False  # bias of the patch-embedding convolution
    pre_norm: bool = True  # CLIP's pre_layrnorm before the first layer
    channels: int = 3
    feature_layer: int = -2
    source: str = ""

    def __post_init__(self) -> None:
        _require_positive(f"encoder {self.name!r}", image_size=self.image_size,
                          patch_size=self.patch_size, layers=self.layers, hidden=self.hidden,
                          heads=self.heads, intermediate=self.intermediate,
                          channels=self.channels)
        if self.hidden % self.heads:
            raise ScalingError(f"encoder {self.name!r}: hidden ({self.hidden}) must be a "
                               f"multiple of heads ({self.heads})")
        if self.image_size < self.patch_size:
            raise ScalingError(f"encoder {self.name!r}: image_size {self.image_size} px is "
                               f"smaller than one patch ({self.patch_size} px); use an image "
                               f"of at least {self.patch_size} px")
        if not -self.layers - 1 <= self.feature_layer <= self.layers:
            raise ScalingError(f"encoder {self.name!r}: feature_layer {self.feature_layer} is "
                               f"outside [-{self.layers + 1}, {self.layers}]")

    @property
    def grid(self) -> int:
        """Patches per side, ``image_size // patch_size`` (the conv's stride drops the rest)."""
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        """Patch tokens per image, ``grid**2`` (what LLaVA feeds the projector)."""
        return self.grid**2

    @property
    def tokens(self) -> int:
        """Tokens inside the encoder: patches, plus one CLS token where it has one."""
        return self.patches + int(self.cls_token)

    @property
    def layers_used(self) -> int:
        """Transformer layers needed to produce ``hidden_states[feature_layer]``."""
        k = self.feature_layer
        return k if k >= 0 else self.layers + 1 + k


PROJECTOR_KINDS = ("linear", "mlp2x_gelu", "avgpool", "conv_attn", "queries")


@dataclass(frozen=True)
class ProjectorSpec:
    """How encoder patch features become the LLM's visual tokens.

    kinds:
      ``linear``       one Linear(c -> d) per token (LLaVA-1);
      ``mlp2x_gelu``   Linear(c -> d), GELU, Linear(d -> d) per token (LLaVA-1.5);
      ``avgpool``      k x k average pooling of the patch grid, then ``mlp2x_gelu``;
      ``conv_attn``    the paper's compressor (Li et al. 2025): depthwise-conv downsampling
                       of the grid, then each output token attends to the window of patches
                       it came from (one local attention block of width c), then ``mlp2x_gelu``;
      ``queries``      ``layers`` cross-attention blocks of width c in which ``visual_tokens``
                       learned queries attend to all patches (Q-Former/Perceiver-resampler
                       style, FFN ``ffn_mult * c``), then Linear(c -> d).
    """

    kind: str = "mlp2x_gelu"
    layers: int = 1
    ffn_mult: int = 4

    def __post_init__(self) -> None:
        if self.kind not in PROJECTOR_KINDS:
            raise ScalingError(f"unknown projector kind {self.kind!r}; choose one of "
                               f"{', '.join(PROJECTOR_KINDS)}")
        _require_positive(f"projector {self.kind!r}", layers=self.layers,
                          ffn_mult=self.ffn_mult)

    @property
    def compresses(self) -> bool:
        """Whether the projector outputs fewer tokens than it receives."""
        return self.kind in ("avgpool", "conv_attn", "queries")


@dataclass(frozen=True)
class VLMSpec:
    """A LLaVA-style VLM: encoder -> projector -> LLM (what a VLM ``config.json`` holds)."""

    llm: LLMSpec
    encoder: EncoderSpec
    projector: ProjectorSpec
    name: str = ""


# --------------------------------------------------------------------------- stacking

_DIMS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab")
_FLAGS = ("gated_mlp", "tied_embeddings", "qkv_bias", "attn_out_bias", "mlp_bias")


@dataclass(frozen=True)
class LLMStack:
    """Several LLMs as array-valued dims (one entry per LLM), for vectorised pricing.

    Same field names as :class:`LLMSpec`; ``layernorm`` is 1.0 where the LLM uses LayerNorm.
    Index it with :meth:`take` to build arrays of configurations (e.g. 10^6 draws).
    """

    names: tuple[str, ...]
    layers: np.ndarray
    hidden: np.ndarray
    heads: np.ndarray
    kv_heads: np.ndarray
    head_dim: np.ndarray
    intermediate: np.ndarray
    vocab: np.ndarray
    gated_mlp: np.ndarray
    tied_embeddings: np.ndarray
    qkv_bias: np.ndarray
    attn_out_bias: np.ndarray
    mlp_bias: np.ndarray
    layernorm: np.ndarray

    def __len__(self) -> int:
        """Number of entries (configurations), 1 for a single LLM."""
        return int(np.size(self.layers))

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.layers)

    @property
    def q_dim(self) -> np.ndarray:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> np.ndarray:
        return self.kv_heads * self.head_dim

    def take(self, index: Any) -> LLMStack:
        """A stack whose arrays are ``array[index]`` (any integer index array, any shape).

        ``names`` lists the entries' names (flattened) for up to 10,000 entries; beyond
        that, the distinct names taken, in stack order (building millions of strings
        would cost more than the pricing)."""
        idx = np.asarray(index)
        all_names = np.asarray(self.names, dtype=object)
        names = tuple(all_names[idx].ravel()) if idx.size <= 10_000 \
            else tuple(all_names[np.unique(idx)])
        return LLMStack(names, *(getattr(self, f.name)[idx] for f in fields(self)[1:]))


def stack_llms(llms: LLMSpec | LLMStack | Iterable[LLMSpec]) -> LLMStack:
    """Stack LLM specs into array-valued dims (a single spec gives 0-d arrays)."""
    if isinstance(llms, LLMStack):
        return llms
    if isinstance(llms, LLMSpec):
        specs, scalar = [llms], True
    else:
        specs = list(llms)
        scalar = False
        if not specs:
            raise ScalingError("no LLMs given: pass at least one LLMSpec or catalog name")
    for spec in specs:
        if not isinstance(spec, LLMSpec):
            raise ScalingError(f"expected an LLMSpec, got {spec!r}; look catalog names up with "
                               "scaling.cost.catalog.get_llm")

    def column(attr: str, dtype: type) -> np.ndarray:
        arr = np.array([getattr(s, attr) for s in specs], dtype=dtype)
        return arr[0] if scalar else arr

    layernorm = np.array([s.norm == "layernorm" for s in specs], dtype=float)
    return LLMStack(
        tuple(s.name for s in specs),
        *(column(a, float) for a in _DIMS),
        *(column(a, float) for a in _FLAGS),
        layernorm[0] if scalar else layernorm,
    )


def get_projector(kind: str | ProjectorSpec) -> ProjectorSpec:
    """A :class:`ProjectorSpec` from its kind name (``"mlp2x_gelu"``, ``"conv_attn"``, ...)."""
    if isinstance(kind, ProjectorSpec):
        return kind
    key = str(kind).strip().lower().replace("-", "_")
    if key not in PROJECTOR_KINDS:
        raise unknown_name("projector", kind, PROJECTOR_KINDS, key=key)
    return ProjectorSpec(kind=key)


# --------------------------------------------------------------------------- config.json

_VLM_TYPES = ("llava", "llava_next", "llava_onevision", "vipllava")
_LLM_DEFAULT_BIAS = {"qwen2": True}  # Qwen1.5/Qwen2/Qwen2.5 have q/k/v biases
_UNGATED = ("gpt2", "gpt_neox", "opt", "phi", "gpt_bigcode", "falcon", "bloom")


def _need(cfg: Mapping[str, Any], key: str, where: str, *alts: str) -> Any:
    for k in (key, *alts):
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    raise ScalingError(f"{where}: config has no {key!r}; is this a transformer config.json?")


def _count(cfg: Mapping[str, Any], key: str, where: str, *alts: str,
           default: Any = None) -> int:
    """A positive whole number from the config (``2.0`` is fine; ``2.5``, ``true``, ``inf``,
    ``0`` and strings are refused, naming the key)."""
    value = _need(cfg, key, where, *alts) if default is None else (
        cfg.get(key) if cfg.get(key) is not None else default)
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and value == int(value) and value >= 1)
    if not ok:
        raise ScalingError(f"{where}: {key} must be a positive whole number, got {value!r}")
    return int(value)


def _llm_from_dict(cfg: Mapping[str, Any], where: str, name: str) -> LLMSpec:
    model_type = str(cfg.get("model_type", ""))
    hidden = _count(cfg, "hidden_size", where, "n_embd", "d_model")
    heads = _count(cfg, "num_attention_heads", where, "n_head")
    kv_heads = _count(cfg, "num_key_value_heads", where, default=heads)
    if cfg.get("head_dim") is None and hidden % heads:
        raise ScalingError(f"{where}: hidden_size {hidden} is not divisible by "
                           f"num_attention_heads {heads} and no head_dim is given")
    head_dim = _count(cfg, "head_dim", where, default=hidden // heads)
    gated = model_type not in _UNGATED
    return LLMSpec(
        name=name,
        layers=_count(cfg, "num_hidden_layers", where, "n_layer"),
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=_count(cfg, "intermediate_size", where, "n_inner", "ffn_dim"),
        vocab=_count(cfg, "vocab_size", where),
        gated_mlp=gated,
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        qkv_bias=bool(cfg.get("attention_bias", _LLM_DEFAULT_BIAS.get(model_type, False))),
        attn_out_bias=bool(cfg.get("attention_bias", False)),
        mlp_bias=bool(cfg.get("mlp_bias", False)),
        family=model_type,
        source=where,
    )


def _encoder_from_dict(cfg: Mapping[str, Any], where: str, name: str,
                       feature_layer: int = -2) -> EncoderSpec:
    model_type = str(cfg.get("model_type", ""))
    siglip = "siglip" in model_type
    return EncoderSpec(
        name=name,
        image_size=_count(cfg, "image_size", where),
        patch_size=_count(cfg, "patch_size", where),
        layers=_count(cfg, "num_hidden_layers", where),
        hidden=_count(cfg, "hidden_size", where),
        heads=_count(cfg, "num_attention_heads", where),
        intermediate=_count(cfg, "intermediate_size", where),
        cls_token=not siglip,
        pooling_head=siglip and bool(cfg.get("vision_use_head", True)),
        patch_bias=siglip,
        pre_norm=not siglip,
        channels=_count(cfg, "num_channels", where, default=3),
        feature_layer=feature_layer,
        source=where,
    )


# Defaults used when a config.json omits them. A CLIP/SigLIP config's vision_config: those of
# transformers' CLIPVisionConfig (ViT-B/32-224). A LLaVA config without vision_config: what
# transformers' LlavaConfig builds (CLIP ViT-L/14-336, checked against transformers 5.x).
_CLIP_VISION_DEFAULTS = {"model_type": "clip_vision_model", "hidden_size": 768,
                         "intermediate_size": 3072, "num_hidden_layers": 12,
                         "num_attention_heads": 12, "image_size": 224, "patch_size": 32}
_LLAVA_VISION_DEFAULTS = {"model_type": "clip_vision_model", "hidden_size": 1024,
                          "intermediate_size": 4096, "num_hidden_layers": 24,
                          "num_attention_heads": 16, "image_size": 336, "patch_size": 14}
_LLAMA_DEFAULTS = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                   "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000}


def from_hf_config(path: str | Path | Mapping[str, Any]) -> LLMSpec | EncoderSpec | VLMSpec:
    """Read a Hugging Face ``config.json`` (a file, its folder, or the parsed dict).

    Returns an :class:`LLMSpec` for a causal LM, an :class:`EncoderSpec` for a CLIP/SigLIP
    vision config (a full CLIP/SigLIP config gives its vision tower), and a :class:`VLMSpec`
    for LLaVA-style configs with ``text_config``/``vision_config``. Malformed files raise
    :class:`ScalingError` naming the file and the missing key.
    """
    if isinstance(path, Mapping):
        cfg, where = dict(path), "config"
    else:
        p = Path(path)
        if p.is_dir():
            p = p / "config.json"
        where = str(p)
        if not p.exists():
            raise ScalingError(f"{where}: no such file; pass a config.json or its folder")
        check_input_file(p, what="config")
        try:
            cfg = json.loads(p.read_text())
        except RecursionError:
            raise ScalingError(f"{where}: nested too deeply to be a config.json") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ScalingError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise ScalingError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    name = str(cfg.get("_name_or_path") or (Path(where).parent.name if where != "config"
                                            else "") or cfg.get("model_type") or "custom")
    model_type = str(cfg.get("model_type", ""))
    try:
        if model_type in ("clip", "siglip") and "vision_config" in cfg:
            vision = {"model_type": f"{model_type}_vision_model", **cfg["vision_config"]}
            return _encoder_from_dict({**_CLIP_VISION_DEFAULTS, **vision}, where, name)
        if model_type in ("clip_vision_model", "siglip_vision_model"):
            return _encoder_from_dict(cfg, where, name)
        if model_type in _VLM_TYPES or ("text_config" in cfg and "vision_config" in cfg):
            text = {**_LLAMA_DEFAULTS, **(cfg.get("text_config") or {})}
            vision = {**_LLAVA_VISION_DEFAULTS, **(cfg.get("vision_config") or {})}
            layer = cfg.get("vision_feature_layer", -2)
            if isinstance(layer, list):
                raise ScalingError(f"{where}: multi-layer vision features {layer} are not "
                                   "supported; use a single vision_feature_layer")
            return VLMSpec(llm=_llm_from_dict(text, where, f"{name}:llm"),
                           encoder=_encoder_from_dict(vision, where, f"{name}:vision",
                                                      int(layer)),
                           projector=ProjectorSpec(kind="mlp2x_gelu"), name=name)
        return _llm_from_dict(cfg, where, name)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ScalingError):
            raise
        raise ScalingError(f"{where}: malformed config ({exc})") from None


# --------------------------------------------------------------------------- parameters


def layer_matmul_params(s: LLMStack) -> np.ndarray:
    """Weights of one decoder layer's matrices: Wq, Wk, Wv, Wo and 2 or 3 MLP matrices."""
    mlp_mats = 2.0 + s.gated_mlp
    return (2.0 * s.hidden * s.q_dim + 2.0 * s.hidden * s.kv_dim
            + mlp_mats * s.hidden * s.intermediate)


def count_llm_params(s: LLMStack, *, embeddings: bool = True) -> np.ndarray:
    """LLM parameter count (equals ``sum(p.numel() for p in model.parameters())``).

    ``N = V d (1 or 2: tied or not) + L (W_attn + W_mlp + biases + 2 norms) + final norm``;
    ``embeddings=False`` drops the input embedding and lm_head (Kaplan-style non-embedding).
    """
    norm = s.hidden * (1.0 + s.layernorm)  # RMSNorm: weight; LayerNorm: weight + bias
    biases = (s.qkv_bias * (s.q_dim + 2.0 * s.kv_dim) + s.attn_out_bias * s.hidden
              + s.mlp_bias * ((1.0 + s.gated_mlp) * s.intermediate + s.hidden))
    body = s.layers * (layer_matmul_params(s) + biases + 2.0 * norm) + norm
    emb = s.vocab * s.hidden * (2.0 - s.tied_embeddings)
    return np.asarray(body + emb if embeddings else body, float)
