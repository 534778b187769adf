"""Sweeps: grids of LLM size x visual tokens (x compressor, task, seed, ...) run locally or on
Dask, each finished run stored atomically, every row annotated with its inference cost.

    spec = load_spec("sweeps/toyvlm_quick.yaml")
    report = run_sweep(spec, workers=2)        # resumes by default
    sweep_status(spec)                         # done / failed / pending
"""

from scaling.sweep.grid import Run, expand, run_id
from scaling.sweep.runner import SweepReport, SweepStatus, run_sweep, sweep_status
from scaling.sweep.spec import SweepSpec, load_spec, parse_spec

__all__ = ["Run", "SweepReport", "SweepSpec", "SweepStatus", "expand", "load_spec",
           "parse_spec", "run_id", "run_sweep", "sweep_status"]
