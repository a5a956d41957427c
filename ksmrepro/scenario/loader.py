"""Load a scenario file into a :class:`~ksmrepro.scenario.steps.Scenario`.

The YAML is composed into a node tree with PyYAML's safe loader and walked here, node by node,
so that every :class:`~ksmrepro.errors.ScenarioError` carries the ``file:line:column`` (1-based)
of the offending node and says what was found and what was expected.  Semantic checks run in the
same pass, before anything is simulated: a name used in an address must have been bound earlier
by ``as:`` in the step's process (a forked child starts with a copy of its parent's names, a
spawned process with none), ``proc:`` must name a live process and a cgroup must exist before use.

:data:`STEP_SPECS`, :data:`COMMON_KEYS`, :data:`TOP_LEVEL_KEYS` and :data:`MACHINE_KEYS` are the
tables the JSON Schema (:mod:`ksmrepro.scenario.schema`) is generated from.

This module imports nothing from the simulator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ksmrepro.errors import ScenarioError
from ksmrepro.scenario import values as V
from ksmrepro.scenario.steps import (
    Cgroup,
    CgroupAttach,
    Dump,
    Exit,
    Expect,
    Fork,
    KsmWait,
    Machine,
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

__all__ = [
    "COMMON_KEYS",
    "KINDS",
    "MACHINE_KEYS",
    "STEP_SPECS",
    "TOP_LEVEL_KEYS",
    "ArgSpec",
    "Requirement",
    "StepSpec",
    "load_scenario",
    "load_scenario_text",
]


@dataclass(frozen=True)
class ArgSpec:
    """One argument of a step: its YAML key, value kind (a :data:`KINDS` key) and field."""

    name: str
    kind: str
    required: bool = True
    description: str = ""
    field: str = ""  # the Step dataclass field, when it differs from ``name``
    default: int | None = None  # stored when absent (None: the dataclass default)

    @property
    def attr(self) -> str:
        """The dataclass field this argument is stored in."""
        return self.field or self.name


@dataclass(frozen=True)
class Requirement:
    """``then`` is required when argument ``when`` is (or, for flags, includes) ``constant``."""

    when: str
    constant: str
    then: str


@dataclass(frozen=True)
class StepSpec:
    """How one step key is written.

    Either ``args`` (a mapping of arguments) or ``value_kind`` (the step's value is one value of
    that kind, stored in ``value_field``).  ``null_ok``: ``- exit:`` with no value is fine;
    ``all_ok``: the string ``all`` stands for the default arguments.
    """

    key: str
    cls: type[Step]
    description: str
    args: tuple[ArgSpec, ...] = ()
    value_kind: str = ""
    value_field: str = ""
    null_ok: bool = False
    all_ok: bool = False
    requires: tuple[Requirement, ...] = ()


KINDS: dict[str, str] = {
    "size": "a size: bytes (4096, 0x1000), '3 pages', '1 page', '512K', '2M' or '1G'",
    "addr": "an address: a name bound by 'as:' ('base', 'base + 1 page', 'base2 - 64K') "
    "or a number",
    "bind": "a name for the address (letters, digits, '_')",
    "new_proc": "a new process name (letters, digits, '_', '-', '.')",
    "new_cgroup": "a new cgroup name (letters, digits, '_', '-', '.')",
    "cgroup": "the name of a cgroup made by an earlier 'cgroup' step",
    "memory_max": "a size, or 'max'",
    "advice": "a MADV_* advice",
    "prot": "PROT_* flags: a list, a name, or 'A|B'",
    "map_flags": "MAP_* flags: a list, a name, or 'A|B'",
    "mremap_flags": "MREMAP_* flags: a list, a name, 'A|B', or 0",
    "byte": "a byte value, 0 to 255",
    "count": "an integer >= 1",
    "cpu": "a CPU number, 0 to machine.cpus - 1",
    "int": "an integer",
    "prctl_option": "a PR_* option",
    "sysfs_path": "a writable sysfs path",
    "sysfs_value": "a string or an integer, as written by 'echo'",
    "duration": "a duration: '1s', '20ms', '500us', '100ns', or an integer of milliseconds",
    "counters": "'all', a counter name, or a list of counter names",
    "expect": "a mapping of counter name to an integer or a comparison ('>= 1', '< 10')",
    "dump_what": "'all', or a list of: " + ", ".join(V.DUMP_WHAT),
    "proc": "the name of a live process: 'main', or one made by 'fork'/'spawn'",
    "label": "a string",
    "errno": "an errno name",
    "signal": "a signal name",
    "thp": "never, always or madvise",
    "costs": "native or qemu-tcg",
}
"""Value kinds of arguments, with what each expects (used in messages and the schema)."""


def _a(name: str, kind: str, description: str, required: bool = True, field: str = "",
       default: int | None = None) -> ArgSpec:
    return ArgSpec(name, kind, required, description, field, default)


_ADDR_LEN = (
    _a("addr", "addr", "start of the range"),
    _a("length", "size", "length of the range"),
)

STEP_SPECS: dict[str, StepSpec] = {
    s.key: s
    for s in (
        StepSpec("mmap", Mmap, "mmap(2); binds 'as' to the address", (
            _a("as", "bind", "name bound to the new mapping's address", field="as_"),
            _a("length", "size", "length of the mapping"),
            _a("addr", "addr", "hint, or the address with MAP_FIXED", False),
            _a("prot", "prot", "default [PROT_READ, PROT_WRITE]", False),
            _a("flags", "map_flags", "default [MAP_PRIVATE, MAP_ANONYMOUS]", False),
        )),
        StepSpec("munmap", Munmap, "munmap(2)", _ADDR_LEN),
        StepSpec("madvise", Madvise, "madvise(2)", (
            *_ADDR_LEN, _a("advice", "advice", "the MADV_* advice"),
        )),
        StepSpec("mremap", Mremap, "mremap(2); binds 'as' to the new address", (
            _a("old_addr", "addr", "start of the range to move"),
            _a("old_size", "size", "its length"),
            _a("new_size", "size", "the new length"),
            _a("flags", "mremap_flags", "MREMAP_* flags (default none)", False),
            _a("new_addr", "addr", "destination, with MREMAP_FIXED", False),
            _a("as", "bind", "name bound to the new address", False, field="as_"),
        ), requires=(Requirement("flags", "MREMAP_FIXED", "new_addr"),)),
        StepSpec("mprotect", Mprotect, "mprotect(2)", (
            *_ADDR_LEN, _a("prot", "prot", "the new protection"),
        )),
        StepSpec("memset", Memset, "write 'value' to every byte of the range", (
            _a("addr", "addr", "start of the range"),
            _a("value", "byte", "the byte written"),
            _a("length", "size", "length of the range"),
        )),
        StepSpec("touch", Touch, "write one byte in every page, 'times' passes", (
            *_ADDR_LEN,
            _a("times", "count", "passes (default 1)", False),
            _a("value", "byte", "the byte written (default: unique content per page)", False),
        )),
        StepSpec("read", Read, "read every page of the range", _ADDR_LEN),
        StepSpec("fork", Fork, "fork(2) of the step's process", (
            _a("child", "new_proc", "name of the child process"),
        )),
        StepSpec("spawn", Spawn, "a new process with an empty address space", (
            _a("name", "new_proc", "name of the new process"),
        )),
        StepSpec("exit", Exit, "the step's process exits", null_ok=True),
        StepSpec("prctl", Prctl, "prctl(2)", (
            _a("option", "prctl_option", "the PR_* option"),
            _a("value", "int", "arg2 (required by PR_SET_MEMORY_MERGE)", False, default=0),
        ), requires=(Requirement("option", "PR_SET_MEMORY_MERGE", "value"),)),
        StepSpec("sysfs", Sysfs, "echo value > path", (
            _a("path", "sysfs_path", "the sysfs file"),
            _a("value", "sysfs_value", "what is written"),
        )),
        StepSpec("sleep", Sleep, "simulated time passes", value_kind="duration", value_field="ns"),
        StepSpec("ksm_wait", KsmWait, "wait for that many more full scans of ksmd", (
            _a("full_scans", "count", "how many more full scans"),
        )),
        StepSpec("pressure", Pressure, "spawn, mmap 'anon', touch it 'touches' times, exit", (
            _a("anon", "size", "anonymous memory the pressure process uses"),
            _a("touches", "count", "passes over it (default 2)", False),
            _a("cpu", "cpu", "the CPU it runs on", False),
        )),
        StepSpec("print", Print, "record counters without judging them",
                 value_kind="counters", value_field="counters"),
        StepSpec("expect", Expect, "record counters and judge them",
                 value_kind="expect", value_field="values"),
        StepSpec("cgroup", Cgroup, "create the memory cgroup /sys/fs/cgroup/NAME", (
            _a("name", "new_cgroup", "the cgroup's name"),
            _a("memory_max", "memory_max", "memory.max (default max)", False),
        )),
        StepSpec("cgroup_attach", CgroupAttach, "move the step's process into a cgroup", (
            _a("cgroup", "cgroup", "the cgroup"),
        )),
        StepSpec("memory_reclaim", MemoryReclaim, "echo AMOUNT > memory.reclaim", (
            _a("cgroup", "cgroup", "the cgroup"),
            _a("amount", "size", "how much to reclaim"),
        )),
        StepSpec("dump", Dump, "ksmrepro: record the process's maps, pages and KSM trees", (
            _a("what", "dump_what", "what to record (default all)", False),
        ), null_ok=True, all_ok=True),
    )
}  # fmt: skip
"""Every step key and how it is written."""

COMMON_KEYS: dict[str, tuple[str, str]] = {
    "proc": ("proc", "the process that runs the step (default main)"),
    "label": ("label", "shown in reports instead of the step number"),
    "errno": ("errno", "the step is expected to fail with this errno"),
    "signal": ("signal", "the step is expected to fault with this signal"),
}
"""Keys any step may carry next to its step key: kind and description."""

TOP_LEVEL_KEYS: dict[str, str] = {
    "name": "short identifier, used in reports and test ids",
    "description": "free text",
    "source": "where the testcase comes from (mail subject, lore link, commit)",
    "tags": "list of strings, for selecting scenarios in CI",
    "machine": "the simulated machine: memory, swap, cpus, thp, costs",
    "ksm": "initial values of /sys/kernel/mm/ksm knobs",
    "models": "the behaviour models to run on when the command line names none",
    "known_failures": "model (expression) -> reason: its failing expectations are known",
    "steps": "the steps, run in order",
}
"""Top-level keys of a scenario, with descriptions."""

MACHINE_KEYS: dict[str, tuple[str, str]] = {
    "memory": ("size", "RAM, like mem= (default 1G)"),
    "swap": ("size", "swap space (default 2G; 0 = no swap)"),
    "cpus": ("count", "CPUs (default 2)"),
    "thp": ("thp", "transparent hugepages: never (default), always or madvise"),
    "costs": ("costs", "the time cost profile: native (default) or qemu-tcg"),
}
"""``machine:`` keys: kind and description."""

_REQUIRED_TOP = ("name", "steps")
_YAML = "tag:yaml.org,2002:"
_OK_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")}
_YAML_HINTS = {
    "that cannot start any token": "YAML indentation must use spaces, not tabs",
    "mapping values are not allowed here": "check the indentation, or quote a value with ': '",
    "could not find expected ':'": "check the indentation, or a missing ':' after a key",
    "expected <block end>": "check the indentation",
    "found another document": "write one scenario per file",
}


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate the scenario file at ``path``.

    :raises ScenarioError: the file cannot be read, is not valid YAML, or is not a valid scenario.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ScenarioError(name, 1, 1, f"cannot read the file: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ScenarioError(name, line, column, f"not UTF-8 text: {e.reason}") from e
    return load_scenario_text(text, name)


def load_scenario_text(text: str, path: str = "<string>") -> Scenario:
    """Validate the scenario in ``text``; ``path`` is used in messages and stored in the result.

    :raises ScenarioError: ``text`` is not valid YAML or not a valid scenario.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            raise _yaml_error(path, e) from e
        except yaml.YAMLError as e:
            raise ScenarioError(path, 1, 1, f"invalid YAML: {e}") from e
        return _Loader(path, loader).scenario(root)
    finally:
        loader.dispose()


def _yaml_error(path: str, e: yaml.MarkedYAMLError) -> ScenarioError:
    mark = e.problem_mark or e.context_mark
    msg = e.problem or e.context or "invalid YAML"
    if e.context and e.problem and not e.context.startswith("while"):
        msg = f"{e.context}, {e.problem}"  # "expected a single document ..., but found ..."
    elif e.context and e.problem:
        msg = f"{msg} ({e.context}"
        if e.context_mark is not None and e.context_mark is not mark:
            msg += f" at line {e.context_mark.line + 1}, column {e.context_mark.column + 1}"
        msg += ")"
    for needle, hint in _YAML_HINTS.items():
        if needle in (e.problem or ""):
            msg += f"; {hint}"
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return ScenarioError(path, line, column, f"invalid YAML: {msg}")


def _describe(node: Node, value: Any, want_string: bool = False) -> str:
    """What ``node`` is, for 'found ...' in messages (with a hint to quote it, if that helps)."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if value is None:
        return "null"
    quote = " (quote it to make it a string)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}{quote}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int):
        found = f"the integer {value}"
    elif isinstance(value, float):
        found = f"the number {node.value}"
    else:
        return f"the {type(value).__name__} {node.value}{quote}"
    return found + quote if want_string else found


def _choices(names: Iterable[str]) -> str:
    return ", ".join(names)


class _Loader:
    """One pass over a composed YAML tree; raises the first :class:`ScenarioError` found."""

    def __init__(self, path: str, yaml_loader: yaml.SafeLoader) -> None:
        self.path = path
        self.yaml = yaml_loader
        self.machine = Machine()
        # Processes alive at the current step -> the address names they have bound.
        self.procs: dict[str, set[str]] = {"main": set()}
        self.exited: dict[str, int] = {}  # process -> step index it exited at
        self.cgroups: dict[str, int] = {}  # cgroup -> step index that made it
        self.proc = "main"  # the current step's process

    # -- basics ---------------------------------------------------------------------------------

    def fail(self, node: Node | None, message: str) -> NoReturn:
        if node is None:
            raise ScenarioError(self.path, 1, 1, message)
        mark = node.start_mark
        raise ScenarioError(self.path, mark.line + 1, mark.column + 1, message)

    def check_tags(self, root: Node) -> None:
        """Reject YAML tags other than the plain types (``!!python/...``, ``!custom``, ``<<``)."""
        seen: set[int] = set()
        todo = [root]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.tag == _YAML + "merge":
                self.fail(node, "YAML merge keys ('<<') are not supported; write the keys out")
            if node.tag not in _OK_TAGS:
                tag = node.tag.replace(_YAML, "!!")
                self.fail(node, f"unsupported YAML tag {tag!r}; expected plain YAML values "
                          "(strings, numbers, lists, mappings)")
            if isinstance(node, SequenceNode):
                todo.extend(node.value)
            elif isinstance(node, MappingNode):
                for k, v in node.value:
                    todo.extend((k, v))

    def value(self, node: Node) -> Any:
        """The Python value of a scalar node (None for lists and mappings)."""
        if not isinstance(node, ScalarNode):
            return None
        try:
            return self.yaml.construct_object(node, deep=True)
        except Exception as e:  # noqa: BLE001 - PyYAML raises many kinds for a bad tagged value
            tag = node.tag.replace(_YAML, "!!")
            self.fail(node, f"{node.value!r} is not a valid {tag} value ({e}); expected a value "
                      "of that type, or no tag")

    def wrong(self, node: Node, ctx: str, expected: str) -> NoReturn:
        found = _describe(node, self.value(node), want_string=expected.startswith("a string"))
        self.fail(node, f"{ctx}expected {expected}, found {found}")

    def mapping(self, node: Node, ctx: str, expected: str) -> list[tuple[str, Node, Node]]:
        """``(key, key node, value node)`` of a mapping; keys must be unique strings."""
        if not isinstance(node, MappingNode):
            self.wrong(node, ctx, expected)
        out: list[tuple[str, Node, Node]] = []
        seen: dict[str, Node] = {}
        for knode, vnode in node.value:
            key = self.value(knode)
            if not isinstance(key, str):
                self.wrong(knode, ctx, "a string key")
            if key in seen:
                first = seen[key].start_mark
                self.fail(knode, f"{ctx}duplicate key {key!r} (first at line {first.line + 1}, "
                          f"column {first.column + 1}); expected each key once")
            seen[key] = knode
            out.append((key, knode, vnode))
        return out

    def unknown_key(self, knode: Node, ctx: str, what: str, key: str,
                    choices: Iterable[str]) -> NoReturn:
        choices = list(choices)
        hint = V.did_you_mean(key, choices)
        if hint is not None:
            self.fail(knode, f"{ctx}unknown {what} {key!r}; did you mean {hint!r}?")
        self.fail(knode, f"{ctx}unknown {what} {key!r}; expected one of: {_choices(choices)}")

    def string(self, node: Node, ctx: str, *, nonempty: bool = False) -> str:
        v = self.value(node)
        if not isinstance(v, str) or not isinstance(node, ScalarNode):
            self.wrong(node, ctx, "a string")
        if nonempty and not v.strip():
            self.fail(node, f"{ctx}expected a non-empty string, found an empty one")
        return v

    def strings(self, node: Node, ctx: str) -> tuple[str, ...]:
        """A list of strings, or a single string."""
        if isinstance(node, SequenceNode):
            return tuple(self.string(n, ctx, nonempty=True) for n in node.value)
        if isinstance(node, ScalarNode) and isinstance(self.value(node), str):
            return (self.string(node, ctx, nonempty=True),)
        self.wrong(node, ctx, "a list of strings")

    def integer(self, node: Node, ctx: str, expected: str = "an integer",
                minimum: int | None = None, maximum: int | None = None) -> int:
        v = self.value(node)
        if not isinstance(v, int) or isinstance(v, bool):
            self.wrong(node, ctx, expected)
        if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            self.wrong(node, ctx, expected)
        return v

    def parsed(self, node: Node, ctx: str, parse: Callable[[Any], Any], expected: str) -> Any:
        """``parse(value)`` for an int or str scalar; its ValueError becomes a ScenarioError."""
        v = self.value(node)
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            self.wrong(node, ctx, expected)
        try:
            return parse(v)
        except ValueError as e:
            self.fail(node, f"{ctx}{e}")

    def constant(self, node: Node, ctx: str, choices: tuple[str, ...], what: str) -> str:
        v = self.value(node)
        if not isinstance(v, str):
            self.wrong(node, ctx, f"{what} name (one of: {_choices(choices)})")
        try:
            return V.parse_constant(v, choices, what)
        except ValueError as e:
            self.fail(node, f"{ctx}{e}")

    def flags(self, node: Node, ctx: str, choices: tuple[str, ...], what: str,
              zero_ok: bool = False) -> tuple[str, ...]:
        """Flag names from a list, a single name or ``A|B``; duplicates dropped, order kept."""
        if zero_ok and isinstance(node, ScalarNode) and self.value(node) == 0:
            return ()
        items = node.value if isinstance(node, SequenceNode) else [node]
        names: list[str] = []
        for item in items:
            v = self.value(item)
            if not isinstance(v, str) or not isinstance(item, ScalarNode):
                self.wrong(item, ctx, f"{what} names (a list, a name, or 'A|B')")
            try:
                names.extend(V.parse_flags(v, choices, what))
            except ValueError as e:
                self.fail(item, f"{ctx}{e}")
        return tuple(dict.fromkeys(names))

    # -- the scenario ---------------------------------------------------------------------------

    def scenario(self, root: Node | None) -> Scenario:
        if root is None:
            self.fail(None, "empty scenario; expected a mapping with 'name' and 'steps'")
        self.check_tags(root)
        items = self.mapping(root, "", "a scenario: a mapping with 'name' and 'steps'")
        top = {k: (kn, vn) for k, kn, vn in items}
        for key, knode, _ in items:
            if key not in TOP_LEVEL_KEYS:
                self.unknown_key(knode, "", "top-level key", key, TOP_LEVEL_KEYS)
        for key in _REQUIRED_TOP:
            if key not in top:
                self.fail(root, f"missing top-level key {key!r}; a scenario needs "
                          f"{' and '.join(map(repr, _REQUIRED_TOP))}")
        kw: dict[str, Any] = {"path": self.path}
        name_key, name_node = top["name"]
        kw["name"] = self.string(name_node, "name: ", nonempty=True)
        kw["line_of_name"] = name_key.start_mark.line + 1
        for key in ("description", "source"):
            node = top.get(key, (None, None))[1]
            if node is not None and not (isinstance(node, ScalarNode) and self.value(node) is None):
                kw[key] = self.string(node, f"{key}: ")
        if "tags" in top:
            kw["tags"] = self.strings(top["tags"][1], "tags: ")
        if "models" in top:
            kw["models"] = self.strings(top["models"][1], "models: ")
        if "known_failures" in top:
            kw["known_failures"] = self.known_failures(top["known_failures"][1])
        if "machine" in top:
            self.machine = kw["machine"] = self.machine_(top["machine"][1])
        if "ksm" in top:
            kw["ksm"] = self.ksm(top["ksm"][1])
        kw["steps"] = self.steps(top["steps"][1])
        return Scenario(**kw)

    def known_failures(self, node: Node) -> tuple[tuple[str, str], ...]:
        ctx = "known_failures: "
        out = []
        for key, _, vnode in self.mapping(node, ctx, "a mapping of model to reason"):
            if not key.strip():
                self.fail(node, f"{ctx}expected a model name, found an empty key")
            out.append((key, self.string(vnode, f"known_failures: {key}: ", nonempty=True)))
        return tuple(out)

    def machine_(self, node: Node) -> Machine:
        kw: dict[str, Any] = {}
        expected = "a mapping (memory, swap, cpus, thp, costs)"
        for key, knode, vnode in self.mapping(node, "machine: ", expected):
            ctx = f"machine.{key}: "
            if key not in MACHINE_KEYS:
                self.unknown_key(knode, "machine: ", "key", key, MACHINE_KEYS)
            if key in ("memory", "swap"):
                size = self.parsed(vnode, ctx, V.parse_size, KINDS["size"])
                if key == "memory" and size < 64 * V.PAGE_SIZE:
                    self.fail(vnode, f"{ctx}expected at least 256K of memory, found {size} bytes")
                kw[key] = size
            elif key == "cpus":
                kw[key] = self.integer(vnode, ctx, "a number of CPUs >= 1", minimum=1)
            elif key == "costs":
                kw[key] = self.constant(vnode, ctx, V.COST_PROFILES, "cost profile")
            else:
                kw[key] = self.constant(vnode, ctx, V.THP_MODES, "thp mode")
        return Machine(**kw)

    def ksm(self, node: Node) -> tuple[tuple[str, int | str], ...]:
        out: list[tuple[str, int | str]] = []
        for key, knode, vnode in self.mapping(node, "ksm: ", "a mapping of knob to value"):
            if key not in V.KSM_KNOBS:
                self.unknown_key(knode, "ksm: ", "knob", key, V.KSM_KNOBS)
            out.append((key, self.knob_value(vnode, f"ksm.{key}: ", key)))
        return tuple(out)

    def knob_value(self, node: Node, ctx: str, knob: str) -> int | str:
        allowed = V.KSM_KNOBS[knob][1]
        v = self.value(node)
        if allowed is None:
            return self.integer(node, ctx, "an integer >= 0", minimum=0)
        if v in allowed and not isinstance(v, bool) and isinstance(v, type(allowed[0])):
            return v  # type: ignore[no-any-return]
        self.wrong(node, ctx, "one of " + ", ".join(map(str, allowed)))

    # -- steps ----------------------------------------------------------------------------------

    def steps(self, node: Node) -> tuple[Step, ...]:
        if not isinstance(node, SequenceNode):
            self.wrong(node, "steps: ", "a list of steps")
        if not node.value:
            self.fail(node, "steps: expected at least one step, found an empty list")
        return tuple(self.step(i, n) for i, n in enumerate(node.value))

    def step(self, index: int, node: Node) -> Step:
        ctx = f"step {index}: "
        if not isinstance(node, MappingNode):
            v = self.value(node)
            if isinstance(v, str) and v in STEP_SPECS:
                self.fail(node, f"{ctx}expected a mapping with one step key, found the string "
                          f"{v!r}; did you mean '{v}: {{}}'?")
            self.wrong(node, ctx, "a mapping with one step key "
                       "(e.g. 'mmap: {as: a, length: 1 page}')")
        items = self.mapping(node, ctx, "a step")
        step_items = []
        for key, knode, vnode in items:
            if key in COMMON_KEYS:
                continue
            if key not in STEP_SPECS:
                self.unknown_key(knode, ctx, "step", key, [*STEP_SPECS, *COMMON_KEYS])
            step_items.append((key, knode, vnode))
        if not step_items:
            self.fail(node, f"{ctx}no step key; expected one of: {_choices(STEP_SPECS)}")
        if len(step_items) > 1:
            self.fail(step_items[1][1], f"{ctx}more than one step key ("
                      f"{', '.join(repr(k) for k, _, _ in step_items)}); expected exactly one "
                      "(write each call as its own '- ' item)")
        key, knode, vnode = step_items[0]
        spec = STEP_SPECS[key]
        ctx = f"step {index} ({key}): "
        kw: dict[str, Any] = {"index": index, "line": node.start_mark.line + 1,
                              "column": node.start_mark.column + 1}
        for ckey, _, cvnode in items:
            if ckey in COMMON_KEYS:
                kw[ckey] = self.common(ckey, cvnode, ctx)
        self.proc = kw.get("proc", "main")
        if self.proc not in self.procs:  # the default process, main, has exited
            self.fail(node, f"{ctx}process {self.proc!r} exited at step "
                      f"{self.exited[self.proc]}; say which live process runs this step with "
                      f"'proc:' ({_choices(self.procs) or 'none is left'})")
        if spec.value_kind:
            kw[spec.value_field] = self.kind(spec.value_kind, vnode, ctx)
        else:
            kw.update(self.args(spec, knode, vnode, ctx))
        step = spec.cls(**kw)
        self.effects(step, index)
        return step

    def common(self, key: str, node: Node, ctx: str) -> str:
        if key == "errno":
            return self.constant(node, ctx, V.ERRNOS, "errno")
        if key == "signal":
            return self.constant(node, ctx, V.SIGNALS, "signal")
        if key == "label":
            return self.string(node, f"{ctx}label: ", nonempty=True)
        name = self.string(node, f"{ctx}proc: ", nonempty=True)
        if name not in self.procs:
            if name in self.exited:
                self.fail(node, f"{ctx}process {name!r} exited at step {self.exited[name]}; "
                          f"expected a live process: {_choices(self.procs)}")
            self.unknown_key(node, ctx, "process", name, self.procs)
        return name

    def args(self, spec: StepSpec, knode: Node, node: Node, ctx: str) -> dict[str, Any]:
        names = [a.name for a in spec.args]
        expected = (f"a mapping of arguments ({', '.join(names)})" if names
                    else "no arguments ('{}' or nothing)")
        value = self.value(node)
        if isinstance(node, ScalarNode) and (
            (value is None and spec.null_ok) or (value == "all" and spec.all_ok)
        ):
            return {}
        items = self.mapping(node, ctx, expected)
        given: dict[str, tuple[Node, Node]] = {}
        for key, aknode, avnode in items:
            if key in COMMON_KEYS:
                self.fail(aknode, f"{ctx}{key!r} belongs to the step, not to its arguments; "
                          f"write it next to '{spec.key}:'")
            if key not in names:
                if not names:
                    self.fail(aknode, f"{ctx}unexpected argument {key!r}; "
                              f"'{spec.key}' takes no arguments")
                self.unknown_key(aknode, ctx, "argument", key, names)
            given[key] = (aknode, avnode)
        kw: dict[str, Any] = {}
        for arg in spec.args:
            if arg.name in given:
                kw[arg.attr] = self.kind(arg.kind, given[arg.name][1], ctx, arg.name)
            elif arg.required:
                required = [a.name for a in spec.args if a.required]
                self.fail(knode, f"{ctx}missing argument {arg.name!r}; expected "
                          f"{', '.join(required)}")
            elif arg.default is not None:
                kw[arg.attr] = arg.default
        for req in spec.requires:
            have = kw.get(next(a.attr for a in spec.args if a.name == req.when))
            hit = req.constant in have if isinstance(have, tuple) else have == req.constant
            if hit and req.then not in given:
                self.fail(knode, f"{ctx}missing argument {req.then!r}; {req.constant} needs it")
        return kw

    def effects(self, step: Step, index: int) -> None:
        """What a step does to the names the checks track."""
        names = self.procs[step.proc]
        if isinstance(step, (Mmap, Mremap)) and step.as_ is not None:
            names.add(step.as_)
        elif isinstance(step, Fork):
            self.procs[step.child] = set(names)
            self.exited.pop(step.child, None)
        elif isinstance(step, Spawn):
            self.procs[step.name] = set()
            self.exited.pop(step.name, None)
        elif isinstance(step, Exit):
            del self.procs[step.proc]
            self.exited[step.proc] = index
        elif isinstance(step, Cgroup):
            self.cgroups[step.name] = index

    # -- value kinds ----------------------------------------------------------------------------

    def kind(self, kind: str, node: Node, step_ctx: str, arg: str = "") -> Any:
        """Parse ``node`` as a value of ``kind`` (a :data:`KINDS` key).

        Messages start with ``step_ctx`` and the argument's name, except for constants, whose
        messages name what they are ("unknown advice ...").
        """
        expected = KINDS[kind]
        ctx = f"{step_ctx}{arg}: " if arg else step_ctx
        if kind == "size":
            return self.parsed(node, ctx, V.parse_size, expected)
        if kind == "addr":
            addr = self.parsed(node, ctx, V.parse_addr, expected)
            if addr.name is not None and addr.name not in self.procs[self.proc]:
                bound = sorted(self.procs[self.proc])
                known = f"names bound in {self.proc!r}: {_choices(bound)}" if bound else \
                    f"no names are bound in process {self.proc!r} yet"
                hint = V.did_you_mean(addr.name, bound)
                hint = f"did you mean {hint!r}? " if hint else ""
                self.fail(node, f"{ctx}name {addr.name!r} is not bound in process "
                          f"{self.proc!r} (bind it with 'as:' in an earlier mmap or mremap); "
                          f"{hint}{known}")
            return addr
        if kind == "bind":
            name = self.string(node, ctx, nonempty=True)
            return self.matching(node, ctx, name, V.NAME_PATTERN, expected)
        if kind in ("new_proc", "new_cgroup"):
            name = self.matching(node, ctx, self.string(node, ctx, nonempty=True),
                                 V.PROC_PATTERN, expected)
            if kind == "new_proc" and name in self.procs:
                self.fail(node, f"{ctx}process {name!r} already exists; expected a new name")
            if kind == "new_cgroup" and name in self.cgroups:
                self.fail(node, f"{ctx}cgroup {name!r} already exists (made at step "
                          f"{self.cgroups[name]}); expected a new name")
            return name
        if kind == "cgroup":
            name = self.string(node, ctx, nonempty=True)
            if name not in self.cgroups:
                hint = V.did_you_mean(name, self.cgroups)
                made = f"did you mean {hint!r}?" if hint else (
                    f"cgroups made so far: {_choices(self.cgroups)}" if self.cgroups
                    else "no cgroup has been made yet")
                self.fail(node, f"{ctx}cgroup {name!r} does not exist (make it with an earlier "
                          f"'cgroup' step); {made}")
            return name
        if kind == "memory_max":
            if self.value(node) == "max":
                return None
            return self.parsed(node, ctx, V.parse_size, expected)
        if kind == "advice":
            return self.constant(node, step_ctx, V.ADVICE, "advice")
        if kind in ("prot", "map_flags", "mremap_flags"):
            table = {"prot": (V.PROT_FLAGS, "prot flag"), "map_flags": (V.MAP_FLAGS, "mmap flag"),
                     "mremap_flags": (V.MREMAP_FLAGS, "mremap flag")}
            choices, what = table[kind]
            return self.flags(node, step_ctx, choices, what, zero_ok=kind == "mremap_flags")
        if kind == "byte":
            return self.integer(node, ctx, expected, 0, 255)
        if kind == "count":
            return self.integer(node, ctx, expected, minimum=1)
        if kind == "cpu":
            cpus = self.machine.cpus
            return self.integer(node, ctx, f"a CPU number, 0 to {cpus - 1} (machine.cpus is "
                                f"{cpus})", 0, cpus - 1)
        if kind == "int":
            return self.integer(node, ctx)
        if kind == "prctl_option":
            return self.constant(node, step_ctx, V.PRCTL_OPTIONS, "prctl option")
        if kind == "sysfs_path":
            return self.sysfs_path(node, ctx)
        if kind == "sysfs_value":
            v = self.value(node)
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                self.wrong(node, ctx, expected)
            return str(v)
        if kind == "duration":
            return self.parsed(node, ctx, V.parse_duration, expected)
        if kind == "counters":
            return self.counters(node, ctx)
        if kind == "expect":
            return self.expect(node, ctx)
        if kind == "dump_what":
            return self.dump_what(node, ctx)
        raise AssertionError(f"no parser for value kind {kind!r}")  # pragma: no cover

    def matching(self, node: Node, ctx: str, name: str, pattern: str, expected: str) -> str:
        if re.fullmatch(pattern, name) is None:
            self.fail(node, f"{ctx}bad name {name!r}; expected {expected}")
        return name

    def sysfs_path(self, node: Node, ctx: str) -> str:
        path = self.string(node, ctx, nonempty=True)
        if path in V.SYSFS_PATHS:
            return path
        ksm = "/sys/kernel/mm/ksm/"
        if path.startswith(ksm) and path[len(ksm):] in V.COUNTERS:
            self.fail(node, f"{ctx}{path} is read-only; expected a writable knob: "
                      f"{_choices(V.SYSFS_PATHS)}")
        self.unknown_key(node, ctx, "sysfs path", path, V.SYSFS_PATHS)

    def counter(self, node: Node, ctx: str) -> str:
        name = self.value(node)
        if not isinstance(name, str):
            self.wrong(node, ctx, "a counter name")
        try:
            return V.normalise_counter(name)
        except ValueError as e:
            self.fail(node, f"{ctx}{e}")

    def counters(self, node: Node, ctx: str) -> tuple[str, ...] | None:
        if isinstance(node, ScalarNode) and self.value(node) == "all":
            return None
        if isinstance(node, ScalarNode):
            return (self.counter(node, ctx),)
        if not isinstance(node, SequenceNode):
            self.wrong(node, ctx, KINDS["counters"])
        if not node.value:
            self.fail(node, f"{ctx}expected at least one counter, found an empty list")
        out: dict[str, Node] = {}
        for item in node.value:
            if self.value(item) == "all":
                self.fail(item, f"{ctx}found 'all' in a list; expected counter names, or "
                          "'all' on its own ('print: all')")
            name = self.counter(item, ctx)
            if name in out:
                self.fail(item, f"{ctx}counter {name!r} is listed twice; expected each once")
            out[name] = item
        return tuple(out)

    def expect(self, node: Node, ctx: str) -> tuple[tuple[str, Any], ...]:
        items = self.mapping(node, ctx, KINDS["expect"])
        if not items:
            self.fail(node, f"{ctx}expected at least one counter, found an empty mapping")
        out: dict[str, Any] = {}
        for key, knode, vnode in items:
            name = self.counter(knode, ctx)
            if name in out:
                self.fail(knode, f"{ctx}counter {name!r} is given twice; expected each once")
            out[name] = self.parsed(vnode, f"{ctx}{key}: ", V.parse_comparison,
                                    "an integer or a comparison string ('>= 1', '< 10')")
        return tuple(out.items())

    def dump_what(self, node: Node, ctx: str) -> tuple[str, ...]:
        if isinstance(node, ScalarNode) and self.value(node) == "all":
            return V.DUMP_WHAT
        items = node.value if isinstance(node, SequenceNode) else [node]
        if not items:
            self.fail(node, f"{ctx}expected at least one of {_choices(V.DUMP_WHAT)}, "
                      "found an empty list")
        return tuple(dict.fromkeys(self.constant(n, ctx, V.DUMP_WHAT, "dump item")
                                   for n in items))
