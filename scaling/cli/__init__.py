"""The ``scaling`` command line: one thin command per module, each parses, calls, prints.

Exit codes: 0 ok, 2 bad input or impossible request (one line on stderr), 1 internal error.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="scaling",
    help="How big an LLM and how many visual tokens per image for a VLM inference budget.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from scaling import __version__

        typer.echo(f"scaling {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """How big an LLM and how many visual tokens per image for a VLM inference budget."""

# Each module registers its command(s) on ``app`` (or adds a sub-app) when imported.
for _name in ("cost", "calibrate", "fit", "plan", "plot", "sweep"):
    importlib.import_module(f"scaling.cli.{_name}")


def main() -> None:
    """Console-script entry point."""
    app()
