"""Every command the README shows runs, and prints what the README says it prints.

A fenced block whose lines start with ``$ `` is a transcript: each ``$`` command runs (in a
scratch copy of ``sweeps/``, ``results/`` and ``tests/data/``, 100 columns wide) and its
output must match the lines below it, where a line ``...`` stands for any number of lines.
Every other ``scaling ...`` line of a plain command block must run with exit code 0, except the
few listed in ``TOO_LONG`` (each with its reason), which take minutes or a cluster and are run
elsewhere.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
#: commands that train for minutes (covered by tests/test_toyvlm.py and the toy study itself)
TOO_LONG = {
    "scaling sweep run sweeps/toyvlm.yaml": "the full toy study, ~27 min on 2 cores",
    "scaling sweep run sweeps/toyvlm_quick.yaml --executor dask --address tcp://scheduler:8786":
        "needs a Dask scheduler",
    "scaling sweep run sweeps/toyvlm_adaptive.yaml --adaptive": "trains the toy VLM, ~15 min",
}


def blocks() -> list[list[str]]:
    out, current = [], None
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current = [] if line.strip() in ("```", "```console", "```text") else None
                if current is None:  # a fenced block of another language (bash, python)
                    current = ["<skip>"]
            else:
                if current and current[0] != "<skip>":
                    out.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return out


def transcripts() -> list[tuple[str, list[str]]]:
    found = []
    for block in blocks():
        if not block or not block[0].startswith("$ "):
            continue
        cmd, expected = None, []
        for line in block:
            if line.startswith("$ "):
                if cmd:
                    found.append((cmd, expected))
                cmd, expected = line[2:], []
            else:
                expected.append(line)
        found.append((cmd, expected))
    return found


def plain_commands() -> list[str]:
    cmds = []
    for block in blocks():
        if block and block[0].startswith("$ "):
            continue
        for line in block:
            line = line.split("  #")[0].strip()
            if line.startswith("scaling "):
                cmds.append(line)
    return cmds


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("readme")
    for folder in ("sweeps", "results", "tests/data"):
        shutil.copytree(ROOT / folder, work / folder)
    return work


def run(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    args = shlex.split(cmd)
    assert args[0] == "scaling"
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "scaling.cli", *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` equals ``actual`` line by line (right-stripped), ``...`` matching any run."""
    pattern = "".join(".*?" if e.strip() == "..." else re.escape(e.rstrip() + "\n")
                      for e in expected)
    return re.fullmatch(pattern, "".join(a.rstrip() + "\n" for a in actual), re.S) is not None


@pytest.mark.parametrize("cmd, expected", transcripts(), ids=lambda x: str(x)[:60])
def test_transcript_matches(cmd, expected, workdir):
    res = run(cmd, workdir)
    assert res.returncode == 0, res.stderr
    actual = (res.stdout + res.stderr).splitlines()
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    while actual and not actual[-1].strip():
        actual = actual[:-1]
    assert matches(expected, actual), "\n".join(["README shows:", *expected, "",
                                                 "the command prints:", *actual])


@pytest.mark.parametrize("cmd", [c for c in plain_commands() if c not in TOO_LONG],
                         ids=lambda x: x[:60])
def test_command_runs(cmd, workdir):
    res = run(cmd, workdir)
    assert res.returncode == 0, res.stderr


def test_the_readme_has_commands_to_check():
    assert len(transcripts()) >= 4 and len(plain_commands()) >= 8
    assert all(cmd in plain_commands() for cmd in TOO_LONG), "a TOO_LONG entry left the README"
