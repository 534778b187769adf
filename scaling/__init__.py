"""scaling: inference-optimal LLM size and visual-token count for vision-language models.

The public API is listed in ``__all__``. The planning path (numpy only) is imported eagerly, so
that the functions ``plan`` and ``frontier`` are never shadowed by their modules; the fitter
(scipy) is imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

from scaling.frontier import Frontier as Frontier
from scaling.plan import Choice as Choice
from scaling.plan import Plan as Plan
from scaling.plan import frontier as frontier
from scaling.plan import plan as plan

__version__ = "0.1.0"

_EXPORTS = {
    "scaling.errors": ["ScalingError"],
    "scaling.units": ["parse_flops", "parse_params", "format_quantity"],
    "scaling.law": ["LAWS", "PAPER_LAW", "FittedLaw", "LawForm", "get_law",
                    "optimal_visual_tokens"],
    "scaling.arch": ["LLMSpec", "EncoderSpec", "ProjectorSpec", "VLMSpec", "LLMStack", "get_llm",
                     "get_encoder", "get_projector", "llm_family", "from_hf_config",
                     "stack_llms"],
    "scaling.hardware": ["GPUSpec", "get_gpu"],
    "scaling.tokens": ["patch_tokens", "anyres_tokens", "tokens_per_megapixel",
                       "compression_ratio"],
    "scaling.cost": ["InferenceCost", "inference_cost", "llm_params", "paper_flops",
                     "encoder_flops"],
    "scaling.data": ["SweepData", "load_sweep", "from_arrays"],
    "scaling.fit": ["FitResult", "fit_law", "fit_groups", "load_laws", "save_laws"],
    "scaling.mix": ["MixPlan", "plan_mix"],
    "scaling.plot": ["PlotResult", "Measured", "load_measured", "frontier_figure",
                     "isoflop_figure", "heatmap_figure", "fit_figure"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_WHERE, "Choice", "Frontier", "Plan", "frontier", "plan"]) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'scaling' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
