"""``ksmrepro export FILE``: the scenario as a C testcase (register ``command`` on the group)."""

from __future__ import annotations

from pathlib import Path

import click

from ksmrepro.export.c import FORMATS

__all__ = ["command"]


@click.command("export")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="c",
              show_default=True, help="c: Hugh-style testcase; kselftest: KTAP results too.")
@click.option("-o", "--output", default="-", metavar="PATH|-", show_default=True,
              help="Where to write the C source.")
def command(path: str, fmt: str, output: str) -> None:
    """Write a scenario as the C program a kernel developer would have written.

    Build it with gcc -Wall -Wextra -O2 -static and run it as root on the
    kernel under test; each print/expect step prints one KSMREPRO line.
    """
    from ksmrepro.export.c import export_c
    from ksmrepro.scenario.loader import load_scenario

    source = export_c(load_scenario(path), fmt)
    if output == "-":
        click.echo(source, nl=False)
    else:
        Path(output).write_text(source)


export_command = command
