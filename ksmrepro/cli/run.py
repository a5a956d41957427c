"""``ksmrepro run``: run scenarios on models and report."""

from __future__ import annotations

import click

from ksmrepro.cli._app import Outputs, exit_status, load_all, print_error, print_kernel_bugs

__all__ = ["command"]


@click.command("run")
@click.argument("paths", nargs=-1, required=True, metavar="FILE|DIR|GLOB...")
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL",
              help="Model name or expression (BASE[+PATCH...]); repeatable. "
                   "Default: the scenario's models:, else the default model.")
@click.option("--json", "json_out", metavar="PATH|-", help="Write the JSON report (- = stdout).")
@click.option("--junit", "junit_out", metavar="PATH|-", help="Write JUnit XML.")
@click.option("--tap", "tap_out", metavar="PATH|-", help="Write KTAP/TAP 13.")
@click.option("--trace", is_flag=True, help="Record and print the kernel trace events.")
@click.option("-k", "keyword", metavar="SUBSTR",
              help="Only scenarios whose name or path contains SUBSTR.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only scenarios with this tag; repeatable (any of them).")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=1, show_default=True,
              metavar="N", help="Run scenario × model pairs in N processes (0: one per CPU).")
@click.option("--dump-after", metavar="STEP",
              help="Dump the process state (maps, pages, KSM) after step STEP (index or label).")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], models: tuple[str, ...],
            json_out: str | None, junit_out: str | None, tap_out: str | None, trace: bool,
            keyword: str | None, tags: tuple[str, ...], jobs: int,
            dump_after: str | None) -> None:
    """Run scenario files (directories are searched for *.yaml/*.yml scenarios)."""
    from ksmrepro.cli._jobs import execute
    from ksmrepro.collect import find_scenarios, plan, select
    from ksmrepro.report.console import make_console, print_report

    outputs = Outputs(json_out, junit_out, tap_out)
    scenarios, errors = load_all(find_scenarios(paths))
    for error in errors:
        print_error(str(error))
    if errors:
        ctx.exit(2)
    job_list = plan(select(scenarios, keyword, tags), models, trace=trace, dump_after=dump_after)
    records = execute(job_list, jobs)
    print_report(make_console(stderr=outputs.uses_stdout), records, trace=trace)
    outputs.write(records, trace=trace)
    print_kernel_bugs(records)
    ctx.exit(exit_status(records))
