"""The base kernels."""

from ksmrepro.models.base import Base, Switches

V7_0_RC6 = Base(
    name="v7.0-rc6",
    title="Linux 7.0-rc6",
    switches=Switches(),
    summary=(
        "The kernel Hugh Dickins compared mm.git against: full-range rmap_walk_ksm, folio batches "
        "of 31, KSM smart scan and range walk, classic LRU by default (CONFIG_LRU_GEN_ENABLED=n)."
    ),
)

V6_1 = Base(
    name="v6.1",
    title="Linux 6.1 (Debian 6.1.192 as measured in real-kernel-observations.md)",
    switches=Switches(
        lru_batch_size=15,  # include/linux/pagevec.h PAGEVEC_SIZE in 6.1
        ksm_smart_scan=False,  # should_skip_rmap_item() arrived in v6.7
        ksm_checksum_before_stable_search=False,  # d58a361b0350 is v6.11
        ksm_fork_resets_counters=False,  # 4d6fc29f3634 is v6.18
        # the KSM range walk is v6.19 (Debian's 6.1.192 source carries a backport of it; the
        # switch changes ksmd's cost only, and v6.1's timing was fitted without it)
        ksm_range_walk=False,
        ksm_prctl_merge_any=False,  # PR_SET_MEMORY_MERGE arrived in v6.4
        ksm_merge_any_survives_slot_free=False,
        split_rss_counting=True,  # percpu rss counters replaced it in v6.2
        ksm_get_mergeable_page_skips_protnone=True,  # follow_page() until v6.12
        ksm_break_ksm_skips_protnone=True,  # follow_page() until v6.2
    ),
    summary=(
        "Debian's 6.1: PAGEVEC_SIZE 15, no smart scan, every address probed by ksmd, "
        "the stable tree searched before the checksum gate, "
        "CONFIG_LRU_GEN=y without CONFIG_LRU_GEN_ENABLED (classic LRU unless switched on)."
    ),
)

ALL = (V6_1, V7_0_RC6)
