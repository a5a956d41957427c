"""``ksmrepro validate``: load scenarios (and resolve their models) without running them."""

from __future__ import annotations

import click
from rich.text import Text

from ksmrepro.cli._app import load_all, print_error

__all__ = ["command"]


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, metavar="FILE|DIR|GLOB...")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Check scenario files: exit 0 when all are valid, 2 otherwise."""
    from ksmrepro.collect import find_scenarios, plan
    from ksmrepro.errors import ModelError
    from ksmrepro.report.console import make_console

    scenarios, errors = load_all(find_scenarios(paths))
    console = make_console()
    for scenario in scenarios:
        try:
            plan([scenario], ())
        except ModelError as exc:
            errors.append(exc)
            continue
        console.print(Text(f"ok  {scenario.path}  ({scenario.name}, "
                           f"{len(scenario.steps)} steps)"), soft_wrap=True)
    for error in errors:
        print_error(str(error))
    ctx.exit(2 if errors else 0)
