"""mm/madvise.c (and mm/mprotect.c's mprotect(2)): advice applied per vma, splitting and
merging vmas as madvise_update_vma() does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ksmrepro.mm import vma as V
from ksmrepro.mm.const import (
    PAGE_SHIFT,
    PAGE_SIZE,
    VM_DONTCOPY,
    VM_DONTDUMP,
    VM_EXEC,
    VM_HUGEPAGE,
    VM_IO,
    VM_LOCKED,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYWRITE,
    VM_NOHUGEPAGE,
    VM_READ,
    VM_WIPEONFORK,
    VM_WRITE,
    Errno,
    page_align,
)
from ksmrepro.mm.mm_types import PteRun, Task, VmAreaStruct

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel

_FLAG_ADVICE = {
    "MADV_DONTFORK": (VM_DONTCOPY, 0), "MADV_DOFORK": (0, VM_DONTCOPY),
    "MADV_WIPEONFORK": (VM_WIPEONFORK, 0), "MADV_KEEPONFORK": (0, VM_WIPEONFORK),
    "MADV_DONTDUMP": (VM_DONTDUMP, 0), "MADV_DODUMP": (0, VM_DONTDUMP),
    "MADV_HUGEPAGE": (VM_HUGEPAGE, VM_NOHUGEPAGE), "MADV_NOHUGEPAGE": (VM_NOHUGEPAGE, VM_HUGEPAGE),
}
# STUB: read-ahead hints and MADV_FREE's lazy freeing have no effect on anonymous memory here
_NOOP_ADVICE = ("MADV_NORMAL", "MADV_RANDOM", "MADV_SEQUENTIAL", "MADV_WILLNEED")


def _update_flags(k: Kernel, mm, start: int, end: int, fn) -> None:  # noqa: ANN001
    """madvise_update_vma() / mprotect_fixup(): ``fn(vma, start, end)`` gives the new flags
    of the part of ``vma`` in the range; only a vma whose flags change is split and merged."""
    for v in [v for v in mm.vmas if v.vm_start < end and v.vm_end > start]:
        s, e = max(start, v.vm_start), min(end, v.vm_end)
        new = fn(v, s, e)
        if new == v.vm_flags:
            continue
        if v.vm_start < s:
            v = V.split_vma(k, v, s)
        if v.vm_end > e:
            V.split_vma(k, v, e)
        v.vm_flags = new
        V.vma_merge_existing(k, v)


def sys_madvise(k: Kernel, task: Task, start: int, length: int, advice: str) -> None:
    """madvise(2).  ENOMEM when part of the range is unmapped (after advising the rest)."""
    mm = task.mm
    if start & (PAGE_SIZE - 1):
        raise Errno("EINVAL", "address is not page aligned")
    end = start + page_align(length)
    if end < start:
        raise Errno("EINVAL", "range wraps")
    k.tick(k.costs.syscall)
    if end == start:
        return
    unmapped = not V.range_is_mapped(mm, start, end)
    if advice in ("MADV_MERGEABLE", "MADV_UNMERGEABLE"):
        _update_flags(k, mm, start, end,
                      lambda v, s, e: k.ksm.ksm_madvise(v, s, e, advice, v.vm_flags))
    elif advice in _FLAG_ADVICE:
        setf, clearf = _FLAG_ADVICE[advice]
        if advice == "MADV_DOFORK" and any(
                v.vm_flags & VM_IO for v in mm.vmas if v.vm_start < end and v.vm_end > start):
            raise Errno("EINVAL", "MADV_DOFORK on a VM_IO mapping")
        _update_flags(k, mm, start, end, lambda v, s, e: (v.vm_flags | setf) & ~clearf)
    elif advice in ("MADV_DONTNEED", "MADV_FREE"):
        for v in _vmas_in(mm, start, end):  # madvise_walk_vmas(): vma by vma, in order
            if v.vm_flags & VM_LOCKED:  # madvise_dontneed_free_valid_vma()
                raise Errno("EINVAL", f"{advice} on a VM_LOCKED mapping")
            if advice == "MADV_DONTNEED":  # MADV_FREE: no lazy freeing here (STUB above)
                k.swap.lru_add_drain(task.cpu)  # zap_page_range_single(): drain first
                k.memory.zap_pte_range(k, mm, max(start, v.vm_start) >> PAGE_SHIFT,
                                       min(end, v.vm_end) >> PAGE_SHIFT)
    elif advice in ("MADV_PAGEOUT", "MADV_COLD"):
        madvise_cold_or_pageout(k, task, start, end, advice == "MADV_PAGEOUT")
    elif advice in ("MADV_POPULATE_READ", "MADV_POPULATE_WRITE"):
        if unmapped:
            raise Errno("ENOMEM", "range not fully mapped")
        k.memory.handle_mm_fault_range(k, task, start, end - start,
                                       write=advice == "MADV_POPULATE_WRITE", op=None)
    elif advice in _NOOP_ADVICE:
        pass
    else:  # MADV_REMOVE (needs VM_SHARED), MADV_COLLAPSE (no THP here), unknown
        raise Errno("EINVAL", f"{advice} is not valid for private anonymous memory here")
    if unmapped:
        raise Errno("ENOMEM", "part of the range is not mapped")


def _vmas_in(mm, start: int, end: int) -> list[VmAreaStruct]:  # noqa: ANN001
    return [v for v in mm.vmas if v.vm_start < end and v.vm_end > start]


def madvise_cold_or_pageout(k: Kernel, task: Task, start: int, end: int, pageout: bool) -> None:
    """madvise_cold() / madvise_pageout(), vma by vma: EINVAL at a VM_LOCKED one
    (can_madv_lru_vma()), the vmas before it already done."""
    mm = task.mm
    if pageout:
        k.first_use("madvise_pageout")
    for v in _vmas_in(mm, start, end):  # madvise_walk_vmas(): vma by vma, in order
        if v.vm_flags & VM_LOCKED:  # can_madv_lru_vma()
            raise Errno("EINVAL", f"MADV_{'PAGEOUT' if pageout else 'COLD'} on a VM_LOCKED "
                        "mapping")
        _cold_or_pageout_vma(k, task, v, start, end, pageout)


def _cold_or_pageout_vma(k: Kernel, task: Task, v: VmAreaStruct, start: int, end: int,
                         pageout: bool) -> None:
    """madvise_cold_or_pageout_pte_range() on the part of one vma in the range: folios mapped
    exactly once (a small folio with mapcount != 1 is skipped: "do not interfere with other
    mappings"), ptes aged, then reclaim_pages() (PAGEOUT) or deactivation (COLD)."""
    mm = task.mm
    picked = []
    seen: set[int] = set()
    k.swap.lru_add_drain(task.cpu)
    vs, ve = max(start, v.vm_start) >> PAGE_SHIFT, min(end, v.vm_end) >> PAGE_SHIFT
    for vpn in range(vs, ve):
        e = mm.pt.get(vpn)
        if not isinstance(e, PteRun) or id(e) in seen:
            continue
        if e.vpn < vs or e.vpn + e.folio.nr > ve:
            e = k.memory.isolate_pages(k, e, max(e.vpn, vs), min(e.vpn + e.folio.nr, ve)
                                       - max(e.vpn, vs))
        seen.add(id(e))
        f = e.folio
        if f.mapcount != 1:
            continue
        e.young = False  # ptep_test_and_clear_young()
        picked.append(f)
    if pageout:
        k.vmscan.reclaim_pages(picked, task.cpu)
    else:
        for f in picked:
            k.deactivate_folio(f)


def sys_mprotect(k: Kernel, task: Task, start: int, length: int, prot_flags: int) -> None:
    """mprotect(2): new VM_READ/WRITE/EXEC on whole vmas (split/merged); ptes lose write
    permission when PROT_WRITE goes (change_protection)."""
    mm = task.mm
    if start & (PAGE_SIZE - 1):
        raise Errno("EINVAL", "address is not page aligned")
    end = start + page_align(length)
    k.tick(k.costs.syscall)
    if end == start:
        return
    if not V.range_is_mapped(mm, start, end):
        raise Errno("ENOMEM", "range not fully mapped")
    bits = prot_flags  # already VM_READ|VM_WRITE|VM_EXEC bits
    for v in _vmas_in(mm, start, end):
        need = ((VM_MAYREAD if bits & VM_READ else 0) | (VM_MAYWRITE if bits & VM_WRITE else 0)
                | (VM_MAYEXEC if bits & VM_EXEC else 0))
        if need & ~v.vm_flags:
            raise Errno("EACCES", "protection not allowed by the mapping")
    _update_flags(k, mm, start, end,
                  lambda v, s, e: (v.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | bits)
    if not bits & VM_WRITE:
        for v in _vmas_in(mm, start, end):
            for vpn in range(v.vm_start >> PAGE_SHIFT, v.vm_end >> PAGE_SHIFT):
                e = mm.pt.get(vpn)
                if isinstance(e, PteRun):
                    e.write = False
