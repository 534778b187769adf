"""scaling: inference-optimal LLM size and visual-token count for vision-language models.

The public API is listed in ``__all__`` and loaded on first use (PEP 562), so ``import scaling``
loads none of scipy, pandas, torch or matplotlib. The code is organised by stage; see the
README's "How the code is organised" and each subpackage's docstring:
``cost/`` (the cost model) -> ``fit/`` (the fitter) -> ``planner/`` (the planner), ``sweep/``
(the sweep runner), ``plot.py`` (figures), ``toyvlm/`` (a CPU-trainable tiny VLM), ``cli/``;
shared by all: ``law.py`` (law forms: the fit <-> plan contract), ``units.py``, ``errors.py``,
``files.py``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as _metadata
from typing import Any

try:
    __version__ = _metadata.version("scaling")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "scaling.errors": ["ScalingError"],
    "scaling.units": ["parse_flops", "parse_params", "format_quantity"],
    "scaling.law": ["LAWS", "PAPER_LAW", "FittedLaw", "LawForm", "get_law",
                    "optimal_visual_tokens", "Axis", "law_form"],
    "scaling.cost": ["LLMSpec", "EncoderSpec", "ProjectorSpec", "VLMSpec", "LLMStack", "get_llm",
                     "get_encoder", "get_projector", "llm_family", "from_hf_config",
                     "stack_llms", "GPUSpec", "get_gpu", "patch_tokens", "anyres_tokens",
                     "tokens_per_megapixel", "compression_ratio", "InferenceCost",
                     "inference_cost", "llm_params", "paper_flops", "encoder_flops"],
    "scaling.cost.serving": ["ServingCost", "serving_cost"],
    "scaling.cost.tokens": ["image_tokens"],
    "scaling.planner.serving": ["ServingPlan", "plan_serving"],
    "scaling.fit": ["SweepData", "load_sweep", "from_arrays", "from_axes", "FitResult",
                    "fit_law", "fit_groups", "load_laws", "save_laws"],
    "scaling.planner.tokens_only": ["plan_tokens", "TokenPlan"],
    "scaling.planner.training": ["TrainingOptimum"],
    "scaling.planner": ["Choice", "Frontier", "Plan", "frontier", "plan", "MixPlan", "plan_mix"],
    "scaling.plot": ["PlotResult", "Measured", "load_measured", "frontier_figure",
                     "isoflop_figure", "heatmap_figure", "fit_figure"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'scaling' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
