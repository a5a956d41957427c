"""Kernel behaviour models: a base kernel plus patches, reduced to *switches*.

A switch is a named decision point in the simulated kernel (``ksmrepro.mm``).
The kernel reads ``kernel.switches.<name>`` exactly where the real code differs
between the kernels being modelled, and nowhere else.  The kernel never sees a
model's *name*.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Base", "Model", "Patch", "Switches", "SWITCH_DOCS"]


@dataclass(frozen=True)
class Switches:
    """Every decision point a model can move.  Defaults are v7.0-rc6."""

    # mm/swap.c: folio_batch size of the per-CPU lru_add batch (PAGEVEC_SIZE 15 in v6.1,
    # FOLIO_BATCH_SIZE 31 since "mm: increase folio batch size" (v6.9-ish)).
    lru_batch_size: int = 31
    # mm/ksm.c should_skip_rmap_item(): smart scan exists (v6.7+) and the smart_scan knob.
    ksm_smart_scan: bool = True
    # mm/ksm.c rmap_walk_ksm(): the pgoff range given to anon_vma_interval_tree_foreach().
    #   "full"               0 .. ULONG_MAX (every kernel up to v7.0-rc6)
    #   "address"            rmap_item->address >> PAGE_SHIFT (xu xin's v3 2/2, mm.git 2026-04)
    #   "linear_page_index"  rmap_item->linear_page_index stored at merge time (the fix series)
    ksm_rmap_range: str = "full"
    # mm/ksm.c rmap_walk_ksm(): addr computed once per rmap_item (v3 1/2).  No behaviour change.
    ksm_rmap_addr_once: bool = False
    # mm/ksm.c try_to_merge_with_ksm_page(): record linear_page_index(vma, addr) in the
    # rmap_item (overlaying oldchecksum/age on 64-bit), reset when it leaves the stable tree.
    ksm_rmap_item_linear_page_index: bool = False
    # mm/ksm.c replace_page(): the new pte is mk_pte(kpage, vm_page_prot), young on x86.
    # Hugh's local testing patch makes it old (pte_mkold).
    ksm_replace_pte_young: bool = True
    # mm/ksm.c try_to_merge_one_page(): folio_mark_accessed() on the folio that becomes KSM.
    ksm_kpage_mark_accessed: bool = True
    # mm/ksm.c cmp_and_merge_page(): a page that is not KSM passes the checksum gate before
    # stable_tree_search() (d58a361b0350 "mm/ksm: don't waste time searching stable tree for
    # fast changing page", v6.11).  Before it, every page was looked up in the stable tree
    # first, so a page identical to a KSM page merged on its first visit.
    ksm_checksum_before_stable_search: bool = True
    # mm/ksm.c ksm_fork() (upstream 4d6fc29f3634, v6.18): the child's ksm_merging_pages and
    # ksm_rmap_items start at 0 instead of the parent's values.
    ksm_fork_resets_counters: bool = True
    # mm/ksm.c scan_get_next_rmap_item(): walk_page_range_vma() to the next present page
    # (v6.19).  Changes the cost only, never which pages are visited.
    ksm_range_walk: bool = True
    # kernel/sys.c prctl(PR_SET_MEMORY_MERGE) / mm/ksm.c ksm_enable_merge_any(): v6.4+.
    ksm_prctl_merge_any: bool = True
    # mm/ksm.c scan_get_next_rmap_item(): freeing an mm's slot keeps MMF_VM_MERGE_ANY, and
    # ksm_vma_flags() re-enters the mm ("mm/ksm: fix exec/fork inheritance support for
    # prctl", 2025, in v7.0).
    ksm_merge_any_survives_slot_free: bool = True
    # mm/vmscan.c: CONFIG_LRU_GEN_ENABLED (the multi-gen LRU on at boot).
    lru_gen_enabled: bool = False
    # mm/ksm.c get_mergeable_page(): follow_page(FOLL_GET) (up to v6.11) finds no page behind
    # a PROT_NONE pte (follow_page_pte(): pte_protnone() without FOLL_FORCE), so an unstable
    # tree item there matches nothing; folio_walk_start() (v6.12, "mm/ksm: convert
    # get_mergeable_page() from follow_page() to folio_walk") takes any present pte.
    ksm_get_mergeable_page_skips_protnone: bool = False
    # mm/ksm.c break_ksm(): follow_page() (up to v6.1) skips a PROT_NONE pte, so
    # MADV_UNMERGEABLE leaves such a KSM page mapped; walk_page_range_vma() (v6.2, "mm/ksm:
    # convert break_ksm() to use walk_page_range_vma()") unshares it.
    ksm_break_ksm_skips_protnone: bool = False
    # mm/memory.c add_mm_counter_fast() / check_sync_rss_stat() (SPLIT_RSS_COUNTING): a task's
    # own faults count MM_ANONPAGES/MM_SWAPENTS in a per-task cache, folded into the mm every
    # 64 faults (and by zap_pte_range()'s add_mm_rss_vec()), so /proc/PID/status lags.  Gone
    # in v6.2 (f1a7941243c1 "mm: convert mm's rss stats into percpu_counter").
    split_rss_counting: bool = False

    def changed_from(self, other: Switches) -> dict[str, tuple[Any, Any]]:
        return {f.name: (getattr(other, f.name), getattr(self, f.name))
                for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)}


SWITCH_DOCS = {f.name: f.name for f in fields(Switches)}


@dataclass(frozen=True)
class Base:
    """A released (or -rc) kernel: the starting point of a model."""

    name: str
    title: str
    switches: Switches
    summary: str = ""


@dataclass(frozen=True)
class Patch:
    """One patch (or a patch series that only makes sense whole).

    :param function: the kernel function whose decision the patch changes
    :param sets: switch values the patch applies (empty: no behaviour change)
    :param requires: patches that must be applied before this one
    """

    name: str
    title: str
    reference: str
    function: str
    explanation: str
    sets: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()  # a group: these patches, in order, instead of `sets`

    def apply(self, switches: Switches) -> Switches:
        return replace(switches, **self.sets) if self.sets else switches


@dataclass(frozen=True)
class Model:
    """A resolved model: the expression it came from, its base, its patches, its switches."""

    name: str
    base: Base
    patches: tuple[Patch, ...]
    switches: Switches
    knobs: tuple[tuple[str, Any], ...] = ()  # sysfs knob overrides from a model file
