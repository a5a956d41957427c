"""The multi-gen LRU: the ``lru_gen_*`` half of mm/vmscan.c and include/linux/mm_inline.h.

Reference: v7.0-era text (lru_gen_folio_seq(), lru_gen_set_refs(), the two-step
folio_update_gen()).  What is modelled: generations per lruvec (min_seq..max_seq, at most
MAX_NR_GENS), where new, faulted, swapped-in and rejected folios are placed, aging
(try_to_inc_max_seq: a walk of the page tables of the memcg's mms that ran since the last
walk, young ptes cleared and their folios promoted), eviction from the oldest generation
(evict_folios, sort_folio, isolate_folio) through shrink_folio_list(), and the rmap
look-around from folio_referenced().

CUSTOM: anon only (no page cache, so no file/anon balance); tier_idx is 0 (the PID
controller's refault feedback is not modelled: a folio of tier > 0 is protected once);
no Bloom filter (every mm that ran is walked in full); the look-around ages whole pte
runs that overlap its 64-page window; v6.1's older placement and reference rules are not
separately modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ksmrepro.mm.const import (
    PAGE_SHIFT,
    VM_LOCKED,
    PG_active,
    PG_lru,
    PG_reclaim,
    PG_referenced,
    PG_swapcache,
    PG_workingset,
)
from ksmrepro.mm.mm_types import Folio, PteRun, VmAreaStruct, folio_test_ksm
from ksmrepro.mm.swap import LruList, Lruvec, folio_rotate_reclaimable

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel
    from ksmrepro.mm.vmscan import ScanControl

MAX_NR_GENS = 4
MIN_NR_GENS = 2
MIN_LRU_BATCH = 64  # BITS_PER_LONG
LRU_REFS_MAX = 3  # LRU_REFS_WIDTH 2
LIST_BASE = 10  # Folio.lru of a folio on generation list ``gen`` is LIST_BASE + gen
PMD_PAGES = 512


class LruGenFolio:
    """``struct lru_gen_folio``: one per lruvec while the multi-gen LRU is on."""

    def __init__(self, lv: Lruvec) -> None:
        self.max_seq = MIN_NR_GENS + 1  # lru_gen_init_lruvec()
        self.min_seq = 0
        for g in range(MAX_NR_GENS):
            lv.lists[LIST_BASE + g] = LruList(LIST_BASE + g)


def lru_gen_from_seq(seq: int) -> int:
    return seq % MAX_NR_GENS


class LruGen:
    """The multi-gen LRU of one simulated machine."""

    def __init__(self, k: Kernel) -> None:
        self.k = k

    # --- on/off ----------------------------------------------------------------------------
    def change_state(self, enable: bool) -> None:
        """lru_gen_change_state(): move every folio between the classic lists and the
        generations (fill_evictable / drain_evictable)."""
        k = self.k
        k.swap.lru_add_drain_all()
        for lv in k.all_lruvecs():
            if enable and lv.lrugen is None:
                old = [f for lst in (lv.lists[0], lv.lists[1]) for f in reversed(list(lst))]
                for f in old:
                    lv.lists[f.lru].remove(f)
                    f.flags &= ~PG_lru
                    f.lru = -1
                lv.lrugen = LruGenFolio(lv)
                for f in old:
                    self.lru_gen_add_folio(lv, f, False)
            elif not enable and lv.lrugen is not None:
                g = lv.lrugen
                folios = []
                for seq in range(g.min_seq, g.max_seq + 1):
                    lst = lv.lists[LIST_BASE + lru_gen_from_seq(seq)]
                    folios.extend(reversed(list(lst)))
                for f in folios:
                    active = self.lru_gen_is_active(lv, f.gen)
                    self.lru_gen_del_folio(lv, f)
                    if active:
                        f.flags |= PG_active
                lv.lrugen = None
                for gi in range(MAX_NR_GENS):
                    del lv.lists[LIST_BASE + gi]
                from ksmrepro.mm.swap import lruvec_add_folio
                for f in folios:
                    lruvec_add_folio(lv, f)

    # --- placement (module functions below; methods kept for callers holding a LruGen)
    def lru_gen_is_active(self, lv: Lruvec, gen: int) -> bool:
        return lru_gen_is_active(lv, gen)

    def lru_gen_folio_seq(self, lv: Lruvec, f: Folio, reclaiming: bool) -> int:
        return lru_gen_folio_seq(lv, f, reclaiming)

    def lru_gen_add_folio(self, lv: Lruvec, f: Folio, reclaiming: bool) -> None:
        lru_gen_add_folio(lv, f, reclaiming)

    def lru_gen_del_folio(self, lv: Lruvec, f: Folio) -> None:
        lru_gen_del_folio(lv, f)

    def folio_update_gen(self, f: Folio, gen: int) -> int:
        """folio_update_gen(): lazy promotion; the first sighting only sets PG_referenced."""
        if f.gen < 0:
            f.flags |= PG_referenced
            return -1
        if not f.flags & (PG_referenced | PG_workingset):
            f.flags |= PG_referenced
            f.refs = 0
            return -1
        old = f.gen
        f.gen = gen
        return old

    def folio_inc_gen(self, lv: Lruvec, f: Folio) -> int:
        """folio_inc_gen(): one generation younger than the oldest; references cleared."""
        new = lru_gen_from_seq(lv.lrugen.min_seq + 1)
        f.flags &= ~(PG_referenced | PG_workingset)
        f.refs = 0
        f.gen = new
        return new

    def lru_gen_inc_refs(self, f: Folio) -> None:
        """lru_gen_inc_refs() (folio_mark_accessed() with the multi-gen LRU)."""
        if not f.flags & PG_referenced:
            f.flags |= PG_referenced
            return
        if f.refs == LRU_REFS_MAX:
            f.flags |= PG_workingset
            return
        f.refs += 1

    def lru_gen_set_refs(self, f: Folio) -> bool:
        """lru_gen_set_refs(): a first reference only marks; a second means activate."""
        if not f.flags & (PG_referenced | PG_workingset):
            f.flags |= PG_referenced
            f.refs = 0
            return False
        f.flags = (f.flags & ~PG_referenced) | PG_workingset
        return True

    def _tier(self, f: Folio) -> int:
        """lru_tier_from_refs(folio_lru_refs(), workingset)."""
        if f.flags & PG_workingset:
            return 3
        refs = f.refs + 1 if f.flags & PG_referenced else 0
        return max(refs - 1, 0).bit_length()  # order_base_2(refs)

    # --- references (rmap) -------------------------------------------------------------------
    def lru_gen_look_around(self, p: PteRun, vma: VmAreaStruct) -> bool:
        """lru_gen_look_around(): clear this pte's young bit and, if it was young, age up to
        MIN_LRU_BATCH neighbouring ptes of the same vma and PMD, promoting young ones."""
        young = p.young
        p.young = False
        if not young:
            return False
        k = self.k
        lv_gen = lru_gen_from_seq(k.lruvec_of(p.folio).lrugen.max_seq)
        vpn = p.vpn
        start = max(vpn & ~(PMD_PAGES - 1), vma.vm_start >> PAGE_SHIFT)
        end = min((vpn | (PMD_PAGES - 1)) + 1, vma.vm_end >> PAGE_SHIFT)
        if end - start > MIN_LRU_BATCH:
            if vpn - start < MIN_LRU_BATCH // 2:
                end = start + MIN_LRU_BATCH
            elif end - vpn < MIN_LRU_BATCH // 2:
                start = end - MIN_LRU_BATCH
            else:
                start, end = vpn - MIN_LRU_BATCH // 2, vpn + MIN_LRU_BATCH // 2
        pt = p.mm.pt
        v = start
        promoted = 0
        while v < end:
            e = pt.get(v)
            if isinstance(e, PteRun):
                if e is not p and e.young and e.folio.memcg is p.folio.memcg:
                    e.young = False
                    if self.folio_update_gen(e.folio, lv_gen) >= 0:
                        promoted += e.folio.nr
                v = e.vpn + e.folio.nr
            else:
                v += 1
        if k.tracing and promoted:
            k.trace("lru_gen_look_around", f"{p.mm.owner}:{p.addr:#x} young: {promoted} "
                    f"neighbouring page(s) promoted", promoted=promoted)
        return True

    # --- aging -------------------------------------------------------------------------------
    def should_run_aging(self, lv: Lruvec) -> bool:
        g = lv.lrugen
        return g.min_seq + MIN_NR_GENS > g.max_seq

    def try_to_inc_max_seq(self, lv: Lruvec, memcg: object) -> None:
        """try_to_inc_max_seq(): walk the page tables of the memcg's mms that ran since the
        last walk (should_skip_mm(): also those with fewer than MIN_LRU_BATCH pages), clear
        young ptes, promote their folios to the youngest generation; then inc_max_seq()."""
        k = self.k
        g = lv.lrugen
        gen = lru_gen_from_seq(g.max_seq)
        walked = []
        skipped = []
        for t in k.tasks.values():
            mm = t.mm
            if not t.alive or (mm.memcg or k.memcg.root) is not memcg:
                continue
            if not mm.lru_gen_ran or mm.rss_anon < MIN_LRU_BATCH:
                skipped.append(mm.owner)
                continue
            walked.append(mm)
        wset = set(map(id, walked))
        promoted_ksm = []
        for seq in range(g.min_seq, g.max_seq + 1):
            for f in lv.lists[LIST_BASE + lru_gen_from_seq(seq)]:
                for p in f.ptes:
                    if p.young and id(p.mm) in wset:
                        v = k.find_vma(p.mm, p.addr)
                        if v is None or v.vm_flags & VM_LOCKED:
                            continue
                        p.young = False
                        if self.folio_update_gen(f, gen) >= 0 and folio_test_ksm(f):
                            promoted_ksm.append(f.pfn)
        for mm in walked:
            mm.lru_gen_ran = False
        self.inc_max_seq(lv)
        k.vmstat["lru_gen_aging"] += 1
        if k.tracing and (promoted_ksm or any(folio_test_ksm(f) for f in self._ksm_folios(lv))):
            k.trace("try_to_inc_max_seq",
                    f"{lv.name}: max_seq -> {g.max_seq} (min_seq {g.min_seq}); walked "
                    f"{[m.owner for m in walked]}, skipped {skipped}"
                    + (f"; KSM folio(s) {[hex(x) for x in promoted_ksm]} promoted"
                       if promoted_ksm else ""), max_seq=g.max_seq)

    def _ksm_folios(self, lv: Lruvec) -> list[Folio]:
        g = lv.lrugen
        return [f for seq in range(g.min_seq, g.max_seq + 1)
                for f in lv.lists[LIST_BASE + lru_gen_from_seq(seq)] if folio_test_ksm(f)]

    def inc_max_seq(self, lv: Lruvec) -> None:
        """inc_max_seq(): with MAX_NR_GENS generations already, the oldest is folded into
        the next (inc_min_seq) first."""
        g = lv.lrugen
        if g.max_seq - g.min_seq + 1 == MAX_NR_GENS:
            old = lv.lists[LIST_BASE + lru_gen_from_seq(g.min_seq)]
            nxt_gen = lru_gen_from_seq(g.min_seq + 1)
            nxt = lv.lists[LIST_BASE + nxt_gen]
            while old.tail is not None:
                f = old.tail
                old.remove(f)
                if f.gen == lru_gen_from_seq(g.min_seq):
                    f.gen = nxt_gen
                    f.flags &= ~(PG_referenced | PG_workingset)
                    f.refs = 0
                f.lru = LIST_BASE + nxt_gen
                nxt.add_tail(f)
            g.min_seq += 1
        g.max_seq += 1

    def try_to_inc_min_seq(self, lv: Lruvec) -> None:
        g = lv.lrugen
        while g.min_seq + MIN_NR_GENS <= g.max_seq and \
                lv.lists[LIST_BASE + lru_gen_from_seq(g.min_seq)].tail is None:
            g.min_seq += 1

    # --- eviction ----------------------------------------------------------------------------
    def evict_folios(self, lv: Lruvec, sc: ScanControl, nr: int) -> int:
        """evict_folios(): scan_folios() from the oldest generation, sort_folio() each,
        shrink_folio_list() on what is isolated, rejected folios back younger."""
        k = self.k
        g = lv.lrugen
        k.swap.lru_add_drain(sc.cpu)
        oldest = lru_gen_from_seq(g.min_seq)
        lst = lv.lists[LIST_BASE + oldest]
        isolated: list[Folio] = []
        scanned = 0
        while scanned < nr and lst.tail is not None:
            f = lst.tail
            if f.gen != oldest:  # promoted
                lst.remove(f)
                f.lru = LIST_BASE + f.gen
                lv.lists[f.lru].add_head(f)
                self._trace_ksm(f, lv, "promoted: moved to its generation")
                continue
            if self._tier(f) > 0:  # protected (tier_idx 0)
                lst.remove(f)
                gen = self.folio_inc_gen(lv, f)
                f.lru = LIST_BASE + gen
                lv.lists[f.lru].add_head(f)
                self._trace_ksm(f, lv, "protected by its tier: one generation younger")
                continue
            if f.nr > nr - scanned:
                f, _ = k.split_folio_run(f, nr - scanned)
            self._trace_ksm(f, lv, "isolated from the oldest generation")
            self.lru_gen_del_folio(lv, f)  # isolate_folio()
            if not f.flags & PG_referenced:
                f.refs = 0
            isolated.append(f)
            scanned += f.nr
        self.try_to_inc_min_seq(lv)
        back = k.vmscan.shrink_folio_list(isolated, sc, lv)
        for f in back:
            if f.mapping is None and f.swap < 0:
                k.free_folio(f)
                continue
            if f.flags & PG_reclaim:  # under writeback: its end rotates it (vmscan.putback)
                folio_rotate_reclaimable(k, lv, f)
                continue
            # don't add rejected folios to the oldest generation
            if self.lru_gen_folio_seq(lv, f, False) == g.min_seq:
                f.flags = (f.flags & ~(PG_referenced | PG_workingset)) | PG_active
            self.lru_gen_add_folio(lv, f, False)
        k.tick_reclaim(k.costs.scan * scanned)
        return scanned

    def _trace_ksm(self, f: Folio, lv: Lruvec, what: str) -> None:
        k = self.k
        if k.tracing and folio_test_ksm(f):
            g = lv.lrugen
            k.trace("sort_folio", f"KSM folio pfn {f.pfn:#x} (gen {f.gen}, seqs "
                    f"{g.min_seq}..{g.max_seq}, PG_referenced "
                    f"{int(bool(f.flags & PG_referenced))}): {what}", pfn=f.pfn)

    def lru_gen_shrink_lruvec(self, lv: Lruvec, sc: ScanControl) -> None:
        """lru_gen_shrink_lruvec() / try_to_shrink_lruvec(): age when too few generations,
        evict from the oldest, until the target is met or the scan budget is spent."""
        self.k.first_use("lru_gen_shrink_lruvec")
        memcg = self._memcg_of(lv)
        total = sum(lv.lists[LIST_BASE + i].pages for i in range(MAX_NR_GENS))
        budget = total >> sc.priority
        idle = 0
        while budget > 0 and sc.nr_reclaimed < sc.nr_to_reclaim:
            if self.should_run_aging(lv):
                self.try_to_inc_max_seq(lv, memcg)
            want = max(sc.nr_to_reclaim - sc.nr_reclaimed, 32)
            scanned = self.evict_folios(lv, sc, min(budget, want))
            budget -= max(scanned, 1)
            if scanned == 0:
                idle += 1
                if idle > MAX_NR_GENS:  # every generation looked at: nothing to isolate
                    break
                if not self.should_run_aging(lv):
                    self.try_to_inc_max_seq(lv, memcg)

    def _memcg_of(self, lv: Lruvec) -> object:
        for c in self.k.memcg.all():
            if c.lruvec is lv:
                return c
        return self.k.memcg.root

    def sizes(self, lv: Lruvec) -> tuple[int, int]:
        """(active, inactive) pages: the two youngest generations count as active."""
        g = lv.lrugen
        if g is None:
            return lv.lists[1].pages, lv.lists[0].pages
        active = inactive = 0
        for seq in range(g.min_seq, g.max_seq + 1):
            n = lv.lists[LIST_BASE + lru_gen_from_seq(seq)].pages
            if seq >= g.max_seq - 1:
                active += n
            else:
                inactive += n
        return active, inactive


def lru_gen_is_active(lv: Lruvec, gen: int) -> bool:
    """lru_gen_is_active(): the two youngest generations."""
    g = lv.lrugen
    return gen in (lru_gen_from_seq(g.max_seq), lru_gen_from_seq(g.max_seq - 1))


def lru_gen_folio_seq(lv: Lruvec, f: Folio, reclaiming: bool) -> int:
    """lru_gen_folio_seq(): active (set at fault time) and anon not in the swap cache go
    to the second youngest generation, the rest towards the oldest."""
    g = lv.lrugen
    ws = 1 if f.flags & PG_workingset else 0
    if f.flags & PG_active:
        gen = MIN_NR_GENS - ws
    elif reclaiming:
        gen = MAX_NR_GENS
    elif not f.flags & PG_swapcache:
        gen = MIN_NR_GENS
    else:
        gen = MAX_NR_GENS - ws
    return max(g.max_seq - gen + 1, g.min_seq)


def lru_gen_add_folio(lv: Lruvec, f: Folio, reclaiming: bool) -> None:
    """lru_gen_add_folio(): PG_active is only a placement hint and is cleared."""
    gen = lru_gen_from_seq(lru_gen_folio_seq(lv, f, reclaiming))
    f.flags &= ~PG_active
    f.flags |= PG_lru
    f.gen = gen
    f.lru = LIST_BASE + gen
    lst = lv.lists[f.lru]
    if reclaiming:
        lst.add_tail(f)
    else:
        lst.add_head(f)


def lru_gen_del_folio(lv: Lruvec, f: Folio) -> None:
    lv.lists[f.lru].remove(f)
    f.flags &= ~PG_lru
    f.lru = -1
    f.gen = -1
