"""mm/page_alloc.c: what ``mem=`` leaves, the zone watermarks, and the allocation slow path."""

from __future__ import annotations

import math

from ksmrepro.mm.const import PAGE_SHIFT


def totalram_pages(memory: int) -> int:
    """CUSTOM: ``mem=1G`` leaves MemTotal 981,464 kB on the measured x86-64 guest (kernel
    image, memmap and firmware reservations taken); the same fraction for other sizes."""
    return int(memory * 981464 / 1048576) >> PAGE_SHIFT


def boot_used_pages(total: int) -> int:
    """CUSTOM: memory in use when the testcase starts (slab, init, page tables): 4%."""
    return total * 4 // 100


def watermarks(total: int) -> tuple[int, int, int]:
    """__setup_per_zone_wmarks() with min_free_kbytes = int_sqrt(lowmem_kbytes * 16)."""
    kbytes = total * 4
    min_free_kbytes = min(max(math.isqrt(kbytes * 16), 128), 262144)
    wmin = min_free_kbytes >> 2
    tmp = max(wmin >> 2, total * 10 // 10000)  # watermark_scale_factor = 10
    return wmin, wmin + tmp, wmin + 2 * tmp
