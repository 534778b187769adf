"""The ``design:`` block of a sweep spec, validated against the sweep's grid.

``scaling.sweep`` keeps the block as a plain mapping (it never imports the planner);
:func:`resolve` checks it here, before any run starts, and returns the :class:`Design` the
adaptive loop works on::

    design:
      law: product                 # product | additive | loglinear (as `scaling fit`)
      metric: accuracy             # the column fitted (accuracies as 1 - value)
      where: {task: reasoning}     # optional: the rows of a run that count (one per run)
      question: {flops: 1e12, text_tokens: 50}   # the plan whose answer must be pinned down
      initial: 6                   # space-filling start
      batch: 2                     # points chosen per round
      explore: 0.5                 # share of each round chosen to cover the grid (model-robust)
      max_runs: 14                 # runs the design may spend (failed ones count)
      target: 0.1                  # stop when the answer's relative CI width is below this
                                   # (two rounds in a row)
      run_cost: llm_params * (visual_tokens + text_tokens)   # relative cost of one run

The question's menu is the grid (its LLM sizes x its token counts) unless ``sizes`` /
``tokens`` are given; its continuous optimum is searched over the grid's token range, under
the paper cost ``2 N (Q + V)``. ``run_cost`` is arithmetic (``+ - * / **``, numbers,
parentheses) over a run's columns: ``llm_params``, ``visual_tokens``, ``text_tokens``,
``gen_tokens``, ``flops_paper``, ``flops`` (catalog LLMs), ``seed`` and numeric free
parameters; it is parsed, never ``eval``'ed.
"""

from __future__ import annotations

import ast
import hashlib
import json
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scaling import LAWS, parse_flops, parse_params
from scaling.errors import ScalingError
from scaling.sweep import Run, SweepSpec, expand

DEFAULT_COST = "llm_params * (visual_tokens + text_tokens)"
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.Pow: operator.pow}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Question(_Strict):
    """The planner question: budget per request, prompt tokens, optional menu."""

    flops: float | str
    text_tokens: float | None = Field(None, ge=0, description="default: the sweep's")
    sizes: list[float | str] | None = None
    tokens: list[float] | None = None

    @field_validator("flops")
    @classmethod
    def _flops(cls, value: float | str) -> float:
        flops = parse_flops(value, what="design.question.flops")
        if not flops > 0:
            raise ValueError(f"must be > 0, got {value!r}")
        return flops

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, value: list | None) -> list[float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one size (or leave sizes out for the grid's)")
        return [parse_params(v, what="design.question.sizes") for v in value]

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: list | None) -> list[float] | None:
        if value is not None and (not value or min(value) < 1):
            raise ValueError("visual-token counts must be >= 1 (or leave tokens out)")
        return value


class DesignSpec(_Strict):
    """The ``design:`` block (see the module docstring)."""

    law: str = "product"
    metric: str = Field(min_length=1)
    where: dict[str, str | int | float] = Field(default_factory=dict)
    question: Question
    initial: int | None = Field(None, ge=1, description="default: the law's parameters + 2")
    batch: int = Field(2, ge=1)
    max_runs: int | None = Field(None, ge=1, description="default: the whole grid")
    target: float = Field(0.1, ge=0, description="0: never stop on the CI")
    explore: float = Field(0.5, ge=0, le=1, description="share of each round chosen for "
                           "coverage of the grid rather than by the criterion")
    ci_level: float = Field(0.9, gt=0, lt=1)
    run_cost: str = DEFAULT_COST
    bootstrap: int = Field(64, ge=16, description="bootstrap draws per round")
    noise: float | None = Field(None, gt=0, description="sd of one measurement of the "
                                "error-like metric; default: from the fit's residuals")
    seed: int = 0

    @field_validator("law")
    @classmethod
    def _law(cls, value: str) -> str:
        usable = [name for name, form in LAWS.items() if tuple(form.axes) == ("N", "V")]
        if value not in usable:
            what = "unknown law" if value not in LAWS else "a design needs a law of N and V;"
            raise ValueError(f"{what} {value!r}; choose one of {', '.join(usable)}")
        return value


@dataclass(frozen=True)
class Design:
    """A validated design over a grid of ``M`` candidate runs (arrays in grid order)."""

    spec: DesignSpec
    llm_params: np.ndarray      # (M,) parameters
    visual_tokens: np.ndarray   # (M,)
    cost: np.ndarray            # (M,) run_cost, > 0
    labels: tuple[str, ...]     # "1.8B x 16" per run, for people
    flops: float                # the question's budget
    text_tokens: float
    sizes: np.ndarray           # the question's menu
    tokens: np.ndarray
    runs: tuple[Run, ...] = ()  # the sweep's runs (empty for an in-memory design)

    @property
    def n_params(self) -> int:
        return len(LAWS[self.spec.law].params)

    @property
    def initial(self) -> int:
        return self.spec.initial or self.n_params + 2

    @property
    def max_runs(self) -> int:
        return min(self.spec.max_runs or len(self.cost), len(self.cost))

    @property
    def token_range(self) -> tuple[float, float]:
        return float(self.visual_tokens.min()), float(self.visual_tokens.max())

    def key(self) -> str:
        """What a design log must match to be resumed: everything that changes the choices
        except the stopping rule (``max_runs``, ``target``), ``batch`` and ``explore``, which
        may change between rounds."""
        fields = self.spec.model_dump(exclude={"max_runs", "target", "batch", "explore"})
        ids = [r.run_id for r in self.runs] or [repr(x) for x in self.labels]
        text = json.dumps({"design": fields, "runs": ids}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_design(block: Any, *, source: str = "spec") -> DesignSpec:
    """Validate a ``design:`` mapping (one :class:`ScalingError` line on failure)."""
    if not isinstance(block, dict):
        raise ScalingError(f"{source}: design must be a mapping (law, metric, question, ...)")
    try:
        return DesignSpec.model_validate(block)
    except ValidationError as exc:
        raise ScalingError(f"{source}: design.{_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    """The first problem, with the allowed names for an unknown field."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        model = Question if err["loc"][0] == "question" else DesignSpec
        return f"{where}: unknown field; allowed: {', '.join(sorted(model.model_fields))}"
    if err["type"] == "missing":
        return f"{where}: required field missing"
    got = "" if isinstance(err.get("input"), (dict, list)) else f" (got {err['input']!r})"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}{got}"


def design_of(sweep: SweepSpec, *, source: str = "spec") -> Design:
    """The sweep's design, validated against its grid; raises before any run starts."""
    if sweep.design is None:
        raise ScalingError(f"{source} has no design: block; add one (law, metric, question, "
                           "...) to suggest or run adaptively")
    spec = parse_design(sweep.design, source=source)
    runs = expand(sweep)
    columns = [_columns(sweep, run) for run in runs]
    sizes = np.array([c["llm_params"] for c in columns], float)
    tokens = np.array([c["visual_tokens"] for c in columns], float)
    cost = run_costs(spec.run_cost, columns, [r.axes for r in runs])
    varying = {k for k in runs[0].axes if len({repr(r.axes[k]) for r in runs}) > 1}
    labels = tuple(_label(r, varying) for r in runs)
    q = spec.question.text_tokens
    return check(Design(spec, sizes, tokens, cost, labels, float(spec.question.flops),
                        float(sweep.text_tokens if q is None else q), *_menu(spec, sizes, tokens),
                        runs=runs), source=source)


def in_memory(spec: DesignSpec | dict, llm_params, visual_tokens, *, cost=None,
              labels: tuple[str, ...] | None = None) -> Design:
    """A design over candidate points given as arrays (simulations, replays, tests);
    ``cost`` defaults to ``run_cost`` evaluated on them."""
    spec = spec if isinstance(spec, DesignSpec) else parse_design(spec)
    sizes, tokens = np.asarray(llm_params, float), np.asarray(visual_tokens, float)
    q = spec.question.text_tokens or 0.0
    if cost is None:
        columns = [{"llm_params": n, "visual_tokens": v, "text_tokens": q, "gen_tokens": 0.0,
                    "flops_paper": 2 * n * (q + v)} for n, v in zip(sizes, tokens, strict=True)]
        cost = run_costs(spec.run_cost, columns, [{} for _ in columns])
    labels = labels or tuple(f"{_size(n)} x {v:g}" for n, v in zip(sizes, tokens, strict=True))
    return check(Design(spec, sizes, tokens, np.asarray(cost, float), labels,
                        float(spec.question.flops), float(q), *_menu(spec, sizes, tokens)))


def check(design: Design, *, source: str = "spec") -> Design:
    """The design-level checks of issue 14's "bad input" (each one line, before any run)."""
    spec, where = design.spec, f"{source}: design"
    if np.unique(design.llm_params).size < 2 or np.unique(design.visual_tokens).size < 2:
        raise ScalingError(f"{where}: the grid needs at least 2 LLM sizes and 2 visual-token "
                           "counts to fit a law; add values to axes.llm / axes.visual_tokens")
    if design.initial < design.n_params:
        raise ScalingError(f"{where}.initial is {design.initial} but law {spec.law!r} has "
                           f"{design.n_params} parameters: the first fit needs at least "
                           f"{design.n_params} points; raise initial")
    if design.initial > len(design.cost):
        raise ScalingError(f"{where}.initial is {design.initial} but the grid has only "
                           f"{len(design.cost)} runs; lower initial")
    if spec.max_runs is not None and spec.max_runs < design.initial:
        raise ScalingError(f"{where}.max_runs ({spec.max_runs}) is below initial "
                           f"({design.initial}); raise max_runs or lower initial")
    price = 2 * design.sizes[:, None] * (design.text_tokens + design.tokens[None, :])
    if not np.any(price <= design.flops * (1 + 1e-9)):
        i, j = np.unravel_index(np.argmin(price), price.shape)
        raise ScalingError(
            f"{where}.question: the budget {design.flops:.4g} FLOPs affords no configuration "
            f"of the menu; the cheapest, {_size(design.sizes[i])} with {design.tokens[j]:g} "
            f"tokens, needs {price[i, j]:.4g} FLOPs (2 N (Q + V)); raise question.flops")
    return design


def _columns(sweep: SweepSpec, run: Run) -> dict[str, Any]:
    """A run's cost-relevant columns before it runs (the runner's own annotation)."""
    from scaling.sweep.annotate import annotate

    row = {**run.axes, "text_tokens": sweep.text_tokens, "gen_tokens": sweep.gen_tokens}
    row = annotate(row, entry=run.llm, llm_spec=None, encoder=sweep.encoder)
    if row.get("llm_params") is None:
        raise ScalingError(f"design: the size of llm {run.llm.name!r} is unknown before it "
                           f"runs; write it as {{name: {run.llm.name}, params: ...}} in axes.llm")
    return row


def run_costs(expression: str, columns: list[dict[str, Any]], axes: list[dict]) -> np.ndarray:
    """``run_cost`` evaluated on every run; unknown names and values <= 0 are errors."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ScalingError(f"design.run_cost {expression!r} is not an arithmetic expression; "
                           f"write e.g. {DEFAULT_COST!r}") from None
    out = []
    for row, ax in zip(columns, axes, strict=True):
        names = {k: v for k, v in row.items() if _is_number(v)}
        value = _evaluate(tree.body, names, expression)
        if not (np.isfinite(value) and value > 0):
            what = ", ".join(f"{k}={v}" for k, v in ax.items()) or _label_of(row)
            raise ScalingError(f"design.run_cost {expression!r} is {value!r} for the run "
                               f"{what}; the cost of a run must be a positive number")
        out.append(float(value))
    return np.array(out)


def _evaluate(node: ast.AST, names: dict[str, float], expression: str) -> float:
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left, names, expression), _evaluate(node.right, names,
                                                                          expression)
        with np.errstate(all="ignore"):
            return float(_OPS[type(node.op)](np.float64(left), np.float64(right)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, names, expression)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant) and _is_number(node.value):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ScalingError(f"design.run_cost {expression!r} names unknown column "
                               f"{node.id!r}; allowed: {', '.join(sorted(names))}")
        return float(names[node.id])
    raise ScalingError(f"design.run_cost {expression!r}: only numbers, column names, "
                       "+ - * / ** and parentheses are allowed")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _menu(spec: DesignSpec, sizes: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, ...]:
    q = spec.question
    return (np.unique(sizes) if q.sizes is None else np.array(q.sizes, float),
            np.unique(tokens) if q.tokens is None else np.array(q.tokens, float))


def _size(n: float) -> str:
    from scaling.units import format_params

    return format_params(n)


def _label(run: Run, varying: set[str]) -> str:
    """``toy-l x 16``, plus the other axes that vary in the grid (``seed=1``)."""
    rest = [f"{k}={v}" for k, v in run.axes.items()
            if k in varying and k not in ("llm", "visual_tokens")]
    return " ".join([f"{run.axes['llm']} x {run.axes['visual_tokens']}", *rest])


def _label_of(row: dict[str, Any]) -> str:
    return f"{_size(row['llm_params'])} x {row['visual_tokens']:g}"
