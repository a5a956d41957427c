"""The guest's userspace: a static test program, busybox and an /init script, as a cpio archive.

Everything the guest runs is in the initramfs, so no root filesystem is needed:

- ``/bin/busybox`` (Debian's busybox-static) for the shell, mount, mkswap,
  swapon, insmod, tee and poweroff;
- ``/lib/modules/NN-<name>.ko``: the modules the swap disk needs, in load order;
- ``/ksmrepro/test``: the scenario exported to C and linked statically;
- ``/init``: mounts proc/sysfs/devtmpfs/cgroup2, loads the modules, makes and
  enables the swap, runs the test with its output on both the console
  (``ttyS0``) and a second serial port (``ttyS1``) that holds nothing else, and
  powers off.

Archives and compiled programs are cached under ``~/.cache/ksmrepro`` (or
``$XDG_CACHE_HOME/ksmrepro``) by the SHA-256 of their contents.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from ksmrepro.realkernel.cpio import NewcWriter
from ksmrepro.realkernel.errors import RealKernelError, ToolMissingError
from ksmrepro.realkernel.modules import KernelModule

__all__ = [
    "build_initramfs",
    "cache_dir",
    "compile_static",
    "find_busybox",
    "init_script",
    "is_static_elf",
]

GUEST_PROGRAM = "/ksmrepro/test"


def cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/ksmrepro/<parts>`` (default ``~/.cache/ksmrepro``), created."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ksmrepro"
    d = root.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _store(path: Path, data: bytes) -> None:
    # write-then-rename, so that a concurrent run never reads half a file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP program header (no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3  # PT_INTERP
               for i in range(phnum))


_BUSYBOX_PATHS = (Path("/bin/busybox"), Path("/usr/bin/busybox"))


def find_busybox(explicit: Path | None = None, search: tuple[Path, ...] = _BUSYBOX_PATHS) -> Path:
    """A statically linked busybox: ``explicit``, ``$KSMREPRO_BUSYBOX``, or the system's.

    :raises ToolMissingError: none found, or only a dynamically linked one.
    """
    env = os.environ.get("KSMREPRO_BUSYBOX")
    candidates = [explicit] if explicit else []
    candidates += [Path(env)] if env else []
    candidates += list(search)
    which = shutil.which("busybox")
    if which:
        candidates.append(Path(which))
    dynamic = None
    for c in candidates:
        if c is not None and c.is_file():
            if is_static_elf(c):
                return c
            dynamic = c
    hint = f" ({dynamic} is dynamically linked)" if dynamic else ""
    raise ToolMissingError(
        f"no statically linked busybox{hint}: apt-get install busybox-static, "
        "or set KSMREPRO_BUSYBOX")


def compile_static(source: str, name: str = "test") -> Path:
    """Compile the exported C program with ``gcc -O2 -static``; cached by source hash.

    :raises ToolMissingError: no gcc (or no static libc: libc6-dev).
    :raises RealKernelError: the program does not compile (a bug in the export).
    """
    gcc = shutil.which(os.environ.get("CC", "gcc"))
    if gcc is None:
        raise ToolMissingError("gcc not found: apt-get install gcc libc6-dev")
    key = hashlib.sha256(source.encode() + gcc.encode()).hexdigest()[:20]
    out = cache_dir("programs") / f"{name}-{key}"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_text(source)
        binary = Path(tmp) / name
        proc = subprocess.run([gcc, "-Wall", "-O2", "-static", "-o", str(binary), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            err = proc.stderr.strip()
            if "cannot find -lc" in err:
                raise ToolMissingError("no static libc for gcc -static: apt-get install libc6-dev")
            raise RealKernelError(f"the exported C program does not compile:\n{err}")
        _store(out, binary.read_bytes())
    out.chmod(0o755)
    return out


def init_script(*, swap: bool, modules: list[str], program: str = GUEST_PROGRAM) -> str:
    """The guest's ``/init`` (busybox sh).

    Lines starting ``KSMREPRO-INIT`` tell the host what the guest found; the
    program's own ``KSMREPRO`` lines go to ttyS1 as well as to the console.
    """
    load = "\n".join(
        f'insmod /lib/modules/{m} || say "module={m} status=failed"' for m in modules)
    swap_block = f"""\
{load}
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do usleep 50000; i=$((i + 1)); done
if [ -b /dev/vda ] && mkswap /dev/vda >/dev/null 2>&1 && swapon /dev/vda; then
    say "swap=on swap_kb=$(awk 'NR == 2 {{ print $3 }}' /proc/swaps)"
else
    say "swap=failed"
fi""" if swap else 'say "swap=off"'
    return f"""\
#!/bin/busybox sh
# ksmrepro guest init: set up the machine the scenario describes, run its test, power off.
/bin/busybox --install -s /bin
export PATH=/bin
say() {{ echo "KSMREPRO-INIT $*"; echo "KSMREPRO-INIT $*" > /dev/ttyS1; }}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /tmp && mount -t tmpfs tmpfs /tmp
stty -F /dev/ttyS1 raw -echo 2>/dev/null
say "release=$(uname -r) mem_total_kb=$(awk '/^MemTotal/ {{ print $2 }}' /proc/meminfo) cpus=$(nproc)"
{swap_block}
say "thp=$(sed 's/.*\\[\\(.*\\)\\].*/\\1/' /sys/kernel/mm/transparent_hugepage/enabled)" \\
    "lru_gen=$(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null || echo none)" \\
    "swappiness=$(cat /proc/sys/vm/swappiness)"
say "run"
{{ {program}; echo "KSMREPRO-INIT exit=$?"; }} 2>&1 | tee /dev/ttyS1
say "done"
echo "KSMREPRO-INIT dmesg begins"
dmesg
echo "KSMREPRO-INIT dmesg ends"
sync
poweroff -f
"""


def build_initramfs(program: Path, modules: list[KernelModule], *, swap: bool,
                    busybox: Path | None = None) -> Path:
    """The initramfs for one test program, cached by content hash; returns its path."""
    bb = find_busybox(busybox)
    names = [f"{i:02d}-{m.name}.ko" for i, m in enumerate(modules)]
    w = NewcWriter()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "ksmrepro"):
        w.add_dir(d)
    w.add_chardev("dev/console", 5, 1)
    w.add_chardev("dev/null", 1, 3, mode=0o666)
    w.add_file("bin/busybox", bb.read_bytes(), mode=0o755)
    w.add_symlink("bin/sh", "busybox")
    for name, m in zip(names, modules, strict=False):
        w.add_file(f"lib/modules/{name}", m.data)
    w.add_file(GUEST_PROGRAM.lstrip("/"), program.read_bytes(), mode=0o755)
    w.add_file("init", init_script(swap=swap, modules=names).encode(), mode=0o755)
    data = w.getvalue()
    out = cache_dir("initramfs") / f"{hashlib.sha256(data).hexdigest()[:24]}.cpio"
    if not out.is_file():
        _store(out, data)
    return out
