"""``scaling plan``: the LLM size and visual-token count for an inference budget."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from scaling.cli import app
from scaling.cli._common import choose_law, console, guarded, print_json, si
from scaling.errors import ScalingError


def _load_law(path: Path | None, group: str | None, *, mix: bool) -> Any:
    """The law to plan with: the paper's default, or one (or, for --mix, all) from a file."""
    if path is None:
        if group is not None:
            raise ScalingError("--group needs --law FILE.law.json (a grouped fit)")
        if mix:
            raise ScalingError("--mix needs per-task laws: --law FILE.law.json from "
                               "`scaling fit ... --group-by task`")
        return None
    from scaling.fit import load_laws

    laws = load_laws(path)
    if mix:
        return laws
    if group is None and len(laws) > 1:
        raise ScalingError(f"{path} holds one law per group ({', '.join(laws)}): choose one "
                           "with --group NAME, or plan a traffic mix with --mix name=weight,...")
    return choose_law(laws, group, path)


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, fmt)


def _config_line(c: Any) -> str:
    from scaling.units import format_params

    size = format_params(c.llm_params)
    if c.llm:
        real = f", {format_params(c.llm_params_actual)} real" if math.isfinite(
            c.llm_params_actual) and abs(c.llm_params_actual / c.llm_params - 1) > 0.005 else ""
        size = f"{c.llm} ({size} params{real})"
    else:
        size = f"{size} params"
    plural = "" if c.visual_tokens == 1 else "s"
    return f"{size} with {c.visual_tokens:.3g} visual token{plural}"


def _accuracy_line(c: Any, level: float) -> str:
    ci = ""
    if c.error_ci:
        ci = f", {level:.0%} CI {1 - c.error_ci[1]:.1%} to {1 - c.error_ci[0]:.1%}"
    return f"{c.predicted_accuracy:.1%} predicted (error {c.predicted_error:.4f}{ci})"


def _cost_line(c: Any, gpu: str | None) -> str:
    parts = [f"{si(c.flops, 'FLOPs')}"]
    split = [f"{name} {si(v)}" for name, v in (("prefill", c.flops_prefill),
                                                 ("decode", c.flops_decode),
                                                 ("vision", c.flops_vision)) if v]
    if split:
        parts[0] += " (" + ", ".join(split) + ")"
    if math.isfinite(c.kv_cache_bytes):
        parts.append(f"KV cache {si(c.kv_cache_bytes, 'B')}")
    if math.isfinite(c.memory_bytes):
        parts.append(f"memory {si(c.memory_bytes, 'B')} (weights + KV)")
    if math.isfinite(c.latency_s):
        parts.append(f"latency {c.latency_s * 1e3:.3g} ms on {gpu} (roofline)")
    return "; ".join(parts)


def _print_plan(p: Any, *, q_default: bool = False) -> None:
    from rich.table import Table

    q_note = " (the default: the paper's running example)" if q_default else ""
    head = f"{si(p.budget_flops, 'FLOPs')} per request" if p.target_accuracy is None else (
        f"target accuracy {p.target_accuracy:.1%}: the cheapest configuration reaching it")
    console.print(f"Plan for {head}; Q = {p.text_tokens:g} text tokens{q_note}, "
                  f"G = {p.gen_tokens:g} generated", highlight=False)
    console.print(f"cost model  {p.cost_label}", highlight=False, markup=False)
    params = ", ".join(f"{k}={v:.4g}" for k, v in p.law.params.items())
    console.print(f"law         {p.law_label} ({p.law.law}: {params})", highlight=False,
                  markup=False)
    answer = p.discrete if p.discrete is not None else p.optimum
    where = "best from the menu" if p.discrete is not None else (
        f"continuous optimum, {p.method}")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Use", f"{_config_line(answer)}  [{where}]")
    grid.add_row("Accuracy", _accuracy_line(answer, p.ci_level))
    grid.add_row("Cost", _cost_line(answer, p.gpu))
    if answer.p_optimal is not None:
        grid.add_row("Robustness", f"optimal in {answer.p_optimal:.0%} of bootstrap draws")
    grid.add_row("Why", p.why)
    console.print()
    console.print(grid, highlight=False)
    if p.discrete is not None:
        o = p.optimum
        console.print(f"\nContinuous optimum ({p.method}): {_config_line(o)}: "
                      f"{_accuracy_line(o, p.ci_level)}, {si(o.flops, 'FLOPs')}", highlight=False,
                      markup=False)
    u = p.uncertainty and p.uncertainty.get("optimum_across_draws")
    if u:
        v, n = u["visual_tokens"], u["llm_params"]
        console.print(f"Across {u['n_draws']} bootstrap draws the optimum is "
                      f"{v['median']:.3g} tokens ({v['interval'][0]:.3g}-{v['interval'][1]:.3g})"
                      f" and {si(n['median'])} params ({si(n['interval'][0])}-"
                      f"{si(n['interval'][1])})", highlight=False)
    if p.alternatives:
        from scaling.units import format_params

        t = Table(title="Runners-up" if p.target_accuracy is None else "Next cheapest",
                  title_justify="left")
        for col in ("LLM", "tokens", "accuracy", "FLOPs", "KV cache", "memory", "latency"):
            t.add_column(col, justify="left" if col == "LLM" else "right", no_wrap=True)
        show_p = any(c.p_optimal is not None for c in p.alternatives)
        if show_p:
            t.add_column("P(opt)", justify="right")
        for c in p.alternatives:
            row = [c.llm or format_params(c.llm_params), f"{c.visual_tokens:.3g}",
                   f"{c.predicted_accuracy:.2%}", si(c.flops), si(c.kv_cache_bytes, "B"),
                   si(c.memory_bytes, "B"),
                   "-" if not math.isfinite(c.latency_s) else f"{c.latency_s * 1e3:.3g} ms"]
            if show_p:
                row.append(_num(c.p_optimal, ".0%"))
            t.add_row(*row)
        console.print()
        console.print(t)
    for w in p.warnings:
        console.print(f"note: {w}", style="yellow")


def _print_mix(m: Any) -> None:
    from rich.table import Table

    from scaling.units import format_params

    console.print(f"Task mix at {si(m.budget_flops, 'FLOPs')} per request on "
                  f"average ({m.cost_model} cost): one {format_params(m.llm_params)}-parameter "
                  "LLM, tokens per task", highlight=False)
    t = Table()
    for col in ("task", "weight", "tokens", "accuracy", "single-count tokens",
                "single-count accuracy"):
        t.add_column(col, justify="left" if col == "task" else "right")
    for task, w in m.weights.items():
        t.add_row(task, f"{w:.2f}", f"{m.visual_tokens[task]:.3g}",
                  f"{1 - m.predicted_error[task]:.2%}", f"{m.single_visual_tokens:.3g}",
                  f"{1 - m.single_predicted_error[task]:.2%}")
    console.print(t)
    console.print(f"expected accuracy {1 - m.expected_error:.3%} with per-task tokens vs "
                  f"{1 - m.single_expected_error:.3%} with the best single token count "
                  f"({m.single_visual_tokens:.3g} tokens, {format_params(m.single_llm_params)} "
                  f"params): gain {m.gain * 100:.3f} accuracy points "
                  f"({m.gain / m.single_expected_error:.2%} less error)", highlight=False)


def _plan_serving(law: Any, *, gpu: str, family: str, text_tokens: float, gen_tokens: float,
                  tokens: str | None, encoder: str, dtype: str, gpu_hour_usd: float | None,
                  top: int, as_json: bool, hardware_profile: Path | None, **budget: Any) -> None:
    """``plan --cost serving``: parse, call :func:`scaling.planner.serving.plan_serving`, print."""
    from rich.table import Table

    from scaling.cost.calibration import load_profile
    from scaling.planner.serving import plan_serving

    eff = {}
    if hardware_profile is not None:
        prof = load_profile(hardware_profile, gpu=gpu)
        eff = {"mfu": prof["mfu"], "mbu": prof["mbu"]}
    p = plan_serving(law, gpu=gpu, family=family, text_tokens=text_tokens,
                     gen_tokens=gen_tokens, tokens=tokens, encoder=encoder, dtype=dtype,
                     usd_per_gpu_hour=gpu_hour_usd, top=top, **budget, **eff)
    if as_json:
        print_json(p.to_dict())
        return
    c, f = p.choice, p.flop_optimum
    console.print(f"Serving plan on {p.gpu}: Q = {p.text_tokens:g} text tokens, "
                  f"G = {p.gen_tokens:g} generated, {p.family} + {encoder}", style="bold")
    t = Table(title="serving optimum vs the FLOP planner at the same spend (GPU-s per request, "
              "T GPUs x batch B)", title_justify="left")
    for col in ("", "LLM", "V", "acc.", "GPU-s", "T x B", "TPOT", "binding"):
        t.add_column(col, justify="left" if col in ("", "LLM", "binding") else "right",
                     no_wrap=True)
    for label, x in (("serving", c), ("FLOPs", f)):
        t.add_row(label, x.llm, f"{x.visual_tokens:g}", f"{x.predicted_accuracy:.1%}",
                  f"{x.gpu_seconds_per_request:.3g}", f"{x.gpus_per_replica} x {x.max_batch:g}",
                  _num(x.tpot_s * 1e3, ".3g") + " ms", x.binding)
    console.print(t)
    console.print(f"Why: {p.why}")
    for w in p.warnings:
        console.print(f"note: {w}", style="yellow")


PROFILE_OPT = typer.Option(None, "--hardware-profile", help="--cost serving: mfu/mbu from "
                           "`scaling calibrate -o`.")
#: Text tokens per prompt when --text-tokens is not given: the paper's running example (Q = 50).
DEFAULT_TEXT_TOKENS = 50.0

LAW_OPT = typer.Option(None, "--law", help="Fitted law (FILE.law.json); default: the paper's "
                       "published visual-reasoning law.")


@app.command("plan")
@guarded
def plan_command(
    flops: str = typer.Option(None, "--flops", help="Budget per request: 1e13, 2T, 500G, 2TFLOP."),
    law: Path = LAW_OPT,
    group: str = typer.Option(None, "--group", help="Which law of a grouped artifact."),
    text_tokens: float = typer.Option(None, "--text-tokens", "-q", help="Text tokens per "
                                      f"prompt (default {DEFAULT_TEXT_TOKENS:g}, the paper's "
                                      "running example)."),
    gen_tokens: float = typer.Option(0, "--gen-tokens", help="Generated tokens per request."),
    sizes: str = typer.Option(None, "--sizes", help="Menu of LLM sizes: 0.5B,1.8B,4B,7B."),
    family: str = typer.Option(None, "--family", help="Model family from the catalog "
                               "(qwen1.5, qwen2.5, llama3, vicuna): menu + architecture."),
    tokens: str = typer.Option(None, "--tokens", help="Menu of visual-token counts: 1,4,16,64."),
    cost: str = typer.Option("paper", "--cost", help="Cost model: paper (2N(Q+V)), exact, or "
                             "serving (GPU time under continuous batching)."),
    encoder: str = typer.Option(None, "--encoder", help="Vision encoder for the exact cost "
                                "(default clip-vit-l-14-336)."),
    gpu: str = typer.Option(None, "--gpu", help="GPU for latency (h100, h200, a100-80gb, ...)."),
    batch: int = typer.Option(1, "--batch", help="Requests served together (memory, latency)."),
    dtype: str = typer.Option("bf16", "--dtype", help="Weight/KV dtype."),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms", help="Roofline latency cap."),
    max_memory_gb: float = typer.Option(None, "--max-memory-gb", help="Weights + KV cap (GB)."),
    llm_range: str = typer.Option(None, "--llm-range", help="Allowed LLM sizes, LOW:HIGH "
                                  "(e.g. 0.5B:72B)."),
    token_range: str = typer.Option(None, "--token-range", help="Allowed visual tokens, "
                                    "LOW:HIGH (default 1:576)."),
    target_accuracy: float = typer.Option(None, "--target-accuracy", help="Inverse mode: the "
                                          "cheapest configuration reaching this accuracy (0-1)."),
    mix: str = typer.Option(None, "--mix", help="Traffic mix over the law file's groups, "
                            "e.g. reasoning=0.7,ocr=0.3: per-task token counts."),
    law_size: str = typer.Option("nominal", "--law-size", help="Size the law sees for catalog "
                                 "models: nominal (the name's size, as the paper) or actual."),
    top: int = typer.Option(5, "--top", help="How many runners-up to list."),
    llm: str = typer.Option(None, "--llm", help="One model (catalog name): how many visual "
                            "tokens for it (with --flops, --max-latency-ms, --target-accuracy, "
                            "--min-gain)."),
    min_gain: float = typer.Option(None, "--min-gain", help="With --llm: the knee, the smallest "
                                   "token count whose next doubling gains less accuracy."),
    train_flops: str = typer.Option(None, "--train-flops", help="Training compute C for a law "
                                    "over N and D: the compute-optimal N and D (C = 6ND)."),
    requests: float = typer.Option(None, "--requests", help="With --train-flops: requests R "
                                   "served over the model's life (Sardana et al. 2023)."),
    request_tokens: float = typer.Option(None, "--request-tokens", help="With --requests: "
                                         "tokens per request Q (inference 2NQR FLOPs)."),
    gpu_seconds: float = typer.Option(None, "--gpu-seconds", help="--cost serving: GPU-seconds "
                                      "per request."),
    usd_per_million: float = typer.Option(None, "--usd-per-million", help="--cost serving: "
                                          "dollars per 1M requests (with --gpu-hour-usd)."),
    gpu_hour_usd: float = typer.Option(None, "--gpu-hour-usd", help="Price of a GPU-hour."),
    throughput: float = typer.Option(None, "--throughput", help="--cost serving: requests/s "
                                     "that --gpus K GPUs must carry."),
    gpus: int = typer.Option(None, "--gpus", help="--cost serving: GPUs available."),
    max_ttft_ms: float = typer.Option(None, "--max-ttft-ms", help="Time-to-first-token cap."),
    max_tpot_ms: float = typer.Option(None, "--max-tpot-ms", help="Time-per-output-token cap."),
    hardware_profile: Path = PROFILE_OPT,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable result on stdout."),
) -> None:
    """Which LLM size and how many visual tokens per image for an inference budget."""
    from scaling.units import parse_flops

    serving_opts = dict(gpu_seconds=gpu_seconds, usd_per_million=usd_per_million,
                        throughput=throughput, gpus=gpus, max_ttft_ms=max_ttft_ms,
                        max_tpot_ms=max_tpot_ms, hardware_profile=hardware_profile)
    if cost == "serving":
        if flops is not None or mix is not None or target_accuracy is not None or sizes:
            raise ScalingError("--cost serving takes a serving budget (--gpu-seconds, "
                               "--usd-per-million or --throughput with --gpus), not --flops, "
                               "--mix, --target-accuracy or --sizes")
        if gpu is None:
            raise ScalingError("--cost serving needs --gpu NAME (h100, h200, a100-80gb, ...)")
        _plan_serving(_load_law(law, group, mix=False), gpu=gpu, family=family or "qwen2.5",
                      text_tokens=DEFAULT_TEXT_TOKENS if text_tokens is None else text_tokens,
                      gen_tokens=gen_tokens, tokens=tokens,
                      encoder=encoder or "clip-vit-l-14-336", dtype=dtype,
                      gpu_hour_usd=gpu_hour_usd, top=top, as_json=as_json, **serving_opts)
        return
    given = [f"--{k.replace('_', '-')}" for k, v in serving_opts.items() if v is not None]
    if given:
        raise ScalingError(f"{', '.join(given)} belong to --cost serving")

    if flops is not None:
        flops = parse_flops(flops)
    q_default = text_tokens is None
    text_tokens = DEFAULT_TEXT_TOKENS if q_default else text_tokens
    if train_flops is not None or llm is not None or min_gain is not None:
        from scaling.cli import plan_extra

        fitted = _load_law(law, group, mix=False)
        if train_flops is not None:
            return plan_extra.plan_training_cli(
                fitted, train_flops=parse_flops(train_flops, what="--train-flops"),
                requests=requests, request_tokens=request_tokens, as_json=as_json)
        if llm is None:
            raise ScalingError("--min-gain plans tokens for one model: add --llm MODEL")
        return plan_extra.plan_tokens_cli(
            fitted, llm=llm, flops=flops, max_latency_ms=max_latency_ms, gpu=gpu,
            target_accuracy=target_accuracy, min_gain=min_gain, text_tokens=text_tokens,
            gen_tokens=gen_tokens, encoder=encoder, token_range=token_range, as_json=as_json)
    if cost not in ("paper", "exact"):
        raise ScalingError(f"--cost must be paper, exact or serving, got {cost!r}")
    if sizes is not None and family is not None and cost != "exact":
        raise ScalingError("give --sizes or --family, not both (with --cost exact, --family "
                           "prices the --sizes)")
    fitted = _load_law(law, group, mix=mix is not None)
    options = dict(text_tokens=text_tokens, gen_tokens=gen_tokens, cost=cost, family=family,
                   encoder=encoder, gpu=gpu, batch=batch, dtype=dtype,
                   max_memory_gb=max_memory_gb, max_latency_ms=max_latency_ms,
                   llm_range=llm_range, token_range=token_range, law_size=law_size)
    if mix is not None:
        from scaling.planner.mix import plan_mix

        if sizes or tokens or target_accuracy is not None:
            raise ScalingError("--mix plans continuous sizes and tokens: drop --sizes, --tokens "
                               "and --target-accuracy")
        if flops is None:
            raise ScalingError("--mix needs a budget: --flops 1e13")
        m = plan_mix(fitted, mix, flops=flops, **options)
        if as_json:
            out = m.to_dict()
            out["optimum"] = {**out["mix"], "predicted_error": m.expected_error}
            print_json(out)
        else:
            _print_mix(m)
        return
    from scaling.planner.answer import plan

    p = plan(fitted, flops=flops, sizes=sizes, tokens=tokens, target_accuracy=target_accuracy,
             top=top, catalog_menu=True, **options)
    if as_json:
        print_json(p.to_dict())
    else:
        _print_plan(p, q_default=q_default)
