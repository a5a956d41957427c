"""Plain-text report pieces shared by every output format.

:func:`mismatch_block` is *the* failure text: the console report, JUnit
``<failure>`` bodies, TAP diagnostics and the pytest plugin's ``repr_failure`` all
show exactly these lines, so a failure reads the same wherever it is seen.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ksmrepro.report import RunRecord
    from ksmrepro.runner.results import Observation, RunResult, StepFailure
    from ksmrepro.scenario.steps import Scenario

__all__ = [
    "STATUS_WORDS",
    "counter_rows",
    "failure_text",
    "mismatch_block",
    "observation_text",
    "run_ids",
    "run_title",
    "source_excerpt",
    "step_op",
    "step_title",
    "summary_line",
    "value_text",
]

#: how each status reads in reports (RunResult.status -> words)
STATUS_WORDS = {
    "passed": "passed",
    "failed": "FAILED",
    "known-failure": "known failure",
    "unexpected-pass": "UNEXPECTED PASS",
    "error": "ERROR",
}


def step_op(scenario: Scenario | None, index: int) -> str | None:
    """The step key (``"mremap"``) of step ``index`` of ``scenario``, if known."""
    if scenario is None:
        return None
    for step in scenario.steps:
        # The first step with that index: a dump inserted by --dump-after shares the
        # index of the step it follows.
        if step.index == index:
            return step.KEY
    return None


def step_title(index: int, op: str | None = None, label: str | None = None) -> str:
    """``step 6 (mremap)``, ``step 6 "moved" (mremap)``, or ``step 6`` when the op is unknown."""
    title = f'step {index} "{label}"' if label else f"step {index}"
    return f"{title} ({op})" if op else title


def failure_text(failure: StepFailure, op: str | None = None) -> str:
    """``step 6 (mremap): EINVAL — message`` or ``step 9 (memset): SIGSEGV``."""
    what = failure.errno or failure.signal or "failed"
    text = f"{step_title(failure.step, op, failure.label)}: {what}"
    return f"{text} — {failure.message}" if failure.message else text


def value_text(value: object) -> str:
    """A counter value or expectation as written in a scenario (``1``, ``>= 1``)."""
    return "-" if value is None else str(value)


def observation_text(obs: Observation) -> str:
    """``pages_shared=1 pages_sharing=0`` (the values an observation read)."""
    return " ".join(f"{k}={v}" for k, v in obs.values.items())


def run_title(result: RunResult) -> str:
    """``ksm-mremap-swapout [v7.0-rc6+ksm-pte-mkold]``."""
    return f"{result.scenario} [{result.model}]"


def source_excerpt(path: str, line: int) -> str | None:
    """``  44 |   - expect: {...}``: line ``line`` of ``path`` (None if it cannot be read)."""
    if line <= 0:
        return None
    # Read the file each time, not through linecache: a relative path may name
    # another file after a chdir, and a scenario may be edited between runs.
    try:
        with open(path, encoding="utf-8") as f:
            for n, text in enumerate(f, start=1):
                if n == line:
                    text = text.rstrip()
                    return f"{line:>5} | {text}" if text else None
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _location(path: str, line: int) -> str:
    return f"{path}:{line}" if line > 0 else path


def counter_rows(obs: Observation) -> list[tuple[str, str, str, bool]]:
    """(counter, expected, seen, differs) for every counter an observation read or judged."""
    expected = obs.expected or {}
    names = list(expected) + [k for k in obs.values if k not in expected]
    failed = set(obs.failed_keys)
    return [
        (name, value_text(expected.get(name)), value_text(obs.values.get(name)), name in failed)
        for name in names
    ]


def _table(rows: Sequence[tuple[str, str, str, bool]], indent: str) -> list[str]:
    head = ("counter", "expected", "seen")
    texts = [head, *((name, exp, seen) for name, exp, seen, _ in rows)]
    widths = [max(len(t[i]) for t in texts) for i in range(3)]
    out = [indent + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    for name, exp, seen, differs in rows:
        cells = "  ".join(c.ljust(w) for c, w in zip((name, exp, seen), widths, strict=True))
        out.append(indent + (cells + "  <- differs" if differs else cells.rstrip()))
    return out


def _step_lines(path: str, line: int, title: str) -> list[str]:
    out = [f"{_location(path, line)}: {title}"]
    excerpt = source_excerpt(path, line)
    if excerpt:
        out.append(excerpt)
    return out


def _expectation_block(result: RunResult, obs: Observation, scenario: Scenario | None) -> list[str]:
    title = step_title(obs.step, step_op(scenario, obs.step) or obs.op, obs.label)
    return _step_lines(result.file, obs.line, title) + _table(counter_rows(obs), "    ")


def _failed_step_block(result: RunResult, failure: StepFailure, scenario: Scenario | None) -> list[str]:
    op = step_op(scenario, failure.step)
    return _step_lines(result.file, failure.line, failure_text(failure, op))


def mismatch_block(
    result: RunResult, scenario: Scenario | None = None, kernel_bug: str | None = None
) -> str:
    """The plain-text account of one run: what was expected, what was seen, where.

    For each expectation that did not hold: the step's ``file:line``, the step as
    written in the file, and expected vs seen per counter.  A failed step shows its
    errno or signal; a known failure its reason; an unexpected pass the reason that
    no longer holds.

    :param scenario: the scenario, to name steps by their op (``step 6 (mremap)``)
    :param kernel_bug: the text of a ``KernelBug`` that stopped the run
    """
    failed = [o for o in result.observations if o.ok is False]
    judged = [o for o in result.observations if o.ok is not None]
    status = result.status
    if kernel_bug is not None:
        head = "kernel bug (a simulated VM_BUG_ON: a bug in ksmrepro, not in the scenario)"
    elif status == "unexpected-pass":
        head = "unexpected pass"
    elif status == "known-failure":
        head = f"known failure ({len(failed)} of {len(judged)} expectations failed)"
    elif failed:
        head = f"{len(failed)} of {len(judged)} expectations failed"
    elif result.error is not None:
        head = "step failed"
    else:
        head = STATUS_WORDS.get(status, status)
    lines = [f"{run_title(result)}: {head}"]
    if kernel_bug is not None:
        if result.error is not None:
            op = step_op(scenario, result.error.step)
            title = f"{step_title(result.error.step, op, result.error.label)}: {kernel_bug}"
            lines += _step_lines(result.file, result.error.line, title)
        else:
            lines.append(kernel_bug)
    if result.known_failure_reason is not None:
        reason = " ".join(result.known_failure_reason.split())
        if status == "unexpected-pass":
            lines.append(f"known_failures says this model fails: {reason}")
            lines.append("but every expectation held; if the bug is fixed, remove the entry")
        else:
            lines.append(f"known failure: {reason}")
    for obs in failed:
        lines += _expectation_block(result, obs, scenario)
    if status == "unexpected-pass":
        for obs in judged:
            title = step_title(obs.step, step_op(scenario, obs.step) or obs.op, obs.label)
            lines.append(f"{_location(result.file, obs.line)}: {title}: {observation_text(obs)}")
    if result.error is not None and kernel_bug is None:
        lines += _failed_step_block(result, result.error, scenario)
    return "\n".join(lines)


def summary_line(records: Sequence[RunRecord]) -> str:
    """``5 runs: 3 passed, 1 FAILED, 1 known failure`` (statuses in a fixed order)."""
    counts = Counter(r.result.status for r in records if r.kernel_bug is None)
    bugs = sum(1 for r in records if r.kernel_bug is not None)
    parts = [f"{counts[s]} {STATUS_WORDS[s]}" for s in STATUS_WORDS if counts[s]]
    parts += [f"{n} {s}" for s, n in sorted(counts.items()) if s not in STATUS_WORDS]
    if bugs:
        parts.append(f"{bugs} kernel bug{'s' if bugs > 1 else ''}")
    n = len(records)
    return f"{n} run{'s' if n != 1 else ''}: " + (", ".join(parts) if parts else "nothing ran")


def run_ids(results: Iterable[RunResult]) -> list[str]:
    """Test ids ``hugh.yaml::v7.0-rc6+ksm-pte-mkold``, one per result, in order.

    The file's base name is used unless two different files share it; then the path
    as given is used for those.
    """
    results = list(results)
    files_by_name: dict[str, set[str]] = {}
    for r in results:
        files_by_name.setdefault(os.path.basename(r.file), set()).add(r.file)
    out = []
    for r in results:
        name = os.path.basename(r.file)
        out.append(f"{name if len(files_by_name[name]) == 1 else r.file}::{r.model}")
    return out


def dump_lines(dump: dict[str, Any]) -> list[str]:
    """A ``dump`` step's state as text a kernel developer reads: ``/proc/PID/maps`` lines
    with vm_pgoff and the anon_vma chain, one line per mapped page, then KSM's trees."""
    out = [f"dump after step {dump.get('step', '?')} ({dump.get('proc', '?')}, "
           f"pid {dump.get('pid', '?')}, t={dump.get('time_ns', 0) / 1e6:.3f} ms)"]
    maps = dump.get("maps")
    if maps is not None:
        out.append("  maps (vm_start-vm_end vm_pgoff vm_flags anon_vma avc ranges):")
        for m in maps:
            out.append(f"    {m['vm_start'][2:]}-{m['vm_end'][2:]} pgoff {m['vm_pgoff']} "
                       f"[{m['vm_flags']}] {m['anon_vma'] or '-'} "
                       f"avc {' '.join(m['avc']) or '-'}")
    pages = dump.get("pages")
    if pages is not None:
        out.append("  pages (addr: pte, folio):")
        for p in pages:
            if p["pte"] == "present":
                out.append(
                    f"    {p['addr']}: present {p['pte_bits']:<3} pfn {p['pfn']} index "
                    f"{p['index']} (linear_page_index {p['linear_page_index']}) "
                    f"{'KSM ' if p['ksm'] else ''}mapping {p['mapping']} mapcount "
                    f"{p['mapcount']} [{p['flags']}] {p['lru']} | {p['content']}")
            elif p["pte"] == "swap":
                out.append(f"    {p['addr']}: swap slot {p['slot']}"
                           f"{' (folio in swap cache)' if p.get('swapcache') else ''}")
            else:
                out.append(f"    {p['addr']}: {p['pte']}")
    ksm = dump.get("ksm")
    if ksm is not None:
        s = ksm.get("scan", {})
        out.append(f"  ksm: full_scans {s.get('seqnr')}, cursor at {s.get('mm')} "
                   f"{s.get('address')}")

        def node(n: dict[str, Any], indent: str) -> None:
            if "chain" in n:
                out.append(f"{indent}stable_node#{n['node']} (chain)")
                for d in n["chain"]:
                    node(d, indent + "  ")
                return
            items = ", ".join(
                f"{i['mm']}:{i['address']}" + (f" lpi {i['linear_page_index']}"
                                               if i.get("linear_page_index") else "")
                for i in n["hlist"])
            out.append(f"{indent}stable_node#{n['node']} kpfn {n['kpfn']}"
                       f"{' STALE' if n['stale'] else ''} rmap_hlist_len "
                       f"{n['rmap_hlist_len']} hlist [{items}]")

        for n in ksm.get("stable_tree", []):
            node(n, "    ")
        for u in ksm.get("unstable_tree", []):
            out.append(f"    unstable: {u['mm']}:{u['address']}")
        for slot in ksm.get("mm_slots", []):
            items = " ".join(f"{i['address']}({i['state']})" for i in slot["rmap_items"])
            out.append(f"    mm_slot {slot['mm']}: {items or '(no rmap_items)'}")
    return out
