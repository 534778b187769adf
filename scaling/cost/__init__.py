"""The cost model, a straight chain of modules (each imports only those before it):

``specs`` (LLM / encoder / projector shapes, parameter counts, config.json import)
<- ``catalog`` (published configs, name lookups, nominal sizes)
<- ``hardware`` (GPU datasheets) and ``tokens`` (visual-token counting)
<- ``flops`` (FLOPs, KV-cache and weight bytes) <- ``latency`` (roofline time).

Numpy only: no torch, matplotlib or transformers.
"""

from scaling.cost.catalog import (
    ENCODERS,
    LLMS,
    as_stack,
    encoder_names,
    get_encoder,
    get_llm,
    llm_family,
    llm_names,
    nominal_params,
)
from scaling.cost.flops import (
    InferenceCost,
    encoder_flops,
    encoder_params,
    inference_cost,
    llm_params,
    paper_flops,
)
from scaling.cost.hardware import GPUSpec, get_gpu
from scaling.cost.specs import (
    PROJECTOR_KINDS,
    EncoderSpec,
    LLMSpec,
    LLMStack,
    ProjectorSpec,
    VLMSpec,
    from_hf_config,
    get_projector,
    stack_llms,
)
from scaling.cost.tokens import anyres_tokens, compression_ratio, patch_tokens, tokens_per_megapixel

__all__ = [
    "ENCODERS", "LLMS", "PROJECTOR_KINDS", "EncoderSpec", "GPUSpec", "InferenceCost", "LLMSpec",
    "LLMStack", "ProjectorSpec", "VLMSpec", "anyres_tokens", "as_stack", "compression_ratio",
    "encoder_flops", "encoder_names", "encoder_params", "from_hf_config", "get_encoder", "get_gpu",
    "get_llm", "get_projector", "inference_cost", "llm_family", "llm_names", "llm_params",
    "nominal_params", "paper_flops", "patch_tokens", "stack_llms", "tokens_per_megapixel",
]
