"""Calibrate the serving model on a measured run: read vLLM's benchmark JSON, fit ``mfu`` and
``mbu``, and keep them in a small hardware profile that ``--hardware-profile`` applies.

Formats read (keys as vLLM's ``vllm/benchmarks/throughput.py`` and ``serve.py`` write them):

- ``vllm bench throughput --output-json F``: ``elapsed_time``, ``num_requests``,
  ``total_num_tokens``, ``requests_per_second``, ``tokens_per_second``. The file does not hold
  the input/output lengths: give the output length (``--output-len``); the input length is
  ``total_num_tokens / num_requests - output_len`` unless given too.
- ``vllm bench serve --save-result``: ``duration``, ``completed``, ``total_input_tokens``,
  ``total_output_tokens``, ``request_throughput`` (+ ``max_concurrency``, TTFT/TPOT
  statistics); lengths are the means ``total_*_tokens / completed``.

The fit: with ``X(mfu, mbu)`` the model's throughput (:func:`scaling.cost.serving.throughput_at`)
and ``X_i`` the measured ones, minimise ``sum_i (ln X(mfu, mbu) - ln X_i)^2 + 1e-3 (ln mfu -
ln mbu)^2`` over ``0.01 <= mfu, mbu <= 1`` (a log grid, then a finer one around the best). One
measurement, or several in one regime, determines only the factor of the resource that binds;
the small penalty then picks ``mfu = mbu`` (a common efficiency), and the result says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaling.cost.serving import ServingCost, serving_cost, throughput_at
from scaling.errors import ScalingError
from scaling.files import check_input_file, write_json

THROUGHPUT_KEYS = ("elapsed_time", "num_requests", "total_num_tokens", "requests_per_second",
                   "tokens_per_second")
SERVE_KEYS = ("duration", "completed", "total_input_tokens", "total_output_tokens",
              "request_throughput")
PROFILE_KIND = "scaling.hardware_profile"
_PENALTY = 1e-3


@dataclass(frozen=True)
class Measurement:
    """One measured serving run: request shape, engine limits and requests/s."""

    requests_per_second: float
    input_tokens: float
    output_tokens: float
    num_requests: int
    max_batch: int | None = None
    source: str = ""
    kind: str = ""  # "vllm-throughput" | "vllm-serve" | other


def _positive(data: dict, key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ScalingError(f"{where}: {key} must be a number > 0, got {value!r}")
    return float(value)


def read_vllm_benchmark(path: str | Path, *, input_len: int | None = None,
                        output_len: int | None = None) -> Measurement:
    """The measurement in a ``vllm bench throughput`` / ``vllm bench serve`` result file."""
    path = check_input_file(path, what="benchmark file")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScalingError(f"{path} is not JSON ({exc}); give the file that `vllm bench "
                           "throughput --output-json` or `vllm bench serve --save-result` "
                           "wrote") from None
    if not isinstance(data, dict):
        raise ScalingError(f"{path} holds a JSON {type(data).__name__}, not a vLLM benchmark "
                           "result object; give the --output-json / --save-result file (not "
                           "the .pytorch.json one)")
    where = str(path)
    if all(k in data for k in THROUGHPUT_KEYS):
        n = int(_positive(data, "num_requests", where))
        rps = _positive(data, "requests_per_second", where)
        per_req = _positive(data, "total_num_tokens", where) / n
        if output_len is None:
            raise ScalingError(f"{path} is a `vllm bench throughput` result, which does not "
                               "record the lengths: give --output-len (and --input-len)")
        inp = per_req - output_len if input_len is None else float(input_len)
        if inp < 1 or abs(inp + output_len - per_req) > 0.5 + 1e-6 * per_req:
            raise ScalingError(f"{path}: {per_req:g} tokens per request do not match "
                               f"--input-len {input_len} + --output-len {output_len}; check them")
        return Measurement(rps, inp, float(output_len), n, None, where, "vllm-throughput")
    if all(k in data for k in SERVE_KEYS):
        done = int(_positive(data, "completed", where))
        rps = _positive(data, "request_throughput", where)
        inp = _positive(data, "total_input_tokens", where) / done
        out = _positive(data, "total_output_tokens", where) / done
        for given, value, name in ((input_len, inp, "--input-len"),
                                   (output_len, out, "--output-len")):
            if given is not None and abs(given - value) > 0.5:
                raise ScalingError(f"{path} records {value:g} tokens on average, not {name} "
                                   f"{given}; drop {name}")
        cap = data.get("max_concurrency")
        cap = int(cap) if isinstance(cap, (int, float)) and cap >= 1 else None
        return Measurement(rps, inp, out, done, cap, where, "vllm-serve")
    keys = ", ".join(sorted(map(str, data))[:8])
    raise ScalingError(f"{path} is not a vLLM benchmark result: expected the keys of `vllm bench "
                       f"throughput --output-json` ({', '.join(THROUGHPUT_KEYS)}) or of `vllm "
                       f"bench serve --save-result` ({', '.join(SERVE_KEYS)}); found {keys}")


@dataclass(frozen=True)
class Calibration:
    """Fitted efficiency factors and the fit's before/after predictions."""

    gpu: str
    mfu: float
    mbu: float
    identified: str  # "both" or "common factor (one regime measured)"
    measured_rps: tuple[float, ...]
    predicted_rps_before: tuple[float, ...]  # mfu = mbu = 1 (the roofline bound)
    predicted_rps_after: tuple[float, ...]
    binding: tuple[str, ...]
    sources: tuple[str, ...] = field(default=())

    def profile(self) -> dict[str, Any]:
        """The hardware-profile JSON object."""
        return {"kind": PROFILE_KIND, "gpu": self.gpu, "mfu": self.mfu, "mbu": self.mbu,
                "identified": self.identified,
                "fitted_on": [{"source": s, "measured_rps": m, "predicted_rps": p}
                              for s, m, p in zip(self.sources, self.measured_rps,
                                                 self.predicted_rps_after, strict=True)]}


def _grid_fit(costs: list[ServingCost], measured: np.ndarray, fix_mfu: float | None,
              fix_mbu: float | None) -> tuple[float, float]:
    """Minimise the module docstring's loss over ``ln mfu, ln mbu`` in ``[ln 0.01, 0]``: a
    161 x 161 grid, then two grids 20x finer around the best point (a held factor stays)."""

    def axis(fixed: float | None, centre: float, half: float) -> np.ndarray:
        if fixed is not None:
            return np.array([np.log(fixed)])
        return np.linspace(max(np.log(0.01), centre - half), min(0.0, centre + half), 161)

    best, half = (np.log(0.1), np.log(0.1)), -np.log(0.01) / 2 + 1e-9
    for _ in range(3):
        a, b = axis(fix_mfu, best[0], half), axis(fix_mbu, best[1], half)
        A, B = np.meshgrid(a, b, indexing="ij")
        loss = _PENALTY * (A - B) ** 2
        for c, x in zip(costs, measured, strict=True):
            pred = throughput_at(c, np.exp(A), np.exp(B))
            loss = loss + (np.log(np.maximum(pred, 1e-300)) - np.log(x)) ** 2
        i, j = np.unravel_index(np.argmin(loss), loss.shape)
        best, half = (float(A[i, j]), float(B[i, j])), half / 20
    return float(np.exp(best[0])), float(np.exp(best[1]))


def calibrate(measurements: list[Measurement], *, llm: Any, gpu: str, gpus: int = 1,
              dtype: str = "bf16", kv_dtype: str | None = None,
              gpu_memory_utilization: float = 0.9, max_batch: int | None = None,
              mfu: float | None = None, mbu: float | None = None) -> Calibration:
    """Fit ``mfu`` and ``mbu`` (either may be held fixed) to measured throughputs of ``llm``
    (text-only requests: the prompt is ``input_tokens`` text tokens)."""
    if not measurements:
        raise ScalingError("no measurements to calibrate on; give at least one result file")
    costs = []
    for m in measurements:
        cap = m.max_batch if m.max_batch is not None else max_batch
        cap = min(cap, m.num_requests) if cap is not None else m.num_requests
        costs.append(serving_cost(llm, gpu=gpu, gpus=gpus, visual_tokens=0.0,
                                  text_tokens=m.input_tokens, gen_tokens=m.output_tokens,
                                  dtype=dtype, kv_dtype=kv_dtype, max_batch=int(cap),
                                  gpu_memory_utilization=gpu_memory_utilization))
    measured = np.array([m.requests_per_second for m in measurements])
    f_mfu, f_mbu = _grid_fit(costs, measured, mfu, mbu)
    regimes = {("compute" if float(np.asarray(c.step_compute_s)) >= float(np.asarray(
        c.step_memory_s)) or float(np.asarray(c.prefill_share)) >= 0.5 else "memory")
        for c in costs}
    identified = "both" if (len(regimes) > 1 or mfu is not None or mbu is not None) \
        else "common factor (one regime measured)"
    return Calibration(
        gpu=costs[0].gpu, mfu=f_mfu, mbu=f_mbu, identified=identified,
        measured_rps=tuple(float(x) for x in measured),
        predicted_rps_before=tuple(float(c.throughput_rps) for c in costs),
        predicted_rps_after=tuple(float(throughput_at(c, f_mfu, f_mbu)) for c in costs),
        binding=tuple(str(c.binding) for c in costs),
        sources=tuple(m.source for m in measurements))


def write_profile(path: str | Path, calibration: Calibration) -> Path:
    """Write the hardware profile (``kind``, ``gpu``, ``mfu``, ``mbu``, what it was fitted on)."""
    return write_json(path, calibration.profile())


def load_profile(path: str | Path, *, gpu: str | None = None) -> dict[str, Any]:
    """A hardware profile written by :func:`write_profile`: ``{"gpu", "mfu", "mbu", ...}``;
    checks it is one and, when ``gpu`` is given, that it was fitted on that GPU."""
    from scaling.cost.hardware import get_gpu

    path = check_input_file(path, what="hardware profile")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScalingError(f"hardware profile {path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != PROFILE_KIND:
        raise ScalingError(f"{path} is not a hardware profile (no \"kind\": \"{PROFILE_KIND}\"); "
                           "make one with `scaling calibrate ... -o PROFILE.json`")
    for key in ("mfu", "mbu"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value <= 1:
            raise ScalingError(f"hardware profile {path}: {key} must be in (0, 1], got {value!r}")
    if gpu is not None and get_gpu(gpu).name != data.get("gpu"):
        raise ScalingError(f"hardware profile {path} was fitted on {data.get('gpu')!r}, not "
                           f"{get_gpu(gpu).name!r}; calibrate on this GPU or drop "
                           "--hardware-profile")
    return data
