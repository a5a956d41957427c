from ksmrepro.models.base import Patch

PATCH = Patch(
    name="ksm-rmap-item-linear-page-index",
    title="ksm: add linear_page_index into ksm_rmap_item",
    reference="xu xin, [PATCH v8 1/3], linux-mm, June 2026 (mm-new/linux-next, Aug 2026)",
    function="try_to_merge_with_ksm_page",
    explanation=(
        "Records linear_page_index(vma, rmap_item->address) in the rmap_item when it joins the "
        "stable tree, while the vma is known under mmap_lock.  On 64-bit the field overlays "
        "oldchecksum/age/remaining_skips, so those are reset whenever the item leaves the stable "
        "tree: an unmerged page then needs one more checksum visit before it can merge again "
        "(the only behaviour change; nothing reads the index until the next patch)."
    ),
    sets={"ksm_rmap_item_linear_page_index": True},
)
