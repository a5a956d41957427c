"""mm/swapfile.c and mm/swap_state.c: swap slots, swap_map counts and the swap cache.

One swap device, a block device like the virtio-blk disk of the real-kernel runs: a
write is asynchronous, so a folio written for reclaim is freed by a later look, and until
then a fault finds it in the swap cache (vmscan.py shrink_folio_list()).  Reads are not
modelled as I/O (memory.py do_swap_page()).
"""

from __future__ import annotations

import bisect
from array import array
from typing import TYPE_CHECKING

from ksmrepro.mm.const import PG_dirty, PG_swapcache
from ksmrepro.mm.mm_types import Folio

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel


class SwapInfo:
    """``struct swap_info_struct``: ``swap_map`` counts the swap ptes of each slot."""

    def __init__(self, k: Kernel, pages: int) -> None:
        self.k = k
        self.pages = max(pages - 1, 0)  # slot 0 holds the swap header
        self.swap_map = array("B", bytes(self.pages + 1))
        # shadow entries the swap cache leaves behind (workingset_eviction's cookie)
        self.shadow = array("I", bytes(4 * (self.pages + 1)))
        self.inuse_pages = 0
        # free extents [(start, length)] sorted by start; next-fit cursor like the cluster allocator
        self.free: list[list[int]] = [[1, self.pages]] if self.pages else []
        self.cursor = 1

    # --- slot allocation ---------------------------------------------------------------
    def get_swap_pages(self, n: int) -> tuple[int, int]:
        """Allocate up to ``n`` contiguous slots: (first slot, count); count 0 when full."""
        if not self.free:
            return -1, 0
        i = bisect.bisect_left(self.free, [self.cursor, 0])
        free = self.free
        best = None
        for j in range(i, len(free)):  # next fit from the cursor, then from the start
            if free[j][1] >= n:
                best = j
                break
        else:
            for j in range(0, i):
                if free[j][1] >= n:
                    best = j
                    break
        if best is None:
            best = max(range(len(free)), key=lambda j: (free[j][1], -j))
        start, length = self.free[best]
        got = min(n, length)
        if got == length:
            del self.free[best]
        else:
            self.free[best] = [start + got, length - got]
        self.cursor = start + got
        self.inuse_pages += got
        return start, got

    def _free_slots(self, start: int, n: int) -> None:
        self.inuse_pages -= n
        i = bisect.bisect_left(self.free, [start, 0])
        self.free.insert(i, [start, n])
        # merge with neighbours
        if i + 1 < len(self.free) and start + n == self.free[i + 1][0]:
            self.free[i][1] += self.free[i + 1][1]
            del self.free[i + 1]
        if i > 0 and self.free[i - 1][0] + self.free[i - 1][1] == start:
            self.free[i - 1][1] += self.free[i][1]
            del self.free[i]

    def set_shadow(self, slot: int, n: int, first_cookie: int) -> None:
        """Shadow entries of ``n`` folios evicted in order: ``first_cookie``, ``+1``, ..."""
        self.shadow[slot:slot + n] = array("I", range(first_cookie, first_cookie + n))

    def vm_swap_full(self) -> bool:
        """vm_swap_full(): more than half of swap in use."""
        return self.inuse_pages * 2 > self.pages

    # --- swap cache (mm/swap_state.c) ----------------------------------------------------
    def add_to_swap(self, f: Folio) -> tuple[Folio | None, Folio | None]:
        """add_to_swap() / folio_alloc_swap(): slots for the folio, into the swap cache.

        Returns (the folio now in the swap cache or None when swap is full, the rest of a
        run that got fewer contiguous slots than it has folios)."""
        start, got = self.get_swap_pages(f.nr)
        if got == 0:
            return None, f
        rest = None
        if got < f.nr:
            f, rest = self.k.split_folio_run(f, got)
        f.swap = start
        f.flags |= PG_swapcache | PG_dirty
        self.k.swapcache.set_range(start, start + got, f)
        return f, rest

    def add_to_swap_cache(self, f: Folio, start: int) -> None:
        """add_to_swap_cache(): a folio read from slots ``start ..`` (swap-in) joins the swap
        cache; it holds the slots until folio_free_swap() or reclaim drops it."""
        f.swap = start
        f.flags |= PG_swapcache
        self.k.swapcache.set_range(start, start + f.nr, f)

    def delete_from_swap_cache(self, f: Folio) -> None:
        self.k.swapcache.clear_range(f.swap, f.swap + f.nr)
        self._put_cache_slots(f.swap, f.nr)
        f.swap = -1
        f.flags &= ~PG_swapcache

    def _put_cache_slots(self, start: int, n: int) -> None:
        """The swap cache's hold on the slots is gone: free those no pte references."""
        m = self.swap_map
        zeros = m[start:start + n].count(0)
        if zeros == n:
            self._free_slots(start, n)
            return
        if zeros == 0:  # the usual case: swap ptes still reference every slot
            return
        run = None
        for s in range(start, start + n):
            if m[s] == 0:
                run = [s, 1] if run is None else [run[0], run[1] + 1]
            elif run is not None:
                self._free_slots(*run)
                run = None
        if run is not None:
            self._free_slots(*run)

    def swap_duplicate(self, slot: int, n: int) -> None:
        m = self.swap_map
        if m[slot:slot + n].count(0) == n:  # the common case: a fresh swap-out
            m[slot:slot + n] = array("B", b"\x01") * n
            return
        for s in range(slot, slot + n):
            m[s] += 1

    def swap_free(self, slot: int, n: int) -> None:
        """Drop one pte reference from each slot (do_swap_page, zap): free if unreferenced."""
        m = self.swap_map
        if m[slot:slot + n].count(1) == n:
            m[slot:slot + n] = array("B", bytes(n))
            self._free_unless_cached(slot, n)
            return
        for s in range(slot, slot + n):
            m[s] -= 1
            if m[s] == 0:
                self._free_unless_cached(s, 1)

    def swap_free_cached(self, slot: int, n: int) -> None:
        """swap_free() of slots a swap-cache folio holds (do_swap_page()): the counts drop,
        and the cache keeps the slots, so none is freed here."""
        m = self.swap_map
        if m[slot:slot + n].count(1) == n:
            m[slot:slot + n] = array("B", bytes(n))
            return
        for s in range(slot, slot + n):
            m[s] -= 1

    def _free_unless_cached(self, slot: int, n: int) -> None:
        """Free slots whose count reached 0, except those the swap cache still holds."""
        sc = self.k.swapcache
        if sc.none_in(slot, slot + n):
            self._free_slots(slot, n)
            return
        start = slot
        for c, _ in sc.items_in(slot, slot + n) + [(slot + n, None)]:
            if c > start:
                self._free_slots(start, c - start)
            start = c + 1

    def free_swap_and_cache(self, slot: int, n: int) -> None:
        """free_swap_and_cache(): a swap pte is zapped; an unmapped swap-cache folio whose
        slots are now unreferenced is freed too."""
        self.swap_free(slot, n)
        sc = self.k.swapcache
        if sc.none_in(slot, slot + n):
            return
        cached = {f.pfn: f for _, f in sc.items_in(slot, slot + n)}
        for f in cached.values():
            if f.mapcount == 0 and self.folio_free_swap(f):
                self.k.free_folio(f)  # the swap cache held the last reference

    def folio_free_swap(self, f: Folio) -> bool:
        """folio_free_swap(): drop the swap cache's slots if no swap pte references them."""
        if f.swap < 0:
            return False
        if self.swap_map[f.swap:f.swap + f.nr].count(0) != f.nr:
            return False
        self.delete_from_swap_cache(f)
        return True
