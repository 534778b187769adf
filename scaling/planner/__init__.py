"""The planner: a fitted law + a cost model + a budget -> the best (LLM size, visual tokens).

``pricing`` (what a configuration costs: paper FLOPs or the exact cost model) ->
``problem`` (one planning problem: law, pricer, limits, ranges) -> ``solvers`` (closed form
and numeric optima) -> ``menu`` (real catalog configurations) -> ``answer`` (``plan`` and
``frontier``, the entry points) and ``mix`` (one LLM for a mix of tasks). Numpy only.
"""

from scaling.planner.answer import Choice, Plan, frontier, plan
from scaling.planner.mix import MixPlan, plan_mix
from scaling.planner.problem import Frontier

__all__ = ["Choice", "Frontier", "MixPlan", "Plan", "frontier", "plan", "plan_mix"]
