"""Builders for kernel-level tests: a scenario's steps run to a ScenarioRun whose kernel
(``run.k``) can then be inspected in the kernel's own terms."""

from __future__ import annotations

import pytest

from ksmrepro.mm.const import PAGE_SHIFT
from ksmrepro.mm.mm_types import PteRun, SwapRun
from ksmrepro.models import resolve
from ksmrepro.runner.run import ScenarioRun
from ksmrepro.scenario import load_scenario_text

P = 4096

# Hugh's testcase (hugh-testcase-mail.txt) up to the mremap, and the mremap itself
HUGH_PREFIX = """
    - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
    - mmap: {as: base, length: 3 pages}
    - madvise: {addr: base, length: 3 pages, advice: MADV_MERGEABLE}
    - madvise: {addr: base, length: 3 pages, advice: MADV_DONTFORK}
    - memset: {addr: base, value: 0x77, length: 2 pages}
    - sleep: 1s
"""
HUGH_MREMAP = """
    - mremap: {old_addr: base + 1 page, old_size: 1 page, new_size: 1 page,
               flags: [MREMAP_MAYMOVE, MREMAP_FIXED], new_addr: base + 2 pages}
"""


def run_steps(steps: str, model: str = "v7.0-rc6", *, memory: str = "1G", swap: str = "2G",
              trace: bool = False, costs: str = "native") -> ScenarioRun:
    text = (f"name: t\nmachine: {{memory: {memory}, swap: {swap}, costs: {costs}}}\nsteps:\n"
            + _normalise(steps))
    sr = ScenarioRun(load_scenario_text(text, "<test>"), resolve(model), trace=trace)
    sr.result = sr.run()
    return sr


def _normalise(steps: str) -> str:
    """Re-indent step lines glued together from differently indented snippets."""
    out, base = [], 0
    for line in steps.splitlines():
        if not line.strip():
            continue
        ind = len(line) - len(line.lstrip())
        if line.lstrip().startswith("- "):
            base = ind
        out.append("  " + " " * max(ind - base, 0) + line.lstrip())
    return "\n".join(out) + "\n"


def vmas(sr: ScenarioRun, proc: str = "main") -> list[tuple[int, int, int]]:
    """(vm_start, vm_end, vm_pgoff) of every vma, in address order."""
    return [(v.vm_start, v.vm_end, v.vm_pgoff) for v in sr.k.tasks[proc].mm.vmas]


def pte(sr: ScenarioRun, addr: int, proc: str = "main"):
    return sr.k.tasks[proc].mm.pt.get(addr >> PAGE_SHIFT)


def folio_at(sr: ScenarioRun, addr: int, proc: str = "main"):
    e = pte(sr, addr, proc)
    assert isinstance(e, PteRun), f"no present pte at {addr:#x}: {e!r}"
    return e.folio, addr // P - e.vpn


def name(sr: ScenarioRun, n: str, proc: str = "main") -> int:
    return sr.k.tasks[proc].names[n]


@pytest.fixture
def steps():
    return run_steps


__all__ = ["P", "PteRun", "SwapRun", "folio_at", "name", "pte", "run_steps", "vmas"]
