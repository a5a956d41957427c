"""mm/memory.c: page faults over ranges, zapping, copying page tables at fork.

The fault handlers work on *segments*: consecutive pages of one vma whose ptes are in
the same state, so a memset over 512K or a 1G pressure pass is a handful of
operations.  Each segment is handled exactly as the kernel handles each of its pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ksmrepro.mm import content as C
from ksmrepro.mm.const import (
    PAGE_SHIFT,
    VM_BUG_ON,
    VM_LOCKED,
    VM_READ,
    VM_WRITE,
    PG_active,
    PG_anon_exclusive,
    PG_dirty,
    PG_swapbacked,
    PG_workingset,
    SigSegv,
)
from ksmrepro.mm.mm_types import (
    ZERO_PTE,
    Folio,
    PteRun,
    SwapRun,
    VmAreaStruct,
    ZeroPte,
    folio_ref_count,
    folio_test_ksm,
    linear_page_index,
)

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel
    from ksmrepro.mm.mm_types import MmStruct, Task

# A content operation: (content of the segment's first page, stride, npages) -> (content, stride)
ContentOp = Callable[[Any, int, int], tuple[Any, int]]


def split_folio_run(k: Kernel, f: Folio, at: int) -> tuple[Folio, Folio]:
    """SIM-ONLY: split a folio run into folios ``[0, at)`` and ``[at, nr)``.

    The smaller side becomes the new object, so splitting pages off either end of a
    large run costs O(1) page-table updates.  Nothing a kernel would observe changes."""
    VM_BUG_ON(not 0 < at < f.nr, f"split of a {f.nr}-folio run at {at}")
    low_new = at <= f.nr - at
    n_new = at if low_new else f.nr - at
    off_new = 0 if low_new else at
    g = Folio(f.pfn + off_new, n_new, f.index + off_new, f.page_content(off_new), f.stride)
    g.mapping = f.mapping
    g.flags = f.flags
    g.mapcount = f.mapcount
    g.memcg = f.memcg
    g.gen = f.gen
    g.refs = f.refs
    if f.swap >= 0:
        g.swap = f.swap + off_new
    if low_new:  # f keeps the upper part
        f.pfn += at
        f.index += at
        f.content = f.page_content(at)
        if f.swap >= 0:
            f.swap += at
    f.nr -= n_new
    # LRU position: the lower part is older (nearer the tail).
    if f.lru >= 0:
        lst = k.lruvec_of(f).lists[f.lru]
        g.lru = f.lru
        if low_new:
            lst.pages -= g.nr  # insert_before counts g; f shrank by g.nr already
            _insert_after(lst, g, f)
        else:
            lst.pages -= g.nr
            lst.insert_before(g, f)
    elif f.cpu >= 0:
        b = k.lru_add[f.cpu]
        i = b.index(f)
        b.insert(i if low_new else i + 1, g)
        g.cpu = f.cpu
    # Page tables: every mapping of the run splits the same way.
    for p in f.ptes:
        vpn_new = p.vpn + off_new
        q = PteRun(p.mm, g, vpn_new, young=p.young, dirty=p.dirty, write=p.write)
        g.ptes.append(q)
        p.mm.pt.set_range(vpn_new, vpn_new + n_new, q)
        if low_new:
            p.vpn += at
    if f.swap >= 0:
        k.swapcache.set_range(g.swap, g.swap + n_new, g)
    return (g, f) if low_new else (f, g)


def merge_folio_runs(k: Kernel, g: Folio, f: Folio) -> bool:
    """SIM-ONLY, the inverse of :func:`split_folio_run`: fold run ``f`` into run ``g`` when
    it simply continues it (next pfns and indexes, same state, one pte run each at the next
    virtual pages of the same vma).  Keeps runs long where the per-CPU batch cut them."""
    if (g.pfn + g.nr != f.pfn or g.index + g.nr != f.index or g.mapping is not f.mapping
            or folio_test_ksm(g) or g.flags != f.flags or g.mapcount != 1 or f.mapcount != 1
            or g.memcg is not f.memcg or g.swap >= 0 or f.swap >= 0 or g.gen != f.gen
            or g.refs != f.refs or g.stride != f.stride or len(g.ptes) != 1
            or len(f.ptes) != 1):
        return False
    if g.stride:
        if g.content[:2] != f.content[:2] or g.content[2] + g.nr != f.content[2]:
            return False
    elif g.content != f.content:
        return False
    pg, pf = g.ptes[0], f.ptes[0]
    if (pg.mm is not pf.mm or pg.vpn + g.nr != pf.vpn or pg.young != pf.young
            or pg.dirty != pf.dirty or pg.write != pf.write
            or k.find_vma(pg.mm, pg.addr) is not k.find_vma(pg.mm, pf.addr)):
        return False
    pg.mm.pt.set_range(pf.vpn, pf.vpn + f.nr, pg)
    g.nr += f.nr
    f.ptes = []
    f.nr = 0
    return True


def _insert_after(lst: Any, new: Folio, old: Folio) -> None:
    """Put ``new`` on the tail side of ``old``."""
    new.prev = old
    new.next = old.next
    if old.next is not None:
        old.next.prev = new
    else:
        lst.tail = new
    old.next = new
    lst.pages += new.nr


def isolate_pages(k: Kernel, p: PteRun, vpn: int, n: int) -> PteRun:
    """Split the folio run under pte run ``p`` so that ``[vpn, vpn+n)`` is one whole run."""
    f = p.folio
    if vpn > p.vpn:
        _, f = split_folio_run(k, f, vpn - p.vpn)
    end = vpn + n
    if end < vpn + f.nr:
        f, _ = split_folio_run(k, f, n)
    return p.mm.pt[vpn]


def _segments(mm: MmStruct, vpn: int, end: int):
    """Yield (vpn, n, entry) for runs of identical pte state in ``[vpn, end)``."""
    pt = mm.pt
    while vpn < end:
        e = pt.get(vpn)
        if e is None:
            if pt.none_in(vpn, end):  # all none: checked a PTE table at a time
                yield vpn, end - vpn, None
                return
            n = 1
            while vpn + n < end and pt.get(vpn + n) is None:
                n += 1
        elif isinstance(e, PteRun):
            n = min(e.vpn + e.folio.nr, end) - vpn
        elif isinstance(e, SwapRun):
            n = min(e.vpn + e.nr, end) - vpn
        else:  # zero page ptes: group identical ones
            n = 1
            while vpn + n < end and pt.get(vpn + n) is e:
                n += 1
        yield vpn, n, e
        vpn += n


def map_new_anon(k: Kernel, task: Task, vma: VmAreaStruct, vpn: int, n: int, content: Any,
                 stride: int, *, write: bool, active: bool = False) -> Folio:
    """Allocate ``n`` folios and map them (do_anonymous_page / wp_page_copy / do_swap_page tail).

    folio_add_new_anon_rmap(): exclusive, index = linear_page_index(), mapping = anon_vma;
    the pte comes from mk_pte(vm_page_prot): young; dirty and writable for a write fault."""
    mm = vma.vm_mm
    if task.memcg is not None:
        fit = k.memcg.chargeable(task.memcg, n, task.cpu)
        if fit < n:  # SIM-ONLY: charge the run in the pieces memory.max lets through
            map_new_anon(k, task, vma, vpn, fit, content, stride, write=write, active=active)
            nxt = C.stamped(content, content[2] + fit) if stride else content
            return map_new_anon(k, task, vma, vpn + fit, n - fit, nxt, stride, write=write,
                                active=active)
    k.rmap.anon_vma_prepare(vma)
    k.charge(task, n)
    k.alloc_pages(n, task)
    f = k.new_folio(n, linear_page_index(vma, vpn << PAGE_SHIFT), content, stride)
    f.mapping = vma.anon_vma
    f.flags = PG_swapbacked | PG_anon_exclusive | (PG_active | PG_workingset if active else 0)
    f.mapcount = 1
    f.memcg = task.memcg
    p = PteRun(mm, f, vpn, young=True, dirty=write, write=write)
    f.ptes.append(p)
    mm.pt.set_range(vpn, vpn + n, p)
    mm.rss_anon += n
    k.swap.folio_add_lru(f, task.cpu)
    return f


def unmap_pte_run(k: Kernel, p: PteRun) -> None:
    """Drop one pte run's mapping of its folio (folio_remove_rmap_ptes + the pte's reference)."""
    f = p.folio
    f.ptes.remove(p)
    f.mapcount -= 1
    p.mm.rss_anon -= f.nr
    if f.mapcount == 0:
        k.folio_put_unmapped(f)


def handle_mm_fault_range(k: Kernel, task: Task, addr: int, length: int, *, write: bool,
                          op: ContentOp | None, unshare: bool = False) -> None:
    """User access to ``[addr, addr+length)``: what the MMU and handle_mm_fault() do.

    Raises SigSegv for an address with no vma, or without the access right
    (mm/memory.c / arch/x86/mm/fault.c: bad_area, access_error)."""
    mm = task.mm
    end_vpn = (addr + length + 4095) >> PAGE_SHIFT
    vpn = addr >> PAGE_SHIFT
    while vpn < end_vpn:
        vma = k.find_vma(mm, vpn << PAGE_SHIFT)
        if vma is None or vma.vm_start > (vpn << PAGE_SHIFT):
            raise SigSegv(vpn << PAGE_SHIFT, f"SIGSEGV (SEGV_MAPERR) at {vpn << PAGE_SHIFT:#x}")
        # access_error() is the user fault's check; break_ksm()'s FAULT_FLAG_UNSHARE fault
        # comes from the kernel and unshares in a PROT_NONE vma too (do_wp_page())
        need = 0 if unshare else VM_WRITE if write else VM_READ
        if need and not vma.vm_flags & need:
            raise SigSegv(vpn << PAGE_SHIFT, f"SIGSEGV (SEGV_ACCERR) at {vpn << PAGE_SHIFT:#x}")
        stop = min(end_vpn, vma.vm_end >> PAGE_SHIFT)
        while vpn < stop:
            # one segment at a time: handling it may split runs or reclaim elsewhere
            seg_vpn, n, e = next(_segments(mm, vpn, stop))
            if k.switches.split_rss_counting:
                check_sync_rss_stat(task, n, *_fault_rss_deltas(e, write, unshare))
            _fault_segment(k, task, vma, seg_vpn, n, e, write, op, unshare)
            vpn = seg_vpn + n


TASK_RSS_EVENTS_THRESH = 64


def _fault_rss_deltas(e: Any, write: bool, unshare: bool) -> tuple[bool, int, int]:
    """Whether an access to a segment of kind ``e`` is a page fault, and the per-page
    MM_ANONPAGES / MM_SWAPENTS change its handler makes with add_mm_counter_fast()."""
    if isinstance(e, SwapRun):
        return True, 1, -1  # do_swap_page()
    if isinstance(e, PteRun):
        return (write or unshare) and not (e.write and not unshare), 0, 0  # do_wp_page()
    if unshare:
        return False, 0, 0  # break_ksm() faults only on a KSM page
    if e is None:
        return True, int(write), 0  # do_anonymous_page(): the zero page, or a new folio
    return write, 1, 0  # a write to the zero page: wp_page_copy() of a new folio


def check_sync_rss_stat(task: Task, n: int, fault: bool, d_anon: int, d_swap: int) -> None:
    """SPLIT_RSS_COUNTING (v6.1): ``n`` page faults of ``task`` on its own mm, each changing
    MM_ANONPAGES by ``d_anon`` and MM_SWAPENTS by ``d_swap`` through add_mm_counter_fast(),
    i.e. in task->rss_stat.  handle_mm_fault() -> check_sync_rss_stat() folds that cache
    into the mm (sync_mm_rss()) at the fault that finds more than 64 events counted, before
    the fault's own change.  The mm's counters here are the true ones; ``rss_pending`` is
    the part /proc/PID/status does not show yet."""
    if not fault:
        return
    e0 = task.rss_events
    first = TASK_RSS_EVENTS_THRESH + 1 - e0  # index of the first fault that syncs
    if first >= n:
        task.rss_events = e0 + n
        task.rss_pending[0] += n * d_anon
        task.rss_pending[1] += n * d_swap
        return
    last = first + (TASK_RSS_EVENTS_THRESH + 2) * ((n - 1 - first) // (TASK_RSS_EVENTS_THRESH + 2))
    task.rss_events = n - 1 - last
    task.rss_pending[0] = (n - last) * d_anon
    task.rss_pending[1] = (n - last) * d_swap


def sync_mm_rss(task: Task) -> None:
    """sync_mm_rss(): the task's cached counts go into its mm."""
    task.rss_pending[0] = task.rss_pending[1] = 0
    task.rss_events = 0


def _fault_segment(k: Kernel, task: Task, vma: VmAreaStruct, vpn: int, n: int, e: Any,
                   write: bool, op: ContentOp | None, unshare: bool) -> None:
    mm = vma.vm_mm
    cost = k.costs
    if e is None:
        if not write:
            # do_anonymous_page() read fault: the shared zero page, special, read-only
            mm.pt.set_range(vpn, vpn + n, ZERO_PTE)
            k.tick(cost.fault * n)
            return
        if unshare:
            return
        c, s = op(C.ZERO, 0, n) if op else (C.ZERO, 0)
        map_new_anon(k, task, vma, vpn, n, c, s, write=True)
        k.vmstat["pgfault"] += n
        k.tick((cost.fault + cost.zero_page) * n)
        return
    if isinstance(e, ZeroPte):
        if not write:
            return
        # do_wp_page() on the zero pfn: a new zeroed folio (wp_page_copy)
        if e.dirty:
            k.ksm.ksm_might_unmap_zero_page(mm, n)
        c, s = op(C.ZERO, 0, n) if op and not unshare else (C.ZERO, 0)
        map_new_anon(k, task, vma, vpn, n, c, s, write=not unshare)
        k.tick((cost.fault + cost.zero_page) * n)
        return
    if isinstance(e, SwapRun):
        # one do_swap_page() per page in the kernel; here per stretch of pages that are all in
        # the swap cache (one folio run) or all not, in address order
        v, end = vpn, vpn + n
        while v < end:
            cur = mm.pt[v]
            if isinstance(cur, SwapRun):
                k.do_swap_page(task, vma, cur, v, min(end, cur.vpn + cur.nr) - v, write)
                cur = mm.pt[v]
            m = min(end - v, cur.vpn + cur.folio.nr - v)
            if write:
                _fault_segment(k, task, vma, v, m, cur, write, op, unshare)
            v += m
        return
    # present pte
    p: PteRun = e
    if not write:
        p.young = True
        k.tick(cost.touch * n)
        return
    f = p.folio
    if p.write and not unshare:
        p = isolate_pages(k, p, vpn, n) if op else p
        if op:
            f = p.folio
            f.content, f.stride = op(f.content, f.stride, n)
        p.young = p.dirty = True
        k.tick(cost.write * n)
        return
    # do_wp_page(): a write (or FAULT_FLAG_UNSHARE) on a read-only pte
    p = isolate_pages(k, p, vpn, n)
    f = p.folio
    if not folio_test_ksm(f):
        if f.flags & PG_anon_exclusive:
            if not unshare:
                _reuse(k, p, op, n)
            return
        if f.mapcount == 1:  # wp_can_reuse_anon_folio()
            if f.cpu >= 0:
                k.swap.lru_add_drain(f.cpu)
            if f.swap >= 0:
                k.swapfile.folio_free_swap(f)
            if folio_ref_count(f) == 1:
                f.flags |= PG_anon_exclusive
                if not unshare:
                    _reuse(k, p, op, n)
                return
    # wp_page_copy(): a new exclusive folio with the old content
    old_c, old_s = f.content, f.stride
    if folio_test_ksm(f):
        k.vmstat["cow_ksm"] += n
    unmap_pte_run(k, p)
    c, s = op(old_c, old_s, n) if op and not unshare else (old_c, old_s)
    # FAULT_FLAG_UNSHARE: the copy is mapped read-only and clean (young from mk_pte)
    map_new_anon(k, task, vma, vpn, n, c, s, write=not unshare)
    k.tick((cost.fault + cost.copy_page) * n)


def _reuse(k: Kernel, p: PteRun, op: ContentOp | None, n: int) -> None:
    """wp_page_reuse(): make the pte writable and dirty, then the write lands."""
    f = p.folio
    if op:
        f.content, f.stride = op(f.content, f.stride, n)
    p.write = p.young = p.dirty = True
    k.tick(k.costs.fault * n)


def zap_pte_range(k: Kernel, mm: MmStruct, vpn: int, end: int) -> None:
    """zap_pte_range(): clear every pte in ``[vpn, end)`` (munmap, MADV_DONTNEED, exit)."""
    for v, n, e in list(_segments(mm, vpn, end)):
        if e is None:
            continue
        if isinstance(e, PteRun):
            p = isolate_pages(k, e, v, n)
            mm.pt.clear_range(v, v + n)
            f = p.folio
            if p.dirty:
                f.flags |= PG_dirty
            unmap_pte_run(k, p)
        elif isinstance(e, SwapRun):
            off = v - e.vpn
            mm.pt.clear_range(v, v + n)
            mm.swapents -= n
            k.swapfile.free_swap_and_cache(e.slot + off, n)
        else:
            mm.pt.clear_range(v, v + n)
            if e.dirty:
                k.ksm.ksm_might_unmap_zero_page(mm, n)
    if k.switches.split_rss_counting:
        # add_mm_rss_vec(): the zapping task is the mm's own (munmap, madvise, exit)
        sync_mm_rss(k.task_of_mm(mm))
    k.tick(k.costs.zap * (end - vpn))


def copy_pte_range(k: Kernel, dst_vma: VmAreaStruct, src_vma: VmAreaStruct) -> None:
    """copy_pte_range() at fork: anon pages become CoW-shared (both ptes write-protected,
    AnonExclusive cleared); swap entries are duplicated; zero-page ptes copied."""
    src, dst = src_vma.vm_mm, dst_vma.vm_mm
    for v, n, e in list(_segments(src, src_vma.vm_start >> PAGE_SHIFT, src_vma.vm_end >> PAGE_SHIFT)):
        if e is None:
            continue
        if isinstance(e, PteRun):
            p = isolate_pages(k, e, v, n)
            f = p.folio
            p.write = False
            f.flags &= ~PG_anon_exclusive
            q = PteRun(dst, f, v, young=p.young, dirty=p.dirty, write=False)
            f.ptes.append(q)
            f.mapcount += 1
            dst.pt.set_range(v, v + n, q)
            dst.rss_anon += n
        elif isinstance(e, SwapRun):
            off = v - e.vpn
            k.swapfile.swap_duplicate(e.slot + off, n)
            e.exclusive = False  # copy_nonpresent_pte(): pte_swp_clear_exclusive() on both
            s = SwapRun(e.slot + off, v, n, e.page_content(off), e.stride)
            dst.pt.set_range(v, v + n, s)
            dst.swapents += n
        else:
            dst.pt.set_range(v, v + n, e)
            if e.dirty:
                k.ksm.ksm_zero_page_forked(dst, n)


def do_swap_page(k: Kernel, task: Task, vma: VmAreaStruct, e: SwapRun, vpn: int, n: int,
                 write: bool = False) -> None:
    """do_swap_page(): map the folio in the swap cache, or read the slots into a new folio
    run first (__read_swap_cache_async(): it goes into the swap cache, activated if
    workingset_refault() says the refault distance fits the workingset).  A folio that
    ksm_might_need_to_copy() says is foreign here is copied instead.  The swap cache keeps
    the folio after a read fault (should_try_to_free_swap()), so a second pte of the same
    slot finds it there.  No readahead: one fault reads only the slots it maps."""
    mm = vma.vm_mm
    off = vpn - e.vpn
    slot = e.slot + off
    cached = k.swapcache.get(slot)
    m = min(n, e.nr - off)
    if cached is None:
        cached_next = k.swapcache.first_in(slot, slot + m)
        if cached_next is not None:  # stop at the next page still in the swap cache
            m = cached_next - slot
        shadow = k.swapfile.shadow[slot]
        active = k.vmscan.workingset_refault(k.lruvec_for_task(task), shadow, m)
        map_new_anon(k, task, vma, vpn, m, e.page_content(off), e.stride, write=False,
                     active=active)
        mm.swapents -= m
        for f in _folios_mapped(mm, vpn, m):  # (more than one when memory.max split it)
            k.swapfile.add_to_swap_cache(f, slot + f.ptes[0].vpn - vpn)  # its one pte
            f.flags &= ~PG_anon_exclusive  # decided below, as for a cached folio
            k.swapfile.swap_free_cached(f.swap, f.nr)
            _swapped_in(k, task, vma, f, write, e.exclusive)
        k.vmstat["pswpin"] += m
        k.tick((k.costs.fault + k.costs.swap_in) * m)
        return
    f = cached
    i = slot - f.swap
    m = min(m, f.nr - i)
    if i or m < f.nr:  # isolate the cached folios this segment maps
        if i:
            _, f = split_folio_run(k, f, i)
        if m < f.nr:
            f, _ = split_folio_run(k, f, m)
    if not k.ksm.ksm_might_need_to_copy_ok(f, vma, vpn << PAGE_SHIFT):
        # ksm_might_need_to_copy(): a new folio with the cached folio's content, no read
        # (counted as ksm_swpin_copy, KSM folio or not).  The pte's reference on the slot
        # goes; the cached folio stays in the swap cache.
        k.vmstat["ksm_swpin_copy"] += m
        mm.swapents -= m
        k.swapfile.swap_free(slot, m)
        map_new_anon(k, task, vma, vpn, m, e.page_content(off), e.stride, write=False)
        k.tick((k.costs.fault + k.costs.copy_page) * m)
        return
    p = PteRun(mm, f, vpn, young=True, dirty=False, write=False)
    f.ptes.append(p)
    f.mapcount += 1  # folio_add_anon_rmap_ptes()
    mm.pt.set_range(vpn, vpn + m, p)
    mm.rss_anon += m
    mm.swapents -= m
    k.swapfile.swap_free_cached(slot, m)
    _swapped_in(k, task, vma, f, write, e.exclusive)
    k.tick(k.costs.fault * m)
    if k.tracing and folio_test_ksm(f):
        k.trace("do_swap_page", f"{mm.owner}:{vpn << PAGE_SHIFT:#x} maps KSM folio pfn "
                f"{f.pfn:#x} again from the swap cache", pfn=f.pfn)


def _folios_mapped(mm: MmStruct, vpn: int, n: int) -> list[Folio]:
    """The folio runs mapped at ``[vpn, vpn + n)``, in address order."""
    out: list[Folio] = []
    for _, _, pe in _segments(mm, vpn, vpn + n):
        if isinstance(pe, PteRun) and (not out or pe.folio is not out[-1]):
            out.append(pe.folio)
    return out


def _swapped_in(k: Kernel, task: Task, vma: VmAreaStruct, f: Folio, write: bool,
                exclusive: bool) -> None:
    """The end of do_swap_page() for a folio from the swap cache, just mapped: the write
    fault's lru_add_drain(), should_try_to_free_swap() (swap over half full, an mlocked vma,
    or a write fault by the only user), then RMAP_EXCLUSIVE from the swap pte's marker or a
    reference count of one."""
    ksm = folio_test_ksm(f)
    if write and not ksm and f.cpu == task.cpu:
        k.swap.lru_add_drain(task.cpu)  # the batch's reference would defeat the count
    if f.swap >= 0 and (k.swapfile.vm_swap_full() or vma.vm_flags & VM_LOCKED
                        or (write and not ksm and folio_ref_count(f) == 2)):
        k.swapfile.folio_free_swap(f)
    if not ksm and (exclusive or folio_ref_count(f) == 1):
        f.flags |= PG_anon_exclusive
