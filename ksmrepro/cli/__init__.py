"""The ``ksmrepro`` command line (click).

One module per command, hatch-style: ``ksmrepro/cli/<command>.py`` defines a click
command named ``command``.  The group finds those modules by itself (any public
module of this package with a ``command``) and imports one only when it runs, so
adding a command is adding a module; ``cli.add_command(...)`` works as well.

This package is the only place that prints or exits.  Every command is
*parse -> runner -> report -> exit status*; the status codes are the contract's
(scenario-format.md):

- 0: every expectation holds on every model (or fails only where ``known_failures`` says)
- 1: an expectation failed unexpectedly, a known failure passed, or a step failed
- 2: an invalid scenario or command line (``error: path:line:col: message``)
- 3: a bug in ksmrepro: a simulated ``VM_BUG_ON`` (``KernelBug``) or an internal error
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from functools import cache
from typing import Any

import click

import ksmrepro
from ksmrepro.cli._app import handle_error, handle_unexpected
from ksmrepro.errors import KsmreproError

__all__ = ["KsmreproGroup", "cli", "main"]


@cache
def _command_modules() -> dict[str, str]:
    """Command name -> module name, for the public modules of this package."""
    return {
        info.name.replace("_", "-"): info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    }


class KsmreproGroup(click.Group):
    """A click group that loads its commands from ``ksmrepro/cli/<name>.py`` and turns
    :class:`~ksmrepro.errors.KsmreproError` into ``error: ...`` and an exit status."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(_command_modules()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _command_modules():
            module = importlib.import_module(f"{__name__}.{_command_modules()[cmd_name]}")
            self.add_command(module.command, cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KsmreproError as exc:
            ctx.exit(handle_error(exc))
        except Exception:
            ctx.exit(handle_unexpected())


@click.group(cls=KsmreproGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(ksmrepro.__version__, prog_name="ksmrepro")
def cli() -> None:
    """Run KSM/mm testcases (YAML scenarios) against a simulated Linux kernel."""


def main(argv: Sequence[str] | None = None) -> None:
    """The ``ksmrepro`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="ksmrepro")
