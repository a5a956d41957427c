"""mm/swap.c: LRU lists, per-CPU lru_add batches, folio_mark_accessed().

(Not swap devices: those are mm/swapfile.c, in ``swapfile.py``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ksmrepro.mm.const import PG_active, PG_idle, PG_lru, PG_reclaim, PG_referenced, PG_unevictable
from ksmrepro.mm.mm_types import LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, LRU_UNEVICTABLE, Folio

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel


class LruList:
    """One LRU list of a lruvec: ``head`` is the newest end, reclaim isolates from the tail."""

    __slots__ = ("head", "tail", "pages", "lru")

    def __init__(self, lru: int) -> None:
        self.head: Folio | None = None
        self.tail: Folio | None = None
        self.pages = 0
        self.lru = lru

    def add_head(self, f: Folio) -> None:
        f.prev = None
        f.next = self.head
        if self.head is not None:
            self.head.prev = f
        else:
            self.tail = f
        self.head = f
        self.pages += f.nr

    def add_tail(self, f: Folio) -> None:
        f.next = None
        f.prev = self.tail
        if self.tail is not None:
            self.tail.next = f
        else:
            self.head = f
        self.tail = f
        self.pages += f.nr

    def insert_before(self, new: Folio, old: Folio) -> None:
        """Put ``new`` on the head side of ``old`` (a split run's newer part)."""
        new.next = old
        new.prev = old.prev
        if old.prev is not None:
            old.prev.next = new
        else:
            self.head = new
        old.prev = new
        self.pages += new.nr

    def remove(self, f: Folio) -> None:
        if f.prev is not None:
            f.prev.next = f.next
        else:
            self.head = f.next
        if f.next is not None:
            f.next.prev = f.prev
        else:
            self.tail = f.prev
        f.prev = f.next = None
        self.pages -= f.nr

    def __iter__(self):  # head to tail
        f = self.head
        while f is not None:
            nxt = f.next
            yield f
            f = nxt


class Lruvec:
    """``struct lruvec`` (one per node x memcg; anon lists only: CUSTOM, no page cache)."""

    def __init__(self, name: str = "root") -> None:
        self.name = name
        self.lists = {LRU_INACTIVE_ANON: LruList(LRU_INACTIVE_ANON),
                      LRU_ACTIVE_ANON: LruList(LRU_ACTIVE_ANON),
                      LRU_UNEVICTABLE: LruList(LRU_UNEVICTABLE)}
        self.nonresident_age = 0  # workingset_age_nonresident()
        self.workingset_activate_anon = 0  # WORKINGSET_ACTIVATE_ANON
        self.refaults_snapshot = 0  # target_lruvec->refaults[WORKINGSET_ANON]
        self.lrugen: Any = None  # struct lru_gen_folio while the multi-gen LRU is on


def lruvec_add_folio(lruvec: Lruvec, f: Folio) -> None:
    """include/linux/mm_inline.h lruvec_add_folio(): PG_lru set, head of its list (or
    lru_gen_add_folio() while the multi-gen LRU is on)."""
    if lruvec.lrugen is not None:
        from ksmrepro.mm.lru_gen import lru_gen_add_folio
        lru_gen_add_folio(lruvec, f, False)
        return
    lruvec.lists[_folio_lru_list(f)].add_head(f)


def lruvec_add_folio_tail(lruvec: Lruvec, f: Folio) -> None:
    """lruvec_add_folio_tail(): as lruvec_add_folio(), at the tail (lru_gen_add_folio()
    with ``reclaiming``: the oldest generation's tail)."""
    if lruvec.lrugen is not None:
        from ksmrepro.mm.lru_gen import lru_gen_add_folio
        lru_gen_add_folio(lruvec, f, True)
        return
    lruvec.lists[_folio_lru_list(f)].add_tail(f)


def _folio_lru_list(f: Folio) -> int:
    """folio_lru_list() (anon only), with PG_lru and folio->lru set for the list."""
    lru = LRU_UNEVICTABLE if f.flags & PG_unevictable else (
        LRU_ACTIVE_ANON if f.flags & PG_active else LRU_INACTIVE_ANON)
    f.flags |= PG_lru
    f.lru = lru
    return lru


def folio_rotate_reclaimable(k: Kernel, lruvec: Lruvec, f: Folio) -> None:
    """folio_end_writeback() -> folio_rotate_reclaimable() / lru_move_tail_fn(): a folio
    written back for reclaim goes to the tail of the inactive list, where reclaim isolates
    next (with the multi-gen LRU, lru_gen_add_folio(reclaiming): the oldest generation's
    tail).  PG_reclaim is cleared; PG_active too."""
    f.flags &= ~(PG_reclaim | PG_active)
    k.vmstat["pgrotated"] += f.nr
    lruvec_add_folio_tail(lruvec, f)


def lruvec_del_folio(lruvec: Lruvec, f: Folio) -> None:
    lruvec.lists[f.lru].remove(f)
    f.flags &= ~PG_lru
    f.lru = -1
    f.gen = -1


def folio_add_lru(k: Kernel, f: Folio, cpu: int) -> None:
    """folio_add_lru(): into this CPU's lru_add batch (which holds a reference).

    The batch is flushed when it fills (``folio_batch_add`` returns 0: FOLIO_BATCH_SIZE,
    a model switch) -- a run of ``nr`` folios is added one folio at a time, so it may be
    split between the LRU and the batch."""
    size = k.switches.lru_batch_size
    if k.lru_gen_enabled() and not f.flags & PG_unevictable:
        f.flags |= PG_active  # lru_gen_in_fault(): faulted folios start young
    batch = k.lru_add[cpu]
    if batch and k.memory.merge_folio_runs(k, batch[-1], f):  # SIM-ONLY: one run again
        f = batch.pop()
        f.cpu = -1
    room = size - sum(x.nr for x in batch)
    if f.nr < room:
        f.cpu = cpu
        batch.append(f)
        return
    # The batch fills (and is moved to the LRU) every ``size`` folios; the last
    # (nr - room) % size folios of the run stay behind in the emptied batch.
    left = (f.nr - room) % size
    rest = None
    if left:
        f, rest = k.split_folio_run(f, f.nr - left)
    f.cpu = cpu
    batch.append(f)
    lru_add_drain_cpu(k, cpu)
    if rest is not None:
        rest.cpu = cpu
        k.lru_add[cpu].append(rest)


def lru_add_drain_cpu(k: Kernel, cpu: int) -> None:
    """lru_add_drain_cpu() / folio_batch_move_lru(): the batch's folios onto their LRU lists."""
    batch = k.lru_add[cpu]
    if not batch:
        return
    k.lru_add[cpu] = []
    for f in batch:
        f.cpu = -1
        if f.mapping is None:  # freed while batched: the batch held the last reference
            k.free_folio(f)
            continue
        lruvec_add_folio(k.lruvec_of(f), f)


def lru_add_drain(k: Kernel, cpu: int) -> None:
    lru_add_drain_cpu(k, cpu)


def lru_add_drain_all(k: Kernel) -> None:
    """lru_add_drain_all(): every CPU's batches (ksmd, at the start of every full scan)."""
    for cpu in range(len(k.lru_add)):
        lru_add_drain_cpu(k, cpu)


def folio_activate(k: Kernel, f: Folio) -> None:
    """folio_activate(): an LRU folio moves to the active list (CUSTOM: at once, no batch);
    with the multi-gen LRU, to the youngest generations."""
    lv = k.lruvec_of(f)
    if lv.lrugen is not None:
        if f.flags & PG_lru:
            lruvec_del_folio(lv, f)
            f.flags |= PG_active
            lruvec_add_folio(lv, f)
        return
    if f.flags & PG_lru and not f.flags & (PG_active | PG_unevictable):
        lv = k.lruvec_of(f)
        lruvec_del_folio(lv, f)
        f.flags |= PG_active
        lruvec_add_folio(lv, f)
        k.vmstat["pgactivate"] += f.nr
    elif f.cpu >= 0:
        # __lru_cache_activate_folio(): still in the lru_add batch, lands on the active list
        f.flags |= PG_active


def folio_mark_accessed(k: Kernel, f: Folio) -> None:
    """mm/swap.c folio_mark_accessed() (classic LRU)."""
    if k.lru_gen_enabled():
        k.lru_gen.lru_gen_inc_refs(f)  # lru_gen: only the reference bits move
        return
    if not f.flags & PG_referenced:
        f.flags |= PG_referenced
    elif not f.flags & (PG_unevictable | PG_active):
        folio_activate(k, f)
        f.flags &= ~PG_referenced
        k.workingset_activation(f)
    f.flags &= ~PG_idle
