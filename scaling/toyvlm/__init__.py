"""A CPU-trainable tiny VLM on synthetic scenes: the whole study (sweep -> fit -> plan) on a laptop.

Synthetic scenes and questions (:mod:`.data`), a frozen conv encoder with cached features
(:mod:`.encoder`), six token compressors (:mod:`.compressors`), the LLaVA-shaped model
(:mod:`.model`), training (:mod:`.train`) and the sweep evaluator :func:`evaluate`
(``evaluator: {kind: toyvlm}`` in a sweep spec). Scripts over a study: :mod:`.report` (its
tables), :mod:`.curves` (learning curves) and :mod:`.probe` (what pooled tokens hold, read by
linear probes instead of a decoder). torch is imported by this package only.
"""

from scaling.toyvlm.compressors import COMPRESSORS, make_compressor
from scaling.toyvlm.evaluate import evaluate
from scaling.toyvlm.model import SIZES, ToyVLM, lm_size

__all__ = ["COMPRESSORS", "SIZES", "ToyVLM", "evaluate", "lm_size", "make_compressor"]
