from ksmrepro.models.base import Patch

PATCH = Patch(
    name="ksm-rmap-walk-linear-page-index",
    title="ksm: add linear_page_index into ksm_rmap_item + ksm: optimize rmap_walk_ksm by passing "
    "a suitable page index",
    reference="xu xin, v8 series, linux-mm, June 2026 (mm-new/linux-next, Aug 2026)",
    function="rmap_walk_ksm",
    explanation=(
        "The fix series as one unit: store linear_page_index in the rmap_item at merge time and "
        "walk only that index.  Both mappings of an mremap-moved KSM folio are found."
    ),
    parts=("ksm-rmap-item-linear-page-index", "ksm-rmap-walk-page-index"),
)
