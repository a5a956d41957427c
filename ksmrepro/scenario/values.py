"""Scenario values: sizes, addresses, durations, comparisons, and the names a scenario may use.

The tables here (constant sets, :data:`COUNTERS`, :data:`SYSFS_PATHS`, :data:`KSM_KNOBS`) and the
regular expressions (``*_PATTERN``) are shared by the loader and the JSON Schema, so both accept
the same files.  The parse functions take plain Python scalars and raise :class:`ValueError` with
a message that says what was found and what was expected; the loader adds ``file:line:column``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from ksmrepro.scenario.steps import PAGE_SIZE, AddrExpr, Comparison

__all__ = [
    "ADDR_PATTERN",
    "ADVICE",
    "COMPARISON_OPS",
    "COMPARISON_PATTERN",
    "COUNTERS",
    "COUNTER_ALIASES",
    "DUMP_WHAT",
    "DURATION_PATTERN",
    "ERRNOS",
    "KSM_KNOBS",
    "LRU_GEN_ENABLED",
    "MAP_FLAGS",
    "MREMAP_FLAGS",
    "NAME_PATTERN",
    "PAGE_SIZE",
    "PRCTL_OPTIONS",
    "PROC_PATTERN",
    "PROT_FLAGS",
    "SIGNALS",
    "SIZE_PATTERN",
    "SYSFS_PATHS",
    "THP_MODES",
    "COST_PROFILES",
    "anchored",
    "did_you_mean",
    "flags_pattern",
    "normalise_counter",
    "parse_addr",
    "parse_comparison",
    "parse_constant",
    "parse_duration",
    "parse_flags",
    "parse_size",
]

# -- the kernel's constant names ------------------------------------------------------------

ADVICE: tuple[str, ...] = (
    "MADV_NORMAL", "MADV_RANDOM", "MADV_SEQUENTIAL", "MADV_WILLNEED", "MADV_DONTNEED",
    "MADV_FREE", "MADV_REMOVE", "MADV_DONTFORK", "MADV_DOFORK", "MADV_MERGEABLE",
    "MADV_UNMERGEABLE", "MADV_HUGEPAGE", "MADV_NOHUGEPAGE", "MADV_DONTDUMP", "MADV_DODUMP",
    "MADV_WIPEONFORK", "MADV_KEEPONFORK", "MADV_COLD", "MADV_PAGEOUT", "MADV_POPULATE_READ",
    "MADV_POPULATE_WRITE", "MADV_COLLAPSE",
)  # fmt: skip
"""``madvise(2)`` advice (include/uapi/asm-generic/mman-common.h)."""

MREMAP_FLAGS: tuple[str, ...] = ("MREMAP_MAYMOVE", "MREMAP_FIXED", "MREMAP_DONTUNMAP")
"""``mremap(2)`` flags (include/uapi/linux/mman.h)."""

PROT_FLAGS: tuple[str, ...] = ("PROT_NONE", "PROT_READ", "PROT_WRITE", "PROT_EXEC")
"""``mmap(2)``/``mprotect(2)`` protection bits."""

MAP_FLAGS: tuple[str, ...] = (
    "MAP_SHARED", "MAP_PRIVATE", "MAP_ANONYMOUS", "MAP_FIXED", "MAP_FIXED_NOREPLACE",
    "MAP_POPULATE", "MAP_NORESERVE", "MAP_LOCKED", "MAP_GROWSDOWN",
)  # fmt: skip
"""``mmap(2)`` flags."""

PRCTL_OPTIONS: tuple[str, ...] = ("PR_SET_MEMORY_MERGE", "PR_GET_MEMORY_MERGE")
"""``prctl(2)`` options (include/uapi/linux/prctl.h)."""

ERRNOS: tuple[str, ...] = (
    "EINVAL", "ENOMEM", "EFAULT", "EPERM", "EBUSY", "EAGAIN", "EEXIST", "EACCES", "ENOENT",
)  # fmt: skip
"""The errnos a step may say it expects (``errno:``)."""

SIGNALS: tuple[str, ...] = ("SIGSEGV", "SIGBUS")
"""The signals a step may say it expects (``signal:``)."""

THP_MODES: tuple[str, ...] = ("never", "always", "madvise")
# ``machine.costs``: the simulated-time cost profiles (ksmrepro.mm.kernel.COST_PROFILES)
COST_PROFILES: tuple[str, ...] = ("native", "qemu-tcg")
"""``machine.thp``: as /sys/kernel/mm/transparent_hugepage/enabled."""

DUMP_WHAT: tuple[str, ...] = ("maps", "pages", "ksm")
"""What a ``dump`` step (ksmrepro extension) can record."""

# -- counters ---------------------------------------------------------------------------------

COUNTERS: dict[str, str] = {
    # /sys/kernel/mm/ksm/*
    "pages_shared": "KSM pages in use (stable tree nodes)",
    "pages_sharing": "extra mappings of KSM pages (how many pages are saved)",
    "pages_unshared": "pages tried but unique (unstable tree)",
    "pages_volatile": "pages changing too fast to be put in a tree",
    "pages_scanned": "pages ksmd has scanned",
    "pages_skipped": "pages skipped by smart scanning",
    "full_scans": "completed full scans of all mergeable areas",
    "stable_node_chains": "stable node chains (pages over max_page_sharing)",
    "stable_node_dups": "stable node duplicates on chains",
    "ksm_zero_pages": "empty pages merged with the kernel zero page",
    "general_profit": "bytes saved by KSM, less its metadata",
    "run": "ksmd state: 0 stopped, 1 running, 2 unmerge all",
    "pages_to_scan": "pages ksmd scans per batch",
    "sleep_millisecs": "ksmd sleep between batches",
    "max_page_sharing": "maximum mappings of one KSM page",
    "use_zero_pages": "merge empty pages with the zero page",
    "merge_across_nodes": "merge pages of different NUMA nodes",
    "smart_scan": "skip pages that did not merge recently",
    # /proc/PID/ksm_stat of the step's process
    "ksm_rmap_items": "the process's KSM rmap items",
    "ksm_merging_pages": "the process's pages merged by KSM",
    "ksm_process_profit": "bytes the process saves by KSM, less its metadata",
    "ksm_merge_any": "the process has PR_SET_MEMORY_MERGE set (0/1)",
    "ksm_mergeable": "the process has mergeable areas (0/1)",
    "ksm_stat_zero_pages": "the process's ksm_zero_pages line of /proc/PID/ksm_stat "
    "(ksm_zero_pages is the global sysfs file)",
    # ksmrepro: the step's process
    "rss_anon": "the process's MM_ANONPAGES, in pages",
    "swap_ents": "the process's MM_SWAPENTS, in pages",
    "smaps_ksm": "sum of 'KSM:' over the process's smaps, in bytes",
    # ksmrepro: the machine (/proc/vmstat, /proc/meminfo)
    "nr_free_pages": "free pages",
    "nr_inactive_anon": "anonymous pages on the inactive LRU",
    "nr_active_anon": "anonymous pages on the active LRU",
    "nr_swap_used": "swap slots in use",
    "pswpin": "pages swapped in",
    "pswpout": "pages swapped out",
    "cow_ksm": "copy-on-write faults on KSM pages",
    "ksm_swpin_copy": "KSM pages copied on swap-in",
    "workingset_activate_anon": "anonymous refaults activated by the workingset code",
    # ksmrepro: memory cgroup of the step's process
    "memory_current": "memory.current of the step's process's cgroup, in bytes",
    "memory_stat_anon": "memory.stat anon of the step's process's cgroup, in bytes",
    "memory_stat_active_anon": "memory.stat active_anon of that cgroup, in bytes",
    "memory_stat_inactive_anon": "memory.stat inactive_anon of that cgroup, in bytes",
}
"""Every counter name ``print`` and ``expect`` accept, with a one-line description."""

COUNTER_ALIASES: dict[str, str] = {"memory.current": "memory_current"}
"""Spellings normalised to a :data:`COUNTERS` name."""

# -- sysfs --------------------------------------------------------------------------------------

KSM_KNOBS: dict[str, tuple[str, tuple[int, ...] | tuple[str, ...] | None]] = {
    "run": ("0 stop ksmd, 1 run it, 2 stop and unmerge everything", (0, 1, 2)),
    "pages_to_scan": ("pages scanned per batch (default 100)", None),
    "sleep_millisecs": ("sleep between batches (default 20)", None),
    "max_page_sharing": ("maximum mappings of one KSM page (default 256)", None),
    "use_zero_pages": ("merge empty pages with the zero page (default 0)", (0, 1)),
    "merge_across_nodes": ("merge across NUMA nodes (default 1)", (0, 1)),
    "smart_scan": ("skip pages that did not merge recently (default 1)", (0, 1)),
    "stable_node_chains_prune_millisecs": ("how often stale chain dups are pruned", None),
    "advisor_mode": ("'none' or 'scan-time'", ("none", "scan-time")),
    "advisor_max_cpu": ("scan-time advisor: maximum ksmd CPU percentage", None),
    "advisor_min_pages_to_scan": ("scan-time advisor: lower bound of pages_to_scan", None),
    "advisor_max_pages_to_scan": ("scan-time advisor: upper bound of pages_to_scan", None),
    "advisor_target_scan_time": ("scan-time advisor: target seconds per full scan", None),
}
"""Writable ``/sys/kernel/mm/ksm/`` knobs: description, allowed values (None: integers >= 0)."""

LRU_GEN_ENABLED = "/sys/kernel/mm/lru_gen/enabled"

SYSFS_PATHS: dict[str, str] = {
    **{f"/sys/kernel/mm/ksm/{k}": d for k, (d, _) in KSM_KNOBS.items()},
    LRU_GEN_ENABLED: "multi-gen LRU: y/n or the kernel's hex mask",
}
"""Every path a ``sysfs`` step may write, with a description."""

# -- patterns -----------------------------------------------------------------------------------
# Written in the subset of regex syntax that Python and ECMA-262 (JSON Schema) share.

_NUM = r"(?:0[xX][0-9a-fA-F]+|[0-9]+)"
_UNIT = r"(?:pages|page|[KMGkmg])"
SIZE_PATTERN = rf"{_NUM}(?:\s*{_UNIT})?"
"""A size string: ``4096``, ``0x1000``, ``3 pages``, ``1 page``, ``512K``, ``2M``, ``1G``."""

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
"""An address name bound by ``as:``."""

PROC_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]*"
"""A process or cgroup name."""

ADDR_PATTERN = rf"(?:{NAME_PATTERN}|{_NUM})(?:\s*[-+]\s*{SIZE_PATTERN})*"
"""An address string: ``base``, ``base + 1 page``, ``base2 - 64K``, ``0x7f0000000000``."""

DURATION_PATTERN = r"[0-9]+(?:\.[0-9]+)?\s*(?:s|ms|us|ns)|[0-9]+"
"""A duration string: ``1s``, ``20ms``, ``500us``, ``100ns``; a bare number is milliseconds."""

COMPARISON_OPS: tuple[str, ...] = ("==", "!=", "<=", ">=", "<", ">")
COMPARISON_PATTERN = rf"(?:==|!=|<=|>=|<|>)?\s*-?{_NUM}"
"""An ``expect`` comparison: ``>= 1``, ``< 10``, ``== 3``, ``!= 0`` (or just a number)."""


def anchored(pattern: str) -> str:
    """``pattern`` matching a whole string, surrounding blanks allowed (as JSON Schema uses it)."""
    return rf"^\s*(?:{pattern})\s*$"


def flags_pattern(names: Iterable[str]) -> str:
    """A ``A|B|C`` string of ``names``."""
    alt = "|".join(sorted(names, key=len, reverse=True))
    return rf"(?:{alt})(?:\s*\|\s*(?:{alt}))*"


_UNIT_BYTES = {"page": PAGE_SIZE, "pages": PAGE_SIZE, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE_RE = re.compile(rf"({_NUM})\s*({_UNIT})?")
_OFFSET_RE = re.compile(rf"\s*([-+])\s*({SIZE_PATTERN})")
_HEAD_RE = re.compile(rf"{NAME_PATTERN}|{_NUM}")
_DURATION_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(s|ms|us|ns)?")
_COMPARISON_RE = re.compile(rf"(==|!=|<=|>=|<|>)?\s*(-?{_NUM})")

_SIZE_EXPECTED = "a size: bytes (4096, 0x1000), '3 pages', '1 page', '512K', '2M' or '1G'"
_ADDR_EXPECTED = (
    "an address: a name bound by 'as:' ('base', 'base + 1 page', 'base2 - 64K') or a number"
)
_DURATION_EXPECTED = "a duration: '1s', '20ms', '500us', '100ns', or an integer of milliseconds"
_COMPARISON_EXPECTED = "an integer or a comparison string ('>= 1', '< 10', '== 3', '!= 0')"


def _int(text: str) -> int:
    """A decimal or ``0x`` hexadecimal integer (leading zeros are decimal, not octal)."""
    neg = text.startswith("-")
    digits = text[1:] if neg else text
    n = int(digits[2:], 16) if digits[:2].lower() == "0x" else int(digits, 10)
    return -n if neg else n


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely misspells, or None.

    Case is ignored, and a missing prefix is supplied (``MERGEABLE`` -> ``MADV_MERGEABLE``).
    """
    choices = list(choices)
    folded = {c.lower(): c for c in choices}
    w = word.strip().lower()
    if w in folded:
        return folded[w]
    for c in choices:
        if c.lower().endswith("_" + w) or c.lower().endswith("/" + w):
            return c
    close = difflib.get_close_matches(w, list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def _unknown(what: str, word: str, choices: Iterable[str]) -> ValueError:
    choices = list(choices)
    hint = did_you_mean(word, choices)
    if hint is not None:
        return ValueError(f"unknown {what} {word!r}; did you mean {hint!r}?")
    return ValueError(f"unknown {what} {word!r}; expected one of: {', '.join(choices)}")


def parse_constant(value: str, choices: Iterable[str], what: str) -> str:
    """``value`` if it is one of ``choices``, else :class:`ValueError` with a suggestion.

    >>> parse_constant("MADV_MERGEABLE", ADVICE, "advice")
    'MADV_MERGEABLE'
    """
    choices = tuple(choices)
    if value in choices:
        return value
    raise _unknown(what, value, choices)


def parse_flags(value: str, choices: Iterable[str], what: str) -> tuple[str, ...]:
    """Flag names from ``A|B`` (or a single name); each must be one of ``choices``."""
    choices = tuple(choices)
    parts = [p.strip() for p in value.split("|")]
    if any(not p for p in parts):
        raise ValueError(f"empty {what} in {value!r}; expected names joined by '|'")
    return tuple(parse_constant(p, choices, what) for p in parts)


def parse_size(value: int | str) -> int:
    """Bytes from an integer or a size string (``3 pages``, ``512K``, ``0x1000``).

    >>> parse_size("3 pages"), parse_size("512K"), parse_size(4096)
    (12288, 524288, 4096)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected {_SIZE_EXPECTED}, found {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a size >= 0, found {value}")
        return value
    m = _SIZE_RE.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"bad size {value!r}; expected {_SIZE_EXPECTED}")
    unit = m.group(2)
    return _int(m.group(1)) * (_UNIT_BYTES[unit.lower()] if unit else 1)


def parse_addr(value: int | str) -> AddrExpr:
    """An :class:`AddrExpr` from an integer or ``NAME [+-] SIZE ...``.

    >>> parse_addr("base2 - 64K")
    AddrExpr(name='base2', offset=-65536)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected {_ADDR_EXPECTED}, found {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected an address >= 0, found {value}")
        return AddrExpr(None, value)
    text = value.strip()
    if re.fullmatch(ADDR_PATTERN, text) is None:
        raise ValueError(f"bad address {value!r}; expected {_ADDR_EXPECTED}")
    head = _HEAD_RE.match(text)
    if head is None:  # pragma: no cover - ADDR_PATTERN starts with a name or a number
        raise ValueError(f"bad address {value!r}; expected {_ADDR_EXPECTED}")
    name: str | None = head.group(0)
    offset = 0
    if head.group(0)[0].isdigit():
        name, offset = None, _int(head.group(0))
    for m in _OFFSET_RE.finditer(text, head.end()):
        size = parse_size(m.group(2))
        offset += size if m.group(1) == "+" else -size
    if name is None and offset < 0:
        raise ValueError(f"address {value!r} is below 0; expected an address >= 0")
    return AddrExpr(name, offset)


def parse_duration(value: int | str) -> int:
    """Nanoseconds from ``1s``, ``20ms``, ``500us``, ``100ns`` or an integer of milliseconds.

    >>> parse_duration("20ms"), parse_duration(5)
    (20000000, 5000000)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected {_DURATION_EXPECTED}, found {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a duration >= 0, found {value}")
        return value * _DURATION_UNITS["ms"]
    m = _DURATION_RE.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"bad duration {value!r}; expected {_DURATION_EXPECTED}")
    number, unit = m.group(1), m.group(2)
    if unit is None and "." in number:
        raise ValueError(f"bad duration {value!r}; expected {_DURATION_EXPECTED}")
    try:
        ns = Decimal(number) * _DURATION_UNITS[unit or "ms"]
    except InvalidOperation as e:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"bad duration {value!r}") from e
    if ns != ns.to_integral_value():
        raise ValueError(f"duration {value!r} is not a whole number of nanoseconds; "
                         "expected whole nanoseconds")
    return int(ns)


def parse_comparison(value: int | str) -> Comparison:
    """A :class:`Comparison` from an integer (``==``) or a string such as ``">= 1"``.

    >>> parse_comparison(">= 1")
    Comparison(op='>=', value=1)
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected {_COMPARISON_EXPECTED}, found {value!r}")
    if isinstance(value, int):
        return Comparison("==", value)
    text = value.strip()
    m = _COMPARISON_RE.fullmatch(text)
    if m is None:
        hint = ""
        if re.match(r"=(?!=)|=>|=<", text):
            hint = "; did you mean '==', '>=' or '<='?"
        raise ValueError(f"bad comparison {value!r}; expected {_COMPARISON_EXPECTED}{hint}")
    return Comparison(m.group(1) or "==", _int(m.group(2)))


def normalise_counter(name: str) -> str:
    """The :data:`COUNTERS` name for ``name`` (``memory.current`` -> ``memory_current``)."""
    name = COUNTER_ALIASES.get(name, name)
    if name in COUNTERS:
        return name
    raise _unknown("counter", name, COUNTERS)
