"""``scaling calibrate``: fit the serving model's mfu/mbu to a measured vLLM benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scaling.cli import app
from scaling.cli._common import console, guarded, print_json


@app.command("calibrate")
@guarded
def calibrate(
    files: Annotated[list[Path], typer.Argument(
        help="JSON from `vllm bench throughput --output-json` or `vllm bench serve "
             "--save-result` (several: one fit).")],
    gpu: Annotated[str, typer.Option("--gpu", help="The GPU the benchmark ran on.")],
    llm: Annotated[str, typer.Option("--llm", help="The catalog LLM it served.")],
    gpus: Annotated[int, typer.Option("--gpus", help="Tensor-parallel GPUs.")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="Weights dtype.")] = "bf16",
    kv_dtype: Annotated[str | None, typer.Option(
        "--kv-dtype", help="KV-cache dtype (default: --dtype).")] = None,
    input_len: Annotated[int | None, typer.Option(
        "--input-len", help="Prompt tokens per request (throughput files).")] = None,
    output_len: Annotated[int | None, typer.Option(
        "--output-len", help="Generated tokens per request (throughput files).")] = None,
    max_batch: Annotated[int | None, typer.Option(
        "--max-batch", help="The engine's max_num_seqs (vLLM V1: 1024 on H100).")] = None,
    gpu_memory_utilization: Annotated[float, typer.Option(
        "--gpu-memory-utilization", help="As the benchmark's engine had it.")] = 0.9,
    mfu: Annotated[float | None, typer.Option("--mfu", help="Hold mfu fixed.")] = None,
    mbu: Annotated[float | None, typer.Option("--mbu", help="Hold mbu fixed.")] = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the hardware profile (JSON) here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Fit mfu and mbu so the serving model reproduces measured throughput."""
    from scaling.cost.calibration import calibrate as fit
    from scaling.cost.calibration import read_vllm_benchmark, write_profile

    runs = [read_vllm_benchmark(f, input_len=input_len, output_len=output_len) for f in files]
    cal = fit(runs, llm=llm, gpu=gpu, gpus=gpus, dtype=dtype, kv_dtype=kv_dtype,
              gpu_memory_utilization=gpu_memory_utilization, max_batch=max_batch, mfu=mfu,
              mbu=mbu)
    if output is not None:
        write_profile(output, cal)
    payload = {**cal.profile(), "llm": llm, "gpus": gpus, "dtype": dtype,
               "measured_rps": cal.measured_rps,
               "predicted_rps_before": cal.predicted_rps_before,
               "predicted_rps_after": cal.predicted_rps_after, "binding": cal.binding,
               "profile_path": str(output) if output is not None else None}
    if json_out:
        print_json(payload)
        return
    from rich.table import Table

    t = Table(title=f"Calibration: {llm} on {gpus} x {cal.gpu}", title_justify="left")
    for col in ("file", "in/out tokens", "measured req/s", "roofline req/s", "calibrated req/s",
                "binding"):
        t.add_column(col, justify="left" if col in ("file", "binding") else "right")
    for run, before, after, bind in zip(runs, cal.predicted_rps_before,
                                        cal.predicted_rps_after, cal.binding, strict=True):
        t.add_row(Path(run.source).name, f"{run.input_tokens:g}/{run.output_tokens:g}",
                  f"{run.requests_per_second:.3g}", f"{before:.3g}", f"{after:.3g}", bind)
    console.print(t)
    console.print(f"mfu = {cal.mfu:.3f}, mbu = {cal.mbu:.3f} ({cal.identified})"
                  + (f"; profile written to {output}" if output else ""))
