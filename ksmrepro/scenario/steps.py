"""Typed scenario: what ``loader.load_scenario`` produces and the runner consumes.

Every value here is already validated and normalised: sizes are bytes, durations
are nanoseconds, constants are their names (``"MADV_MERGEABLE"``), addresses are
:class:`AddrExpr` resolved by the runner against the step's process.  Nothing in
this module simulates anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

__all__ = [
    "AddrExpr",
    "Cgroup",
    "CgroupAttach",
    "Comparison",
    "Dump",
    "Exit",
    "Expect",
    "Fork",
    "KsmWait",
    "Machine",
    "Madvise",
    "MemoryReclaim",
    "Memset",
    "Mmap",
    "Mprotect",
    "Mremap",
    "Munmap",
    "Prctl",
    "Pressure",
    "Print",
    "Read",
    "Scenario",
    "Sleep",
    "Spawn",
    "Step",
    "Sysfs",
    "Touch",
    "STEP_TYPES",
]

PAGE_SIZE = 4096


@dataclass(frozen=True)
class AddrExpr:
    """``name + offset`` (``name`` None for a literal address)."""

    name: str | None
    offset: int = 0

    def __str__(self) -> str:
        if self.name is None:
            return hex(self.offset)
        if self.offset == 0:
            return self.name
        sign = "+" if self.offset > 0 else "-"
        return f"{self.name} {sign} {abs(self.offset):#x}"


@dataclass(frozen=True)
class Comparison:
    """An ``expect`` value: ``op`` is one of ``== != < <= > >=``."""

    op: str
    value: int

    def holds(self, seen: int) -> bool:
        v = self.value
        return {
            "==": seen == v,
            "!=": seen != v,
            "<": seen < v,
            "<=": seen <= v,
            ">": seen > v,
            ">=": seen >= v,
        }[self.op]

    def __str__(self) -> str:
        return str(self.value) if self.op == "==" else f"{self.op} {self.value}"

    def to_json(self) -> int | str:
        return self.value if self.op == "==" else f"{self.op} {self.value}"


@dataclass(frozen=True, kw_only=True)
class Step:
    """Fields every step has.  ``index`` counts from 0 in ``steps:`` order."""

    KEY: ClassVar[str] = ""
    index: int = 0
    line: int = 0  # 1-based line of the step in the file (0: built in code)
    column: int = 0
    proc: str = "main"
    label: str | None = None
    errno: str | None = None  # the errno this step is expected to fail with
    signal: str | None = None  # "SIGSEGV" when the step is expected to fault


@dataclass(frozen=True, kw_only=True)
class Mmap(Step):
    KEY: ClassVar[str] = "mmap"
    as_: str
    length: int
    addr: AddrExpr | None = None
    prot: tuple[str, ...] = ("PROT_READ", "PROT_WRITE")
    flags: tuple[str, ...] = ("MAP_PRIVATE", "MAP_ANONYMOUS")


@dataclass(frozen=True, kw_only=True)
class Munmap(Step):
    KEY: ClassVar[str] = "munmap"
    addr: AddrExpr
    length: int


@dataclass(frozen=True, kw_only=True)
class Madvise(Step):
    KEY: ClassVar[str] = "madvise"
    addr: AddrExpr
    length: int
    advice: str


@dataclass(frozen=True, kw_only=True)
class Mremap(Step):
    KEY: ClassVar[str] = "mremap"
    old_addr: AddrExpr
    old_size: int
    new_size: int
    flags: tuple[str, ...] = ()
    new_addr: AddrExpr | None = None
    as_: str | None = None


@dataclass(frozen=True, kw_only=True)
class Mprotect(Step):
    KEY: ClassVar[str] = "mprotect"
    addr: AddrExpr
    length: int
    prot: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Memset(Step):
    KEY: ClassVar[str] = "memset"
    addr: AddrExpr
    value: int
    length: int


@dataclass(frozen=True, kw_only=True)
class Touch(Step):
    KEY: ClassVar[str] = "touch"
    addr: AddrExpr
    length: int
    times: int = 1
    value: int | None = None


@dataclass(frozen=True, kw_only=True)
class Read(Step):
    KEY: ClassVar[str] = "read"
    addr: AddrExpr
    length: int


@dataclass(frozen=True, kw_only=True)
class Fork(Step):
    KEY: ClassVar[str] = "fork"
    child: str


@dataclass(frozen=True, kw_only=True)
class Spawn(Step):
    KEY: ClassVar[str] = "spawn"
    name: str


@dataclass(frozen=True, kw_only=True)
class Exit(Step):
    KEY: ClassVar[str] = "exit"


@dataclass(frozen=True, kw_only=True)
class Prctl(Step):
    KEY: ClassVar[str] = "prctl"
    option: str
    value: int


@dataclass(frozen=True, kw_only=True)
class Sysfs(Step):
    KEY: ClassVar[str] = "sysfs"
    path: str
    value: str  # as written by `echo value > path`


@dataclass(frozen=True, kw_only=True)
class Sleep(Step):
    KEY: ClassVar[str] = "sleep"
    ns: int


@dataclass(frozen=True, kw_only=True)
class KsmWait(Step):
    KEY: ClassVar[str] = "ksm_wait"
    full_scans: int


@dataclass(frozen=True, kw_only=True)
class Pressure(Step):
    KEY: ClassVar[str] = "pressure"
    anon: int
    touches: int = 2
    cpu: int | None = None


@dataclass(frozen=True, kw_only=True)
class Print(Step):
    KEY: ClassVar[str] = "print"
    counters: tuple[str, ...] | None  # None means `all`


@dataclass(frozen=True, kw_only=True)
class Expect(Step):
    KEY: ClassVar[str] = "expect"
    values: tuple[tuple[str, Comparison], ...]


@dataclass(frozen=True, kw_only=True)
class Cgroup(Step):
    KEY: ClassVar[str] = "cgroup"
    name: str
    memory_max: int | None = None


@dataclass(frozen=True, kw_only=True)
class CgroupAttach(Step):
    KEY: ClassVar[str] = "cgroup_attach"
    cgroup: str


@dataclass(frozen=True, kw_only=True)
class MemoryReclaim(Step):
    KEY: ClassVar[str] = "memory_reclaim"
    cgroup: str
    amount: int


@dataclass(frozen=True, kw_only=True)
class Dump(Step):
    """ksmrepro extension: record the step's process state (maps, pages, KSM trees)."""

    KEY: ClassVar[str] = "dump"
    what: tuple[str, ...] = ("maps", "pages", "ksm")


STEP_TYPES: dict[str, type[Step]] = {
    cls.KEY: cls
    for cls in (
        Mmap, Munmap, Madvise, Mremap, Mprotect, Memset, Touch, Read, Fork, Spawn, Exit,
        Prctl, Sysfs, Sleep, KsmWait, Pressure, Print, Expect, Cgroup, CgroupAttach,
        MemoryReclaim, Dump,
    )
}


@dataclass(frozen=True)
class Machine:
    memory: int = 1 << 30
    swap: int = 2 << 30
    cpus: int = 2
    thp: str = "never"
    costs: str = "native"  # the cost profile of simulated time (docs/cost-model.md)


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    path: str = "<memory>"
    description: str | None = None
    source: str | None = None
    tags: tuple[str, ...] = ()
    machine: Machine = field(default_factory=Machine)
    ksm: tuple[tuple[str, int | str], ...] = ()  # initial /sys/kernel/mm/ksm knobs
    models: tuple[str, ...] = ()
    known_failures: tuple[tuple[str, str], ...] = ()  # (model expression, reason)
    line_of_name: int = 1
