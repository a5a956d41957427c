"""Booting a kernel under qemu-system-x86_64: the command line, the accelerator, the timeout.

The guest has no network, no display and no root disk: a kernel, the initramfs
of :mod:`ksmrepro.realkernel.initramfs`, ``-m``/``mem=`` and ``-smp`` from the
scenario's ``machine:``, a sparse raw swap disk on virtio-blk, and two serial
ports written to files (``ttyS0``: the console; ``ttyS1``: the test's lines).
``-no-reboot`` with ``panic=-1`` turns a guest panic into QEMU exiting.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ksmrepro.realkernel.errors import GuestTimeoutError, RealKernelError, ToolMissingError

__all__ = ["BootOutcome", "QemuConfig", "boot", "find_qemu", "kvm_usable", "qemu_command"]

_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01


def _cpu_has_virtualization(cpuinfo: str = "/proc/cpuinfo") -> bool:
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return bool({"vmx", "svm"} & set(line.split()))
    except OSError:
        pass
    return False


def kvm_usable(dev: str = "/dev/kvm", cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when ``/dev/kvm`` opens, answers KVM_CREATE_VM, and the CPU has VMX or SVM.

    The last test matters: some cloud guests offer a paravirtual /dev/kvm
    (``kvm-pvm``) without hardware virtualisation, on which a QEMU guest never
    gets through its boot; TCG is the dependable choice there.
    """
    if not _cpu_has_virtualization(cpuinfo):
        return False
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, _KVM_GET_API_VERSION, 0) != 12:
            return False
        vm = fcntl.ioctl(fd, _KVM_CREATE_VM, 0)
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def find_qemu(explicit: str | None = None) -> str:
    """:raises ToolMissingError: qemu-system-x86_64 is not installed."""
    name = explicit or os.environ.get("KSMREPRO_QEMU") or "qemu-system-x86_64"
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} not found: apt-get install qemu-system-x86")
    return path


@dataclass(frozen=True)
class QemuConfig:
    """One boot."""

    kernel: Path
    initrd: Path
    memory: int  # bytes: -m and mem=
    cpus: int
    console_log: Path
    output_log: Path
    accel: str = "tcg"  # "kvm" or "tcg"
    swap_image: Path | None = None
    thp: str = "never"
    append: tuple[str, ...] = ()  # extra kernel parameters
    qemu: str = "qemu-system-x86_64"

    @property
    def cmdline(self) -> str:
        """The guest kernel's command line."""
        mem = f"{self.memory >> 20}M"
        parts = ["console=ttyS0,115200", "quiet", "panic=-1", f"mem={mem}",
                 f"transparent_hugepage={self.thp}", "rdinit=/init", *self.append]
        return " ".join(parts)


def qemu_command(cfg: QemuConfig) -> list[str]:
    """The qemu-system-x86_64 argument list for ``cfg`` (nothing is run)."""
    if cfg.accel not in ("kvm", "tcg"):
        raise RealKernelError(f"unknown accelerator {cfg.accel!r} (kvm or tcg)")
    cmd = [
        cfg.qemu, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-machine", "pc", "-accel", "kvm" if cfg.accel == "kvm" else "tcg,thread=multi",
        "-cpu", "host" if cfg.accel == "kvm" else "max",
        "-m", f"{max(cfg.memory >> 20, 64)}M", "-smp", str(cfg.cpus),
        "-kernel", str(cfg.kernel), "-initrd", str(cfg.initrd), "-append", cfg.cmdline,
        "-serial", f"file:{cfg.console_log}", "-serial", f"file:{cfg.output_log}",
        "-monitor", "none",
    ]
    if cfg.swap_image is not None:
        cmd += ["-drive", f"file={cfg.swap_image},format=raw,if=virtio,cache=unsafe"]
    return cmd


@dataclass
class BootOutcome:
    returncode: int
    elapsed_s: float
    stderr: str
    command: list[str] = field(default_factory=list)


def boot(cfg: QemuConfig, timeout: float) -> BootOutcome:
    """Run QEMU until the guest powers off.

    :raises GuestTimeoutError: still running after ``timeout`` seconds (QEMU is killed).
    """
    cmd = qemu_command(cfg)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise GuestTimeoutError(
            f"the guest did not power off within {timeout:g}s (hung, or too slow under "
            f"{cfg.accel.upper()}: raise --qemu-timeout)", str(cfg.console_log)) from None
    return BootOutcome(proc.returncode, time.monotonic() - t0, out or "", cmd)
