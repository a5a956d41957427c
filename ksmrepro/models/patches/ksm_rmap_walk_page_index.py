from ksmrepro.models.base import Patch

PATCH = Patch(
    name="ksm-rmap-walk-page-index",
    title="ksm: optimize rmap_walk_ksm by passing a suitable page index",
    reference="xu xin, [PATCH v8 2/3], linux-mm, June 2026 (mm-new/linux-next, Aug 2026)",
    function="rmap_walk_ksm",
    explanation=(
        "rmap_walk_ksm() queries the anon_vma interval tree with the rmap_item's stored "
        "linear_page_index instead of [0, ULONG_MAX] (or the v3 address range).  The index is the "
        "vma's own pgoff arithmetic, so an mremap-moved mapping is found again."
    ),
    sets={"ksm_rmap_range": "linear_page_index"},
    requires=("ksm-rmap-item-linear-page-index",),
)
