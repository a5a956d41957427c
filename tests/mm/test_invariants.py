"""The VM_BUG_ONs ``Kernel.check_invariants()`` keeps after every step fire on the state
they guard (each test breaks one thing by hand)."""

from __future__ import annotations

import pytest

from ksmrepro.errors import KernelBug
from ksmrepro.mm.const import PAGE_SHIFT
from tests.mm.conftest import P, run_steps

STEPS = """
    - mmap: {as: a, length: 4 pages}
    - memset: {addr: a, value: 1, length: 4 pages}
    - mmap: {as: b, length: 2 pages}
    - memset: {addr: b, value: 2, length: 2 pages}
"""


@pytest.fixture
def sr():
    sr = run_steps(STEPS)
    sr.k.check_invariants()  # a consistent state passes
    return sr


def _run_at(sr, name):
    mm = sr.k.tasks["main"].mm
    return mm, mm.pt.get(sr.k.tasks["main"].names[name] >> PAGE_SHIFT)


def test_pte_outside_any_vma(sr):
    mm, run = _run_at(sr, "a")  # the highest mapping (mmap goes top-down)
    vma = mm.vmas[-1]
    assert vma.vm_end == (run.vpn << PAGE_SHIFT) + 4 * P
    vma.vm_end -= P  # the run's last page is now past the vma's end
    with pytest.raises(KernelBug, match="outside any vma"):
        sr.k.check_invariants()


def test_mapcount_against_the_folios_ptes(sr):
    _, run = _run_at(sr, "b")
    run.folio.mapcount += 1
    with pytest.raises(KernelBug, match="mapcount 2, 1 ptes"):
        sr.k.check_invariants()


def test_folio_index_against_linear_page_index(sr):
    _, run = _run_at(sr, "a")
    run.folio.index += 1
    with pytest.raises(KernelBug, match="!= linear_page_index"):
        sr.k.check_invariants()


def test_rss_against_present_ptes(sr):
    mm, _ = _run_at(sr, "a")
    mm.rss_anon += 1
    with pytest.raises(KernelBug, match="MM_ANONPAGES"):
        sr.k.check_invariants()


def test_pte_run_missing_from_its_folios_mappings(sr):
    _, run = _run_at(sr, "b")
    run.folio.ptes.remove(run)
    run.folio.mapcount -= 1  # consistent with the list, which no longer has the run
    with pytest.raises(KernelBug, match="missing from its folio's mappings"):
        sr.k.check_invariants()
