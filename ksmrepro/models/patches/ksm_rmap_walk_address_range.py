from ksmrepro.models.base import Patch

PATCH = Patch(
    name="ksm-rmap-walk-address-range",
    title="ksm: Optimize rmap_walk_ksm by passing a suitable address range",
    reference=(
        "xu xin, [PATCH v3 2/2], linux-mm, Feb 2026 (in mm.git April 2026); "
        "Hugh Dickins' reply of 2026-04-06 shows mremap-moved KSM folios can no longer be swapped"
    ),
    function="rmap_walk_ksm",
    explanation=(
        "rmap_walk_ksm() queries each rmap_item's anon_vma interval tree with "
        "[address >> PAGE_SHIFT, address >> PAGE_SHIFT] instead of [0, ULONG_MAX].  That assumes "
        "vm_pgoff == vm_start >> PAGE_SHIFT, true for an anon vma that was never moved.  After "
        "mremap the moved vma keeps its old linear pgoff, so a KSM mapping in it is not found: "
        "folio_referenced() does not see its young bit and try_to_unmap() leaves it mapped."
    ),
    sets={"ksm_rmap_range": "address"},
)
