"""mm/rmap.c: anon_vma lifetime and the reverse-map walks, with their users.

Walks visit what the anon_vma interval tree yields for a pgoff range, compute the
address from each vma's own pgoff (vma_address()), and only then look at the pte
(page_vma_mapped_walk()).  A mapping the walk does not reach is neither aged nor
unmapped: that is the whole of Hugh Dickins' report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ksmrepro.mm.const import (
    PAGE_SHIFT,
    ULONG_MAX,
    VM_EXEC,
    VM_LOCKED,
    VM_READ,
    VM_WRITE,
    PG_anon_exclusive,
    PG_dirty,
)
from ksmrepro.mm.mm_types import (
    AnonVma,
    AnonVmaChain,
    Folio,
    PteRun,
    SwapRun,
    VmAreaStruct,
    folio_test_ksm,
)

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel

VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
VM_SOFTDIRTY = 0x08000000


def anon_vma_interval_tree_foreach(anon_vma: AnonVma, first: int, last: int,
                                   stats: dict[str, int] | None = None
                                   ) -> Iterator[AnonVmaChain]:
    """mm/interval_tree.c: the avcs whose ``[start_pgoff, last_pgoff]`` overlaps ``[first, last]``.

    CUSTOM: a sorted scan instead of an augmented rbtree; the membership test (overlap) and
    the visiting order (start, then last pgoff) are the tree's.  ``stats["iterations"]``
    counts avcs yielded, the cost the v1 cover letter measured."""
    tree = anon_vma.rb_root
    if len(tree) > 1:
        tree = sorted(tree, key=lambda a: (a.start_pgoff, a.last_pgoff, a.vma.id))
    for avc in tree:
        if avc.start_pgoff <= last and avc.last_pgoff >= first:
            if stats is not None:
                stats["iterations"] = stats.get("iterations", 0) + 1
            yield avc


class Rmap:
    """The rmap code, bound to a kernel."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self._ids = 0

    # --- anon_vma lifetime -------------------------------------------------------------
    def anon_vma_alloc(self, parent: AnonVma | None = None) -> AnonVma:
        self._ids += 1
        return AnonVma(self._ids, parent)

    def _link(self, vma: VmAreaStruct, av: AnonVma) -> None:
        avc = AnonVmaChain(vma, av)
        vma.anon_vma_chain.append(avc)
        av.rb_root.append(avc)

    def anon_vma_compatible(self, a: VmAreaStruct, b: VmAreaStruct) -> bool:
        """mm/vma.c anon_vma_compatible(): ``a`` directly below ``b``, linear pgoffs."""
        return (a.vm_end == b.vm_start
                and not ((a.vm_flags ^ b.vm_flags) & ~(VM_ACCESS_FLAGS | VM_SOFTDIRTY))
                and b.vm_pgoff == a.vm_pgoff + a.pages())

    def find_mergeable_anon_vma(self, vma: VmAreaStruct) -> AnonVma | None:
        """mm/vma.c find_mergeable_anon_vma() with reusable_anon_vma(): a neighbour's
        anon_vma is reused only if that neighbour's chain is singular (not a fork child)."""
        mm = vma.vm_mm
        i = mm.vmas.index(vma)
        nxt = mm.vmas[i + 1] if i + 1 < len(mm.vmas) else None
        prv = mm.vmas[i - 1] if i > 0 else None
        for cand, ok in ((nxt, nxt is not None and self.anon_vma_compatible(vma, nxt)),
                         (prv, prv is not None and self.anon_vma_compatible(prv, vma))):
            if ok and cand is not None and cand.anon_vma is not None \
                    and len(cand.anon_vma_chain) == 1:
                return cand.anon_vma
        return None

    def anon_vma_prepare(self, vma: VmAreaStruct) -> None:
        """__anon_vma_prepare(): on the first fault that installs an anon page."""
        if vma.anon_vma is not None:
            return
        av = self.find_mergeable_anon_vma(vma)
        if av is None:
            av = self.anon_vma_alloc()
        else:
            av.refcount += 1
        vma.anon_vma = av
        self._link(vma, av)

    def anon_vma_clone(self, dst: VmAreaStruct, src: VmAreaStruct) -> None:
        """anon_vma_clone(): link ``dst`` into every anon_vma ``src`` is linked into."""
        dst.anon_vma = src.anon_vma
        for avc in src.anon_vma_chain:
            self._link(dst, avc.anon_vma)

    def anon_vma_fork(self, child: VmAreaStruct, parent: VmAreaStruct) -> None:
        """anon_vma_fork(): the parent's chain, plus a new anon_vma of the child's own."""
        if parent.anon_vma is None:
            return
        self.anon_vma_clone(child, parent)
        av = self.anon_vma_alloc(parent.anon_vma)
        child.anon_vma = av
        self._link(child, av)

    def unlink_anon_vmas(self, vma: VmAreaStruct) -> None:
        for avc in vma.anon_vma_chain:
            avc.anon_vma.rb_root.remove(avc)
        vma.anon_vma_chain = []

    # --- the walks ---------------------------------------------------------------------
    def rmap_walk(self, folio: Folio, rmap_one: Callable[[Folio, VmAreaStruct, int], bool],
                  done: Callable[[Folio], bool] | None = None, *, why: str = "") -> None:
        """rmap_walk(): KSM folios through their stable node, anon through the anon_vma."""
        if folio_test_ksm(folio):
            self.k.ksm.rmap_walk_ksm(folio, rmap_one, done, why=why)
        elif folio.mapping is not None:
            self.rmap_walk_anon(folio, rmap_one, done)

    def rmap_walk_anon(self, folio: Folio, rmap_one: Callable[[Folio, VmAreaStruct, int], bool],
                       done: Callable[[Folio], bool] | None = None) -> None:
        """rmap_walk_anon(): the interval tree over ``[index, index + nr - 1]``."""
        av: AnonVma = folio.mapping
        first = folio.index
        for avc in anon_vma_interval_tree_foreach(av, first, first + folio.nr - 1):
            vma = avc.vma
            addr = vma.vm_start + ((first - vma.vm_pgoff) << PAGE_SHIFT)  # vma_address()
            if addr < vma.vm_start or addr >= vma.vm_end:
                continue
            if not rmap_one(folio, vma, addr):
                return
            if done is not None and done(folio):
                return

    @staticmethod
    def page_vma_mapped(folio: Folio, vma: VmAreaStruct, addr: int) -> PteRun | None:
        """page_vma_mapped_walk(): the pte at ``addr`` in ``vma``'s mm, if it maps ``folio``."""
        e = vma.vm_mm.pt.get(addr >> PAGE_SHIFT)
        if isinstance(e, PteRun) and e.folio is folio and e.vpn == addr >> PAGE_SHIFT:
            return e
        return None

    # --- users -------------------------------------------------------------------------
    def folio_referenced(self, folio: Folio, memcg: object = None) -> tuple[int, int]:
        """folio_referenced(): (young ptes found and cleared by the walk, vm_flags seen).

        With a target ``memcg`` (memcg reclaim), invalid_folio_referenced_vma() skips vmas
        whose mm is not in it (mm_match_cgroup())."""
        if folio.mapcount == 0 or folio.mapping is None:
            return 0, 0
        res = {"referenced": 0, "vm_flags": 0, "mapcount": folio.mapcount}

        def one(f: Folio, vma: VmAreaStruct, addr: int) -> bool:  # folio_referenced_one()
            if memcg is not None and not _mm_match_cgroup(vma.vm_mm, memcg):
                return True
            p = self.page_vma_mapped(f, vma, addr)
            if p is None:
                return True
            if vma.vm_flags & VM_LOCKED:
                res["vm_flags"] |= VM_LOCKED
                return False
            if self.k.lru_gen_enabled():
                young = self.k.lru_gen.lru_gen_look_around(p, vma)
            else:
                young = p.young  # ptep_clear_flush_young_notify()
                p.young = False
            if young:
                res["referenced"] += 1
                res["vm_flags"] |= vma.vm_flags
            res["mapcount"] -= 1
            return res["mapcount"] > 0

        self.rmap_walk(folio, one, why="folio_referenced")
        return res["referenced"], res["vm_flags"]

    def try_to_unmap(self, folio: Folio) -> bool:
        """try_to_unmap(): every pte the walk finds becomes a swap pte.  Returns True if the
        folio is no longer mapped.  Ptes already converted stay converted (no rollback)."""
        k = self.k
        unmapped: list[str] = []

        def one(f: Folio, vma: VmAreaStruct, addr: int) -> bool:  # try_to_unmap_one()
            p = self.page_vma_mapped(f, vma, addr)
            if p is None:
                return True
            if vma.vm_flags & VM_LOCKED:
                return False
            mm = vma.vm_mm
            if p.dirty:
                f.flags |= PG_dirty
            k.swapfile.swap_duplicate(f.swap, f.nr)
            # page_try_share_anon_rmap(): PageAnonExclusive moves into the swap pte
            s = SwapRun(f.swap, p.vpn, f.nr, f.content, f.stride,
                        bool(f.flags & PG_anon_exclusive))
            f.flags &= ~PG_anon_exclusive
            mm.pt.set_range(p.vpn, p.vpn + f.nr, s)
            f.ptes.remove(p)
            f.mapcount -= 1
            mm.rss_anon -= f.nr
            mm.swapents += f.nr
            unmapped.append(f"{mm.owner}:{addr:#x}")
            return True

        self.rmap_walk(folio, one, lambda f: f.mapcount == 0, why="try_to_unmap")
        if k.tracing and folio_test_ksm(folio):
            left = [f"{p.mm.owner}:{p.addr:#x}" for p in folio.ptes]
            k.trace("try_to_unmap",
                    f"KSM folio pfn {folio.pfn:#x}: unmapped {', '.join(unmapped) or 'nothing'}"
                    + (f"; still mapped at {', '.join(left)}" if left else "; fully unmapped"),
                    pfn=folio.pfn, unmapped=unmapped, still_mapped=left)
        return folio.mapcount == 0


def _mm_match_cgroup(mm: object, memcg: object) -> bool:
    """mm_match_cgroup(): the mm's memcg is ``memcg`` or one of its descendants."""
    if getattr(memcg, "parent", None) is None:
        return True  # the root memcg
    c = getattr(mm, "memcg", None)
    while c is not None:
        if c is memcg:
            return True
        c = c.parent  # type: ignore[attr-defined]
    return False


__all__ = ["Rmap", "anon_vma_interval_tree_foreach", "ULONG_MAX"]
