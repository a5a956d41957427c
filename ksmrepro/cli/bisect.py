"""``ksmrepro bisect``: the first patch of a series whose application changes the outcome."""

from __future__ import annotations

import click

__all__ = ["command"]


@click.command("bisect")
@click.argument("path", metavar="FILE")
@click.option("--series", metavar="NAME", help="Walk this series (ksmrepro models lists them).")
@click.option("--good", metavar="MODEL", help="Walk from this model...")
@click.option("--bad", metavar="MODEL", help="...to this one (it has every patch --good has).")
@click.option("--with", "with_patches", multiple=True, metavar="PATCH",
              help="Apply PATCH on top at every point; repeatable.")
@click.option("--observe", metavar="STEP",
              help="The outcome is what step STEP (index or label; a print or expect) reads, "
                   "instead of whether every expectation holds.")
@click.option("--models-file", "models_files", multiple=True, metavar="PATH",
              help="A model file (kind: models); repeatable.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, metavar="N",
              help="Worker processes (0: one per CPU; default: one per CPU, 1 = serial).")
@click.pass_context
def command(ctx: click.Context, path: str, series: str | None, good: str | None,
            bad: str | None, with_patches: tuple[str, ...], observe: str | None,
            models_files: tuple[str, ...], jobs: int | None) -> None:
    """Find the first patch whose application changes FILE's outcome: whether every
    expectation holds (known_failures are not consulted), or with --observe what one step
    reads.  Every point is checked, so an outcome that flips back is reported too.
    Exit 0 when the walk was judged (a change found or not), 1 when fewer than two points
    could run, 2 on an invalid scenario, model, patch or series."""
    from ksmrepro.analysis.bisect import bisect, range_walk, series_walk
    from ksmrepro.analysis.outcome import find_step
    from ksmrepro.analysis.parallel import usable_cpus
    from ksmrepro.analysis.render import bisection_renderable, print_wide
    from ksmrepro.cli.compare import load_one, resolve_option
    from ksmrepro.errors import KsmreproError
    from ksmrepro.report.console import make_console

    if (series is None) == (good is None and bad is None) or (good is None) != (bad is None):
        raise click.UsageError("give --series NAME, or --good MODEL and --bad MODEL")
    scenario = load_one(ctx, path, models_files)
    step = None
    if observe is not None:
        try:
            step = find_step(scenario, observe)
        except ValueError as exc:
            raise KsmreproError(f"--observe {observe}: {exc}") from None
    if series is not None:
        walk = series_walk(series, with_patches)
    elif good is not None and bad is not None:
        resolve_option("--good", good)
        resolve_option("--bad", bad)
        walk = range_walk(good, bad, with_patches)
    else:  # pragma: no cover - excluded by the usage check above
        raise click.UsageError("give --series NAME, or --good MODEL and --bad MODEL")
    workers = usable_cpus() if jobs == 0 else jobs
    result = bisect(scenario, walk, observe=step, workers=workers)
    print_wide(make_console(), bisection_renderable(result))
    tested = [o for o in result.outcomes if o.skip is None]
    ctx.exit(0 if len(tested) >= 2 else 1)
