"""One module per patch.  Each defines ``PATCH``; ``ALL`` lists them in series order."""

from ksmrepro.models.patches import (
    ksm_pte_mkold,
    ksm_rmap_item_linear_page_index,
    ksm_rmap_walk_addr_once,
    ksm_rmap_walk_address_range,
    ksm_rmap_walk_linear_page_index,
    ksm_rmap_walk_page_index,
)

ALL = (
    ksm_rmap_walk_addr_once.PATCH,
    ksm_rmap_walk_address_range.PATCH,
    ksm_rmap_item_linear_page_index.PATCH,
    ksm_rmap_walk_page_index.PATCH,
    ksm_rmap_walk_linear_page_index.PATCH,
    ksm_pte_mkold.PATCH,
)
