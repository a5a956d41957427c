"""Kernel image and module helpers: the release of a bzImage, and the modules the guest needs.

The guest needs a block driver for its swap disk.  Debian builds ``virtio_blk``
(and ``virtio_pci``, ``virtio_ring``, ``virtio``) as modules, so they are taken
from the same kernel package (``lib/modules/<release>/``), with their
dependencies read from each module's ``.modinfo`` ELF section (``depends=``), the
way ``depmod`` does, so no host ``modprobe``/``depmod`` is needed.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ksmrepro.realkernel.errors import KernelImageError, ToolMissingError

__all__ = [
    "KernelModule",
    "SWAP_DISK_MODULES",
    "find_modules_dir",
    "kernel_release",
    "modinfo",
    "resolve_modules",
]

# What a virtio-blk swap disk needs, in no particular order (dependencies are resolved).
SWAP_DISK_MODULES = ("virtio_pci", "virtio_blk")

_MOD_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


def kernel_release(image: Path) -> str | None:
    """The release (``uname -r``) a bzImage was built as, read from its setup header.

    The x86 boot protocol header (Documentation/arch/x86/boot.rst) has ``HdrS``
    at 0x202 and, at 0x20e, the offset (minus 0x200) of a version string such as
    ``"6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ..."``.
    Returns None for images without one.
    """
    try:
        with open(image, "rb") as f:
            head = f.read(0x8000)
    except OSError:
        return None
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        return None
    (offset,) = struct.unpack_from("<H", head, 0x20E)
    start = offset + 0x200
    if not offset or start >= len(head):
        return None
    text = head[start:start + 256].split(b"\0", 1)[0].decode("ascii", "replace")
    return text.split()[0] if text.strip() else None


def find_modules_dir(kernel: Path, modules: Path | None, release: str | None) -> Path | None:
    """The ``lib/modules/<release>`` directory to take modules from.

    ``modules`` may be that directory itself, ``lib/modules``, or the root a
    kernel package was extracted into.  Without it, a kernel at
    ``ROOT/boot/vmlinuz-<release>`` (``dpkg-deb -x`` of Debian's package) finds
    ``ROOT/lib/modules/<release>``.
    """
    candidates: list[Path] = []
    if modules is not None:
        candidates.append(modules)
        if release:
            candidates += [modules / release, modules / "lib" / "modules" / release]
        if modules.is_dir():
            candidates += sorted(modules.glob("*/"))
            candidates += sorted((modules / "lib" / "modules").glob("*/"))
    elif release:
        candidates.append(kernel.resolve().parent.parent / "lib" / "modules" / release)
    for c in candidates:
        if (c / "kernel").is_dir() or (c / "modules.builtin").is_file():
            return c
    if modules is not None:
        raise KernelImageError(
            f"{modules}: no kernel modules there (expected lib/modules/<release>/kernel/ "
            "of the kernel's package)")
    return None


def _decompress(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(raw)
    if path.name.endswith(".gz"):
        return gzip.decompress(raw)
    if path.name.endswith(".zst"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise ToolMissingError(f"{path} is zstd-compressed: apt-get install zstd")
        return subprocess.run([zstd, "-dc", str(path)], check=True, capture_output=True).stdout
    return raw


def modinfo(ko: bytes) -> dict[str, str]:
    """The ``key=value`` strings of a module's ``.modinfo`` section (first value of each key)."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2:
        raise KernelImageError("not a 64-bit ELF kernel module")
    endian = "<" if ko[5] == 1 else ">"
    shoff, = struct.unpack_from(endian + "Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            endian + "IIQQQQ", ko, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    info: dict[str, str] = {}
    for i in range(shnum):
        name_off, off, size = section(i)
        name = ko[stroff + name_off:ko.index(b"\0", stroff + name_off)]
        if name != b".modinfo":
            continue
        for item in ko[off:off + size].split(b"\0"):
            key, sep, value = item.decode("utf-8", "replace").partition("=")
            if sep and key not in info:
                info[key] = value
    return info


@dataclass(frozen=True)
class KernelModule:
    """A module to load in the guest, in load order."""

    name: str
    path: Path
    data: bytes  # uncompressed .ko


def _norm(name: str) -> str:
    return name.replace("-", "_")


def resolve_modules(moddir: Path, wanted: tuple[str, ...]) -> list[KernelModule]:
    """``wanted`` and their dependencies, dependencies first; built-in ones are skipped.

    :raises KernelImageError: a wanted module is neither built in nor in ``moddir``.
    """
    builtin: set[str] = set()
    builtin_list = moddir / "modules.builtin"
    if builtin_list.is_file():
        for line in builtin_list.read_text().splitlines():
            base = line.rsplit("/", 1)[-1]
            for suffix in _MOD_SUFFIXES:
                if base.endswith(suffix):
                    builtin.add(_norm(base[: -len(suffix)]))
    index: dict[str, Path] = {}
    for p in sorted(moddir.rglob("*.ko*")):
        for suffix in _MOD_SUFFIXES:
            if p.name.endswith(suffix):
                index.setdefault(_norm(p.name[: -len(suffix)]), p)
    order: list[KernelModule] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = _norm(name)
        if name in seen or name in builtin:
            return
        if name not in index:
            raise KernelImageError(
                f"module {name} (needed by {' <- '.join(chain) or 'the swap disk'}) is not in "
                f"{moddir} and not built in")
        seen.add(name)
        data = _decompress(index[name])
        for dep in filter(None, modinfo(data).get("depends", "").split(",")):
            visit(dep, (name, *chain))
        order.append(KernelModule(name, index[name], data))

    for w in wanted:
        visit(w, ())
    return order
