"""Page tables: one PTE table of PTRS_PER_PTE entries per PMD-sized range, allocated on first
use (include/linux/pgtable.h, mm/memory.c __pte_alloc()).

An entry is None (pte_none), a :class:`~ksmrepro.mm.mm_types.PteRun` (present), a
:class:`~ksmrepro.mm.mm_types.SwapRun` (swap entry) or a ZeroPte.  Ranges are written with
one slice assignment per PTE table, which is what makes faulting in or swapping out
thousands of pages cheap.  The upper levels (PGD, P4D, PUD) are a dict: CUSTOM.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

PTRS_PER_PTE = 512
_SHIFT = 9
_MASK = PTRS_PER_PTE - 1

__all__ = ["PTRS_PER_PTE", "PageTable"]


class PageTable:
    """An mm's page tables, indexed by virtual page number."""

    __slots__ = ("tables",)

    def __init__(self) -> None:
        self.tables: dict[int, list[Any]] = {}

    def get(self, vpn: int, default: Any = None) -> Any:
        t = self.tables.get(vpn >> _SHIFT)
        if t is None:
            return default
        e = t[vpn & _MASK]
        return default if e is None else e

    def __getitem__(self, vpn: int) -> Any:
        e = self.get(vpn)
        if e is None:
            raise KeyError(vpn)
        return e

    def __contains__(self, vpn: int) -> bool:
        return self.get(vpn) is not None

    def _table(self, hi: int) -> list[Any]:
        t = self.tables.get(hi)
        if t is None:
            t = self.tables[hi] = [None] * PTRS_PER_PTE  # __pte_alloc()
        return t

    def __setitem__(self, vpn: int, e: Any) -> None:
        self._table(vpn >> _SHIFT)[vpn & _MASK] = e

    def __delitem__(self, vpn: int) -> None:
        self._table(vpn >> _SHIFT)[vpn & _MASK] = None

    def set_range(self, start: int, end: int, e: Any) -> None:
        """Every entry of ``[start, end)`` becomes ``e`` (None clears)."""
        while start < end:
            lo = start & _MASK
            n = min(PTRS_PER_PTE - lo, end - start)
            if e is None and (start >> _SHIFT) not in self.tables:
                start += n
                continue
            self._table(start >> _SHIFT)[lo:lo + n] = [e] * n
            start += n

    def set_many(self, start: int, entries: list[Any]) -> None:
        """Entries ``start``, ``start + 1``, ... become ``entries`` (one object each)."""
        i = 0
        n = len(entries)
        while i < n:
            v = start + i
            lo = v & _MASK
            m = min(PTRS_PER_PTE - lo, n - i)
            self._table(v >> _SHIFT)[lo:lo + m] = entries[i:i + m]
            i += m

    def clear_range(self, start: int, end: int) -> None:
        self.set_range(start, end, None)

    def none_in(self, start: int, end: int) -> bool:
        """Every entry of ``[start, end)`` is pte_none."""
        while start < end:
            lo = start & _MASK
            n = min(PTRS_PER_PTE - lo, end - start)
            t = self.tables.get(start >> _SHIFT)
            if t is not None and any(t[lo:lo + n]):
                return False
            start += n
        return True

    def first_in(self, start: int, end: int) -> int | None:
        """The first vpn of ``[start, end)`` whose entry is not pte_none, or None."""
        while start < end:
            lo = start & _MASK
            n = min(PTRS_PER_PTE - lo, end - start)
            t = self.tables.get(start >> _SHIFT)
            if t is not None:
                seg = t[lo:lo + n]
                if any(seg):
                    return start + next(i for i, e in enumerate(seg) if e is not None)
            start += n
        return None

    def items_in(self, start: int, end: int) -> list[tuple[int, Any]]:
        """The (vpn, entry) pairs of ``[start, end)`` that are not pte_none, in order."""
        out = []
        for v in range(start, end):
            e = self.get(v)
            if e is not None:
                out.append((v, e))
        return out

    def values(self) -> Iterator[Any]:
        """Every entry that is not pte_none (page-table order within each table)."""
        for hi in sorted(self.tables):
            yield from filter(None, self.tables[hi])
