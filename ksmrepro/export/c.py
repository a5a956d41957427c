"""Scenario -> the C testcase a kernel developer would have written by hand.

The program follows Hugh Dickins' testcase (``hugh-testcase-mail.txt``): libc
``mmap``/``madvise``/``mremap``/``memset``/``fork``/``prctl`` with the kernel's
constant names, one block per step with the scenario's step as a comment, and
one machine-readable line per ``print``/``expect`` (parsed back by
:mod:`ksmrepro.export.parse`).  Nothing a scenario says reaches the C source
unescaped: names become sanitised identifiers, text goes through
:func:`c_comment` or :func:`c_string`.

Scenarios whose steps run in several processes (``fork``, ``spawn``, ``proc:``)
are exported with a "baton": every process walks through every step and runs
its own ones in the scenario's order, handing the turn on through pipes.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

from ksmrepro.errors import KsmreproError
from ksmrepro.export import runtime
from ksmrepro.scenario.steps import (
    AddrExpr,
    Cgroup,
    CgroupAttach,
    Dump,
    Exit,
    Expect,
    Fork,
    KsmWait,
    Madvise,
    MemoryReclaim,
    Memset,
    Mmap,
    Mprotect,
    Mremap,
    Munmap,
    Prctl,
    Pressure,
    Print,
    Read,
    Scenario,
    Sleep,
    Spawn,
    Step,
    Sysfs,
    Touch,
)
from ksmrepro.scenario.values import COUNTER_ALIASES, COUNTERS

__all__ = ["CONSTANTS", "ExportError", "FORMATS", "c_comment", "c_identifier", "c_string",
           "export_c"]

FORMATS = ("c", "kselftest")
PAGE_SIZE = 4096
KSM_WAIT_TIMEOUT_S = 600

# uapi values (x86-64) of every constant a scenario may name, for libc headers
# older than the kernel (bookworm's have no PR_SET_MEMORY_MERGE, for one).
CONSTANTS: dict[str, int] = {
    "PROT_NONE": 0x0, "PROT_READ": 0x1, "PROT_WRITE": 0x2, "PROT_EXEC": 0x4,
    "PROT_GROWSDOWN": 0x01000000, "PROT_GROWSUP": 0x02000000,
    "MAP_SHARED": 0x01, "MAP_PRIVATE": 0x02, "MAP_SHARED_VALIDATE": 0x03,
    "MAP_FIXED": 0x10, "MAP_ANONYMOUS": 0x20, "MAP_ANON": 0x20, "MAP_32BIT": 0x40,
    "MAP_GROWSDOWN": 0x0100, "MAP_DENYWRITE": 0x0800, "MAP_EXECUTABLE": 0x1000,
    "MAP_LOCKED": 0x2000, "MAP_NORESERVE": 0x4000, "MAP_POPULATE": 0x8000,
    "MAP_NONBLOCK": 0x10000, "MAP_STACK": 0x20000, "MAP_HUGETLB": 0x40000,
    "MAP_SYNC": 0x80000, "MAP_FIXED_NOREPLACE": 0x100000, "MAP_UNINITIALIZED": 0x4000000,
    "MADV_NORMAL": 0, "MADV_RANDOM": 1, "MADV_SEQUENTIAL": 2, "MADV_WILLNEED": 3,
    "MADV_DONTNEED": 4, "MADV_FREE": 8, "MADV_REMOVE": 9, "MADV_DONTFORK": 10,
    "MADV_DOFORK": 11, "MADV_MERGEABLE": 12, "MADV_UNMERGEABLE": 13, "MADV_HUGEPAGE": 14,
    "MADV_NOHUGEPAGE": 15, "MADV_DONTDUMP": 16, "MADV_DODUMP": 17, "MADV_WIPEONFORK": 18,
    "MADV_KEEPONFORK": 19, "MADV_COLD": 20, "MADV_PAGEOUT": 21, "MADV_POPULATE_READ": 22,
    "MADV_POPULATE_WRITE": 23, "MADV_DONTNEED_LOCKED": 24, "MADV_COLLAPSE": 25,
    "MADV_GUARD_INSTALL": 102, "MADV_GUARD_REMOVE": 103,
    "MREMAP_MAYMOVE": 1, "MREMAP_FIXED": 2, "MREMAP_DONTUNMAP": 4,
    "PR_SET_THP_DISABLE": 41, "PR_GET_THP_DISABLE": 42,
    "PR_SET_MEMORY_MERGE": 67, "PR_GET_MEMORY_MERGE": 68,
}

_C_KEYWORDS = frozenset(["auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary", "asm", "typeof", "bool", "true", "false"])
# Names main() uses, lower-case macros of the headers included, and gcc's
# predefined `linux`/`unix`: a scenario name equal to one of them is renamed.
_RESERVED = _C_KEYWORDS | frozenset(["main", "argc", "argv", "pid", "errno", "stdin", "stdout", "stderr", "linux", "unix", "major", "minor", "makedev", "assert", "offsetof", "alloca", "mmap", "munmap", "madvise", "mremap", "mprotect", "memset", "fork", "prctl", "exit", "_exit", "getpid", "strcmp", "atoi", "strtoull", "clock_gettime", "uname", "sigsetjmp", "siglongjmp", "mkdir", "rmdir", "read", "write", "open", "close", "step", "start", "self", "main_pid", "knobs", "cgroups", "seen", "any_missing", "unique", "say", "now_ns", "errno_name", "signal_name", "write_file", "die", "check", "save_knob", "save_knobs", "restore_knobs", "on_fault", "catch_faults", "no_fault", "fault_return", "fault_expected", "counter", "report", "sysfs", "sleep_ns", "ksm_wait", "touch", "read_pages", "read_sink", "pressure", "sources", "file_field", "pressure_child", "cgroup_create", "cgroup_attach", "cgroup_remove", "memory_reclaim", "dump", "baton", "baton_setup", "baton_reopen", "give_turn", "wait_turn", "my_turn", "proc_exit", "become", "spawn", "finish", "resume_after", "step_proc", "ktap_result", "ktap_failed", "ktap_failed_main", "u"])
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_COUNTER = re.compile(r"[a-z][a-z0-9_]{0,59}\Z")
_SIGNALS = ("SIGSEGV", "SIGBUS")
_ERRNO_STEPS = (Mmap, Munmap, Madvise, Mremap, Mprotect, Prctl, Sysfs, Fork, Spawn, Cgroup,
                CgroupAttach, MemoryReclaim)
_FAULT_STEPS = (Memset, Touch, Read)


class ExportError(KsmreproError):
    """A scenario uses something the C export cannot express."""


# -- escaping ----------------------------------------------------------------------------------

def c_string(text: str) -> str:
    """``text`` as a C string literal: printable ASCII stays, everything else is escaped.

    ``?`` is escaped too (no trigraph can form) and non-ASCII goes byte by byte
    as three-digit octal escapes, which cannot swallow the character after them.

    >>> c_string('a"b\\\\c??/')
    '"a\\\\"b\\\\\\\\c\\\\?\\\\?/"'
    """
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if ch in "\"\\?":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """One line of text made safe inside ``/* ... */``.

    Non-ASCII and control characters become Python-style escapes, and the
    sequences that could end or nest a comment, or form a trigraph, are broken:
    ``*/`` -> ``*\\/``, ``/*`` -> ``/\\*``, ``??`` -> ``?\\?``; a trailing
    backslash (a line splice) gets a space after it.
    """
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F else repr(ch)[1:-1] for ch in text)
    prev = None
    while prev != text:
        prev = text
        text = text.replace("*/", "*\\/").replace("/*", "/\\*").replace("??", "?\\?")
    if text.endswith("\\"):
        text += " "
    return text


def c_identifier(name: str, taken: set[str], prefix: str = "") -> str:
    """A valid C identifier for a scenario name, distinct from every one in ``taken``.

    Characters outside ``[A-Za-z0-9_]`` become ``_``; a name that would be a
    keyword, a name ``main()`` uses, a macro-like upper-case name or start with a
    digit or ``_`` gets ``v_`` in front; clashes get ``_2``, ``_3``...  The
    result is added to ``taken``.
    """
    ident = prefix + re.sub(r"[^A-Za-z0-9_]", "_", name.encode("ascii", "replace").decode())
    if (not prefix and (not ident or not _IDENT.match(ident) or ident.startswith("_")
                        or ident in _RESERVED or ident.upper() == ident)):
        ident = "v_" + ident
    ident = ident[:48]
    candidate, n = ident, 2
    while candidate in taken or candidate in _RESERVED:
        candidate, n = f"{ident}_{n}", n + 1
    taken.add(candidate)
    return candidate


# -- values -------------------------------------------------------------------------------------

def c_size(n: int) -> str:
    """A byte count the way a developer writes it: ``3 * PAGE_SIZE``, ``512 * KB``, ``1 * GB``."""
    if n == 0:
        return "0"
    if n == PAGE_SIZE:
        return "PAGE_SIZE"
    if n % PAGE_SIZE == 0 and n // PAGE_SIZE <= 64:
        return f"{n // PAGE_SIZE} * PAGE_SIZE"
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n % size == 0:
            return f"{n // size} * {unit}"
    return f"{n}UL"


def _yaml_size(n: int) -> str:
    if n == PAGE_SIZE:
        return "1 page"
    if n % PAGE_SIZE == 0 and n // PAGE_SIZE <= 64:
        return f"{n // PAGE_SIZE} pages"
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _yaml_duration(ns: int) -> str:
    for unit, size in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def _yaml_addr(a: AddrExpr) -> str:
    if a.name is None:
        return hex(a.offset)
    if a.offset == 0:
        return a.name
    return f"{a.name} {'+' if a.offset > 0 else '-'} {_yaml_size(abs(a.offset))}"


_SIZE_FIELDS = {"length", "old_size", "new_size", "anon", "amount", "memory_max"}


def render_step(step: Step) -> str:
    """The step as one line of YAML-ish text (used when its source lines are not at hand)."""
    base = {f.name for f in dataclasses.fields(Step)}
    parts = []
    for f in dataclasses.fields(step):
        if f.name in base:
            continue
        v = getattr(step, f.name)
        if v is None or (f.default is not dataclasses.MISSING and v == f.default):
            continue
        key = f.name.rstrip("_")
        if isinstance(v, AddrExpr):
            text = _yaml_addr(v)
        elif f.name in _SIZE_FIELDS and isinstance(v, int):
            text = _yaml_size(v)
        elif isinstance(step, Expect) and f.name == "values":
            text = ", ".join(f"{k}: {c}" for k, c in v)
            return f"expect: {{{text}}}"
        elif isinstance(v, tuple):
            text = "[" + ", ".join(map(str, v)) + "]"
        elif isinstance(step, Memset) and f.name == "value":
            text = hex(v)
        else:
            text = str(v)
        parts.append(f"{key}: {text}")
    if isinstance(step, Sleep):
        return f"sleep: {_yaml_duration(step.ns)}"
    if isinstance(step, Print) and step.counters is None:
        return "print: all"
    if isinstance(step, Print):
        return "print: [" + ", ".join(step.counters or ()) + "]"
    extra = [f"{k}: {v}" for k, v in (("proc", step.proc if step.proc != "main" else None),
                                      ("errno", step.errno), ("signal", step.signal)) if v]
    body = ", ".join(parts + extra)
    return f"{step.KEY}: {{{body}}}" if body else f"{step.KEY}:"


def _strip_yaml_comment(line: str) -> str:
    # A '#' after whitespace, outside quotes, starts a YAML comment.
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _source_lines(scenario: Scenario, step: Step, lines: list[str] | None) -> list[str] | None:
    """The step's own lines in the scenario file, when the file is there and agrees."""
    if not lines or step.line <= 0 or step.line > len(lines):
        return None
    first = lines[step.line - 1]
    m = re.match(r"(\s*)(-\s+)?", first)
    assert m is not None
    text = first[m.end():]
    if not text.startswith(step.KEY + ":"):
        return None
    indent = len(m.group(1))  # the dash's column: continuation lines are deeper
    content = m.end()  # the column the step's text starts at
    out = [_strip_yaml_comment(text)]
    for line in lines[step.line:]:
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if not stripped or stripped.startswith("#") or depth <= indent:
            break
        line = _strip_yaml_comment(line)
        out.append(line[content:] if depth >= content else line.strip())
    return [x for x in out if x.strip()]


def wrap_c(line: str, indent: int, width: int = 90) -> list[str]:
    """Break a long C statement after commas, continuing under its open parenthesis.

    ``indent`` is the column the statement starts at (tabs count 8).
    """
    out: list[str] = []
    while indent + len(line) > width:
        depth, opens, cut = 0, [], -1
        in_str = False
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_str = not in_str
            elif in_str:
                continue
            elif ch == "(":
                opens.append(i)
            elif ch == ")" and opens:
                opens.pop()
            elif ch == "," and opens and indent + i < width:
                cut, depth = i, opens[-1]
        if cut < 0:
            break
        out.append(line[:cut + 1])
        line = " " * (depth + 1) + line[cut + 1:].lstrip()
    out.append(line)
    return out


# -- the exporter -------------------------------------------------------------------------------

class _Exporter:
    def __init__(self, scenario: Scenario, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ExportError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
        self.scn = scenario
        self.fmt = fmt
        self.helpers: set[str] = set()
        self.constants: set[str] = set()
        self.taken: set[str] = set()
        self.vars: dict[tuple[str, str], str] = {}  # (proc, name) -> C identifier
        self.var_order: list[str] = []
        self.procs: dict[str, str] = {}  # proc name -> enum constant
        self.proc_taken: set[str] = {"P_ALL", "P_PID", "P_PGID", "P_PIDFD", "P_main"}
        self.knobs: list[str] = []
        self.cgroups: list[str] = []
        self.uses_pid = False
        self.expects: list[int] = []
        self.source: list[str] | None = None
        try:
            if scenario.path and scenario.path != "<memory>":
                self.source = Path(scenario.path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            self.source = None
        self.procs["main"] = "P_main"
        self.multi = any(s.proc != "main" or isinstance(s, (Fork, Spawn)) for s in scenario.steps)

    # names ------------------------------------------------------------------------------------

    def _proc(self, name: str) -> str:
        if name not in self.procs:
            self.procs[name] = c_identifier(name, self.proc_taken, prefix="P_")
        return self.procs[name]

    def _bind(self, step: Step, name: str) -> str:
        # A forked child has a copy of its parent's names: one C variable per name
        # (every process has its own copy of main()'s static variables anyway).
        key = ("*", name)
        if key not in self.vars:
            self.vars[key] = c_identifier(name, self.taken)
            self.var_order.append(self.vars[key])
        return self.vars[key]

    def _addr(self, step: Step, a: AddrExpr) -> str:
        if a.name is None:
            return f"(char *){a.offset:#x}UL"
        key = ("*", a.name)
        if key not in self.vars:
            raise ExportError(f"step {step.index}: address name {a.name!r} is never bound")
        var = self.vars[key]
        if a.offset == 0:
            return var
        return f"{var} {'+' if a.offset > 0 else '-'} {c_size(abs(a.offset))}"

    def _flags(self, step: Step, names: tuple[str, ...], what: str) -> str:
        if not names:
            return "0"
        for n in names:
            if n not in CONSTANTS:
                raise ExportError(f"step {step.index}: unknown {what} {n!r}")
            self.constants.add(n)
        return " | ".join(names)

    def _errno(self, step: Step) -> str:
        if step.errno is None:
            return "0"
        if not isinstance(step, _ERRNO_STEPS):
            raise ExportError(f"step {step.index} ({step.KEY}): `errno:` applies to system calls")
        if step.errno not in runtime.ERRNO_NAMES:
            raise ExportError(f"step {step.index}: unknown errno {step.errno!r}")
        return step.errno

    def _counter(self, step: Step, name: str) -> str:
        name = COUNTER_ALIASES.get(name, name)
        if not _COUNTER.match(name):
            raise ExportError(f"step {step.index}: {name!r} is not a KSM counter name")
        return c_string(name)

    # steps ------------------------------------------------------------------------------------

    def _check(self, failed: str, step: Step) -> str:
        self.helpers.add("check")
        return f"check({failed}, {self._errno(step)});"

    def step_code(self, step: Step) -> list[str]:  # noqa: C901 - one branch per step type
        h = self.helpers
        if isinstance(step, Mmap):
            addr = self._addr(step, step.addr) if step.addr else "NULL"
            prot = self._flags(step, step.prot, "prot")
            flags = self._flags(step, step.flags, "mmap flag")
            var = self._bind(step, step.as_)
            return [f"{var} = mmap({addr}, {c_size(step.length)}, {prot}, {flags}, -1, 0);",
                    self._check(f"{var} == MAP_FAILED", step)]
        if isinstance(step, Munmap):
            return [self._check(
                f"munmap({self._addr(step, step.addr)}, {c_size(step.length)}) < 0", step)]
        if isinstance(step, Madvise):
            adv = self._flags(step, (step.advice,), "advice")
            return [self._check(
                f"madvise({self._addr(step, step.addr)}, {c_size(step.length)}, {adv}) < 0",
                step)]
        if isinstance(step, Mprotect):
            prot = self._flags(step, step.prot, "prot")
            return [self._check(
                f"mprotect({self._addr(step, step.addr)}, {c_size(step.length)}, {prot}) < 0",
                step)]
        if isinstance(step, Mremap):
            old = self._addr(step, step.old_addr)
            flags = self._flags(step, step.flags, "mremap flag")
            args = f"{old}, {c_size(step.old_size)}, {c_size(step.new_size)}, {flags}"
            if step.new_addr is not None:
                args += f", {self._addr(step, step.new_addr)}"
            elif "MREMAP_DONTUNMAP" in step.flags:
                # glibc's mremap() reads its variadic new_address for MREMAP_FIXED and for
                # MREMAP_DONTUNMAP: without one the kernel gets whatever is in the register
                # (EINVAL from mremap_to() when it is not page-aligned)
                args += ", NULL"
            if step.as_ is None:
                return [self._check(f"mremap({args}) == MAP_FAILED", step)]
            var = self._bind(step, step.as_)
            return [f"{var} = mremap({args});", self._check(f"{var} == MAP_FAILED", step)]
        if isinstance(step, _FAULT_STEPS):
            return self._memory_access(step)
        if isinstance(step, Fork):
            self.uses_pid = True
            self.helpers.add("become")
            return ["pid = fork();", self._check("pid < 0", step), "if (pid == 0)",
                    f"\tbecome({self._proc(step.child)});"]
        if isinstance(step, Spawn):
            self.helpers.add("spawn")
            return [self._check(f"spawn({self._proc(step.name)}, {step.index}) < 0", step)]
        if isinstance(step, Exit):
            if step.proc == "main":
                if any(s.proc == "main" for s in self.scn.steps[step.index + 1:]) or \
                        step.index != len(self.scn.steps) - 1:
                    raise ExportError(f"step {step.index}: main can only exit as the last step")
                return ["/* main exits at the end, below */"]
            self.helpers.add("proc_exit")
            return [f"proc_exit({step.index});"]
        if isinstance(step, Prctl):
            opt = self._flags(step, (step.option,), "prctl option")
            return [self._check(f"prctl({opt}, {step.value}UL, 0UL, 0UL, 0UL) < 0", step)]
        if isinstance(step, Sysfs):
            if not step.path.startswith("/sys/") or "/../" in step.path + "/":
                raise ExportError(f"step {step.index}: sysfs path {step.path!r} is not under /sys")
            if step.path not in self.knobs:
                self.knobs.append(step.path)
            h.add("sysfs")
            return [f"sysfs({c_string(step.path)}, {c_string(str(step.value))}, "
                    f"{self._errno(step)});"]
        if isinstance(step, Sleep):
            h.add("sleep_ns")
            return [f"sleep_ns({step.ns}LL);\t/* {_yaml_duration(step.ns)} */"]
        if isinstance(step, KsmWait):
            h.add("ksm_wait")
            return [f"ksm_wait({step.full_scans});"]
        if isinstance(step, Pressure):
            h.add("pressure")
            cpu = -1 if step.cpu is None else step.cpu
            return [f"pressure({c_size(step.anon)}, {step.touches}, {cpu});"]
        if isinstance(step, Print):
            h.add("report")
            counters = tuple(COUNTERS) if step.counters is None else step.counters
            names = ", ".join(self._counter(step, n) for n in counters)
            return [f'report("print", {names}, NULL);']
        if isinstance(step, Expect):
            return self._expect(step)
        if isinstance(step, Cgroup):
            h.add("cgroup")
            mx = -1 if step.memory_max is None else step.memory_max
            return [f"cgroup_create({self._cgroup(step, step.name)}, {mx}LL, "
                    f"{self._errno(step)});"]
        if isinstance(step, CgroupAttach):
            h.add("cgroup")
            return [f"cgroup_attach({self._cgroup(step, step.cgroup)}, {self._errno(step)});"]
        if isinstance(step, MemoryReclaim):
            h.add("cgroup")
            return [f"memory_reclaim({self._cgroup(step, step.cgroup)}, "
                    f"{c_size(step.amount)}, {self._errno(step)});"]
        if isinstance(step, Dump):
            h.add("dump")
            return [f"dump({int('maps' in step.what)}, {int('pages' in step.what)}, "
                    f"{int('ksm' in step.what)});"]
        raise ExportError(f"step {step.index}: {step.KEY!r} cannot be exported to C")

    def _cgroup(self, step: Step, name: str) -> str:
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise ExportError(f"step {step.index}: {name!r} is not a cgroup name")
        if name not in self.cgroups:
            self.cgroups.append(name)
        return c_string(name)

    def _memory_access(self, step: Step) -> list[str]:
        assert isinstance(step, _FAULT_STEPS)
        if step.errno is not None:
            raise ExportError(f"step {step.index} ({step.KEY}): `errno:` applies to system calls")
        addr = self._addr(step, step.addr)
        if isinstance(step, Memset):
            code = f"memset({addr}, {step.value:#x}, {c_size(step.length)});"
        elif isinstance(step, Touch):
            self.helpers.add("touch")
            value = -1 if step.value is None else step.value
            code = f"touch({addr}, {c_size(step.length)}, {step.times}, {value});"
        else:
            self.helpers.add("read_pages")
            code = f"read_pages({addr}, {c_size(step.length)});"
        self.helpers.add("fault")
        if step.signal is None:
            return [code]
        if step.signal not in _SIGNALS:
            raise ExportError(f"step {step.index}: cannot expect signal {step.signal!r}")
        self.helpers.add("no_fault")
        return ["fault_expected = 1;", "if (!sigsetjmp(fault_return, 1)) {", f"\t{code}",
                "\tno_fault();", "}", "fault_expected = 0;"]

    def _expect(self, step: Expect) -> list[str]:
        self.helpers.add("report")
        if not step.values:
            raise ExportError(f"step {step.index}: expect without counters")
        if len(step.values) > 64:
            raise ExportError(f"step {step.index}: more than 64 counters in one expect")
        names = ", ".join(self._counter(step, n) for n, _ in step.values)
        lines = [f'report("expect", {names}, NULL);']
        if self.fmt == "kselftest":
            self.helpers.add("ktap")
            self.expects.append(step.index)
            conds = " && ".join(f"seen[{i}] {c.op} {c.value}LL"
                                for i, (_, c) in enumerate(step.values))
            what = f"step {step.index}"
            if step.label:
                what += f" ({step.label})"
            what += ": " + ", ".join(f"{n} {c.op} {c.value}" for n, c in step.values)
            lines.append(f"ktap_result(!any_missing && {conds}, {len(self.expects)},")
            lines.append(f"\t    {c_string(what)});")
        return lines

    # the program ------------------------------------------------------------------------------

    def comment_block(self, step: Step) -> list[str]:
        src = _source_lines(self.scn, step, self.source)
        text = src if src else [render_step(step)]
        head = f"step {step.index}"
        if step.label is not None:
            head += f" ({c_comment(step.label)})"
        if step.proc != "main":
            head += f" in {c_comment(step.proc)}"
        if len(text) == 1 and len(head) + len(text[0]) < 88:
            return [f"/* {head}: {c_comment(text[0])} */"]
        return ["/*", f" * {head}:"] + [f" *   {c_comment(t)}" for t in text] + [" */"]

    def generate(self) -> str:
        scn = self.scn
        # Bind names in step order first, so that variables are declared in that order.
        blocks: list[list[str]] = []
        for step in scn.steps:
            self._proc(step.proc)
            body = self.step_code(step)
            blocks.append(self.comment_block(step) + body)
        if not any(isinstance(s, (Expect, Print)) for s in scn.steps):
            self.helpers.add("say")
        for key, _value in scn.ksm:
            path = f"/sys/kernel/mm/ksm/{key}"
            if not _COUNTER.match(str(key)):
                raise ExportError(f"ksm: {key!r} is not a KSM knob name")
            if path not in self.knobs:
                self.knobs.insert(0, path)
        if self.knobs:
            self.helpers.update({"knobs", "write_file", "check"})
        self.helpers.update({"say", "now_ns"})
        if self.multi:
            self.helpers.add("baton")
        if "pressure" in self.helpers:
            self.helpers.add("signal_name")
        names = runtime.needed(self.helpers)
        if self.multi:
            names = ["die_multi" if n == "die" else n for n in names]
        out = self._header()
        out += self._preamble()
        for n in names:
            out.append(runtime.HELPERS[n][0])
        out += self._main(blocks)
        return "\n".join(out).rstrip() + "\n"

    def _header(self) -> list[str]:
        scn = self.scn
        m = scn.machine
        lines = ["/*", f" * {c_comment(scn.name)}: generated by `ksmrepro export"
                 f"{' --format kselftest' if self.fmt == 'kselftest' else ''}` from "
                 f"{c_comment(Path(scn.path).name if scn.path else '<memory>')}.", " *"]
        for para in (scn.description or "").strip().split("\n\n"):
            for line in textwrap.wrap(c_comment(" ".join(para.split())), 76):
                lines.append(f" * {line}")
        if scn.description:
            lines.append(" *")
        if scn.source:
            lines.append(f" * Source: {c_comment(scn.source)}")
        lines += [
            f" * Machine: boot with mem={m.memory >> 20}M, {m.swap >> 20}M of swap, "
            f"{m.cpus} CPUs, THP {c_comment(m.thp)}.",
            " *",
            f" * Build: gcc -Wall -Wextra -O2 -static -o {self._binary_name()} "
            f"{self._binary_name()}.c",
            " * Run as root: it writes the KSM knobs in /sys/kernel/mm/ksm (their old values",
            " * are written back at exit).  Each print/expect step prints one line:",
            " *   KSMREPRO step=N op=expect time_ns=T pages_shared=1 pages_sharing=1",
            " * a failing step prints KSMREPRO step=N errno=EINVAL (or signal=SIGSEGV).",
        ]
        if self.fmt == "kselftest":
            lines.append(" * Results are KTAP: one ok/not ok per expect step.")
        if self.multi:
            lines += [" *", " * Processes: " + ", ".join(
                f"{c_comment(p)} ({c})" for p, c in self.procs.items())]
        lines += [" */"]
        return lines

    def _binary_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.scn.name) or "testcase"

    def _preamble(self) -> list[str]:
        out = ["#define _GNU_SOURCE"]
        out += [f"#include <{h}>" for h in (
            "dirent.h", "errno.h", "fcntl.h", "sched.h", "setjmp.h", "signal.h", "stdarg.h",
            "stdio.h", "stdlib.h", "string.h", "time.h", "unistd.h", "sys/mman.h",
            "sys/prctl.h", "sys/stat.h", "sys/types.h", "sys/utsname.h", "sys/wait.h")]
        out += ["", "#define PAGE_SIZE 4096UL", "#define KB 1024UL", "#define MB (1024 * KB)",
                "#define GB (1024 * MB)",
                f"#define LINE_PREFIX \"{'# ' if self.fmt == 'kselftest' else ''}\"",
                f"#define KSM_WAIT_TIMEOUT {KSM_WAIT_TIMEOUT_S}LL"]
        consts = sorted(self.constants)
        if consts:
            out += ["", "/* Constants newer than some libc headers (values from the kernel's uapi) */"]
            for c in consts:
                out += [f"#ifndef {c}", f"#define {c} {CONSTANTS[c]:#x}", "#endif"]
        out += ["", "static volatile int step = -1;\t/* the step being run (read by the SIGSEGV handler) */",
                "static struct timespec start;\t/* time_ns counts from here */",
                "static pid_t main_pid;"]
        if self.multi:
            procs = list(self.procs.values())
            out += ["", "/* The scenario's processes, and which one runs each step */",
                    "enum { " + ", ".join(procs) + ", NPROCS };",
                    "#define BATON_FD 100",
                    "static int self = P_main;",
                    f"static const int step_proc[{len(self.scn.steps) + 1}] = {{"]
            row: list[str] = []
            for s in self.scn.steps:
                row.append(self.procs[s.proc])
            row.append("P_main")
            for i in range(0, len(row), 6):
                out.append("\t" + ", ".join(row[i:i + 6]) + ",")
            out.append("};")
        if self.knobs:
            out += ["", "/* sysfs knobs this testcase writes, restored at exit */",
                    "struct knob {", "\tconst char *path;", "\tchar old[64];", "\tint saved;",
                    "};", "", "static struct knob knobs[] = {"]
            out += [f"\t{{ .path = {c_string(k)} }}," for k in self.knobs]
            out.append("};")
        if self.cgroups:
            out += ["", "/* memory cgroups this testcase makes, removed at exit */",
                    "static const char *const cgroups[] = {"]
            out += [f"\t{c_string(c)}," for c in self.cgroups]
            out.append("};")
        if "fault" in runtime.needed(self.helpers):
            if self.multi:
                exit_code = ("do { if (self != P_main) { char b = '!'; "
                             "if (write(BATON_FD + 1, &b, 1) < 0) _exit(2); } "
                             + ("else restore_knobs(); " if self.knobs else "")
                             + "_exit(1); } while (0)")
            else:
                exit_code = ("do { restore_knobs(); _exit(1); } while (0)" if self.knobs
                             else "_exit(1)")
            out.append(f"#define FAULT_EXIT() {exit_code}")
        out.append("")
        return out

    def _main(self, blocks: list[list[str]]) -> list[str]:
        scn = self.scn
        takes_args = bool({"spawn", "pressure"} & self.helpers)
        out = ["int main(int argc, char *argv[])" if takes_args else "int main(void)", "{"]
        if self.var_order:
            out.append(f"\tstatic char *{', *'.join(self.var_order)};"
                       "\t/* bound by mmap/mremap `as:` */")
        if self.uses_pid:
            out.append("\tstatic pid_t pid;")
        out.append("\tstruct utsname u;")
        out.append("")
        if "pressure" in self.helpers:
            out += ['\tif (argc == 5 && !strcmp(argv[1], "--ksmrepro-pressure"))',
                    "\t\tpressure_child(strtoull(argv[2], NULL, 10), atoi(argv[3]), "
                    "atoi(argv[4]));"]
        setup = ["clock_gettime(CLOCK_MONOTONIC, &start);", "main_pid = getpid();"]
        if "fault" in runtime.needed(self.helpers):
            setup.append("catch_faults();")
        if "spawn" in self.helpers:
            out += ['\tif (argc == 4 && !strcmp(argv[1], "--ksmrepro-spawn")) {',
                    "\t\tself = atoi(argv[2]);", "\t\tresume_after = atoi(argv[3]);",
                    "\t\tbaton_reopen();", "\t\tclock_gettime(CLOCK_MONOTONIC, &start);",
                    "\t\tmain_pid = -1;"]
            if "fault" in runtime.needed(self.helpers):
                out.append("\t\tcatch_faults();")
            out += ["\t\tgoto steps;", "\t}"]
        out += [f"\t{s}" for s in setup]
        if self.fmt == "kselftest":
            n = len(self.expects)
            out += ['\tif (geteuid() != 0 || access("/sys/kernel/mm/ksm/run", W_OK) < 0) {',
                    '\t\tprintf("TAP version 13\\n1..0 # SKIP needs root and '
                    'CONFIG_KSM\\n");',
                    "\t\treturn 4;\t/* KSFT_SKIP */", "\t}",
                    f'\tprintf("TAP version 13\\n1..{n}\\n");', "\tfflush(stdout);"]
        if self.multi:
            out += ["\tbaton_setup();", "\tprctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL);"]
            if self.fmt == "kselftest" and self.expects:
                out += ["\tktap_failed = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,",
                        "\t\t\t   MAP_SHARED | MAP_ANONYMOUS, -1, 0);",
                        "\tif (ktap_failed == MAP_FAILED)",
                        "\t\tktap_failed = &ktap_failed_main;"]
        out += ["\tuname(&u);", f'\tsay("begin steps={len(scn.steps)} release=%s", u.release);']
        if self.knobs:
            out.append("\tsave_knobs();")
        if scn.ksm:
            out += ["", "\t/* ksm: the scenario's initial knobs; one this kernel does not have",
                    "\t * (ENOENT, e.g. smart_scan before 6.7) is left out, as LTP's",
                    "\t * TST_SR_SKIP_MISSING does and as the models do */"]
            for key, value in scn.ksm:
                out.append(f"\tcheck(write_file({c_string(f'/sys/kernel/mm/ksm/{key}')}, "
                           f"{c_string(str(value))}) < 0 && errno != ENOENT, 0);")
        if "spawn" in self.helpers:
            out += ["steps:"]
        for step, block in zip(scn.steps, blocks, strict=False):
            out.append("")
            comment_len = next(i for i, line in enumerate(block)
                               if line.endswith("*/")) + 1
            comment, body = block[:comment_len], block[comment_len:]
            out += [f"\t{c}" for c in comment]
            tabs = "\t\t" if self.multi else "\t"
            lines = [f"{tabs}{w}" for b in body for w in wrap_c(b, 8 * len(tabs))]
            if self.multi:
                out += [f"\tif (my_turn({step.index})) {{", *lines, "\t}"]
            else:
                out += [f"\tstep = {step.index};", *lines]
        out.append("")
        if self.multi:
            out += ["\t/* the end: every process but main waits here until main is done */",
                    f"\tmy_turn({len(scn.steps)});",
                    "\tif (self != P_main) {", "\t\twait_turn();", "\t\texit(0);", "\t}",
                    "\tfinish();"]
        out.append('\tsay("end");')
        if self.fmt == "kselftest" and not self.expects:  # a 1..0 plan: nothing to judge
            out += ['\tprintf("# Totals: pass:0 fail:0\\n");', "\treturn 0;"]
        elif self.fmt == "kselftest":
            out += ['\tprintf("# Totals: pass:%d fail:%d\\n", '
                    f"{len(self.expects)} - *ktap_failed, *ktap_failed);",
                    "\treturn *ktap_failed ? 1 : 0;"]
        else:
            out.append("\treturn 0;")
        out.append("}")
        return out


def export_c(scenario: Scenario, fmt: str = "c") -> str:
    """The scenario as a self-contained C program (``fmt`` ``"c"`` or ``"kselftest"``).

    :raises ExportError: a step the export cannot express (an unknown constant,
        a name never bound, ``errno:`` on a memory access, ...).
    """
    return _Exporter(scenario, fmt).generate()
