from ksmrepro.models.base import Patch

PATCH = Patch(
    name="ksm-rmap-walk-addr-once",
    title="ksm: initialize the addr only once in rmap_walk_ksm",
    reference="xu xin, [PATCH v3 1/2], linux-mm, Feb 2026; mm.git April 2026",
    function="rmap_walk_ksm",
    explanation=(
        "Computes `addr = rmap_item->address & PAGE_MASK` once per rmap_item instead of once per "
        "vma visited.  A pure clean-up: the walk visits the same vmas and finds the same ptes."
    ),
    sets={"ksm_rmap_addr_once": True},
)
