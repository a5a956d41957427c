"""``ksmrepro phases``: is the outcome a race with ksmd?  (docs/timing.md)"""

from __future__ import annotations

import json

import click

from ksmrepro.analysis.phases import DEFAULT_PHASES, MAX_PHASES
from ksmrepro.cli._app import _write, load_selected

__all__ = ["command"]


@click.command("phases")
@click.argument("paths", nargs=-1, required=True, metavar="FILE|DIR|GLOB...")
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL",
              help="A model name or expression; repeatable (default: each scenario's models:).")
@click.option("-n", "--phases", "n", type=click.IntRange(1, MAX_PHASES),
              default=DEFAULT_PHASES, show_default=True,
              help="How many phases: ksmd's passes shifted by 0/N .. (N-1)/N of a cycle.")
@click.option("--json", "json_out", metavar="PATH|-", help="Write the sweeps as JSON (- = stdout).")
@click.option("-k", "keyword", metavar="SUBSTR",
              help="Only scenarios whose name or path contains SUBSTR.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only scenarios with this tag; repeatable (any of them).")
@click.option("--models-file", "models_files", multiple=True, metavar="PATH",
              help="A model file (kind: models); repeatable.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, metavar="N",
              help="Worker processes (0: one per CPU; default: one per CPU, 1 = serial).")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], models: tuple[str, ...], n: int,
            json_out: str | None, keyword: str | None, tags: tuple[str, ...],
            models_files: tuple[str, ...], jobs: int | None) -> None:
    """Run each scenario N times on each model, ksmd's passes falling i/N of a cycle
    (sleep_millisecs plus a batch) later against the steps each time, and show which
    observations depend on it.  Phase 0 is the plain run.  One scenario gets a table per
    model; several get a summary line each, and the table of every one whose outcome
    depends on the phase.  Exit 0 when the outcome (the run's status, each expectation's
    verdict) is the same at every phase on every model, even if printed values differ; 1
    when one depends on the phase; 2 on an invalid scenario, model or option."""
    from ksmrepro.analysis.phases import sweeps
    from ksmrepro.analysis.render import phase_summary_line, phase_sweep_renderable, print_wide
    from ksmrepro.collect import plan
    from ksmrepro.report.console import make_console

    selected = load_selected(ctx, paths, models_files, keyword, tags)
    jobs_by_scenario = [(s, [j.model for j in plan([s], models)]) for s in selected]
    results = [sw for s, exprs in jobs_by_scenario for sw in sweeps(s, exprs, n, workers=jobs)]
    if json_out:
        doc = {"phases": n, "sweeps": [s.to_json() for s in results]}
        _write(json_out, json.dumps(doc, indent=2) + "\n", "--json")
    console = make_console(stderr=json_out == "-")
    if len(selected) == 1:
        for k, s in enumerate(results):
            if k:
                console.print()
            print_wide(console, phase_sweep_renderable(s))
    else:
        for s in results:
            console.print(phase_summary_line(s), soft_wrap=True)
        for s in results:
            if s.outcome_dependent:
                console.print()
                print_wide(console, phase_sweep_renderable(s))
    ctx.exit(1 if any(s.outcome_dependent for s in results) else 0)
