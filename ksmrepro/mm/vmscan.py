"""mm/vmscan.c (classic two-list LRU) and the workingset bits of mm/workingset.c.

Reference: v6.1 and >= v6.15 text, whose classic-LRU decisions are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ksmrepro.mm.const import (
    DEF_PRIORITY,
    SWAP_CLUSTER_MAX,
    VM_LOCKED,
    PG_active,
    PG_dirty,
    PG_lru,
    PG_mlocked,
    PG_reclaim,
    PG_referenced,
    PG_swapcache,
    PG_workingset,
)
from ksmrepro.mm.mm_types import LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, Folio, folio_test_ksm
from ksmrepro.mm.swap import Lruvec, folio_rotate_reclaimable, lruvec_add_folio, lruvec_del_folio

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel

FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE = range(4)
FOLIOREF_NAMES = ("RECLAIM", "RECLAIM_CLEAN", "KEEP", "ACTIVATE")


@dataclass
class ScanControl:
    """``struct scan_control``."""

    nr_to_reclaim: int
    cpu: int = 0
    priority: int = DEF_PRIORITY
    nr_reclaimed: int = 0
    nr_scanned: int = 0
    may_deactivate_anon: bool = False
    force_deactivate: bool = False
    skipped_deactivate: bool = False
    ignore_references: bool = False
    proactive: bool = False
    target_memcg: object = None


class Vmscan:
    def __init__(self, k: Kernel) -> None:
        self.k = k

    # --- decisions -----------------------------------------------------------------
    def folio_check_references(self, f: Folio, memcg: object = None) -> int:
        """folio_check_references() (classic LRU)."""
        k = self.k
        referenced_ptes, vm_flags = k.rmap.folio_referenced(f, memcg)
        if k.lru_gen_enabled():  # lru_gen_folio_check_references()
            if vm_flags & VM_LOCKED:
                ret = FOLIOREF_ACTIVATE
            elif not referenced_ptes:
                ret = FOLIOREF_RECLAIM
            else:
                ret = FOLIOREF_ACTIVATE if k.lru_gen.lru_gen_set_refs(f) else FOLIOREF_KEEP
            if k.tracing and folio_test_ksm(f):
                k.trace("folio_check_references",
                        f"KSM folio pfn {f.pfn:#x}: {referenced_ptes} young pte(s) found by the "
                        f"rmap walk -> {FOLIOREF_NAMES[ret]} (multi-gen LRU)", pfn=f.pfn,
                        referenced_ptes=referenced_ptes, verdict=FOLIOREF_NAMES[ret])
            return ret
        referenced_folio = bool(f.flags & PG_referenced)
        f.flags &= ~PG_referenced  # folio_test_clear_referenced()
        if vm_flags & VM_LOCKED:
            ret = FOLIOREF_ACTIVATE
        elif referenced_ptes:
            f.flags |= PG_referenced  # folio_set_referenced()
            ret = FOLIOREF_ACTIVATE if referenced_folio or referenced_ptes > 1 else FOLIOREF_KEEP
        else:
            ret = FOLIOREF_RECLAIM
        if k.tracing and folio_test_ksm(f):
            k.trace("folio_check_references",
                    f"KSM folio pfn {f.pfn:#x}: {referenced_ptes} young pte(s) found by the rmap "
                    f"walk, PG_referenced was {int(referenced_folio)} -> {FOLIOREF_NAMES[ret]}",
                    pfn=f.pfn, referenced_ptes=referenced_ptes,
                    referenced_folio=referenced_folio, verdict=FOLIOREF_NAMES[ret])
        return ret

    def inactive_is_low(self, lv: Lruvec) -> bool:
        """inactive_is_low(): ratio 1 below 1 GiB of anon (int_sqrt(10 * gb) above)."""
        inactive = lv.lists[LRU_INACTIVE_ANON].pages
        active = lv.lists[LRU_ACTIVE_ANON].pages
        gb = (inactive + active) >> 18
        ratio = math.isqrt(10 * gb) if gb else 1
        return inactive * ratio < active

    # --- isolation -------------------------------------------------------------------
    def isolate_lru_folios(self, lv: Lruvec, lru: int, nr: int) -> list[Folio]:
        """isolate_lru_folios(): up to ``nr`` pages from the tail, oldest first."""
        lst = lv.lists[lru]
        out: list[Folio] = []
        while nr > 0 and lst.tail is not None:
            f = lst.tail
            if f.nr > 2 * nr:  # take the oldest ``nr`` folios of the run
                # CUSTOM: a run up to twice the request is taken whole (reclaim may scan up to
                # one run's worth more than asked), so small remainders do not fragment runs
                f, _ = self.k.split_folio_run(f, nr)
            lruvec_del_folio(lv, f)
            out.append(f)
            nr -= f.nr
        return out

    def putback(self, lv: Lruvec, folios: list[Folio]) -> None:
        """move_folios_to_lru(); a folio whose swap write was started by this pass (PG_reclaim)
        is then rotated to the tail by the write's end (folio_rotate_reclaimable())."""
        for f in folios:
            if f.mapping is None and f.swap < 0:
                self.k.free_folio(f)
                continue
            if f.flags & PG_reclaim:
                folio_rotate_reclaimable(self.k, lv, f)
                continue
            lruvec_add_folio(lv, f)

    # --- the lists ---------------------------------------------------------------------
    def shrink_folio_list(self, folios: list[Folio], sc: ScanControl, lv: Lruvec) -> list[Folio]:
        """shrink_folio_list(): reclaim what can be; return the folios to put back."""
        k = self.k
        ret: list[Folio] = []
        work = list(folios)
        while work:
            f = work.pop(0)
            sc.nr_scanned += f.nr
            if f.mapping is None and f.swap < 0:  # freed while isolated
                k.free_folio(f)
                continue
            refs = FOLIOREF_RECLAIM if sc.ignore_references else self.folio_check_references(
                f, sc.target_memcg)
            if refs == FOLIOREF_ACTIVATE:
                ret.append(self._activate_locked(f))
                continue
            if refs == FOLIOREF_KEEP:
                ret.append(f)
                continue
            if f.swap < 0:
                # the swap-out path: add_to_swap(), try_to_unmap(), pageout()
                k.first_use("shrink_folio_list:pageout")
                got, rest = k.swapfile.add_to_swap(f)
                if rest is not None:
                    if got is None:
                        ret.append(self._activate_locked(rest))  # activate_locked_split
                        continue
                    work.insert(0, rest)  # CUSTOM: a run that got fewer slots: the rest next
                f = got  # type: ignore[assignment]
            if f.mapcount and not k.rmap.try_to_unmap(f):
                k.vmstat["nr_unmap_fail"] += f.nr
                ret.append(self._activate_locked(f))
                continue
            if f.flags & PG_dirty:
                # pageout() -> swap_writepage(): PG_reclaim, then the write is submitted to
                # the (asynchronous, block) swap device and is still under writeback when
                # shrink_folio_list() looks again: "goto keep".  The folio stays clean in
                # the swap cache, unmapped; the write's end rotates it to the tail
                # (putback() / evict_folios()), and the next isolation frees it below.
                # CUSTOM: every write ends between this pass and the next isolation.
                f.flags = (f.flags & ~PG_dirty) | PG_reclaim
                k.vmstat["pswpout"] += f.nr
                k.tick_reclaim(k.costs.swap_out * f.nr)
                if k.tracing and folio_test_ksm(f):
                    k.trace("shrink_folio_list", f"KSM folio pfn {f.pfn:#x} unmapped and written "
                            "to swap; kept in the swap cache until its next isolation",
                            pfn=f.pfn)
                ret.append(f)
                continue
            if f.cpu >= 0:  # an extra reference: __remove_mapping() fails
                ret.append(f)
                continue
            # __remove_mapping(): leave a shadow entry, free the folio
            self.workingset_eviction(lv, f)
            ksm = folio_test_ksm(f)
            k.swapfile.delete_from_swap_cache(f)
            if ksm and k.tracing:
                k.trace("shrink_folio_list", f"KSM folio pfn {f.pfn:#x} (written out) freed "
                        "from the swap cache; its stable node is now stale", pfn=f.pfn)
            k.free_folio(f)
            sc.nr_reclaimed += f.nr
        return ret

    def _activate_locked(self, f: Folio) -> Folio:
        k = self.k
        if f.swap >= 0 and (k.swapfile.vm_swap_full() or f.flags & PG_mlocked):
            k.swapfile.folio_free_swap(f)
        f.flags |= PG_active
        k.vmstat["pgactivate"] += f.nr
        if k.tracing and folio_test_ksm(f):
            k.trace("activate_locked", f"KSM folio pfn {f.pfn:#x} -> active list"
                    + (" (still in swap cache)" if f.swap >= 0 else ""), pfn=f.pfn)
        return f

    def shrink_inactive_list(self, lv: Lruvec, nr: int, sc: ScanControl) -> None:
        k = self.k
        k.swap.lru_add_drain(sc.cpu)
        isolated = self.isolate_lru_folios(lv, LRU_INACTIVE_ANON, nr)
        back = self.shrink_folio_list(isolated, sc, lv)
        self.putback(lv, back)
        k.tick_reclaim(k.costs.scan * sum(f.nr for f in isolated))

    def shrink_active_list(self, lv: Lruvec, nr: int, sc: ScanControl) -> None:
        """shrink_active_list(): every anon folio is deactivated (young bits cleared on the way)."""
        k = self.k
        k.swap.lru_add_drain(sc.cpu)
        for f in self.isolate_lru_folios(lv, LRU_ACTIVE_ANON, nr):
            if f.mapping is None and f.swap < 0:
                k.free_folio(f)
                continue
            k.rmap.folio_referenced(f, sc.target_memcg)
            f.flags &= ~PG_active
            f.flags |= PG_workingset
            k.vmstat["pgdeactivate"] += f.nr
            if k.tracing and folio_test_ksm(f):
                k.trace("shrink_active_list", f"KSM folio pfn {f.pfn:#x} deactivated", pfn=f.pfn)
            lruvec_add_folio(lv, f)

    def shrink_lruvec(self, lv: Lruvec, sc: ScanControl) -> None:
        """shrink_lruvec() with get_scan_count(): anon only (SCAN_ANON; no page cache)."""
        self.k.first_use("shrink_lruvec")
        inactive = lv.lists[LRU_INACTIVE_ANON].pages
        active = lv.lists[LRU_ACTIVE_ANON].pages
        if self.k.swapfile.pages - self.k.swapfile.inuse_pages <= 0:
            return  # can_reclaim_anon_pages(): no swap space
        nr_inactive = inactive >> sc.priority
        nr_active = active >> sc.priority
        while nr_inactive:  # the kernel's loop runs on the inactive (and file) targets
            want = max(SWAP_CLUSTER_MAX, sc.nr_to_reclaim - sc.nr_reclaimed)
            if nr_inactive:
                # CUSTOM: isolates up to the outstanding target at once, not 32 at a time;
                # every folio is still judged on its own.
                n = min(nr_inactive, want)
                nr_inactive -= n
                self.shrink_inactive_list(lv, n, sc)
            if nr_active:
                n = min(nr_active, SWAP_CLUSTER_MAX)
                nr_active -= n
                if sc.may_deactivate_anon:
                    self.shrink_active_list(lv, n, sc)
                else:
                    sc.skipped_deactivate = True
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
        if self.inactive_is_low(lv):
            self.shrink_active_list(lv, SWAP_CLUSTER_MAX, sc)

    def shrink_node(self, lv: Lruvec, sc: ScanControl) -> None:
        """shrink_node() / prepare_scan_control(): may_deactivate when anon refaults were
        activated since the last snapshot, or the inactive anon list is low."""
        if lv.lrugen is not None:
            self.k.lru_gen.lru_gen_shrink_lruvec(lv, sc)
            return
        refaults = lv.workingset_activate_anon
        sc.may_deactivate_anon = (sc.force_deactivate or refaults != lv.refaults_snapshot
                                  or self.inactive_is_low(lv))
        self.shrink_lruvec(lv, sc)

    def do_try_to_free_pages(self, lvs: list[Lruvec], sc: ScanControl) -> int:
        # CUSTOM: start at the first priority whose scan target covers nr_to_reclaim: the
        # higher priorities would only look at the same tail folios in smaller bites.  (So a
        # try that starts at priority 0 frees what it wrote to swap only at the next try,
        # where the kernel's later, smaller bites free some of it in the same try.)
        inactive = sum(lv.lists[LRU_INACTIVE_ANON].pages for lv in lvs)
        start = DEF_PRIORITY
        while start > 0 and inactive >> start < sc.nr_to_reclaim:
            start -= 1
        for _attempt in range(2):
            for prio in range(start, -1, -1):
                sc.priority = prio
                for lv in lvs:
                    self.shrink_node(lv, sc)
                if sc.nr_reclaimed >= sc.nr_to_reclaim:
                    break
            for lv in lvs:  # snapshot_refaults()
                lv.refaults_snapshot = lv.workingset_activate_anon
            if sc.nr_reclaimed or not sc.skipped_deactivate or sc.force_deactivate:
                break
            sc.force_deactivate = True  # retry with forced deactivation
            sc.skipped_deactivate = False
        return sc.nr_reclaimed

    def try_to_free_pages(self, nr: int, cpu: int, lvs: list[Lruvec] | None = None,
                          proactive: bool = False, target_memcg: object = None) -> int:
        """try_to_free_pages() (direct reclaim, kswapd) / try_to_free_mem_cgroup_pages()
        (``target_memcg``: only its lruvecs, and only references from its mms count)."""
        sc = ScanControl(nr_to_reclaim=max(nr, SWAP_CLUSTER_MAX), cpu=cpu, proactive=proactive,
                         target_memcg=target_memcg)
        self.k.tick_reclaim(self.k.costs.reclaim_try)
        return self.do_try_to_free_pages(lvs or self.k.all_lruvecs(), sc)

    def reclaim_pages(self, folios: list[Folio], cpu: int) -> int:
        """reclaim_pages() for MADV_PAGEOUT: isolated folios, references ignored."""
        k = self.k
        sc = ScanControl(nr_to_reclaim=sum(f.nr for f in folios), cpu=cpu, ignore_references=True)
        for f in folios:
            lv = k.lruvec_of(f)
            if f.flags & PG_lru:
                lruvec_del_folio(lv, f)
                self.putback(lv, self.shrink_folio_list([f], sc, lv))
        return sc.nr_reclaimed

    # --- workingset ----------------------------------------------------------------------
    def workingset_eviction(self, lv: Lruvec, f: Folio) -> None:
        """workingset_eviction(): the shadow entry records the lruvec's nonresident age."""
        # one eviction per folio, in order: folio i of the run gets age + i + 1
        self.k.swapfile.set_shadow(f.swap, f.nr, lv.nonresident_age + 1)
        lv.nonresident_age += f.nr

    def workingset_refault(self, lv: Lruvec, shadow: int, nr: int) -> bool:
        """workingset_refault() for anon: activate only if the refault distance fits in the
        workingset (active file + inactive file + active anon, the file lists being empty)."""
        if not shadow:
            return False
        distance = lv.nonresident_age - shadow
        workingset_size = lv.lists[LRU_ACTIVE_ANON].pages
        self.k.vmstat["workingset_refault_anon"] += nr
        if distance > workingset_size:
            return False
        lv.workingset_activate_anon += nr
        lv.nonresident_age += nr
        self.k.vmstat["workingset_activate_anon"] += nr
        return True


__all__ = ["ScanControl", "Vmscan", "FOLIOREF_NAMES", "PG_swapcache"]
