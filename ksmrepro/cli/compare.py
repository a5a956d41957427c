"""``ksmrepro compare``: one scenario on several models, side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ksmrepro.cli._app import load_all, print_error

if TYPE_CHECKING:
    from ksmrepro.scenario.steps import Scenario

__all__ = ["command", "load_one", "resolve_option"]


def load_one(ctx: click.Context, path: str, models_files: tuple[str, ...]) -> Scenario:
    """Load one scenario file and install the model files (``--models-file``, then those
    next to it); an invalid scenario exits 2 with its ``path:line:col`` error."""
    from ksmrepro.models.userfile import use_model_files

    scenarios, errors = load_all([path])
    for error in errors:
        print_error(str(error))
    if errors:
        ctx.exit(2)
    use_model_files(models_files, [path])
    return scenarios[0]


def resolve_option(option: str, expr: str) -> None:
    """Resolve a model named by an option; an unknown name is ``option expr: ...`` (exit 2)."""
    from ksmrepro.errors import ModelError
    from ksmrepro.models import resolve

    try:
        resolve(expr)
    except ModelError as exc:
        raise ModelError(f"{option} {expr}: {exc}") from None


@click.command("compare")
@click.argument("path", metavar="FILE")
@click.option("-m", "--model", "models", multiple=True, metavar="MODEL",
              help="A model name or expression; repeatable, at least two "
                   "(default: the scenario's models:).")
@click.option("--trace", is_flag=True,
              help="Also show where the models' kernel traces first part.")
@click.option("--models-file", "models_files", multiple=True, metavar="PATH",
              help="A model file (kind: models); repeatable.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, metavar="N",
              help="Worker processes (0: one per CPU; default: one per CPU, 1 = serial).")
@click.option("--kernel", "kernel", metavar="PATH",
              help="Also boot this real kernel image under QEMU and put it beside the "
                   "models, as real:<uname -r> (docs/real-kernel.md).")
@click.option("--modules", "modules", metavar="DIR",
              help="With --kernel: its lib/modules/<release> (found next to boot/ otherwise).")
@click.option("--qemu-timeout", "qemu_timeout", type=float, default=None, metavar="S",
              help="With --kernel: seconds before a guest counts as hung.")
@click.pass_context
def command(ctx: click.Context, path: str, models: tuple[str, ...], trace: bool,
            models_files: tuple[str, ...], jobs: int | None, kernel: str | None,
            modules: str | None, qemu_timeout: float | None) -> None:
    """Run FILE on several models; one table, a column per model, the first diverging
    observation highlighted.  Exit 0 when every observation and outcome is the same on
    every model, 1 when they differ, 2 on an invalid scenario or model."""
    from ksmrepro.analysis.compare import compare, compare_results, run_models
    from ksmrepro.analysis.render import comparison_renderable, print_wide, trace_divergence_lines
    from ksmrepro.report.console import make_console

    scenario = load_one(ctx, path, models_files)
    exprs = list(models) or list(scenario.models)
    if len(exprs) < (1 if kernel else 2):
        where = "--model" if models else f"{path}'s models:"
        raise click.UsageError(f"compare needs at least two models (--model A --model B); "
                               f"{where} names {len(exprs)}")
    for expr in exprs:
        resolve_option("--model", expr)
    if kernel:
        from ksmrepro.realkernel import run_on_kernel

        results = run_models(scenario, exprs, trace=trace, workers=jobs)
        results.append(run_on_kernel(scenario, kernel, modules, qemu_timeout))
        result = compare_results(results, scenario, traced=trace)
    else:
        result = compare(scenario, exprs, trace=trace, workers=jobs)
    console = make_console()
    print_wide(console, comparison_renderable(result))
    if trace:
        for line in trace_divergence_lines(result.trace):
            console.print(line, soft_wrap=True)
    ctx.exit(0 if result.same else 1)
