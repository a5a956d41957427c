"""``ksmrepro phases``: is the outcome a race with ksmd?  (docs/timing.md)"""

from __future__ import annotations

import json

import click

from ksmrepro.analysis.phases import DEFAULT_PHASES, MAX_PHASES
from ksmrepro.cli._app import _write
from ksmrepro.cli.compare import load_one, resolve_option

__all__ = ["command"]


@click.command("phases")
@click.argument("path", metavar="FILE")
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL",
              help="A model name or expression; repeatable (default: the scenario's models:).")
@click.option("-n", "--phases", "n", type=click.IntRange(1, MAX_PHASES),
              default=DEFAULT_PHASES, show_default=True,
              help="How many phases: ksmd's passes shifted by 0/N .. (N-1)/N of a cycle.")
@click.option("--json", "json_out", metavar="PATH|-", help="Write the sweep as JSON (- = stdout).")
@click.option("--models-file", "models_files", multiple=True, metavar="PATH",
              help="A model file (kind: models); repeatable.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, metavar="N",
              help="Worker processes (0: one per CPU; default: one per CPU, 1 = serial).")
@click.pass_context
def command(ctx: click.Context, path: str, models: tuple[str, ...], n: int,
            json_out: str | None, models_files: tuple[str, ...], jobs: int | None) -> None:
    """Run FILE N times on each model, ksmd's passes falling i/N of a cycle (sleep_millisecs
    plus a batch) later against the steps each time, and show which observations depend on
    it.  Phase 0 is the plain run.  Exit 0 when the outcome (the run's status, each
    expectation's verdict) is the same at every phase on every model, even if printed values
    differ; 1 when it depends on the phase; 2 on an invalid scenario, model or option."""
    from ksmrepro.analysis.phases import sweeps
    from ksmrepro.analysis.render import phase_sweep_renderable, print_wide
    from ksmrepro.models import DEFAULT_MODEL
    from ksmrepro.report.console import make_console

    scenario = load_one(ctx, path, models_files)
    exprs = list(models) or list(scenario.models) or [DEFAULT_MODEL]
    for expr in exprs:
        resolve_option("--model", expr)
    results = sweeps(scenario, exprs, n, workers=jobs)
    if json_out:
        doc = {"scenario": scenario.name, "file": scenario.path,
               "sweeps": [s.to_json() for s in results]}
        _write(json_out, json.dumps(doc, indent=2, sort_keys=False) + "\n", "--json")
    if json_out != "-":
        console = make_console()
        for k, s in enumerate(results):
            if k:
                console.print()
            print_wide(console, phase_sweep_renderable(s))
    ctx.exit(1 if any(s.outcome_dependent for s in results) else 0)
