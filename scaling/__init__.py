"""scaling: inference-optimal LLM size and visual-token count for vision-language models."""

from scaling.errors import ScalingError
from scaling.law import LAWS, PAPER_LAW, FittedLaw, LawForm, get_law
from scaling.units import parse_flops, parse_params

__version__ = "0.1.0"

__all__ = [
    "LAWS",
    "PAPER_LAW",
    "FittedLaw",
    "LawForm",
    "ScalingError",
    "__version__",
    "get_law",
    "parse_flops",
    "parse_params",
]
