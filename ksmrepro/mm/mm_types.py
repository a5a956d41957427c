"""struct folio, struct vm_area_struct, struct mm_struct, struct anon_vma and page-table entries.

CUSTOM (batching): a :class:`Folio` object stands for ``nr`` consecutive order-0
folios whose state is identical except for what follows from their position:
``index + i``, the swap slot ``swap + i`` and, for ``stride == 1``, the content
stamp ``+ i``.  Every kernel decision is taken per folio; the simulation splits a
run (``split_folio_run``) the moment two of its folios would be treated
differently.  A :class:`PteRun` likewise stands for the ``nr`` ptes that map one
folio run at consecutive virtual pages of one mm; a :class:`SwapRun` for
consecutive swap ptes.  That is what makes 1 GiB of pressure cheap to simulate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ksmrepro.mm import content as _content
from ksmrepro.mm.const import PAGE_SHIFT, PAGE_SIZE
from ksmrepro.mm.pgtable import PageTable

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel

__all__ = [
    "AnonVma", "AnonVmaChain", "Folio", "MmStruct", "PteRun", "SwapRun", "Task",
    "VmAreaStruct", "ZeroPte", "ZERO_PTE", "KSM_ZERO_PTE", "folio_test_ksm",
    "linear_page_index",
]

LRU_INACTIVE_ANON = 0
LRU_ACTIVE_ANON = 1
LRU_UNEVICTABLE = 4
LRU_NAMES = {LRU_INACTIVE_ANON: "inactive_anon", LRU_ACTIVE_ANON: "active_anon",
             LRU_UNEVICTABLE: "unevictable"}


class Folio:
    """``struct folio`` (order 0), or a run of ``nr`` of them (CUSTOM, see module doc)."""

    __slots__ = ("pfn", "nr", "index", "mapping", "flags", "mapcount", "content", "stride",
                 "swap", "lru", "prev", "next", "ptes", "cpu", "memcg", "gen", "refs")
    IS_KSM = False

    def __init__(self, pfn: int, nr: int, index: int, content: Any, stride: int = 0) -> None:
        self.pfn = pfn  # SIM-ONLY: a stable id for dumps; pfn + i for folio i of a run
        self.nr = nr
        self.index = index  # anon: linear_page_index at first map (folio_add_new_anon_rmap)
        self.mapping: Any = None  # AnonVma, or KsmStableNode for a KSM folio; None when free
        self.flags = 0
        self.mapcount = 0  # ptes mapping each folio of the run (_mapcount + 1)
        self.content = content
        self.stride = stride
        self.swap = -1  # first swap slot while in the swap cache
        self.lru = -1  # LRU list while PG_lru
        self.prev: Folio | None = None
        self.next: Folio | None = None
        self.ptes: list[PteRun] = []  # SIM-ONLY: the ptes mapping it (the rmap walks don't use it)
        self.cpu = -1  # the CPU whose lru_add batch holds it (refcount +1), else -1
        self.memcg: Any = None
        self.gen = -1  # folio_lru_gen(): the multi-gen LRU generation (lazy; see lru_gen.py)
        self.refs = 0  # LRU_REFS_MASK bits: accesses through folio_mark_accessed()

    def page_content(self, i: int) -> Any:
        if self.stride:
            return _content.stamped(self.content, self.content[2] + i)
        return self.content

    def __repr__(self) -> str:
        n = f"x{self.nr}" if self.nr > 1 else ""
        return f"<folio pfn={self.pfn:#x}{n} index={self.index:#x}>"


def folio_test_ksm(folio: Folio) -> bool:
    m = folio.mapping
    return m is not None and m.IS_KSM


def folio_ref_count(folio: Folio) -> int:
    """``folio_ref_count()``.  CUSTOM: derived from the reference holders the simulation
    models: one per mapping pte, one while in a per-CPU LRU batch, one for the swap cache."""
    return folio.mapcount + (folio.cpu >= 0) + (folio.swap >= 0)


class PteRun:
    """Present ptes mapping every folio of ``folio`` at ``vpn .. vpn + folio.nr - 1`` of ``mm``."""

    __slots__ = ("folio", "vpn", "young", "dirty", "write", "mm")

    def __init__(self, mm: MmStruct, folio: Folio, vpn: int, young: bool = True,
                 dirty: bool = False, write: bool = False) -> None:
        self.mm = mm
        self.folio = folio
        self.vpn = vpn
        self.young = young
        self.dirty = dirty
        self.write = write

    @property
    def addr(self) -> int:
        return self.vpn << PAGE_SHIFT


class SwapRun:
    """Swap ptes for ``nr`` consecutive pages: page ``vpn + i`` is in swap slot ``slot + i``;
    ``exclusive`` is pte_swp_exclusive(): the page was PageAnonExclusive when it was unmapped
    (try_to_unmap_one()), and stays so until fork shares the entry (copy_nonpresent_pte()).

    CUSTOM: the content written to those slots travels with the swap pte (the simulated
    swap device stores no data).  Shadow entries live in the swap device (swapfile.py)."""

    __slots__ = ("slot", "vpn", "nr", "content", "stride", "exclusive")

    def __init__(self, slot: int, vpn: int, nr: int, content: Any, stride: int,
                 exclusive: bool = False) -> None:
        self.slot = slot
        self.vpn = vpn
        self.nr = nr
        self.content = content
        self.stride = stride
        self.exclusive = exclusive

    def page_content(self, i: int) -> Any:
        if self.stride:
            return _content.stamped(self.content, self.content[2] + i)
        return self.content


class ZeroPte:
    """A pte mapping the shared zero page (special, read-only); ``dirty`` marks a KSM zero page."""

    __slots__ = ("dirty",)

    def __init__(self, dirty: bool) -> None:
        self.dirty = dirty


ZERO_PTE = ZeroPte(False)
KSM_ZERO_PTE = ZeroPte(True)  # pte_mkdirty(pfn_pte(zero_pfn)): mm/ksm.c replace_page()


class AnonVma:
    """``struct anon_vma``: ``rb_root`` is the interval tree of anon_vma_chains."""

    __slots__ = ("id", "root", "rb_root", "refcount", "degree", "parent")
    IS_KSM = False

    def __init__(self, id: int, parent: AnonVma | None = None) -> None:
        self.id = id
        self.root: AnonVma = parent.root if parent else self
        self.parent = parent or self
        self.rb_root: list[AnonVmaChain] = []
        self.refcount = 1
        self.degree = 1

    def __repr__(self) -> str:
        return f"anon_vma#{self.id}"


class AnonVmaChain:
    """``struct anon_vma_chain``: links a vma into an anon_vma's interval tree.

    The tree is keyed by ``[vm_pgoff, vm_pgoff + vma_pages - 1]`` (mm/interval_tree.c
    avc_start_pgoff/avc_last_pgoff); the kernel re-inserts an avc whenever its vma's
    range or pgoff changes, so reading the vma's current fields is equivalent."""

    __slots__ = ("vma", "anon_vma")

    def __init__(self, vma: VmAreaStruct, anon_vma: AnonVma) -> None:
        self.vma = vma
        self.anon_vma = anon_vma

    @property
    def start_pgoff(self) -> int:
        return self.vma.vm_pgoff

    @property
    def last_pgoff(self) -> int:
        v = self.vma
        return v.vm_pgoff + ((v.vm_end - v.vm_start) >> PAGE_SHIFT) - 1


class VmAreaStruct:
    """``struct vm_area_struct``."""

    __slots__ = ("vm_mm", "vm_start", "vm_end", "vm_pgoff", "vm_flags", "anon_vma",
                 "anon_vma_chain", "id")

    def __init__(self, mm: MmStruct, start: int, end: int, pgoff: int, flags: int) -> None:
        self.vm_mm = mm
        self.vm_start = start
        self.vm_end = end
        self.vm_pgoff = pgoff
        self.vm_flags = flags
        self.anon_vma: AnonVma | None = None
        self.anon_vma_chain: list[AnonVmaChain] = []
        self.id = 0  # SIM-ONLY: creation order, for deterministic dumps

    def pages(self) -> int:
        return (self.vm_end - self.vm_start) >> PAGE_SHIFT

    def __repr__(self) -> str:
        return f"<vma {self.vm_start:#x}-{self.vm_end:#x} pgoff={self.vm_pgoff:#x}>"


def linear_page_index(vma: VmAreaStruct, addr: int) -> int:
    """include/linux/pagemap.h linear_page_index()."""
    return ((addr - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff


MMF_VM_MERGEABLE = 1 << 0
MMF_VM_MERGE_ANY = 1 << 1


class MmStruct:
    """``struct mm_struct``: vmas ordered by address, the page table, RSS and KSM counters."""

    def __init__(self, kernel: Kernel, owner: str) -> None:
        self.kernel = kernel
        self.owner = owner
        self.vmas: list[VmAreaStruct] = []  # CUSTOM: a sorted list stands for the maple tree
        self.pt = PageTable()  # vpn -> PteRun | SwapRun | ZeroPte
        self.flags = 0
        self.rss_anon = 0  # MM_ANONPAGES
        self.swapents = 0  # MM_SWAPENTS
        self.ksm_merging_pages = 0
        self.ksm_rmap_items = 0
        self.ksm_zero_pages = 0
        self.mm_users = 1
        self.mmap_base = 0x7F0000000000
        self.ksm_slot: Any = None
        self.memcg: Any = None  # the owner task's memcg (mm->owner)
        self.lru_gen_ran = True  # SIM-ONLY: ran since the last lru_gen mm walk
        self.id = 0

    def __repr__(self) -> str:
        return f"<mm {self.owner}>"


class Task:
    """``struct task_struct``: just what the scenarios need."""

    def __init__(self, pid: int, name: str, mm: MmStruct, cpu: int, memcg: Any) -> None:
        self.pid = pid
        self.name = name
        self.mm = mm
        self.cpu = cpu
        self.memcg = memcg
        self.names: dict[str, int] = {}  # the scenario's address variables of this process
        self.alive = True
        # task->rss_stat (SPLIT_RSS_COUNTING): MM_ANONPAGES and MM_SWAPENTS counted by this
        # task's faults and not yet folded into its mm, and the faults since the last fold
        self.rss_pending = [0, 0]
        self.rss_events = 0


def vpn_of(addr: int) -> int:
    return addr >> PAGE_SHIFT


def pages_of(length: int) -> int:
    return (length + PAGE_SIZE - 1) >> PAGE_SHIFT
