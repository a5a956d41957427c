"""``ksmrepro run``: run scenarios on models and report."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import click

from ksmrepro.cli._app import (
    Outputs,
    exit_status,
    load_selected,
    print_error,
    print_kernel_bugs,
)

if TYPE_CHECKING:
    from ksmrepro.report import RunRecord

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
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None, metavar="N",
              help="Run scenario × model pairs in N processes (0: one per CPU, 1: serially; "
                   "default: in parallel when several pairs run and there are CPUs).  "
                   "Reports are identical.")
@click.option("--models-file", "models_files", multiple=True, metavar="PATH",
              help="A model file (kind: models) defining models, patches, series; "
                   "repeatable.  Files in scenarios/models/ are found by themselves.")
@click.option("--no-known-failures", "no_known_failures", is_flag=True,
              help="Judge every expectation as written, ignoring known_failures "
                   "(the raw outcome; for git bisect run).")
@click.option("--dump-after", metavar="STEP",
              help="Dump the process state (maps, pages, KSM) after step STEP (index or label).")
@click.option("--ksmd-phase", "ksmd_phase", default="0", metavar="I/N",
              help="Shift ksmd's passes I/N of a cycle later against the steps (a fraction "
                   "in [0, 1), e.g. 3/16; default 0, the plain run): one phase of "
                   "`ksmrepro phases` (docs/timing.md), e.g. to --trace it.")
@click.option("--kernel", "kernel", metavar="PATH",
              help="Also run each scenario on this real kernel image (bzImage/vmlinuz) under "
                   "QEMU, as model real:<uname -r> (docs/real-kernel.md).  Without --model, "
                   "only the real kernel runs.")
@click.option("--modules", "modules", metavar="DIR",
              help="With --kernel: its lib/modules/<release> (found next to boot/ otherwise).")
@click.option("--qemu-timeout", "qemu_timeout", type=float, default=None, metavar="S",
              help="With --kernel: seconds before a guest counts as hung.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], models: tuple[str, ...],
            json_out: str | None, junit_out: str | None, tap_out: str | None, trace: bool,
            keyword: str | None, tags: tuple[str, ...], jobs: int | None,
            dump_after: str | None, models_files: tuple[str, ...],
            no_known_failures: bool, kernel: str | None, modules: str | None,
            qemu_timeout: float | None, ksmd_phase: str) -> None:
    """Run scenario files (directories are searched for *.yaml/*.yml scenarios).

    Exit status: 0 every expectation holds (or fails only where known_failures says), 1 one
    does not, 2 invalid scenario or command line, 3 a bug in ksmrepro, 125 the only failures
    are scenarios that cannot run on their model (git bisect run's "skip").
    """
    from ksmrepro.cli._jobs import execute
    from ksmrepro.collect import plan
    from ksmrepro.report.console import make_console, print_report

    outputs = Outputs(json_out, junit_out, tap_out)
    phase = parse_phase(ksmd_phase)
    selected = load_selected(ctx, paths, models_files, keyword, tags)
    if no_known_failures:
        from dataclasses import replace

        selected = [replace(s, known_failures=()) for s in selected]
    records = []
    if not kernel or models:
        job_list = plan(selected, models, trace=trace, dump_after=dump_after, ksmd_phase=phase)
        records = execute(job_list, jobs)
    if kernel:
        records += _real_kernel_records(selected, kernel, modules, qemu_timeout)
    print_report(make_console(stderr=outputs.uses_stdout), records, trace=trace)
    outputs.write(records, trace=trace)
    print_kernel_bugs(records)
    ctx.exit(_predicate_status(records, exit_status(records)))


def parse_phase(text: str) -> Fraction:
    """``--ksmd-phase``: ``I/N`` or a decimal, in [0, 1)."""
    try:
        phase = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"{text!r} is not a fraction such as 3/16 or 0.25",
                                 param_hint="--ksmd-phase") from None
    if not 0 <= phase < 1:
        raise click.BadParameter(f"{text} is not in [0, 1)", param_hint="--ksmd-phase")
    return phase


def _predicate_status(records: list[RunRecord], status: int) -> int:
    # git bisect run: 125 ("skip") when every failing run is a scenario that cannot run on
    # its model (docs/models.md); any other failure keeps its status.
    from ksmrepro.analysis.outcome import cannot_run

    failing = [r for r in records if r.failing]
    if status != 1 or not failing:
        return status
    reasons = [cannot_run(r.result, r.scenario) for r in failing]
    if any(reason is None for reason in reasons):
        return status
    for r, reason in zip(failing, reasons, strict=True):
        print_error(f"{r.result.file} cannot run on {r.result.model}: {reason}",
                    label="skip")
    return 125


def _real_kernel_records(scenarios: list, kernel: str, modules: str | None,  # noqa: ANN001
                         timeout: float | None) -> list[RunRecord]:
    """One boot per scenario, one at a time (never in parallel: each guest takes the CPUs)."""
    from ksmrepro.realkernel import run_on_kernel
    from ksmrepro.report import RunRecord

    return [RunRecord(run_on_kernel(scn, kernel, modules, timeout), scn) for scn in scenarios]
