"""Run a scenario on a real kernel: export it, boot the kernel under QEMU, judge the output."""

from __future__ import annotations

import re
import time
from pathlib import Path

from ksmrepro.export.c import export_c
from ksmrepro.export.parse import RealRunResult, parse_output
from ksmrepro.realkernel.errors import GuestError, KernelImageError
from ksmrepro.realkernel.initramfs import build_initramfs, cache_dir, compile_static
from ksmrepro.realkernel.modules import (
    SWAP_DISK_MODULES,
    find_modules_dir,
    kernel_release,
    resolve_modules,
)
from ksmrepro.realkernel.qemu import QemuConfig, boot, find_qemu, kvm_usable
from ksmrepro.scenario.steps import Pressure, Scenario

__all__ = ["DEFAULT_TIMEOUT_S", "default_timeout", "guest_report", "run_on_kernel"]

DEFAULT_TIMEOUT_S = 600.0
_INIT = re.compile(r"KSMREPRO-INIT (.*)$")


def default_timeout(scenario: Scenario, accel: str) -> float:
    """Seconds to wait for a guest: generous for TCG, where each GiB of
    pressure (written ``touches`` times, swapped out and in) costs minutes."""
    pressure_gib = sum(s.anon * s.touches for s in scenario.steps
                       if isinstance(s, Pressure)) / (1 << 30)
    per_gib = 120.0 if accel == "kvm" else 600.0
    return DEFAULT_TIMEOUT_S + per_gib * pressure_gib


def guest_report(text: str) -> dict[str, str]:
    """The ``key=value`` pairs the guest's /init printed (``KSMREPRO-INIT ...``)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        m = _INIT.search(raw.replace("\r", ""))
        if m and "dmesg" not in m.group(1):
            for key, value in re.findall(r"(\w+)=(\S*)", m.group(1)):
                out.setdefault(key, value)
    return out


def _run_dir(scenario: Scenario) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", scenario.name)[:60] or "scenario"
    base = cache_dir("runs") / f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}"
    d, n = base, 1
    while d.exists():
        n += 1
        d = base.with_name(f"{base.name}-{n}")
    d.mkdir(parents=True)
    return d


def run_on_kernel(scenario: Scenario, kernel: str | Path, modules: str | Path | None = None,
                  timeout: float | None = None, *, accel: str = "auto",
                  append: tuple[str, ...] = (), workdir: str | Path | None = None,
                  fmt: str = "c") -> RealRunResult:
    """Boot ``kernel`` under QEMU and run ``scenario`` in it, as model ``real:<uname -r>``.

    :param kernel: a bzImage/vmlinuz (e.g. ``boot/vmlinuz-6.1.0-56-amd64`` of Debian's
        linux-image package, extracted with ``dpkg-deb -x``).
    :param modules: where that kernel's modules are (``lib/modules/<release>``, or the
        extracted package); found next to ``boot/`` when not given.
    :param timeout: seconds before a guest counts as hung; default :func:`default_timeout`.
    :param accel: ``"kvm"``, ``"tcg"``, or ``"auto"`` (KVM when /dev/kvm works).
    :param append: extra kernel parameters.
    :param workdir: where to keep the logs (default: a new directory under
        ``~/.cache/ksmrepro/runs``).
    :raises ToolMissingError: no qemu-system-x86_64, gcc or static busybox.
    :raises KernelImageError: no kernel image, or its modules are not where said.
    :raises GuestTimeoutError: the guest did not power off in time.
    :raises GuestError: the guest could not set up the machine (e.g. no swap disk).
    """
    kernel = Path(kernel)
    if not kernel.is_file():
        raise KernelImageError(f"{kernel}: no such kernel image (a bzImage or vmlinuz; "
                               "see docs/real-kernel.md for Debian's)")
    qemu = find_qemu()
    release = kernel_release(kernel)
    if release is None:
        raise KernelImageError(f"{kernel}: not an x86 bzImage (no HdrS setup header)")
    source = export_c(scenario, fmt)
    program = compile_static(source, re.sub(r"[^A-Za-z0-9_-]", "_", scenario.name)[:40])
    swap = scenario.machine.swap > 0
    mods = []
    moddir = find_modules_dir(kernel, Path(modules) if modules else None, release)
    if swap and moddir is not None:
        mods = resolve_modules(moddir, SWAP_DISK_MODULES)
    initrd = build_initramfs(program, mods, swap=swap)

    run_dir = Path(workdir) if workdir else _run_dir(scenario)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "test.c").write_text(source)
    swap_image = run_dir / "swap.img" if swap else None
    if swap_image is not None:
        with open(swap_image, "wb") as f:
            f.truncate(scenario.machine.swap)  # sparse
    chosen = ("kvm" if kvm_usable() else "tcg") if accel == "auto" else accel
    if timeout is None:
        timeout = default_timeout(scenario, chosen)

    def config(acc: str) -> QemuConfig:
        return QemuConfig(
            kernel=kernel, initrd=initrd, memory=scenario.machine.memory,
            cpus=scenario.machine.cpus, console_log=run_dir / "console.log",
            output_log=run_dir / "output.log", accel=acc, swap_image=swap_image,
            thp=scenario.machine.thp, append=tuple(append), qemu=qemu)

    measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        cfg = config(chosen)
        outcome = boot(cfg, timeout)
        if outcome.returncode != 0 and chosen == "kvm" and accel == "auto" \
                and "kvm" in outcome.stderr.lower():
            chosen = "tcg"  # /dev/kvm opened but QEMU could not use it
            cfg = config(chosen)
            outcome = boot(cfg, default_timeout(scenario, chosen) if timeout is None
                           else timeout)
    finally:
        if swap_image is not None:
            swap_image.unlink(missing_ok=True)

    console = cfg.console_log.read_text(errors="replace") if cfg.console_log.exists() else ""
    output = cfg.output_log.read_text(errors="replace") if cfg.output_log.exists() else ""
    (run_dir / "qemu.txt").write_text(" ".join(outcome.command) + "\n\n" + outcome.stderr)
    text = output if "KSMREPRO begin" in output else console
    guest = guest_report(text if "KSMREPRO-INIT" in text else console)
    if outcome.returncode != 0 and "KSMREPRO" not in text:
        raise GuestError(f"qemu-system-x86_64 exited with status {outcome.returncode}: "
                         f"{outcome.stderr.strip()[-500:]}", str(cfg.console_log))
    if "release" not in guest:
        raise GuestError("the guest never ran /init (kernel panic or wrong image?)",
                         str(cfg.console_log))
    if swap and guest.get("swap") != "on":
        hint = ("pass --modules DIR with the kernel's lib/modules/<release>"
                if moddir is None else f"modules from {moddir} did not give a /dev/vda")
        raise GuestError(f"the guest could not enable its swap disk: {hint}",
                         str(cfg.console_log))
    res = parse_output(scenario, text)
    res.accel = chosen
    res.console_log = str(cfg.console_log)
    res.output_log = str(cfg.output_log)
    res.qemu_command = outcome.command
    res.cmdline = cfg.cmdline
    res.elapsed_s = round(outcome.elapsed_s, 1)
    res.guest = guest
    res.measured_at = measured_at
    if res.release is None:
        res.release = guest.get("release", release)
        res.model = f"real:{res.release}"
    res.stats["kvm"] = int(chosen == "kvm")
    res.stats["elapsed_ms"] = int(outcome.elapsed_s * 1000)
    return res
