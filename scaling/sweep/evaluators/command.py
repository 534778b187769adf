"""The ``command`` evaluator: run a program per run, then read its results with a parser.

The program gets an argument list (``subprocess.Popen(list)``, never a shell), so a template
value such as ``a; rm -rf ~`` reaches it as one literal argument. Each argument is a
``str.format`` template over the run's config (``{llm}``, ``{visual_tokens}``,
``{output_dir}``, ``{run_id}``, free parameters, ``{options[key]}``); a text value that would
start an argument with ``-`` is refused (:func:`render_args`). It runs in its own session
(process group) with stdout/stderr in ``output_dir/stdout.log``/``stderr.log``; past
``timeout_s`` the whole group gets SIGTERM, then SIGKILL. Processes that left the group
(``setsid``) are ended by the worker after the attempt (:mod:`scaling.sweep.procs`).

Success means **results were parsed** (lmms-eval can exit 0 after a failed evaluation, and a
non-zero exit after writing results, e.g. a crash at teardown); otherwise the failure names
the exit status and the tail of stderr.
"""

from __future__ import annotations

import os
import signal
import string
import subprocess
from pathlib import Path
from typing import Any

from scaling.sweep.evaluators.base import EvaluatorFailure, EvaluatorTimeout
from scaling.sweep.evaluators.parsers import ResultsMissing, parse


def render(template: str, fields: dict[str, Any]) -> str:
    """One templated argument."""
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise EvaluatorFailure(f"cannot fill template {template!r}: {exc!r}") from None


def render_args(templates: list[str], fields: dict[str, Any]) -> list[str]:
    """The argument list; refuses a text value that would make an argument start with ``-``
    (``{task}`` = ``--write=FILE`` reaching the program as an option): write such templates as
    ``--option={value}``. A number (``seed`` = -1) may be negative."""
    args = []
    for i, template in enumerate(templates):
        arg = render(template, fields)
        literal, field, _, _ = next(iter(string.Formatter().parse(template)), ("", None, "", ""))
        if arg.startswith("-") and not literal and field is not None:
            value = string.Formatter().get_field(field, (), fields)[0]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise EvaluatorFailure(
                    f"args[{i}] {template!r} would be {arg!r}, which the program reads as an "
                    f"option; pass the value as one option's argument, e.g. "
                    f"\"--option={template}\"")
        args.append(arg)
    return args


def run_command(spec: Any, config: dict[str, Any], *, timeout_s: float | None) -> Any:
    """Run ``spec.args`` for one config and parse its results (see the module docstring)."""
    fields = {k: ("" if v is None else v) for k, v in config.items()}
    args = render_args(spec.args, fields)
    env = {**os.environ, **{k: render(v, fields) for k, v in spec.env.items()}}
    cwd = render(spec.cwd, fields) if spec.cwd else None
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = out / "stdout.log", out / "stderr.log"
    with _new_file(stdout_path) as so, _new_file(stderr_path) as se:
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                    env=env, cwd=cwd, start_new_session=True)
        except OSError as exc:
            raise EvaluatorFailure(f"cannot start {args[0]!r}: {exc.strerror or exc}") from None
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise EvaluatorTimeout(f"timed out after {timeout_s:g} s (process group killed); "
                                   f"{_tail(stderr_path)}") from None
        except BaseException:
            kill_group(proc)
            raise
    try:
        return parse(spec.parser, output_dir=out, stdout_path=stdout_path, fields=fields)
    except ResultsMissing as exc:
        status = describe_exit(returncode)
        raise EvaluatorFailure(f"{status} and wrote no results ({exc}); "
                               f"{_tail(stderr_path)}") from None


def _new_file(path: Path) -> Any:
    """A log file created afresh (never through a planted symlink)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.fdopen(os.open(path, flags, 0o644), "wb")
    except OSError as exc:
        raise EvaluatorFailure(f"cannot create {path}: {exc.strerror}") from None


def kill_group(proc: subprocess.Popen, *, grace_s: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace_s`` if the leader lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace_s)
            if sig == signal.SIGTERM:
                try:  # the leader is gone; make sure the rest of its group is too
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                return
        except subprocess.TimeoutExpired:
            continue


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _tail(path: Path, *, chars: int = 300) -> str:
    try:
        text = path.read_bytes()[-4 * chars:].decode(errors="replace")
    except OSError:
        return "no stderr"
    text = " | ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return f"stderr: ...{text[-chars:]}" if text else "stderr empty"
