"""What every command shares: the error console, loading scenarios, writing outputs.

The only wrapper around the stderr console; commands print errors through
:func:`print_error` so that they all read ``error: path:line:col: message``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.text import Text

from ksmrepro.errors import KernelBug, KsmreproError, ScenarioError

if TYPE_CHECKING:
    from ksmrepro.report import RunRecord
    from ksmrepro.scenario.steps import Scenario

__all__ = [
    "Outputs",
    "error_console",
    "exit_status",
    "handle_error",
    "handle_unexpected",
    "load_all",
    "load_selected",
    "print_error",
    "print_kernel_bugs",
]

DEBUG_ENV = "KSMREPRO_DEBUG"


def error_console() -> Console:
    return Console(stderr=True, highlight=False, emoji=False)


def print_error(message: str, *, label: str = "error") -> None:
    """``error: message`` on stderr, on one line whatever the terminal width."""
    text = Text()
    text.append(f"{label}:", style="bold red")
    text.append(f" {message}")
    error_console().print(text, soft_wrap=True)


def handle_error(exc: KsmreproError) -> int:
    """Print a KsmreproError the user can act on; return the exit status for it."""
    if isinstance(exc, KernelBug):
        print_error(f"kernel bug: {exc}")
        return 3
    print_error(str(exc))
    return 2


def handle_unexpected() -> int:
    """Inside ``except``: a rich traceback (locals only with KSMREPRO_DEBUG=1); status 3."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    console = error_console()
    console.print_exception(show_locals=debug, suppress=[click])
    hint = "" if debug else f"; {DEBUG_ENV}=1 shows local variables"
    print_error(f"internal error: this is a bug in ksmrepro{hint}")
    return 3


def load_all(paths: Iterable[str]) -> tuple[list[Scenario], list[KsmreproError]]:
    """Load every file; return the scenarios and the errors (all of them, in file order)."""
    from ksmrepro import collect

    scenarios: list[Scenario] = []
    errors: list[KsmreproError] = []
    for path in paths:
        try:
            scenarios.append(collect.load(path))
        except ScenarioError as exc:
            errors.append(exc)
    return scenarios, errors


def load_selected(ctx: click.Context, paths: Iterable[str], models_files: Iterable[str],
                  keyword: str | None, tags: Sequence[str]) -> list[Scenario]:
    """``FILE|DIR|GLOB...`` as ``run`` takes them: every scenario found is loaded (an invalid
    one is ``error: path:line:col: ...`` and exit 2, after all are reported), the model files
    given and those next to the scenarios are installed, and ``-k``/``--tag`` select."""
    from ksmrepro.collect import find_scenarios, select
    from ksmrepro.models.userfile import use_model_files

    scenarios, errors = load_all(find_scenarios(paths))
    for error in errors:
        print_error(str(error))
    if errors:
        ctx.exit(2)
    use_model_files(list(models_files), [s.path for s in scenarios])
    return select(scenarios, keyword, tags)


def exit_status(records: Sequence[RunRecord]) -> int:
    """3 when a simulated VM_BUG_ON fired, else 1 when any run failed, else 0."""
    if any(r.kernel_bug is not None for r in records):
        return 3
    return 1 if any(r.failing for r in records) else 0


def print_kernel_bugs(records: Sequence[RunRecord]) -> None:
    """``error: kernel bug: file:line: step N (op) on MODEL: invariant`` for each one."""
    from ksmrepro.report.text import step_op, step_title

    for r in records:
        if r.kernel_bug is None:
            continue
        where, err = r.result.file, r.result.error
        if err is not None:
            where += f":{err.line}" if err.line else ""
            where += f": {step_title(err.step, step_op(r.scenario, err.step), err.label)}"
        print_error(f"kernel bug: {where} on {r.result.model}: {r.kernel_bug}")


class Outputs:
    """The ``--json``/``--junit``/``--tap`` destinations; ``-`` is stdout (at most one)."""

    def __init__(self, json: str | None, junit: str | None, tap: str | None) -> None:
        self.json, self.junit, self.tap = json, junit, tap
        dashes = [name for name, dest in self._dests() if dest == "-"]
        if len(dashes) > 1:
            raise click.UsageError(f"only one of {', '.join(dashes)} can write to stdout (-)")
        self.uses_stdout = bool(dashes)

    def _dests(self) -> list[tuple[str, str | None]]:
        return [("--json", self.json), ("--junit", self.junit), ("--tap", self.tap)]

    def write(self, records: Sequence[RunRecord], *, trace: bool) -> None:
        from ksmrepro.report.json import json_text
        from ksmrepro.report.junit import junit_text
        from ksmrepro.report.tap import tap_text

        if self.json:
            _write(self.json, json_text(records, trace=trace), "--json")
        if self.junit:
            _write(self.junit, junit_text(records), "--junit")
        if self.tap:
            _write(self.tap, tap_text(records), "--tap")


def _write(dest: str, text: str, option: str) -> None:
    if dest == "-":
        click.echo(text, nl=False)
        return
    path = Path(dest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KsmreproError(f"{option} {dest}: {exc.strerror or exc}") from None
