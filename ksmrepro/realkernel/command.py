"""``ksmrepro calibrate``: models against real kernels (register ``command`` on the group).

Without ``--kernel`` the kernel side comes from the golden files; with it, the
kernel is booted (``--boots`` times per scenario) and ``--save`` records the
results as the new golden files.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["command"]

_STYLE = {"yes": "green", "no": "bold red", "partly": "yellow", "n/a": "dim"}


@click.command("calibrate")
@click.argument("paths", nargs=-1, metavar="[FILE...]", type=click.Path(dir_okay=False))
@click.option("-m", "--model", metavar="MODEL",
              help="Model (expression) to compare; default: each golden file's reference model.")
@click.option("--golden-dir", default="scenarios/calibration/golden", show_default=True,
              type=click.Path(file_okay=False), help="Golden real-kernel observations.")
@click.option("--kernel", type=click.Path(dir_okay=False),
              help="Boot this kernel image (bzImage/vmlinuz) instead of reading golden files.")
@click.option("--modules", type=click.Path(file_okay=False),
              help="The kernel's lib/modules/<release> (found next to boot/ if not given).")
@click.option("--qemu-timeout", type=float, metavar="S", help="Seconds before a guest is hung.")
@click.option("--boots", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --kernel: boots per scenario.")
@click.option("--save", is_flag=True, help="With --kernel: write the results as golden files.")
@click.option("--kernel-source", metavar="TEXT",
              help="With --save: where the kernel came from (e.g. the Debian package).")
@click.option("--json", "json_out", metavar="PATH|-", help="Write the rows as JSON.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], model: str | None, golden_dir: str,
            kernel: str | None, modules: str | None, qemu_timeout: float | None, boots: int,
            save: bool, kernel_source: str | None, json_out: str | None) -> None:
    """Compare a model with real-kernel observations: one row per observed counter.

    FILE defaults to scenarios/calibration/*.yaml and every scenario a golden file
    names.  Exit status 0 when every comparable counter agrees, 1 otherwise.
    """
    from rich.console import Console
    from rich.table import Table

    from ksmrepro import runner
    from ksmrepro.errors import KsmreproError
    from ksmrepro.realkernel import calibrate as cal
    from ksmrepro.scenario.loader import load_scenario

    if save and not kernel:
        raise click.UsageError("--save needs --kernel")
    gdir = Path(golden_dir)
    files = [Path(p) for p in paths] or cal.calibration_scenarios(gdir)
    if not files:
        raise KsmreproError(f"no scenarios given and none in {gdir.parent}")
    console = Console(highlight=False)
    rows: list[cal.AgreementRow] = []
    for f in files:
        scenario = load_scenario(str(f))
        if kernel:
            from ksmrepro.realkernel.runner import run_on_kernel

            results = [run_on_kernel(scenario, kernel, modules, qemu_timeout)
                       for _ in range(boots)]
            use = model or runner.models_for(scenario)[0]
            rows += cal.agreement_rows(scenario, runner.run_scenario(scenario, use), results)
            for boot in results:
                console.print(f"[dim]{f}: booted {boot.model} under {boot.accel} in "
                              f"{boot.elapsed_s}s; console log {boot.console_log}[/]",
                              soft_wrap=True)
            if save:
                path = cal.save_golden(scenario, results, gdir, reference_model=use,
                                       kernel_source=kernel_source)
                console.print(f"saved {path}")
            continue
        goldens = cal.find_golden(scenario, gdir)
        if not goldens:
            console.print(f"[yellow]{f}: no golden file in {gdir}: skipped[/]", soft_wrap=True)
            continue
        for g in goldens:
            use = model or g.reference_model or runner.models_for(scenario)[0]
            rows += cal.agreement_rows(scenario, runner.run_scenario(scenario, use), g)
    models = sorted({r.model_name for r in rows})
    kernels = sorted({r.kernel for r in rows})
    table = Table(title="model vs real kernel", show_lines=False)
    table.add_column("observation")
    table.add_column(f"model {models[0]}" if len(models) == 1 else "model")
    table.add_column(kernels[0] if len(kernels) == 1 else "kernel")
    table.add_column("agree?")
    for r in rows:
        model_cell = "-" if r.model is None else str(r.model)
        if len(models) > 1:
            model_cell += f" ({r.model_name})"
        kernel_cell = r.kernel_text + ("" if len(kernels) == 1 else f" ({r.kernel})")
        table.add_row(r.observation, model_cell, kernel_cell,
                      f"[{_STYLE[r.agree]}]{r.agree}[/]")
    console.print(table)
    bad = [r for r in rows if r.agree == "no"]
    console.print(f"{sum(r.agree == 'yes' for r in rows)} agree, {len(bad)} disagree, "
                  f"{sum(r.agree == 'partly' for r in rows)} agree on some boots, "
                  f"{sum(r.agree == 'n/a' for r in rows)} not comparable")
    if json_out:
        doc = json.dumps([{**r.__dict__, "kernel_values": list(r.kernel_values)}
                          for r in rows], indent=2)
        if json_out == "-":
            click.echo(doc)
        else:
            Path(json_out).write_text(doc + "\n")
    ctx.exit(1 if bad else 0)


calibrate_command = command
