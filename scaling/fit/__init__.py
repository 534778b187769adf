"""The fitter: sweep table -> fitted law (a :class:`FitResult`).

``table`` (load and validate CSV/Parquet, named axes) -> ``varpro`` (exact linear solve for
fixed nonlinear parameters, their grid) -> ``polish`` (normalisation, Levenberg-Marquardt,
L-BFGS-B) with ``losses`` -> ``bootstrap`` (resampled refits) and ``validation`` (hold-out,
CV, law choice) -> ``artifact`` (the ``*.law.json`` file) and ``fitter`` (``fit_law``, the
entry point).
Needs scipy; no torch, matplotlib or pandas.
"""

from scaling.fit.fitter import FitResult, fit_groups, fit_law, load_laws, save_laws
from scaling.fit.table import SweepData, from_arrays, from_axes, load_sweep

__all__ = ["FitResult", "SweepData", "fit_groups", "fit_law", "from_arrays", "from_axes",
           "load_laws", "load_sweep", "save_laws"]
