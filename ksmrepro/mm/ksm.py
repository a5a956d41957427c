"""mm/ksm.c: ksmd, the stable and unstable trees, rmap_items, and rmap_walk_ksm().

Reference: mm/ksm.c at ~v6.12 plus the v6.19 range walk, 4d6fc29f3634 (ksm_fork
counters) and the mm.git/mm-new rmap_walk_ksm series, each behind a model switch; the
pre-v6.11 order of cmp_and_merge_page() (before d58a361b0350) is a switch too.
Not modelled: NUMA (merge_across_nodes=0 only changes the counters' EBUSY rule),
migrate_nodes, the scan-time advisor (its knobs are accepted: STUB), THP splitting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ksmrepro.errors import KernelBug
from ksmrepro.mm import content as C
from ksmrepro.mm.const import (
    PAGE_SHIFT,
    PAGE_SIZE,
    ULONG_MAX,
    VM_DONTEXPAND,
    VM_EXEC,
    VM_HUGETLB,
    VM_IO,
    VM_MAYSHARE,
    VM_MERGEABLE,
    VM_MIXEDMAP,
    VM_PFNMAP,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
    Errno,
    PG_anon_exclusive,
    PG_dirty,
)
from ksmrepro.mm.kstrtox import kstrtobool, kstrtouint
from ksmrepro.mm.mm_types import (
    KSM_ZERO_PTE,
    MMF_VM_MERGE_ANY,
    MMF_VM_MERGEABLE,
    Folio,
    MmStruct,
    PteRun,
    VmAreaStruct,
    folio_ref_count,
    folio_test_ksm,
    linear_page_index,
)
from ksmrepro.mm.rmap import anon_vma_interval_tree_foreach

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel

KSM_RUN_STOP, KSM_RUN_MERGE, KSM_RUN_UNMERGE = 0, 1, 2
SEQNR_MASK = 0xFF
UNSTABLE_FLAG = 0x100
STABLE_FLAG = 0x200
RMAP_ITEM_SIZE = 64  # sizeof(struct ksm_rmap_item) on 64-bit
ZERO_PAGE = "ZERO_PAGE"  # the kpage argument that means the shared zero page

DEFAULT_KNOBS: dict[str, Any] = {
    "run": 0, "pages_to_scan": 100, "sleep_millisecs": 20, "max_page_sharing": 256,
    "use_zero_pages": 0, "merge_across_nodes": 1, "smart_scan": 1,
    "stable_node_chains_prune_millisecs": 2000, "advisor_mode": "none",
    "advisor_max_cpu": 70, "advisor_min_pages_to_scan": 500,
    "advisor_max_pages_to_scan": 30000, "advisor_target_scan_time": 200,
}
VM_KSM_INCOMPATIBLE = (VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_HUGETLB
                       | VM_MIXEDMAP)


def skip_age(age: int) -> int:
    """skip_age() (smart scan): how many scans to skip an rmap_item of this age."""
    return 1 if age <= 3 else 2 if age <= 5 else 4 if age <= 8 else 8


def vma_is_accessible(vma: VmAreaStruct) -> bool:
    """vma_is_accessible(): its ptes are not PROT_NONE (pte_protnone() on x86)."""
    return bool(vma.vm_flags & (VM_READ | VM_WRITE | VM_EXEC))


class KsmRmapItem:
    """``struct ksm_rmap_item``; ``address`` is the page address, ``flags`` the low bits."""

    __slots__ = ("mm", "address", "flags", "seqnr", "anon_vma", "oldchecksum", "age",
                 "remaining_skips", "head", "linear_page_index")

    def __init__(self, mm: MmStruct, address: int, oldchecksum: int = 0, age: int = 0) -> None:
        self.mm = mm
        self.address = address
        self.flags = 0  # UNSTABLE_FLAG | STABLE_FLAG
        self.seqnr = 0  # address & SEQNR_MASK: the scan that put it in the unstable tree
        self.anon_vma: Any = None
        self.oldchecksum = oldchecksum
        self.age = age
        self.remaining_skips = 0
        self.head: KsmStableNode | None = None
        self.linear_page_index: int | None = None


class KsmStableNode:
    """``struct ksm_stable_node``: a KSM folio's node, or a chain of dups (``chain``)."""

    IS_KSM = True
    __slots__ = ("id", "kfolio", "hlist", "rmap_hlist_len", "chain", "dups", "chain_prune_time",
                 "content", "parent")

    def __init__(self, id: int, kfolio: Folio | None, content: Any, chain: bool = False) -> None:
        self.id = id
        self.kfolio = kfolio
        self.hlist: list[KsmRmapItem] = []  # newest first (hlist_add_head)
        self.rmap_hlist_len = 0
        self.chain = chain
        self.dups: list[KsmStableNode] = []
        self.chain_prune_time = 0
        self.content = content
        self.parent: KsmStableNode | None = None  # the chain of a dup

    def __repr__(self) -> str:
        return f"stable_node#{self.id}"


class _PendingNode:
    """folio_set_stable_node(folio, NULL): KSM-flagged until stable_tree_insert() fills it."""

    IS_KSM = True


_PENDING = _PendingNode()


class KsmMmSlot:
    """``struct ksm_mm_slot``: ``rmap_list`` in increasing address order."""

    __slots__ = ("mm", "rmap_list")

    def __init__(self, mm: MmStruct) -> None:
        self.mm = mm
        self.rmap_list: list[KsmRmapItem] = []


class Ksm:
    """KSM state and ksmd, bound to a kernel."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.knobs = dict(DEFAULT_KNOBS)
        self.mm_slots: list[KsmMmSlot] = []  # ksm_mm_head order
        self.scan_slot: KsmMmSlot | None = None  # None: the cursor is at ksm_mm_head
        self.scan_address = 0
        self.scan_idx = 0  # ksm_scan.rmap_list, as an index into the slot's rmap_list
        self.seqnr = 0
        self.stable_tree: list[KsmStableNode] = []  # CUSTOM: sorted list for the rbtree
        self.unstable_tree: list[KsmRmapItem] = []
        self.pages_shared = self.pages_sharing = self.pages_unshared = 0
        self.pages_scanned = self.pages_skipped = 0
        self.ksm_rmap_items = 0
        self.stable_node_chains = self.stable_node_dups = 0
        self.ksm_zero_pages = 0
        self._node_ids = 0
        self.zero_checksum = C.calc_checksum(C.ZERO)
        self.ksmd_pending = False
        self.ksmd_token = 0  # SIM-ONLY: a wake-up cuts short the sleep in progress

    # --- helpers ---------------------------------------------------------------------------
    @property
    def run(self) -> int:
        return int(self.knobs["run"])

    def _content_of(self, p: PteRun, vpn: int) -> Any:
        return p.folio.page_content(vpn - p.vpn)

    def find_mergeable_vma(self, mm: MmStruct, addr: int) -> VmAreaStruct | None:
        """find_mergeable_vma()."""
        if mm.mm_users == 0:
            return None
        vma = self.k.find_vma(mm, addr)
        if vma is None or vma.vm_start > addr:
            return None
        if not vma.vm_flags & VM_MERGEABLE or vma.anon_vma is None:
            return None
        return vma

    def _page_at(self, mm: MmStruct, addr: int) -> PteRun | None:
        """folio_walk_start() + the anon check: a present pte mapping a normal anon page."""
        e = mm.pt.get(addr >> PAGE_SHIFT)
        if isinstance(e, PteRun) and e.folio.mapping is not None:
            return e
        return None

    # --- registration ----------------------------------------------------------------------
    def vma_ksm_compatible(self, vma: VmAreaStruct) -> bool:
        return not vma.vm_flags & VM_KSM_INCOMPATIBLE

    def ksm_madvise(self, vma: VmAreaStruct, start: int, end: int, advice: str,
                    flags: int) -> int:
        """ksm_madvise(): returns the new vm_flags (the caller stores them, or not: mremap)."""
        mm = vma.vm_mm
        if advice == "MADV_MERGEABLE":
            if flags & VM_MERGEABLE or not self.vma_ksm_compatible(vma):
                return flags
            if not mm.flags & MMF_VM_MERGEABLE:
                self.__ksm_enter(mm)
            return flags | VM_MERGEABLE
        # MADV_UNMERGEABLE
        if not flags & VM_MERGEABLE:
            return flags
        if vma.anon_vma is not None:
            self.unmerge_ksm_pages(vma, start, end)
        return flags & ~VM_MERGEABLE

    def ksm_enter(self, mm: MmStruct) -> None:
        self.__ksm_enter(mm)

    def __ksm_enter(self, mm: MmStruct) -> None:
        """__ksm_enter(): the new slot goes just before the cursor (behind it), or at the tail
        while unmerging.  Wakes ksmd if the list was empty."""
        slot = KsmMmSlot(mm)
        mm.ksm_slot = slot
        was_empty = not self.mm_slots
        if self.run & KSM_RUN_UNMERGE or self.scan_slot is None:
            self.mm_slots.append(slot)
        else:
            self.mm_slots.insert(self.mm_slots.index(self.scan_slot), slot)
        mm.flags |= MMF_VM_MERGEABLE
        if was_empty:
            self.wake_ksmd()

    def ksm_exit(self, mm: MmStruct) -> None:
        """__ksm_exit(): a slot with no rmap_items is freed now; otherwise it is moved right
        after the cursor and ksmd tears it down when it sees mm_users == 0."""
        slot = mm.ksm_slot
        if slot is None or slot is self.scan_slot:
            return
        self.mm_slots.remove(slot)
        if not slot.rmap_list:
            mm.ksm_slot = None
            mm.flags &= ~(MMF_VM_MERGEABLE | MMF_VM_MERGE_ANY)
            return
        i = 0 if self.scan_slot is None else self.mm_slots.index(self.scan_slot) + 1
        self.mm_slots.insert(i, slot)

    def ksm_fork(self, child: MmStruct, parent: MmStruct) -> None:
        """ksm_fork(): the child is registered if the parent is; no rmap_items are copied."""
        if not parent.flags & MMF_VM_MERGEABLE:
            return
        if self.k.switches.ksm_fork_resets_counters:
            # 4d6fc29f3634 ("mm/ksm: fix incorrect KSM counter handling in mm_struct during fork")
            child.ksm_merging_pages = 0
            child.ksm_rmap_items = 0
            self.ksm_zero_pages += child.ksm_zero_pages
        else:
            # before v6.18 dup_mm()'s copy of the parent's counters stood
            child.ksm_merging_pages = parent.ksm_merging_pages
            child.ksm_rmap_items = parent.ksm_rmap_items
        child.flags |= parent.flags & MMF_VM_MERGE_ANY
        self.__ksm_enter(child)

    def ksm_zero_page_forked(self, mm: MmStruct, n: int) -> None:
        """A KSM zero pte copied at fork: counted in the child's mm (see ksm_fork)."""
        mm.ksm_zero_pages += n

    def ksm_might_unmap_zero_page(self, mm: MmStruct, n: int) -> None:
        """ksm_might_unmap_zero_page(): a KSM-placed zero pte (dirty) goes away."""
        self.ksm_zero_pages -= n
        mm.ksm_zero_pages -= n

    def enable_merge_any(self, mm: MmStruct) -> None:
        """ksm_enable_merge_any(): PR_SET_MEMORY_MERGE 1."""
        if mm.flags & MMF_VM_MERGE_ANY:
            return
        if not mm.flags & MMF_VM_MERGEABLE:
            self.__ksm_enter(mm)
        mm.flags |= MMF_VM_MERGE_ANY
        for vma in mm.vmas:
            if self.vma_ksm_compatible(vma):
                vma.vm_flags |= VM_MERGEABLE

    def disable_merge_any(self, mm: MmStruct) -> None:
        """ksm_disable_merge_any(): PR_SET_MEMORY_MERGE 0 unmerges every vma."""
        if not mm.flags & MMF_VM_MERGE_ANY:
            return
        for vma in mm.vmas:
            vma.vm_flags = self.ksm_madvise(vma, vma.vm_start, vma.vm_end, "MADV_UNMERGEABLE",
                                            vma.vm_flags)
        mm.flags &= ~MMF_VM_MERGE_ANY

    def ksm_add_vma(self, vma: VmAreaStruct) -> None:
        """ksm_add_vma() / ksm_vma_flags(): new vmas of a merge-any mm are VM_MERGEABLE, and
        an mm whose slot ksmd freed meanwhile is entered again."""
        mm = vma.vm_mm
        if mm.flags & MMF_VM_MERGE_ANY and self.vma_ksm_compatible(vma):
            vma.vm_flags |= VM_MERGEABLE
            if not mm.flags & MMF_VM_MERGEABLE:
                self.__ksm_enter(mm)

    # --- unmerging -------------------------------------------------------------------------
    def break_ksm(self, vma: VmAreaStruct, addr: int) -> None:
        """break_ksm(): FAULT_FLAG_UNSHARE until the pte no longer maps a KSM page."""
        mm = vma.vm_mm
        if self.k.switches.ksm_break_ksm_skips_protnone and not vma_is_accessible(vma):
            return  # follow_page() without FOLL_FORCE: no page behind a PROT_NONE pte
        task = self.k.task_of_mm(mm)
        for _ in range(4):
            e = mm.pt.get(addr >> PAGE_SHIFT)
            ksm_page = (isinstance(e, PteRun) and folio_test_ksm(e.folio)) or e is KSM_ZERO_PTE
            if not ksm_page:
                return
            self.k.first_use("break_ksm")
            self.k.memory.handle_mm_fault_range(self.k, task, addr, PAGE_SIZE, write=True,
                                                op=None, unshare=True)

    def unmerge_ksm_pages(self, vma: VmAreaStruct, start: int, end: int) -> None:
        """unmerge_ksm_pages(): break_ksm() on every page of the range."""
        mm = vma.vm_mm
        pt = mm.pt
        for vpn in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
            e = pt.get(vpn)
            if e is KSM_ZERO_PTE or (isinstance(e, PteRun) and folio_test_ksm(e.folio)):
                self.break_ksm(vma, vpn << PAGE_SHIFT)

    def unmerge_and_remove_all_rmap_items(self) -> None:
        """run=2: break every KSM page, free every rmap_item, drop stable nodes, seqnr 0."""
        for slot in list(self.mm_slots):
            mm = slot.mm
            for vma in list(mm.vmas):
                if vma.vm_flags & VM_MERGEABLE and vma.anon_vma is not None:
                    self.unmerge_ksm_pages(vma, vma.vm_start, vma.vm_end)
            self.remove_trailing_rmap_items(slot, 0)
            if mm.mm_users == 0:
                self._free_slot(slot)
        self.scan_slot = None
        self.remove_all_stable_nodes()
        self.seqnr = 0

    def remove_all_stable_nodes(self) -> bool:
        """remove_all_stable_nodes(): False (EBUSY) if a KSM folio is still mapped."""
        busy = False
        for node in list(self.stable_tree):
            for dup in list(node.dups) if node.chain else [node]:
                if not self._remove_stable_node(dup):
                    busy = True
            if node.chain and not node.dups and node in self.stable_tree:
                self.stable_tree.remove(node)
                self.stable_node_chains -= 1
        return not busy

    def _remove_stable_node(self, node: KsmStableNode) -> bool:
        f = self.ksm_get_folio(node)
        if f is None:
            return True
        if f.mapcount:
            return False
        # folio_set_stable_node(folio, NULL): still KSM-flagged (it may sit in the swap
        # cache), but with no node, so a swap-in copies it (ksm_might_need_to_copy)
        f.mapping = _PENDING
        self.remove_node_from_stable_tree(node)
        return True

    # --- trees -----------------------------------------------------------------------------
    def ksm_get_folio(self, node: KsmStableNode) -> Folio | None:
        """ksm_get_folio(): the keyhole reference; a stale node is removed on sight."""
        f = node.kfolio
        if f is None or f.mapping is not node:
            self.remove_node_from_stable_tree(node)
            return None
        return f

    def remove_node_from_stable_tree(self, node: KsmStableNode) -> None:
        """remove_node_from_stable_tree(): uncount every item (left on its mm's rmap_list,
        flags cleared), unlink the node from the tree or its chain."""
        k = self.k
        for i, item in enumerate(node.hlist):
            self._uncount(item, node, last=i + 1 == len(node.hlist))
            self._leave_stable_tree(item)
        node.hlist = []
        if k.tracing:
            k.trace("remove_node_from_stable_tree", f"{node} (KSM folio gone) removed",
                    node=node.id)
        if node.parent is not None:
            chain = node.parent
            if node in chain.dups:
                chain.dups.remove(node)
                self.stable_node_dups -= 1
            node.parent = None
        elif node in self.stable_tree:
            self.stable_tree.remove(node)

    def _node_folio(self, node: KsmStableNode, prune: bool) -> tuple[KsmStableNode, Folio] | None:
        """chain_prune(): a plain node's folio, or the chain's best dup (stable_node_dup())."""
        if not node.chain:
            f = self.ksm_get_folio(node)
            return None if f is None else (node, f)
        return self.stable_node_dup(node, prune)

    def is_page_sharing_candidate(self, node: KsmStableNode) -> bool:
        return 0 < node.rmap_hlist_len < int(self.knobs["max_page_sharing"])

    def stable_node_dup(self, chain: KsmStableNode, prune: bool = True
                        ) -> tuple[KsmStableNode, Folio] | None:
        """stable_node_dup(): prune stale dups (at most every prune_millisecs), pick the
        sharing candidate with the most items, collapse a chain left with one dup."""
        now_ms = self.k.now // 1_000_000
        do_prune = prune and (now_ms - chain.chain_prune_time
                              >= int(self.knobs["stable_node_chains_prune_millisecs"]))
        if do_prune:
            chain.chain_prune_time = now_ms
        best: tuple[KsmStableNode, Folio] | None = None
        max_sharing = int(self.knobs["max_page_sharing"])
        stale = []
        for dup in chain.dups:
            f = dup.kfolio
            if f is None or f.mapping is not dup:  # ksm_get_folio(): stale, removed
                stale.append(dup)  # (removed below: not while walking the list)
                continue
            n = dup.rmap_hlist_len  # __is_page_sharing_candidate()
            if 0 < n < max_sharing and (best is None or n > best[0].rmap_hlist_len):
                best = (dup, f)
                if not do_prune:
                    break
        for dup in stale:
            self.ksm_get_folio(dup)
        if len(chain.dups) == 1 and chain in self.stable_tree:
            dup = chain.dups[0]  # collapse: the dup replaces the chain in the tree
            self.stable_tree[self.stable_tree.index(chain)] = dup
            dup.parent = None
            chain.dups = []
            self.stable_node_chains -= 1
            self.stable_node_dups -= 1
        elif not chain.dups and chain in self.stable_tree:
            self.stable_tree.remove(chain)
            self.stable_node_chains -= 1
        if best is not None and chain.dups and chain.dups[0] is not best[0]:
            chain.dups.remove(best[0])
            chain.dups.insert(0, best[0])
        return best

    def _tree_search(self, content: Any) -> tuple[int, KsmStableNode | None, Any]:
        """Walk the stable tree for ``content``: (slot, equal node or None, its resolution).
        Restarts whenever a stale node is found on the way, as the kernel's walk does."""
        while True:
            lo, hi = 0, len(self.stable_tree)
            restart = False
            while lo < hi:
                mid = (lo + hi) // 2
                node = self.stable_tree[mid]
                res = self._node_folio(node, prune=True)
                if res is None:
                    if node in self.stable_tree:  # an emptied chain, or all dups full/stale
                        r = C.memcmp_pages(content, node.content)
                        if r == 0:
                            return mid, node, None
                        lo, hi = (lo, mid) if r < 0 else (mid + 1, hi)
                        continue
                    restart = True
                    break
                r = C.memcmp_pages(content, node.content)
                if r == 0:
                    return mid, self.stable_tree[mid] if mid < len(self.stable_tree) else node, res
                if r < 0:
                    hi = mid
                else:
                    lo = mid + 1
            if not restart:
                return lo, None, None

    def stable_tree_search(self, p: PteRun, vpn: int) -> Folio | None:
        """stable_tree_search(): a KSM folio with identical content that can take one more
        mapping, or the page itself if it is already KSM ("ksm page forked")."""
        if folio_test_ksm(p.folio):
            return p.folio
        _, node, res = self._tree_search(self._content_of(p, vpn))
        if node is None or res is None:
            return None
        dup, f = res
        if not self.is_page_sharing_candidate(dup):
            return None
        return f

    def stable_tree_insert(self, kfolio: Folio) -> KsmStableNode:
        """stable_tree_insert(): a new node; an equal node becomes (or joins) a chain."""
        content = kfolio.content
        pos, equal, _ = self._tree_search(content)
        self._node_ids += 1
        node = KsmStableNode(self._node_ids, kfolio, content)
        if equal is None:
            self.stable_tree.insert(pos, node)
        else:
            if not equal.chain:  # alloc_stable_node_chain()
                self._node_ids += 1
                chain = KsmStableNode(self._node_ids, None, content, chain=True)
                chain.chain_prune_time = self.k.now // 1_000_000
                self.stable_tree[self.stable_tree.index(equal)] = chain
                chain.dups.append(equal)
                equal.parent = chain
                self.stable_node_chains += 1
                self.stable_node_dups += 1
                equal = chain
            equal.dups.insert(0, node)
            node.parent = equal
            self.stable_node_dups += 1
        kfolio.mapping = node  # folio_set_stable_node()
        return node

    def stable_tree_append(self, item: KsmRmapItem, node: KsmStableNode) -> None:
        """stable_tree_append(): newest first; the first item counts as shared."""
        node.rmap_hlist_len += 1
        item.head = node
        item.flags |= STABLE_FLAG
        node.hlist.insert(0, item)
        if len(node.hlist) > 1:
            self.pages_sharing += 1
        else:
            self.pages_shared += 1
        item.mm.ksm_merging_pages += 1

    def remove_rmap_item_from_tree(self, item: KsmRmapItem) -> None:
        """remove_rmap_item_from_tree()."""
        if item.flags & STABLE_FLAG:
            node = item.head
            if node is None:
                raise KernelBug("VM_BUG_ON: a stable rmap_item without a stable node")
            if self.ksm_get_folio(node) is not None:
                node.hlist.remove(item)
                self._uncount(item, node, last=not node.hlist)
            self._leave_stable_tree(item)
        elif item.flags & UNSTABLE_FLAG:
            age = (self.seqnr - item.seqnr) & SEQNR_MASK
            if age == 0:
                self.unstable_tree.remove(item)
            self.pages_unshared -= 1
            item.flags = 0

    def _uncount(self, item: KsmRmapItem, node: KsmStableNode, *, last: bool) -> None:
        """The counters an item leaving ``node`` takes with it: the node's last item was its
        pages_shared, every other one a pages_sharing."""
        if last:
            self.pages_shared -= 1
        else:
            self.pages_sharing -= 1
        item.mm.ksm_merging_pages -= 1
        node.rmap_hlist_len -= 1

    def _leave_stable_tree(self, item: KsmRmapItem) -> None:
        """put_anon_vma(), head and flags cleared.  With the linear_page_index field, which
        overlays oldchecksum/age/remaining_skips on 64-bit, those are reset too."""
        item.anon_vma = None
        item.head = None
        item.flags = 0
        if self.k.switches.ksm_rmap_item_linear_page_index:
            item.linear_page_index = None
            item.oldchecksum = 0
            item.age = 0
            item.remaining_skips = 0

    def get_mergeable_page(self, item: KsmRmapItem) -> tuple[PteRun, int] | None:
        """get_mergeable_page(): the anon page now at the item's address, if any."""
        vma = self.find_mergeable_vma(item.mm, item.address)
        if vma is None:
            return None
        if self.k.switches.ksm_get_mergeable_page_skips_protnone and not vma_is_accessible(vma):
            return None  # follow_page() without FOLL_FORCE: no page behind a PROT_NONE pte
        p = self._page_at(item.mm, item.address)
        return None if p is None else (p, item.address >> PAGE_SHIFT)

    def unstable_tree_search_insert(self, item: KsmRmapItem, p: PteRun, vpn: int
                                    ) -> tuple[KsmRmapItem, PteRun, int] | None:
        """unstable_tree_search_insert(): an identical unstable page, else insert ``item``."""
        content = self._content_of(p, vpn)
        lo, hi = 0, len(self.unstable_tree)
        while lo < hi:
            mid = (lo + hi) // 2
            tree_item = self.unstable_tree[mid]
            tp = self.get_mergeable_page(tree_item)
            if tp is None:
                return None
            tpte, tvpn = tp
            if tpte.folio is p.folio and tvpn - tpte.vpn == vpn - p.vpn:
                return None
            r = C.memcmp_pages(content, self._content_of(tpte, tvpn))
            if r < 0:
                hi = mid
            elif r > 0:
                lo = mid + 1
            else:
                return tree_item, tpte, tvpn
        item.flags |= UNSTABLE_FLAG
        item.seqnr = self.seqnr & SEQNR_MASK
        self.unstable_tree.insert(lo, item)
        self.pages_unshared += 1
        return None

    # --- merging ---------------------------------------------------------------------------
    def write_protect_page(self, vma: VmAreaStruct, p: PteRun) -> bool:
        """write_protect_page(): make the pte clean and read-only, refusing if anything but
        the mappings (and the swap cache) holds a reference: a folio still in a per-CPU LRU
        batch fails here.  The young bit is left as it is."""
        f = p.folio
        if p.write or p.dirty or f.flags & PG_anon_exclusive:
            swapped = 1 if f.swap >= 0 else 0
            if f.mapcount + swapped != folio_ref_count(f):
                return False
            f.flags &= ~PG_anon_exclusive
            if p.dirty:
                f.flags |= PG_dirty
            p.write = False
            p.dirty = False
        return True

    def replace_page(self, vma: VmAreaStruct, p: PteRun, kpage: Folio | str) -> bool:
        """replace_page(): map ``kpage`` where ``p`` mapped the old folio."""
        k = self.k
        mm = vma.vm_mm
        vpn = p.vpn
        old = p.folio
        if kpage == ZERO_PAGE:
            mm.pt[vpn] = KSM_ZERO_PTE  # pte_mkdirty(pfn_pte(zero_pfn)): the KSM zero marker
            self.ksm_zero_pages += 1
            mm.ksm_zero_pages += 1
            mm.rss_anon -= 1
        elif isinstance(kpage, Folio):
            kpage.mapcount += 1  # folio_add_anon_rmap_pte(kfolio, ..., RMAP_NONE)
            # mk_pte(kpage, vma->vm_page_prot): young on x86 (the switch: Hugh's pte_mkold)
            q = PteRun(mm, kpage, vpn, young=k.switches.ksm_replace_pte_young)
            kpage.ptes.append(q)
            mm.pt[vpn] = q  # MM_ANONPAGES unchanged: one anon page replaces another
        old.ptes.remove(p)
        old.mapcount -= 1
        if old.mapcount == 0:
            k.folio_put_unmapped(old)
        return True

    def try_to_merge_one_page(self, vma: VmAreaStruct, p: PteRun, vpn: int,
                              kpage: Folio | str | None) -> bool:
        """try_to_merge_one_page()."""
        k = self.k
        if kpage is p.folio:
            return True
        if p.folio.mapping is None:
            return False
        if p.folio.nr > 1:  # SIM-ONLY: a run of folios, not a large folio
            p = k.memory.isolate_pages(k, p, vpn, 1)
        f = p.folio
        if not self.write_protect_page(vma, p):
            return False
        if kpage is None:
            f.mapping = _PENDING  # folio_set_stable_node(folio, NULL)
            if k.switches.ksm_kpage_mark_accessed:
                k.swap.folio_mark_accessed(f)
            f.flags |= PG_dirty  # folio_mark_dirty(): reclaim must swap it, not drop it
            return True
        kcontent = C.ZERO if kpage == ZERO_PAGE else kpage.content  # type: ignore[union-attr]
        if f.content != kcontent:  # pages_identical()
            return False
        return self.replace_page(vma, p, kpage)

    def try_to_merge_with_ksm_page(self, item: KsmRmapItem, p: PteRun, vpn: int,
                                   kpage: Folio | None) -> bool:
        """try_to_merge_with_ksm_page(): the only place an rmap_item learns its anon_vma."""
        vma = self.find_mergeable_vma(item.mm, item.address)
        if vma is None:
            return False
        if not self.try_to_merge_one_page(vma, p, vpn, kpage):
            return False
        self.remove_rmap_item_from_tree(item)
        item.anon_vma = vma.anon_vma
        if self.k.switches.ksm_rmap_item_linear_page_index:
            item.linear_page_index = linear_page_index(vma, item.address)
        return True

    def try_to_merge_two_pages(self, item: KsmRmapItem, p: PteRun, vpn: int,
                               tree_item: KsmRmapItem, tp: PteRun, tvpn: int) -> Folio | None:
        """try_to_merge_two_pages(): the scanned page becomes the KSM page, in place."""
        if not self.try_to_merge_with_ksm_page(item, p, vpn, None):
            return None
        kp = self.k.mm_pte(item.mm, vpn)
        kfolio = kp.folio
        tp = self.k.mm_pte(tree_item.mm, tvpn)
        if not self.try_to_merge_with_ksm_page(tree_item, tp, tvpn, kfolio):
            self.break_cow(item)
            return None
        return kfolio

    def break_cow(self, item: KsmRmapItem) -> None:
        """break_cow(): undo a half-done merge."""
        item.anon_vma = None
        item.linear_page_index = None
        vma = self.find_mergeable_vma(item.mm, item.address)
        if vma is not None:
            self.break_ksm(vma, item.address)

    def try_to_merge_with_zero_page(self, item: KsmRmapItem, p: PteRun, vpn: int) -> bool:
        if self.knobs["use_zero_pages"] and item.oldchecksum == self.zero_checksum:
            vma = self.find_mergeable_vma(item.mm, item.address)
            if vma is None:
                return True
            return self.try_to_merge_one_page(vma, p, vpn, ZERO_PAGE)
        return False

    def should_skip_rmap_item(self, f: Folio, item: KsmRmapItem) -> bool:
        """should_skip_rmap_item(): smart scan (v6.7+)."""
        if not self.k.switches.ksm_smart_scan or not int(self.knobs["smart_scan"]):
            return False
        if folio_test_ksm(f):
            return False
        age = item.age
        if age != 255:
            item.age += 1
        if age < 3:
            return False
        if not item.remaining_skips:
            item.remaining_skips = skip_age(age)
            return False
        self.pages_skipped += 1
        item.remaining_skips -= 1
        self.remove_rmap_item_from_tree(item)
        return True

    def _checksum_gate(self, item: KsmRmapItem, p: PteRun, vpn: int) -> bool:
        """cmp_and_merge_page()'s checksum gate: a page whose checksum changed since the last
        visit (a new item's oldchecksum is 0) is left alone this time; an unchanged empty
        page may merge with the zero page.  True when the unstable tree is to be tried."""
        checksum = C.calc_checksum(self._content_of(p, vpn))
        if item.oldchecksum != checksum:
            item.oldchecksum = checksum
            return False
        return not self.try_to_merge_with_zero_page(item, p, vpn)

    def cmp_and_merge_page(self, p: PteRun, vpn: int, item: KsmRmapItem) -> None:
        """cmp_and_merge_page().  Since v6.11 a page that is not KSM meets the checksum gate
        first; before, the stable tree was searched first and the gate only guarded the
        unstable tree (switch ``ksm_checksum_before_stable_search``)."""
        k = self.k
        f = p.folio
        stable_node = f.mapping if folio_test_ksm(f) else None
        checksum_first = k.switches.ksm_checksum_before_stable_search
        if stable_node is not None:
            if item.head is stable_node:
                return
        elif checksum_first:
            self.remove_rmap_item_from_tree(item)
            if not self._checksum_gate(item, p, vpn):
                return
        kfolio = self.stable_tree_search(p, vpn)
        if kfolio is p.folio and item.head is stable_node:
            return
        self.remove_rmap_item_from_tree(item)
        if kfolio is not None:
            if self.try_to_merge_with_ksm_page(item, p, vpn, kfolio):
                self.stable_tree_append(item, kfolio.mapping)
                if k.tracing:
                    k.trace("ksm_merge_with_ksm_page",
                            f"{item.mm.owner}:{item.address:#x} merged into KSM folio pfn "
                            f"{kfolio.pfn:#x} ({kfolio.mapping})", pfn=kfolio.pfn)
            return
        if not checksum_first and not self._checksum_gate(item, p, vpn):
            return  # before v6.11: the gate after a fruitless stable tree search
        found = self.unstable_tree_search_insert(item, p, vpn)
        if found is None:
            return
        tree_item, tp, tvpn = found
        kfolio = self.try_to_merge_two_pages(item, p, vpn, tree_item, tp, tvpn)
        if kfolio is None:
            return
        node = self.stable_tree_insert(kfolio)
        self.stable_tree_append(tree_item, node)
        self.stable_tree_append(item, node)
        if k.tracing:
            k.trace("ksm_merge_two_pages",
                    f"{item.mm.owner}:{item.address:#x} became KSM folio pfn {kfolio.pfn:#x} "
                    f"(index {kfolio.index:#x}, {node}); "
                    f"{tree_item.mm.owner}:{tree_item.address:#x} mapped to it",
                    pfn=kfolio.pfn, node=node.id)

    # --- the scan --------------------------------------------------------------------------
    def _free_rmap_item(self, item: KsmRmapItem) -> None:
        self.ksm_rmap_items -= 1
        item.mm.ksm_rmap_items -= 1

    def get_next_rmap_item(self, slot: KsmMmSlot, addr: int) -> KsmRmapItem:
        """get_next_rmap_item(): stale items before ``addr`` are freed on the way."""
        lst = slot.rmap_list
        i = self.scan_idx
        while i < len(lst):
            it = lst[i]
            if it.address == addr:
                self.scan_idx = i + 1
                return it
            if it.address > addr:
                break
            del lst[i]
            self.remove_rmap_item_from_tree(it)
            self._free_rmap_item(it)
        item = KsmRmapItem(slot.mm, addr)
        lst.insert(i, item)
        self.ksm_rmap_items += 1
        slot.mm.ksm_rmap_items += 1
        self.scan_idx = i + 1
        return item

    def remove_trailing_rmap_items(self, slot: KsmMmSlot, idx: int) -> None:
        for it in slot.rmap_list[idx:]:
            self.remove_rmap_item_from_tree(it)
            self._free_rmap_item(it)
        del slot.rmap_list[idx:]

    def _free_slot(self, slot: KsmMmSlot) -> None:
        """The slot of an mm with no mergeable vma (or exiting) is freed.  MMF_VM_MERGE_ANY
        survives since "mm/ksm: fix exec/fork inheritance support for prctl" (2025): the
        mm re-enters on its next new vma (ksm_add_vma)."""
        if slot in self.mm_slots:
            self.mm_slots.remove(slot)
        mm = slot.mm
        mm.ksm_slot = None
        mm.flags &= ~MMF_VM_MERGEABLE
        if mm.mm_users == 0 or not self.k.switches.ksm_merge_any_survives_slot_free:
            mm.flags &= ~MMF_VM_MERGE_ANY

    def scan_get_next_rmap_item(self) -> tuple[KsmRmapItem, PteRun, int] | None:
        """scan_get_next_rmap_item()."""
        k = self.k
        if not self.mm_slots:
            return None
        if self.scan_slot is None:
            k.swap.lru_add_drain_all()
            self.unstable_tree = []  # root_unstable_tree[nid] = RB_ROOT
            self.scan_slot = self.mm_slots[0]
            self.scan_address = 0
            self.scan_idx = 0
        while True:
            slot = self.scan_slot
            if slot is None:
                raise KernelBug("VM_BUG_ON: the ksm_scan cursor is lost")
            mm = slot.mm
            if mm.mm_users > 0:
                for vma in mm.vmas:
                    if vma.vm_end <= self.scan_address or not vma.vm_flags & VM_MERGEABLE:
                        continue
                    if self.scan_address < vma.vm_start:
                        self.scan_address = vma.vm_start
                    if vma.anon_vma is None:
                        self.scan_address = vma.vm_end
                        continue
                    while self.scan_address < vma.vm_end:
                        addr = self.scan_address
                        p = self._page_at(mm, addr)
                        if p is None:
                            self.scan_address = self._next_present(mm, addr, vma.vm_end)
                            continue
                        item = self.get_next_rmap_item(slot, addr)
                        self.scan_address = addr + PAGE_SIZE
                        if self.should_skip_rmap_item(p.folio, item):
                            continue
                        return item, p, addr >> PAGE_SHIFT
            else:
                self.scan_address = 0
                self.scan_idx = 0
            # the end of this mm's vmas
            self.remove_trailing_rmap_items(slot, self.scan_idx)
            i = self.mm_slots.index(slot)
            nxt = self.mm_slots[i + 1] if i + 1 < len(self.mm_slots) else None
            if self.scan_address == 0:
                self._free_slot(slot)
            self.scan_slot = nxt
            self.scan_address = 0
            self.scan_idx = 0
            if nxt is None:
                self.seqnr += 1
                return None

    def _next_present(self, mm: MmStruct, addr: int, end: int) -> int:
        """The v6.19 range walk (walk_page_range_vma to the next present anon page); before it,
        the next address.  Which pages are visited is the same either way."""
        if not self.k.switches.ksm_range_walk:
            return addr + PAGE_SIZE
        pt = mm.pt
        v = (addr >> PAGE_SHIFT) + 1
        ev = end >> PAGE_SHIFT
        while v < ev:
            e = pt.get(v)
            if isinstance(e, PteRun) and e.folio.mapping is not None:
                return v << PAGE_SHIFT
            v += 1
        return end

    # SIM-ONLY: consecutive visits whose outcome is already known are done in one loop (see
    # _batch_visits); tests/mm/test_ksm_batch.py checks that this changes nothing observable.
    batched = True

    def ksm_do_scan(self, scan_npages: int) -> int:
        """ksm_do_scan(): at most one full scan completes per batch.  Returns pages visited."""
        n = 0
        while n < scan_npages:
            r = self.scan_get_next_rmap_item()
            if r is None:
                break
            item, p, vpn = r
            self.cmp_and_merge_page(p, vpn, item)
            self.pages_scanned += 1
            n += 1
            if self.batched and n < scan_npages and not self.k.tracing:
                n += self._batch_visits(item, scan_npages - n)
        return n

    def _merge_target(self, prev: KsmRmapItem) -> tuple[KsmStableNode, Folio] | None:
        """The stable node that stable_tree_search() would resolve every identical page to,
        if that is certain: the node ``prev`` just joined, when it is the only entry of the
        stable tree, or the first dup of the only chain while no prune is due
        (stable_node_dup() then takes the first sharing candidate; a prune could remove or
        reorder dups, and a chain of one dup collapses)."""
        node = prev.head
        if node is None or node.kfolio is None or node.kfolio.mapping is not node \
                or self.knobs["use_zero_pages"]:
            return None
        entry = node.parent if node.parent is not None else node
        if len(self.stable_tree) != 1 or self.stable_tree[0] is not entry:
            return None
        if entry.chain:
            prune_due = (self.k.now // 1_000_000 - entry.chain_prune_time
                         >= int(self.knobs["stable_node_chains_prune_millisecs"]))
            if entry.dups[0] is not node or len(entry.dups) < 2 or prune_due:
                return None
        return node, node.kfolio

    def _batch_visits(self, prev: KsmRmapItem, budget: int) -> int:
        """SIM-ONLY: the next visits of this vma, for as long as each is one of three cases
        whose every effect is known in advance, done without the general path:

        * steady state: a KSM page whose rmap_item already hangs on its stable node
          (cmp_and_merge_page() returns at once);
        * first visit: a new rmap_item for a page that is not KSM (its checksum is stored);
        * merge into the node ``prev`` just joined (see _merge_target): an unchanged page
          identical to that KSM page, merged by write_protect_page() + replace_page().

        The first visit that is anything else (an absent page, a stale rmap_item, a skip, a
        checksum change, a full node, ...) is left to the general path.  Returns the visits
        done."""
        k = self.k
        slot = self.scan_slot
        if slot is None:
            return 0
        mm = slot.mm
        vma = k.find_vma(mm, self.scan_address)
        if vma is None or vma.vm_start > self.scan_address or not vma.vm_flags & VM_MERGEABLE \
                or vma.anon_vma is None:
            return 0
        smart = bool(k.switches.ksm_smart_scan and int(self.knobs["smart_scan"]))
        checksum_first = k.switches.ksm_checksum_before_stable_search
        target = self._merge_target(prev)
        lst = slot.rmap_list
        pt = mm.pt
        tables = pt.tables
        end = vma.vm_end
        done = 0
        while done < budget:
            addr = self.scan_address
            if addr >= end:
                break
            vpn = addr >> PAGE_SHIFT
            e = pt.get(vpn)
            if not isinstance(e, PteRun):
                break
            f = e.folio
            m = f.mapping
            if m is None:
                break
            idx = self.scan_idx
            item = lst[idx] if idx < len(lst) else None
            n = 0
            if m.IS_KSM:  # steady state: as many as follow
                limit = min(budget - done, len(lst) - idx, (end - addr) >> PAGE_SHIFT)
                # item by item beside its page table's entries, one PTE table at a time
                a = addr
                while n < limit:
                    v = a >> PAGE_SHIFT
                    t = tables.get(v >> 9)
                    if t is None:
                        break
                    lo = v & 511
                    hi = min(512, lo + limit - n)
                    run = 0
                    for it, q in zip(lst[idx + n:idx + n + hi - lo], t[lo:hi], strict=True):
                        if it.address != a or q is None or q.__class__ is not PteRun \
                                or it.head is not q.folio.mapping:
                            break
                        run += 1
                        a += PAGE_SIZE
                    n += run
                    if run < hi - lo:
                        break
            elif item is None or item.address > addr:  # first visits, up to the next item
                if not checksum_first:
                    break  # before v6.11 a first visit searches the stable tree too
                stop = min(e.vpn + f.nr, end >> PAGE_SHIFT, vpn + budget - done)
                if item is not None:
                    stop = min(stop, item.address >> PAGE_SHIFT)
                n = self._first_visits(e, vpn, stop, idx, smart)
            elif item.address == addr and target is not None:  # merges into the target
                n = self._merge_stretch(e, vpn, idx, end, budget - done, target, smart)
                if n:
                    self._merge_apply(e, vpn, idx, n, target, vma, smart)
            if not n:
                break
            self.scan_idx = idx + n
            self.scan_address = addr + (n << PAGE_SHIFT)
            self.pages_scanned += n
            done += n
        return done

    def _first_visits(self, e: PteRun, vpn: int, stop: int, idx: int, smart: bool) -> int:
        """get_next_rmap_item() allocating a new item for each page of ``[vpn, stop)`` (all in
        ``e``'s run), should_skip_rmap_item() aging it, cmp_and_merge_page() storing the
        checksum.  A checksum of 0 equals a new item's oldchecksum: left to the general path."""
        f = e.folio
        mm = e.mm
        age = 1 if smart else 0  # should_skip_rmap_item() ages a new item from 0 to 1
        if not f.stride:  # one content, one checksum for the whole run
            cs = C.calc_checksum(f.content)
            if cs == 0:
                return 0
            items = [KsmRmapItem(mm, a, cs, age)
                     for a in range(vpn << PAGE_SHIFT, stop << PAGE_SHIFT, PAGE_SIZE)]
        else:
            items = []
            for v in range(vpn, stop):
                cs = C.calc_checksum(f.page_content(v - e.vpn))
                if cs == 0:
                    break
                items.append(KsmRmapItem(mm, v << PAGE_SHIFT, cs, age))
        n = len(items)
        self.scan_slot.rmap_list[idx:idx] = items  # type: ignore[union-attr]
        self.ksm_rmap_items += n
        mm.ksm_rmap_items += n
        return n

    def _merge_stretch(self, e: PteRun, vpn: int, idx: int, end: int, budget: int,
                       target: tuple[KsmStableNode, Folio], smart: bool) -> int:
        """How many pages from ``vpn`` on, all in ``e``'s folio run, the general path would
        each merge into ``target``: rmap_items of the last scan with that checksum, not to be
        skipped, content identical, room on the node, and a folio write_protect_page() accepts
        (mapped once, in no per-CPU batch nor swap cache)."""
        tnode, kfolio = target
        f = e.folio
        if f.mapcount != 1 or f.cpu >= 0 or f.swap >= 0 or len(f.ptes) != 1:
            return 0
        kcontent = kfolio.content
        uniform = not f.stride
        if uniform and f.content != kcontent:
            return 0
        kcs = C.calc_checksum(kcontent)
        lst = self.scan_slot.rmap_list  # type: ignore[union-attr]
        limit = min(e.vpn + f.nr, end >> PAGE_SHIFT, vpn + budget,
                    vpn + int(self.knobs["max_page_sharing"]) - tnode.rmap_hlist_len)
        limit = min(limit - vpn, len(lst) - idx)
        n = 0
        addr = vpn << PAGE_SHIFT
        while n < limit:
            it = lst[idx + n]
            if it.address != addr or it.flags or it.oldchecksum != kcs:
                break
            if smart and it.age >= 3 and it.remaining_skips:
                break  # it would be skipped
            if not uniform and f.page_content(vpn + n - e.vpn) != kcontent:
                break
            n += 1
            addr += PAGE_SIZE
        return n

    def _merge_apply(self, e: PteRun, vpn: int, idx: int, n: int,
                     target: tuple[KsmStableNode, Folio], vma: VmAreaStruct, smart: bool
                     ) -> None:
        """What the general path does to ``n`` such pages: should_skip_rmap_item()'s aging,
        write_protect_page() + replace_page() (the KSM page mapped at each address, the old
        folios freed), try_to_merge_with_ksm_page() and stable_tree_append()."""
        k = self.k
        tnode, kfolio = target
        mm = e.mm
        if e.folio.nr != n:
            e = k.memory.isolate_pages(k, e, vpn, n)
        old = e.folio
        items = self.scan_slot.rmap_list[idx:idx + n]  # type: ignore[union-attr]
        young = k.switches.ksm_replace_pte_young
        ptes = [PteRun(mm, kfolio, v, young) for v in range(vpn, vpn + n)]
        mm.pt.set_many(vpn, ptes)
        av = vma.anon_vma
        lpi = k.switches.ksm_rmap_item_linear_page_index
        # (_merge_stretch() took only items with no flags: STABLE_FLAG is all they get)
        if smart:
            for it in items:
                age = it.age
                if age != 255:
                    it.age = age + 1
                if age >= 3:
                    it.remaining_skips = skip_age(age)
        for it in items:
            it.anon_vma = av
            it.head = tnode
            it.flags = STABLE_FLAG
        if lpi:
            for it in items:
                it.linear_page_index = linear_page_index(vma, it.address)
        kfolio.ptes.extend(ptes)
        kfolio.mapcount += n
        old.ptes.remove(e)
        old.mapcount = 0
        k.folio_put_unmapped(old)
        tnode.hlist[0:0] = items[::-1]  # each added at the head, in scan order
        tnode.rmap_hlist_len += n
        self.pages_sharing += n
        mm.ksm_merging_pages += n

    def wake_ksmd(self, interrupt: bool = False) -> None:
        """wake_up_interruptible(&ksm_thread_wait / &ksm_iter_wait): ksmd runs now if idle;
        with ``interrupt`` (a sleep_millisecs write), its current sleep ends early."""
        if self.ksmd_pending and not interrupt:
            return
        self.ksmd_pending = True
        self.ksmd_token += 1
        token = self.ksmd_token
        delay = 0
        if not interrupt and self.k.ksmd_phase:
            # CUSTOM: ksmd's passes fall this fraction of a cycle (sleep_millisecs plus a
            # batch) later against the test's steps, one of the alignments a real run may
            # get (ksmrepro phases, docs/timing.md); the kernel itself runs ksmd at once
            cycle = int(self.knobs["sleep_millisecs"]) * 1_000_000 + self.k.costs.ksm_scan_batch
            delay = int(self.k.ksmd_phase * cycle)
        self.k.add_timer(self.k.now + self.k.pending + delay, lambda: self._ksmd_tick(token))

    def _ksmd_tick(self, token: int) -> None:
        if token == self.ksmd_token:
            self.ksm_scan_thread()

    def ksm_scan_thread(self) -> None:
        """One iteration of ksm_scan_thread(): a batch, then sleep_millisecs."""
        k = self.k
        self.ksmd_pending = False
        if not self.run & KSM_RUN_MERGE or not self.mm_slots:
            return
        seq = self.seqnr
        visited = self.ksm_do_scan(int(self.knobs["pages_to_scan"]))
        if k.tracing and self.seqnr != seq and self.seqnr <= 3:
            k.trace("ksm_do_scan", f"full scan {self.seqnr} done: shared {self.pages_shared} "
                    f"sharing {self.pages_sharing} unshared {self.pages_unshared}")
        cost = k.costs.ksm_scan_batch + visited * k.costs.ksm_page_visit
        self.ksmd_pending = True
        self.ksmd_token += 1
        token = self.ksmd_token
        k.add_timer(k.now + cost + int(self.knobs["sleep_millisecs"]) * 1_000_000,
                    lambda: self._ksmd_tick(token))

    # --- knobs -----------------------------------------------------------------------------
    def write_knob(self, name: str, value: str) -> None:
        """The store functions of /sys/kernel/mm/ksm/*, with their errors; ``value`` is what
        ``echo value >`` writes, less its newline."""
        def uint(v: str) -> int:
            x = kstrtouint(v)
            if x is None:
                raise Errno("EINVAL", f"{name}: {v!r} is not a decimal unsigned int")
            return x

        if not self.k.switches.ksm_smart_scan and (name == "smart_scan"
                                                   or name.startswith("advisor_")):
            # smart_scan (v6.7) and the advisor (v6.8) are newer than this kernel
            raise Errno("ENOENT", f"/sys/kernel/mm/ksm/{name}: no such file on this kernel",
                        unsupported=True)
        if name == "run":
            x = uint(value)
            if x > KSM_RUN_UNMERGE:
                raise Errno("EINVAL", "run takes 0, 1 or 2")
            if x == self.run:
                return
            self.knobs["run"] = x
            if x & KSM_RUN_UNMERGE:
                self.unmerge_and_remove_all_rmap_items()
            if x & KSM_RUN_MERGE:
                self.wake_ksmd()
        elif name == "pages_to_scan":
            if self.knobs["advisor_mode"] != "none":
                raise Errno("EINVAL", "pages_to_scan is set by the advisor")
            self.knobs[name] = uint(value)
        elif name == "sleep_millisecs":
            self.knobs[name] = uint(value)
        elif name == "max_page_sharing":
            x = uint(value)
            if x < 2:
                raise Errno("EINVAL", "max_page_sharing is at least 2")
            if x != self.knobs[name]:
                if not self.remove_all_stable_nodes():
                    raise Errno("EBUSY", "KSM pages are still mapped")
                self.knobs[name] = x
        elif name == "merge_across_nodes":
            x = uint(value)
            if x > 1:
                raise Errno("EINVAL", "merge_across_nodes takes 0 or 1")
            if x != self.knobs[name] and self.pages_shared:
                raise Errno("EBUSY", "KSM pages exist")
            self.knobs[name] = x
        elif name in ("use_zero_pages", "smart_scan"):
            b = kstrtobool(value)
            if b is None:
                raise Errno("EINVAL", f"{name} takes a boolean")
            self.knobs[name] = int(b)
        elif name == "advisor_mode":
            if value.strip() not in ("none", "scan-time"):
                raise Errno("EINVAL", "advisor_mode is none or scan-time")
            self.knobs[name] = value.strip()  # STUB: the advisor itself is not modelled
        elif name in DEFAULT_KNOBS:
            self.knobs[name] = uint(value)
        else:
            raise Errno("ENOENT", f"/sys/kernel/mm/ksm/{name}: no such file", unsupported=True)
        if name == "sleep_millisecs" and self.run & KSM_RUN_MERGE and self.mm_slots:
            self.wake_ksmd(interrupt=True)

    # --- rmap ------------------------------------------------------------------------------
    def rmap_walk_ksm(self, folio: Folio, rmap_one: Callable[[Folio, VmAreaStruct, int], bool],
                      done: Callable[[Folio], bool] | None, *, why: str = "") -> None:
        """rmap_walk_ksm(): every rmap_item of the stable node, each through its anon_vma's
        interval tree.  The pgoff range queried is the model switch ``ksm_rmap_range``."""
        k = self.k
        node = folio.mapping
        if not isinstance(node, KsmStableNode):
            return
        mode = k.switches.ksm_rmap_range
        lines: list[str] = []
        items: list[dict[str, Any]] = []
        stats: dict[str, int] = {}
        stop = False
        for search_new_forks in (False, True):
            if stop:
                break
            for item in list(node.hlist):
                av = item.anon_vma
                if av is None:
                    continue
                addr = item.address
                if mode == "full":
                    first, last = 0, ULONG_MAX
                elif mode == "address":  # xu xin's v3 2/2
                    first = last = addr >> PAGE_SHIFT
                else:  # the fix series: the index stored at merge time
                    lpi = item.linear_page_index
                    first, last = (0, ULONG_MAX) if lpi is None else (lpi, lpi)
                visited = set()
                header = ""
                rec: dict[str, Any] = {}
                if k.tracing:
                    rec = {"mm": item.mm.owner, "address": addr, "first": first, "last": last,
                           "pass": 2 if search_new_forks else 1, "visited": [], "missed": []}
                    items.append(rec)
                    rng = "[0, ULONG_MAX]" if last == ULONG_MAX else f"[{first:#x}, {last:#x}]"
                    header = (f"  {'search_new_forks: ' if search_new_forks else ''}item "
                              f"{item.mm.owner}:{addr:#x} anon_vma {av}: pgoff range {rng}")
                    if not search_new_forks:  # the fork pass is shown only where it visits
                        lines.append(header)
                        header = ""
                for avc in anon_vma_interval_tree_foreach(av, first, last, stats):
                    vma = avc.vma
                    visited.add(id(avc))
                    if addr < vma.vm_start or addr >= vma.vm_end:
                        stats["skipped"] = stats.get("skipped", 0) + 1
                        continue
                    if (item.mm is vma.vm_mm) == search_new_forks:
                        continue
                    if k.tracing:
                        if header:
                            lines.append(header)
                            header = ""
                        found = _maps(folio, vma, addr)
                        rec["visited"].append({"vma": [vma.vm_start, vma.vm_end],
                                               "vm_pgoff": vma.vm_pgoff, "maps": found})
                        lines.append(f"    visit vma {_vma_str(vma)}: "
                                     f"{'maps the folio' if found else 'pte does not map it'}")
                    if not rmap_one(folio, vma, addr) or (done is not None and done(folio)):
                        stop = True
                        break
                if k.tracing and not search_new_forks:
                    for a in av.rb_root:
                        if id(a) not in visited and a.vma.vm_start <= addr < a.vma.vm_end:
                            rec["missed"].append({"vma": [a.vma.vm_start, a.vma.vm_end],
                                                  "vm_pgoff": a.vma.vm_pgoff})
                            lines.append(f"    MISSED vma {_vma_str(a.vma)}: it holds {addr:#x} "
                                         "but its pgoff range is outside the query")
                if stop:
                    break
        if k.tracing:
            k.trace("rmap_walk_ksm",
                    f"rmap_walk_ksm(pfn {folio.pfn:#x}) for {why}: {stats.get('iterations', 0)} "
                    f"interval-tree iterations, {stats.get('skipped', 0)} skipped by address\n"
                    + "\n".join(lines),
                    pfn=folio.pfn, why=why, mode=mode, iterations=stats.get("iterations", 0),
                    skipped=stats.get("skipped", 0),
                    items=[r for r in items if r["pass"] == 1 or r["visited"]])

    def ksm_might_need_to_copy_ok(self, f: Folio, vma: VmAreaStruct, addr: int) -> bool:
        """ksm_might_need_to_copy() returns the folio found in the swap cache itself (else
        do_swap_page() maps a copy): a KSM folio while its stable node lives and KSM is not
        unmerging; an ordinary one not yet mapped anywhere (no anon_vma), or whose index and
        anon_vma root fit this vma (the page a swapped-out KSM folio left in its slot, read
        in at another of its addresses, does not)."""
        if folio_test_ksm(f):
            return isinstance(f.mapping, KsmStableNode) and not self.run & KSM_RUN_UNMERGE
        av = f.mapping
        if av is None:
            return True
        return (f.index == linear_page_index(vma, addr)
                and vma.anon_vma is not None and av.root is vma.anon_vma.root)

    # --- counters --------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        shared, sharing, unshared = self.pages_shared, self.pages_sharing, self.pages_unshared
        return {
            "pages_shared": shared,
            "pages_sharing": sharing,
            "pages_unshared": unshared,
            "pages_volatile": max(self.ksm_rmap_items - shared - sharing - unshared, 0),
            "pages_scanned": self.pages_scanned,
            "pages_skipped": self.pages_skipped,
            "full_scans": self.seqnr,
            "stable_node_chains": self.stable_node_chains,
            "stable_node_dups": self.stable_node_dups,
            "ksm_zero_pages": self.ksm_zero_pages,
            "general_profit": (sharing + self.ksm_zero_pages) * PAGE_SIZE
            - self.ksm_rmap_items * RMAP_ITEM_SIZE,
        }

    def ksm_stat(self, mm: MmStruct) -> dict[str, int]:
        """/proc/PID/ksm_stat."""
        return {
            "ksm_rmap_items": mm.ksm_rmap_items,
            "ksm_stat_zero_pages": mm.ksm_zero_pages,
            "ksm_merging_pages": mm.ksm_merging_pages,
            "ksm_process_profit": (mm.ksm_merging_pages + mm.ksm_zero_pages) * PAGE_SIZE
            - mm.ksm_rmap_items * RMAP_ITEM_SIZE,
            "ksm_merge_any": int(bool(mm.flags & MMF_VM_MERGE_ANY)),
            "ksm_mergeable": int(any(v.vm_flags & VM_MERGEABLE for v in mm.vmas)),
        }


def _maps(folio: Folio, vma: VmAreaStruct, addr: int) -> bool:
    e = vma.vm_mm.pt.get(addr >> PAGE_SHIFT)
    return isinstance(e, PteRun) and e.folio is folio


def _vma_str(vma: VmAreaStruct) -> str:
    return (f"{vma.vm_mm.owner} [{vma.vm_start:#x}, {vma.vm_end:#x}) pgoff {vma.vm_pgoff:#x} "
            f"(avc pgoff [{vma.vm_pgoff:#x}, {vma.vm_pgoff + vma.pages() - 1:#x}])")

