"""The sweep spec: one YAML file says what to run, how, where and where results go.

Safe-loaded and validated by pydantic with ``extra="forbid"`` everywhere, so a mistyped field
stops with exit code 2, naming the field and the allowed names. The shape::

    name: toyvlm_quick                 # letters, digits, _ . -
    description: optional free text
    evaluator:                         # what measures one grid point (one "run")
      kind: python                     # python | command | toyvlm
      function: mypkg.evals:evaluate   # python: module:function(config) -> metrics
      options: {steps: 200}            # passed to the evaluator as config["options"]
      text_columns: [answer]           # metrics that hold text; all others: finite numbers
    axes:                              # the grid is the cross product of these
      llm: [qwen1.5-0.5b, 1.8B, {name: my-llm, params: 3B, arch: qwen2.5-3b, path: /ckpt/x}]
      visual_tokens: [1, 4, 16, 64]
      compressor: [conv]               # optional
      task: [gqa, mme]                 # optional
      seed: [0, 1]                     # optional
      params: {lr: [1e-3, 3e-4]}       # optional free-form axes
    text_tokens: 0                     # Q for the cost annotation (an evaluator may return it)
    gen_tokens: 0                      # G for the exact cost
    encoder: clip-vit-l-14-336         # optional, adds the vision encoder to the exact cost
    executor: {kind: local, workers: 2}    # or {kind: dask, address: "tcp://host:8786"}
    retries: 1                         # extra attempts for a failed run (per invocation)
    timeout_s: 600                     # per attempt; null = no limit
    output: results/toyvlm_quick.csv   # .csv or .parquet; --output overrides
    design: {...}                      # optional: adaptive sweeps (scaling.design validates it)

``llm`` entries are a catalog name (``qwen1.5-7b``: exact cost from the architecture), a size
(``0.5B``: paper cost only), or a mapping ``{name, params, arch, path}`` for custom checkpoints:
``params`` fixes ``llm_params``, ``arch`` names the catalog architecture (or an HF
``config.json``) for the exact cost, ``path`` is what ``{llm_path}`` expands to in commands.

The ``command`` evaluator runs a program (an argument list, never a shell)::

    evaluator:
      kind: command
      args: [python, -m, lmms_eval, --model, llava, --model_args, "pretrained={llm_path}",
             --tasks, "{task}", --output_path, "{output_dir}"]
      env: {HF_HUB_OFFLINE: "1"}
      cwd: null
      parser: {kind: lmms_eval}            # or {kind: json, file: metrics.json, keys: {...}}

Template fields: ``{llm} {llm_path} {visual_tokens} {compressor} {task} {seed} {run_id}
{output_dir} {attempt}``, every free parameter, and ``{options[key]}``.

Values that start with ``-``: an argument whose template starts with a field (``"{task}"``)
must not start with ``-`` because of a text value (``--write=FILE`` would reach the program as
an option); such a sweep stops before running (exit 2). Pass the value as one option's
argument instead: ``"--tasks={task}"``. Numbers (``seed: [-1]``) may be negative.
The parser's ``file`` / ``results_dir`` are resolved inside the run's ``{output_dir}``; a
path that leads outside it (``../x``, ``/etc/x``, a value with ``../``) fails.
"""

from __future__ import annotations

import re
import string
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scaling.errors import ScalingError

#: Names a free parameter may not take: axes, bookkeeping and cost columns, config keys.
RESERVED = frozenset({
    "llm", "llm_path", "visual_tokens", "compressor", "task", "seed", "params", "options",
    "run_id", "status", "failure", "attempts", "attempt", "output_dir", "llm_params", "llm_spec",
    "llm_params_actual", "text_tokens", "gen_tokens", "flops_paper", "flops",
    "flops_full_attention", "kv_cache_bytes", "started_at", "duration_s",
})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMEntry(_Strict):
    """One value of the ``llm`` axis; a bare string ``s`` means ``{name: s}``."""

    name: str = Field(min_length=1)
    params: float | str | None = None
    arch: str | None = None
    path: str | None = None

    @field_validator("params")
    @classmethod
    def _params(cls, value: float | str | None) -> float | None:
        if value is None:
            return None
        from scaling.units import parse_params

        return parse_params(value, what="llm params")


class Axes(_Strict):
    """The grid: the cross product of every axis given (``llm`` and ``visual_tokens`` needed)."""

    llm: list[LLMEntry] = Field(min_length=1)
    visual_tokens: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    compressor: list[str] | None = None
    task: list[str] | None = None
    seed: list[int] | None = None
    params: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("llm", mode="before")
    @classmethod
    def _llm_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": str(v)} if isinstance(v, (str, int, float)) else v for v in value]
        return value

    @field_validator("compressor", "task", "seed")
    @classmethod
    def _non_empty(cls, value: list | None) -> list | None:
        if value is not None and not value:
            raise ValueError("an axis needs at least one value (or leave it out)")
        return value

    @field_validator("params")
    @classmethod
    def _free_params(cls, value: dict[str, list]) -> dict[str, list]:
        for name, values in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"parameter name {name!r} must be an identifier")
            if name in RESERVED:
                raise ValueError(f"parameter name {name!r} is reserved; rename it")
            if not values:
                raise ValueError(f"parameter {name!r} needs at least one value")
            for v in values:
                if not isinstance(v, (str, int, float, bool)):
                    raise ValueError(f"parameter {name!r} values must be strings or numbers, "
                                     f"got {v!r}")
            if len({repr(v) for v in values}) < len(values):
                raise ValueError(f"parameter {name!r} repeats a value")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Axes:
        for axis in ("llm", "visual_tokens", "compressor", "task", "seed"):
            values = getattr(self, axis)
            keys = [v.name if isinstance(v, LLMEntry) else v for v in values or []]
            dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"axis {axis!r} repeats {', '.join(dupes)}")
        return self

    def names(self) -> tuple[str, ...]:
        """The axis columns present, in table order."""
        fixed = [a for a in ("llm", "visual_tokens", "compressor", "task", "seed")
                 if getattr(self, a) is not None]
        return (*fixed, *self.params)


class JsonParser(_Strict):
    """Metrics from a JSON file (``file``, relative to ``{output_dir}``; globs allowed, newest
    match wins; ``-`` = the last line of stdout), picked by dotted key paths
    (``{accuracy: results.acc}``; list indices as numbers). Without ``keys``: every top-level
    scalar."""

    kind: Literal["json"]
    file: str = "metrics.json"
    keys: dict[str, str] | None = None


class ScoreKey(_Strict):
    metric: str = Field(description='an lmms-eval key such as "exact_match,none"')
    divide_by: float = Field(1.0, gt=0)


class LmmsEvalParser(_Strict):
    """lmms-eval's ``OUTPUT/<model_name_sanitized>/<timestamp>_results.json``: one row per task
    in ``results``, ``"<metric>,<filter>"`` keys as columns (``metric`` for filter ``none``,
    else ``metric_filter``), ``"N/A"`` as empty, ``n_samples`` from ``n-samples``. ``score``
    adds one comparable column per task (e.g. MME divided by 2800)."""

    kind: Literal["lmms_eval"]
    results_dir: str = "{output_dir}"
    score: dict[str, ScoreKey] | None = None


Parser = Annotated[Union[JsonParser, LmmsEvalParser], Field(discriminator="kind")]  # noqa: UP007


class _EvaluatorBase(_Strict):
    options: dict[str, Any] = Field(default_factory=dict)
    text_columns: list[str] = Field(
        default_factory=list, description="metrics that hold text (e.g. a model's answer); "
        "every other metric must be a finite number")


class PythonEvaluator(_EvaluatorBase):
    kind: Literal["python"]
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                          description="module:function")


class ToyVLMEvaluator(_EvaluatorBase):
    """The built-in CPU toy VLM (``scaling.toyvlm.evaluate``)."""

    kind: Literal["toyvlm"]

    @property
    def function(self) -> str:
        return "scaling.toyvlm:evaluate"


class CommandEvaluator(_EvaluatorBase):
    kind: Literal["command"]
    args: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    parser: Parser


Evaluator = Annotated[Union[PythonEvaluator, ToyVLMEvaluator, CommandEvaluator],  # noqa: UP007
                      Field(discriminator="kind")]


class LocalExecutor(_Strict):
    kind: Literal["local"] = "local"
    workers: int = Field(1, ge=1)


class DaskExecutor(_Strict):
    kind: Literal["dask"]
    address: str | None = None
    workers: int = Field(1, ge=1, description="LocalCluster workers when no address is given")


Executor = Annotated[Union[LocalExecutor, DaskExecutor], Field(discriminator="kind")]  # noqa: UP007


class SweepSpec(_Strict):
    """A whole sweep; see the module docstring for the YAML shape."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    evaluator: Evaluator
    axes: Axes
    text_tokens: int = Field(0, ge=0)
    gen_tokens: int = Field(0, ge=0)
    encoder: str | None = None
    executor: Executor = Field(default_factory=LocalExecutor)
    retries: int = Field(1, ge=0)
    timeout_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    output: str | None = None
    design: dict[str, Any] | None = Field(
        None, description="adaptive-design settings, validated by scaling.design (which this "
        "package does not import: sweep stays below the planner)")

    @model_validator(mode="after")
    def _templates(self) -> SweepSpec:
        if isinstance(self.evaluator, CommandEvaluator):
            fields = template_fields(self)
            ev = self.evaluator
            named = [(f"args[{i}]", a) for i, a in enumerate(ev.args)]
            named += [(f"env.{k}", v) for k, v in ev.env.items()]
            named += [("cwd", ev.cwd)] if ev.cwd else []
            file = getattr(ev.parser, "file", None) or getattr(ev.parser, "results_dir", "")
            named.append(("parser", file))
            for where, text in named:
                check_template(text, fields, where=f"evaluator.{where}")
        return self

    def output_path(self, override: str | Path | None = None) -> Path:
        """The results table: ``override``, else ``output``, else ``results/NAME.csv``."""
        path = Path(override or self.output or f"results/{self.name}.csv")
        if path.suffix.lower() not in (".csv", ".parquet"):
            raise ScalingError(f"output must end in .csv or .parquet, got {str(path)!r}")
        return path


def template_fields(spec: SweepSpec) -> frozenset[str]:
    """Names a command template may use for this spec."""
    return frozenset({"llm", "llm_path", "visual_tokens", "run_id", "output_dir", "attempt",
                      "options", *spec.axes.names()})


def check_template(text: str, fields: frozenset[str], *, where: str) -> None:
    """Raise if ``text`` is not a valid ``str.format`` template over ``fields``."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ScalingError(f"{where}: bad template {text!r} ({exc}); write literal braces "
                           "as {{ and }}") from None
    for _, field, _, _ in parsed:
        if field is None:
            continue
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if root not in fields:
            raise ScalingError(f"{where}: unknown template field {{{field}}} in {text!r}; "
                               f"allowed: {', '.join(sorted(fields))}")


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; every problem is one :class:`ScalingError` line
    (duplicate keys and alias bombs included: :mod:`scaling.sweep.safe_yaml`)."""
    from scaling.sweep.safe_yaml import load_yaml

    data = load_yaml(path, what="sweep spec")
    if not isinstance(data, dict):
        raise ScalingError(f"{path}: a sweep spec is a YAML mapping (name, evaluator, axes, ...)")
    return parse_spec(data, source=str(path))


def parse_spec(data: dict[str, Any], *, source: str = "spec") -> SweepSpec:
    """Validate a spec given as a dict (``load_spec`` for files)."""
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise ScalingError(f"{source}: {describe_validation(exc)}") from None


def describe_validation(exc: ValidationError) -> str:
    """One line for pydantic's errors; unknown fields list the allowed names."""
    parts = []
    for err in exc.errors()[:3]:
        shown, allowed = _walk(tuple(err["loc"]))
        where = ".".join(shown)
        if err["type"] == "extra_forbidden":
            hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
            parts.append(f"unknown field {where!r}{hint}")
        elif err["type"] == "missing":
            parts.append(f"{where}: required field missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = ""
            if where and not isinstance(err.get("input"), (dict, list)):
                got = f" (got {err['input']!r})"
            parts.append(f"{where}: {msg}{got}" if where else msg)
    more = len(exc.errors()) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _walk(loc: tuple) -> tuple[list[str], list[str]]:
    """Follow ``loc`` through SweepSpec: the path as the YAML spells it (union tags dropped)
    and the field names allowed in the mapping that holds the last element."""
    candidates: list[Any] = [SweepSpec]
    shown: list[str] = []
    allowed: list[str] = []
    for part in loc:
        models = [t for t in _flatten(candidates)
                  if isinstance(t, type) and issubclass(t, BaseModel)]
        tagged = [m for m in models if _tag(m) == part and part not in m.model_fields]
        if tagged:  # discriminated union: loc names the chosen member
            candidates = tagged
            continue
        shown.append(str(part))
        allowed = sorted(models[0].model_fields) if len(models) == 1 else []
        nxt: list[Any] = []
        for tp in _flatten(candidates):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if part in tp.model_fields:
                    nxt.append(tp.model_fields[part].annotation)
            elif typing.get_origin(tp) in (list, dict):
                nxt.append(typing.get_args(tp)[-1])
        candidates = nxt
    return shown, allowed


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if args else None


def _flatten(types_: list[Any]) -> list[Any]:
    out = []
    for tp in types_:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        if typing.get_origin(tp) in (Union, types.UnionType):
            out += _flatten(list(typing.get_args(tp)))
        else:
            out.append(tp)
    return out
