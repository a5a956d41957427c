"""``ksmrepro schema``: print the scenario JSON Schema (for editors and CI linters)."""

from __future__ import annotations

import json

import click

__all__ = ["command"]


@click.command("schema")
def command() -> None:
    """Print the JSON Schema of scenario files."""
    from ksmrepro.scenario.schema import scenario_schema

    click.echo(json.dumps(scenario_schema(), indent=2, ensure_ascii=False))
