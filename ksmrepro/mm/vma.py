"""mm/vma.c: finding, splitting and merging vmas.  vm_pgoff is only ever carried along
linearly (split adds the offset; merges require contiguity); it is set from the address
only when an anonymous vma is created (``mmap.py``) or moved before its first fault."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from ksmrepro.mm.const import PAGE_SHIFT
from ksmrepro.mm.mm_types import MmStruct, PteRun, SwapRun, VmAreaStruct

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel

VM_SOFTDIRTY = 0x08000000


def find_vma(mm: MmStruct, addr: int) -> VmAreaStruct | None:
    """find_vma(): the first vma with vm_end > addr (it may start above addr)."""
    vmas = mm.vmas
    i = bisect.bisect_right(vmas, addr, key=_vm_end)
    return vmas[i] if i < len(vmas) else None


def _vm_end(v: VmAreaStruct) -> int:
    return v.vm_end


def vma_lookup(mm: MmStruct, addr: int) -> VmAreaStruct | None:
    v = find_vma(mm, addr)
    return v if v is not None and v.vm_start <= addr else None


def vma_insert(k: Kernel, mm: MmStruct, vma: VmAreaStruct) -> None:
    k.vma_ids += 1
    vma.id = k.vma_ids
    bisect.insort(mm.vmas, vma, key=lambda v: v.vm_start)


def _split_runs_at(k: Kernel, mm: MmStruct, vpn: int) -> None:
    """SIM-ONLY: keep every pte run inside one vma (split a folio run that straddles ``vpn``)."""
    e = mm.pt.get(vpn)
    if isinstance(e, PteRun) and e.vpn < vpn:
        k.memory.split_folio_run(k, e.folio, vpn - e.vpn)
    elif isinstance(e, SwapRun) and e.vpn < vpn:
        off = vpn - e.vpn
        upper = SwapRun(e.slot + off, vpn, e.nr - off, e.page_content(off), e.stride,
                        e.exclusive)
        e.nr = off
        mm.pt.set_range(vpn, vpn + upper.nr, upper)


def split_vma(k: Kernel, vma: VmAreaStruct, addr: int) -> VmAreaStruct:
    """__split_vma(): ``vma`` keeps [vm_start, addr); returns the new [addr, vm_end), whose
    pgoff is the old pgoff plus the offset.  Both share the anon_vma (anon_vma_clone)."""
    mm = vma.vm_mm
    new = VmAreaStruct(mm, addr, vma.vm_end, vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT),
                       vma.vm_flags)
    _split_runs_at(k, mm, addr >> PAGE_SHIFT)
    vma.vm_end = addr
    if vma.anon_vma is not None:
        k.rmap.anon_vma_clone(new, vma)
    vma_insert(k, mm, new)
    return new


def is_mergeable_anon_vma(av1: object, av2: object, vma: VmAreaStruct | None) -> bool:
    """is_mergeable_anon_vma(): equal, or one side has none and the vma is not a fork child."""
    if (av1 is None or av2 is None) and (vma is None or len(vma.anon_vma_chain) <= 1):
        return True
    return av1 is av2


def _flags_equal(a: int, b: int) -> bool:
    return not ((a ^ b) & ~VM_SOFTDIRTY)


def can_vma_merge_after(prev: VmAreaStruct, flags: int, anon_vma: object, pgoff: int,
                        vma: VmAreaStruct | None) -> bool:
    """can_vma_merge_after(): [range] may extend ``prev`` (pgoff follows prev's)."""
    return (_flags_equal(prev.vm_flags, flags)
            and is_mergeable_anon_vma(anon_vma, prev.anon_vma, vma)
            and prev.vm_pgoff + prev.pages() == pgoff)


def can_vma_merge_before(nxt: VmAreaStruct, flags: int, anon_vma: object, pgoff: int, pages: int,
                         vma: VmAreaStruct | None) -> bool:
    """can_vma_merge_before(): [range] may extend ``nxt`` downwards."""
    return (_flags_equal(nxt.vm_flags, flags)
            and is_mergeable_anon_vma(anon_vma, nxt.anon_vma, vma)
            and pgoff + pages == nxt.vm_pgoff)


def _neighbours(mm: MmStruct, start: int, end: int) -> tuple[VmAreaStruct | None,
                                                            VmAreaStruct | None]:
    prev = nxt = None
    for v in mm.vmas:
        if v.vm_end == start:
            prev = v
        if v.vm_start == end:
            nxt = v
    return prev, nxt


def _absorb(k: Kernel, keep: VmAreaStruct, gone: VmAreaStruct) -> None:
    """``keep`` takes over ``gone``'s range (and its anon_vma if ``keep`` had none)."""
    mm = keep.vm_mm
    keep.vm_start = min(keep.vm_start, gone.vm_start)
    if keep.vm_start == gone.vm_start:
        keep.vm_pgoff = gone.vm_pgoff
    keep.vm_end = max(keep.vm_end, gone.vm_end)
    if keep.anon_vma is None and gone.anon_vma is not None:
        k.rmap.anon_vma_clone(keep, gone)
    k.rmap.unlink_anon_vmas(gone)
    mm.vmas.remove(gone)
    mm.vmas.sort(key=lambda v: v.vm_start)


def vma_merge_new_range(k: Kernel, mm: MmStruct, start: int, end: int, flags: int,
                        anon_vma: object, pgoff: int) -> VmAreaStruct | None:
    """vma_merge_new_range(): a new range [start, end) joins ``prev`` and/or ``next``."""
    prev, nxt = _neighbours(mm, start, end)
    pages = (end - start) >> PAGE_SHIFT
    if prev is not None and not can_vma_merge_after(prev, flags, anon_vma, pgoff, None):
        prev = None
    if nxt is not None and not can_vma_merge_before(nxt, flags, anon_vma, pgoff, pages, None):
        nxt = None
    if prev is not None and nxt is not None and \
            not is_mergeable_anon_vma(prev.anon_vma, nxt.anon_vma, None):
        nxt = None
    if prev is not None:
        prev.vm_end = end
        if nxt is not None:
            _absorb(k, prev, nxt)
        return prev
    if nxt is not None:
        nxt.vm_start = start
        nxt.vm_pgoff = pgoff
        mm.vmas.sort(key=lambda v: v.vm_start)
        return nxt
    return None


def vma_merge_existing(k: Kernel, vma: VmAreaStruct) -> VmAreaStruct:
    """vma_merge_existing_range(): after a flags change, join compatible neighbours."""
    mm = vma.vm_mm
    prev, nxt = _neighbours(mm, vma.vm_start, vma.vm_end)
    if prev is not None and can_vma_merge_after(prev, vma.vm_flags, vma.anon_vma, vma.vm_pgoff,
                                                vma) and is_mergeable_anon_vma(
            prev.anon_vma, vma.anon_vma, prev):
        _absorb(k, prev, vma)
        vma = prev
    if nxt is not None and can_vma_merge_before(nxt, vma.vm_flags, vma.anon_vma, vma.vm_pgoff,
                                                vma.pages(), vma) and is_mergeable_anon_vma(
            nxt.anon_vma, vma.anon_vma, nxt):
        _absorb(k, vma, nxt)
    return vma


def vma_modify_range(k: Kernel, mm: MmStruct, start: int, end: int) -> list[VmAreaStruct]:
    """Split so that [start, end) is covered by whole vmas; return them (holes skipped)."""
    out = []
    for v in list(mm.vmas):
        if v.vm_end <= start or v.vm_start >= end:
            continue
        if v.vm_start < start:
            v = split_vma(k, v, start)
        if v.vm_end > end:
            split_vma(k, v, end)
        out.append(v)
    return out


def range_is_mapped(mm: MmStruct, start: int, end: int) -> bool:
    addr = start
    for v in mm.vmas:
        if v.vm_end <= addr:
            continue
        if v.vm_start > addr:
            return False
        addr = v.vm_end
        if addr >= end:
            return True
    return addr >= end


def range_is_free(mm: MmStruct, start: int, end: int) -> bool:
    return all(v.vm_end <= start or v.vm_start >= end for v in mm.vmas)
