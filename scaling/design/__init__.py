"""Adaptive sweeps: measure only the grid points that move the planner's answer.

    from scaling.design import design_of, run_adaptive, suggest
    spec = load_spec("sweeps/toyvlm_adaptive.yaml")
    design_of(spec)                     # the validated design; bad input stops here
    suggest(spec, k=2)                  # the next points, each with its score and why
    run_adaptive(spec)                  # initial design, then rounds until the target

The sweep spec's ``design:`` block (:mod:`scaling.design.spec`), the answer and its CI
(:mod:`scaling.design.answer`), the criterion (:mod:`scaling.design.criterion`), the loop
(:mod:`scaling.design.campaign`), its log (:mod:`scaling.design.log`) and the sweep glue
(:mod:`scaling.design.sweeps`). This package sits above ``scaling.sweep`` and uses the fitter
and planner only through the names ``scaling`` exports.
"""

from scaling.design.answer import Answer
from scaling.design.campaign import Outcome, Round, simulate
from scaling.design.criterion import Pick
from scaling.design.spec import Design, DesignSpec, design_of, in_memory
from scaling.design.sweeps import DesignReport, Suggestion, design_status, run_adaptive, suggest

__all__ = ["Answer", "Design", "DesignReport", "DesignSpec", "Outcome", "Pick", "Round",
           "Suggestion", "design_of", "design_status", "in_memory", "run_adaptive", "simulate",
           "suggest"]
