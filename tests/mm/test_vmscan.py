"""mm/vmscan.c, mm/swap.c, mm/rmap.c, mm/swapfile.c: LRU batches, references, rmap walks,
partial unmap, swap cache, stale stable nodes, stranding."""

import pytest

from ksmrepro.mm.const import PG_active, PG_dirty, PG_reclaim, PG_referenced, PG_swapcache, VM_LOCKED
from ksmrepro.mm.mm_types import LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, folio_test_ksm
from ksmrepro.mm.vmscan import FOLIOREF_NAMES
from tests.mm.conftest import (HUGH_MREMAP, HUGH_PREFIX, P, SwapRun, folio_at, name, pte,
                               run_steps)

HUGH = HUGH_PREFIX + HUGH_MREMAP + """
    - sleep: 100ms
"""
SMALL = {"memory": "64M", "swap": "128M"}


@pytest.mark.parametrize(("model", "batch"), [("v7.0-rc6", 31), ("v6.1", 15)])
def test_lru_add_batch_holds_folios_until_it_fills(model, batch):
    sr = run_steps(f"""
        - mmap: {{as: a, length: 64 pages}}
        - memset: {{addr: a, value: 1, length: {batch - 1} pages}}
    """, model=model)
    k = sr.k
    assert sum(f.nr for f in k.lru_add[0]) == batch - 1
    assert k.lruvec.lists[LRU_INACTIVE_ANON].pages == 0
    sr = run_steps(f"""
        - mmap: {{as: a, length: 64 pages}}
        - memset: {{addr: a, value: 1, length: {batch + 3} pages}}
    """, model=model)
    k = sr.k
    assert sum(f.nr for f in k.lru_add[0]) == 3  # the batch filled once and was moved
    assert k.lruvec.lists[LRU_INACTIVE_ANON].pages == batch


def test_folio_mark_accessed_twice_activates():
    sr = run_steps("""
        - mmap: {as: a, length: 1 page}
        - memset: {addr: a, value: 1, length: 1 page}
    """)
    k = sr.k
    f, _ = folio_at(sr, name(sr, "a"))
    k.swap.lru_add_drain(0)
    k.swap.folio_mark_accessed(f)
    assert f.flags & PG_referenced and not f.flags & PG_active
    k.swap.folio_mark_accessed(f)
    assert f.flags & PG_active and f.lru == LRU_ACTIVE_ANON and not f.flags & PG_referenced


def _check(sr, f, *, young, referenced, locked=False):
    for p in f.ptes:
        p.young = young
    f.flags = (f.flags | PG_referenced) if referenced else (f.flags & ~PG_referenced)
    for p in f.ptes:
        v = sr.k.find_vma(p.mm, p.addr)
        v.vm_flags = (v.vm_flags | VM_LOCKED) if locked else (v.vm_flags & ~VM_LOCKED)
    return FOLIOREF_NAMES[sr.k.vmscan.folio_check_references(f)]


def test_folio_check_references_decision_table():
    sr = run_steps("""
        - mmap: {as: a, length: 1 page}
        - memset: {addr: a, value: 1, length: 1 page}
        - fork: {child: c}
    """)
    f, _ = folio_at(sr, name(sr, "a"))  # mapped twice: parent and child
    assert _check(sr, f, young=False, referenced=False) == "RECLAIM"
    assert _check(sr, f, young=False, referenced=True) == "RECLAIM"  # anon: refbit alone
    assert _check(sr, f, young=True, referenced=False) == "ACTIVATE"  # two young ptes
    assert _check(sr, f, young=True, referenced=True) == "ACTIVATE"
    assert _check(sr, f, young=False, referenced=False, locked=True) == "ACTIVATE"
    sr = run_steps("""
        - mmap: {as: a, length: 1 page}
        - memset: {addr: a, value: 1, length: 1 page}
    """)
    f, _ = folio_at(sr, name(sr, "a"))
    assert _check(sr, f, young=True, referenced=False) == "KEEP"
    assert f.flags & PG_referenced  # folio_set_referenced(): the second trip reclaims it
    assert FOLIOREF_NAMES[sr.k.vmscan.folio_check_references(f)] == "RECLAIM"


def _walk(sr, folio):
    found = []
    sr.k.ksm.rmap_walk_ksm(folio, lambda f, vma, addr: found.append((vma.vm_mm.owner, addr))
                           or True, None)
    return found


@pytest.mark.parametrize(("model", "sees_moved"), [
    ("v7.0-rc6", True), ("mm-2026-04", False), ("mm-2026-08", True)])
def test_rmap_walk_ksm_pgoff_range_and_the_moved_vma(model, sees_moved):
    sr = run_steps(HUGH, model=model)
    base = name(sr, "base")
    k0, _ = folio_at(sr, base)
    k2, _ = folio_at(sr, base + 2 * P)
    assert k0 is k2 and folio_test_ksm(k0)  # re-merged after the move
    found = _walk(sr, k0)
    want = [("main", base + 2 * P), ("main", base)] if sees_moved else [("main", base)]
    assert found == want


def test_rmap_walk_ksm_search_new_forks_finds_a_child_mapping():
    sr = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 2 pages}
        - madvise: {addr: a, length: 2 pages, advice: MADV_MERGEABLE}
        - memset: {addr: a, value: 0x77, length: 2 pages}
        - sleep: 100ms
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 0}
        - fork: {child: c}
    """)
    a = name(sr, "a")
    k0, _ = folio_at(sr, a)
    assert k0.mapcount == 4  # two in the parent, two in the child; the child has no items
    assert sorted(_walk(sr, k0)) == [("c", a), ("c", a + P), ("main", a), ("main", a + P)]


def _reclaim_ksm_folio(sr, folio):
    k = sr.k
    got, _ = k.swapfile.add_to_swap(folio)
    assert got is folio
    return k.rmap.try_to_unmap(folio)


def test_try_to_unmap_partial_failure_leaves_converted_ptes_and_the_swap_cache():
    sr = run_steps(HUGH, model="mm-2026-04+ksm-pte-mkold")
    base = name(sr, "base")
    k0, _ = folio_at(sr, base)
    assert _reclaim_ksm_folio(sr, k0) is False
    assert isinstance(pte(sr, base), SwapRun)  # converted, not rolled back
    assert pte(sr, base + 2 * P).folio is k0  # invisible to the v3 walk: still mapped
    assert k0.flags & PG_swapcache and k0.mapcount == 1


def test_swap_in_of_a_ksm_folio_from_the_swap_cache_remaps_it_and_ksmd_recounts():
    sr = run_steps(HUGH, model="mm-2026-04+ksm-pte-mkold")
    k = sr.k
    base = name(sr, "base")
    k0, _ = folio_at(sr, base)
    _reclaim_ksm_folio(sr, k0)
    k.ksm.ksm_do_scan(100)
    k.ksm.ksm_do_scan(100)  # ksmd passes: the item for base goes (pages_sharing--)
    assert (k.ksm.pages_shared, k.ksm.pages_sharing) == (1, 0)
    task = k.tasks["main"]
    k.user_read(task, base, P)  # do_swap_page(): ksm_might_need_to_copy() -> the same folio
    assert pte(sr, base).folio is k0 and k0.mapcount == 2
    for _ in range(3):
        k.ksm.ksm_do_scan(100)
    assert (k.ksm.pages_shared, k.ksm.pages_sharing) == (1, 1)


def test_swapped_out_ksm_folio_leaves_a_stale_node_counted_until_ksmd_passes():
    sr = run_steps(HUGH, model="v7.0-rc6+ksm-pte-mkold")
    k = sr.k
    base = name(sr, "base")
    k0, _ = folio_at(sr, base)
    node = k0.mapping
    assert _reclaim_ksm_folio(sr, k0) is True
    k.swapfile.delete_from_swap_cache(k0)
    k.free_folio(k0)  # what __remove_mapping() does after pageout
    assert k0.mapping is None and node.kfolio is k0  # the keyhole: the node is now stale
    assert (k.ksm.pages_shared, k.ksm.pages_sharing) == (1, 1)  # counters lag the pages
    k.ksm.ksm_do_scan(100)
    k.ksm.ksm_do_scan(100)
    assert (k.ksm.pages_shared, k.ksm.pages_sharing, k.ksm.ksm_rmap_items) == (0, 0, 0)
    assert node not in k.ksm.stable_tree


PAGEOUT = """
    - mmap: {as: a, length: 4 pages}
    - memset: {addr: a, value: 1, length: 4 pages}
    - mmap: {as: b, length: 2 pages}
    - memset: {addr: b, value: 2, length: 2 pages}
    - madvise: {addr: a, length: 4 pages, advice: MADV_PAGEOUT}
"""


@pytest.mark.parametrize("model", ["v6.1", "v7.0-rc6"])
def test_pageout_keeps_the_written_folio_in_the_swap_cache_at_the_inactive_tail(model):
    # shrink_folio_list(): the swap write is asynchronous, the folio is under writeback when
    # pageout() returns: "goto keep"; the write's end rotates it to the tail
    sr = run_steps(PAGEOUT, model=model)
    k = sr.k
    e = pte(sr, name(sr, "a"))
    assert isinstance(e, SwapRun) and e.nr == 4
    f = k.swapcache.get(e.slot)
    assert f is not None and f.nr == 4 and f.mapcount == 0
    assert f.flags & PG_swapcache and not f.flags & (PG_dirty | PG_reclaim)
    assert k.lruvec.lists[LRU_INACTIVE_ANON].tail is f
    assert (k.vmstat["pswpout"], k.vmstat["pgrotated"]) == (4, 4)
    # the next reclaim takes it first and frees it without writing it again
    free = k.nr_free
    k.swap.lru_add_drain(0)
    k.vmscan.try_to_free_pages(4, cpu=0)
    assert k.swapcache.get(e.slot) is None and f.mapping is None
    assert k.nr_free == free + 4 and k.vmstat["pswpout"] == 4
    assert isinstance(pte(sr, name(sr, "b")).folio, type(f))  # young b: kept at its first look


def test_a_fault_on_a_page_still_in_the_swap_cache_maps_it_without_a_read():
    sr = run_steps(PAGEOUT + """
        - read: {addr: a, length: 4 pages}
        - print: [pswpin, pswpout, swap_ents, rss_anon]
    """)
    k = sr.k
    assert sr.result.observations[0].values == {
        "pswpin": 0, "pswpout": 4, "swap_ents": 0, "rss_anon": 6}
    f, _ = folio_at(sr, name(sr, "a"))
    # do_swap_page() on a read fault keeps the swap cache (should_try_to_free_swap() says no)
    assert f.mapcount == 1 and f.flags & PG_swapcache and k.swapcache.get(f.swap) is f
    # written again, it is reused in place: do_wp_page()'s PageAnonExclusive shortcut (the
    # exclusive marker came back from the swap pte), which keeps the swap cache too
    free = k.nr_free
    k.user_write(k.tasks["main"], name(sr, "a"), 4 * P, None)
    assert folio_at(sr, name(sr, "a"))[0] is f and f.swap >= 0 and k.nr_free == free
    assert pte(sr, name(sr, "a")).dirty


@pytest.mark.parametrize(("model", "parent_status"), [
    ("v7.0-rc6", {"pswpin": 0, "swap_ents": 0, "rss_anon": 8}),
    # 6.1's SPLIT_RSS_COUNTING: the parent's own faults are still in its task cache, and the
    # pageout's direct decrement left its mm count below 0 (read as 0): what 6.1 printed
    ("v6.1", {"pswpin": 0, "swap_ents": 8, "rss_anon": 0}),
])
def test_a_fault_over_swap_ptes_partly_in_the_swap_cache_maps_every_page(model, parent_status):
    # after MADV_PAGEOUT and fork, the child reads half: those folios are split off and mapped
    # by the child; the parent's write over all eight then meets two cached runs, and every
    # page must end up present in the parent (booted on 6.1: pswpin 0, the counters above)
    sr = run_steps("""
        - mmap: {as: a, length: 8 pages}
        - memset: {addr: a, value: 3, length: 8 pages}
        - madvise: {addr: a, length: 8 pages, advice: MADV_PAGEOUT}
        - fork: {child: c}
        - {read: {addr: a, length: 4 pages}, proc: c}
        - touch: {addr: a, length: 8 pages}
        - print: [pswpin, swap_ents, rss_anon]
        - {print: [swap_ents, rss_anon], proc: c}
    """, model=model)
    parent, child = (o.values for o in sr.result.observations)
    assert parent == parent_status
    mm = sr.k.tasks["main"].mm
    assert (mm.rss_anon, mm.swapents) == (8, 0)  # the true MM_ANONPAGES / MM_SWAPENTS
    assert child == ({"swap_ents": 4, "rss_anon": 4} if model == "v7.0-rc6"
                     else {"swap_ents": 8, "rss_anon": 0})
    a = name(sr, "a")
    # every page is copied: 0-3 are mapped by the child, and 4-7 are still referenced by the
    # child's swap entries (fork cleared their exclusive marker, folio_free_swap() fails), so
    # do_wp_page() cannot reuse them; the cached folio of 4-7 stays for the child
    for i in range(8):
        f, _ = folio_at(sr, a + i * P)
        assert f.mapcount == 1 and not f.flags & PG_swapcache and pte(sr, a + i * P).dirty
    e = pte(sr, a + 4 * P, "c")
    cached = sr.k.swapcache.get(e.slot + a // P + 4 - e.vpn)
    assert cached is not None and cached.mapcount == 0


@pytest.mark.parametrize(("model", "final"), [
    ("v7.0-rc6+ksm-pte-mkold", (0, 0)),
    ("mm-2026-04+ksm-pte-mkold", (1, 0)),
    ("mm-2026-08+ksm-pte-mkold", (0, 0)),
    ("v7.0-rc6", (1, 1)),
])
def test_pressure_on_a_small_machine(model, final):
    sr = run_steps(HUGH + """
        - pressure: {anon: 96M, touches: 2}
        - print: [pages_shared, pages_sharing, nr_active_anon]
    """, model=model, **SMALL)
    v = sr.result.observations[0].values
    assert (v["pages_shared"], v["pages_sharing"]) == final
    if final == (1, 1):  # stock: activated at the first encounter and stranded
        k0, _ = folio_at(sr, name(sr, "base"))
        assert k0.flags & PG_active and k0.lru == LRU_ACTIVE_ANON and v["nr_active_anon"] == 1


def test_run_2_on_a_ksm_folio_left_in_the_swap_cache_makes_swap_in_copy_it():
    # remove_stable_node(): folio_set_stable_node(folio, NULL) on an unmapped KSM folio still
    # in the swap cache; a later swap-in must copy it (ksm_might_need_to_copy), not remap it.
    sr = run_steps(HUGH + """
        - pressure: {anon: 96M, touches: 2}
        - munmap: {addr: base + 2 pages, length: 1 page}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 2}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - read: {addr: base, length: 1 page}
        - ksm_wait: {full_scans: 3}
        - print: [pages_shared, pages_sharing, ksm_swpin_copy]
    """, model="mm-2026-04+ksm-pte-mkold", **SMALL)
    assert sr.result.error is None
    assert sr.result.observations[0].values == {
        "pages_shared": 0, "pages_sharing": 0, "ksm_swpin_copy": 1}
    f, _ = folio_at(sr, name(sr, "base"))
    assert not folio_test_ksm(f)


def test_writing_sleep_millisecs_cuts_ksmds_sleep_short():
    sr = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/sleep_millisecs, value: 60000}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 2 pages}
        - memset: {addr: a, value: 1, length: 2 pages}
        - madvise: {addr: a, length: 2 pages, advice: MADV_MERGEABLE}
        - sleep: 1s
        - print: [full_scans]
        - sysfs: {path: /sys/kernel/mm/ksm/sleep_millisecs, value: 20}
        - sleep: 100ms
        - print: [full_scans, pages_shared]
    """)
    first, second = sr.result.observations
    assert first.values["full_scans"] == 1  # asleep for a minute after its first scan
    assert second.values["full_scans"] >= 3 and second.values["pages_shared"] == 1


@pytest.mark.parametrize("advice", ["MADV_PAGEOUT", "MADV_COLD", "MADV_DONTNEED", "MADV_FREE"])
def test_lru_and_zap_advice_on_a_vm_locked_mapping_is_einval(advice):
    # can_madv_lru_vma() / madvise_dontneed_free_valid_vma(): booted on 6.1, MADV_PAGEOUT of a
    # MAP_LOCKED mapping answered EINVAL
    sr = run_steps(f"""
        - mmap: {{as: a, length: 2 pages, flags: [MAP_PRIVATE, MAP_ANONYMOUS, MAP_LOCKED]}}
        - madvise: {{addr: a, length: 2 pages, advice: {advice}}}
          errno: EINVAL
        - print: [pswpout, rss_anon]
    """, model="v6.1")
    assert sr.result.status == "passed", sr.result.error
    assert sr.result.observations[0].values["pswpout"] == 0


def test_pageout_stops_at_the_first_locked_vma_with_the_earlier_ones_done():
    # madvise_walk_vmas() applies the advice vma by vma and returns the first error
    sr = run_steps("""
        - mmap: {as: a, length: 4 pages}
        - memset: {addr: a, value: 1, length: 2 pages}
        - mmap: {as: l, length: 2 pages, addr: a + 2 pages,
                 flags: [MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED, MAP_LOCKED]}
        - madvise: {addr: a, length: 4 pages, advice: MADV_PAGEOUT}
          errno: EINVAL
        - print: [pswpout]
    """)
    assert sr.result.status == "passed", sr.result.error
    assert sr.result.observations[0].values == {"pswpout": 2}


# --- swap-in keeps the swap cache after a read fault (do_swap_page()) -------------------------

def _swapped(pages: int, *, reclaims: int = 1, fork: bool = False) -> str:
    """``pages`` pages at ``a`` in cgroup t (shared with a child ``c`` if ``fork``), then
    ``reclaims`` memory.reclaim writes that swap them out."""
    return f"""
        - cgroup: {{name: t}}
        - cgroup_attach: {{cgroup: t}}
        - mmap: {{as: a, length: {pages} pages}}
        - memset: {{addr: a, value: 0x51, length: {pages} pages}}
    """ + ("        - fork: {child: c}\n" if fork else "") + """
        - memory_reclaim: {cgroup: t, amount: 64M}
          errno: EAGAIN
    """ * reclaims


SWAPPED = _swapped(8)


@pytest.mark.parametrize("model", ["v6.1", "v7.0-rc6"])
def test_a_read_fault_keeps_the_folio_in_the_swap_cache_and_reclaim_drops_it_unwritten(model):
    sr = run_steps(SWAPPED + """
        - read: {addr: a, length: 4 pages}
        - print: [pswpin, pswpout, nr_swap_used]
        - memory_reclaim: {cgroup: t, amount: 64M}
          errno: EAGAIN
        - print: [pswpin, pswpout, nr_swap_used]
    """, model=model)
    read, again = (o.values for o in sr.result.observations)
    # the 4 read folios hold their slots in the swap cache: nothing is freed
    assert read == {"pswpin": 4, "pswpout": 8, "nr_swap_used": 8}
    # clean and still in the swap cache: reclaim unmaps and frees them, writing nothing
    assert again == {"pswpin": 4, "pswpout": 8, "nr_swap_used": 8}
    a = name(sr, "a")
    assert isinstance(pte(sr, a), SwapRun) and sr.k.swapcache.none_in(0, 1 << 20)


def test_a_read_then_written_page_is_written_again_to_its_slot():
    sr = run_steps(SWAPPED + """
        - read: {addr: a, length: 4 pages}
        - memset: {addr: a, value: 0x52, length: 2 pages}
        - memory_reclaim: {cgroup: t, amount: 64M}
          errno: EAGAIN
        - print: [pswpin, pswpout, nr_swap_used]
    """, model="v6.1")
    (end,) = (o.values for o in sr.result.observations)
    assert end == {"pswpin": 4, "pswpout": 10, "nr_swap_used": 8}


def test_a_write_fault_by_the_only_user_frees_the_slot():
    sr = run_steps(SWAPPED + """
        - memset: {addr: a, value: 0x52, length: 4 pages}
        - print: [pswpin, nr_swap_used]
    """, model="v6.1")
    (end,) = (o.values for o in sr.result.observations)
    assert end == {"pswpin": 4, "nr_swap_used": 4}
    f, _ = folio_at(sr, name(sr, "a"))
    assert f.swap < 0 and not f.flags & PG_swapcache


def test_a_read_fault_frees_the_slot_when_swap_is_over_half_full():
    # should_try_to_free_swap(): vm_swap_full(); 32K of swap is 7 slots (the first page
    # holds the header), 5 in use
    sr = run_steps(_swapped(5, reclaims=2) + """
        - print: [nr_swap_used, nr_inactive_anon]
        - read: {addr: a, length: 5 pages}
        - print: [pswpin, nr_swap_used]
    """, model="v6.1", swap="32K")
    full, after = (o.values for o in sr.result.observations)
    assert full == {"nr_swap_used": 5, "nr_inactive_anon": 0}  # written and freed
    assert after == {"pswpin": 5, "nr_swap_used": 0}


def test_fork_child_reads_the_parents_swapped_in_folio_from_the_swap_cache():
    # booted on 6.1: the child's reads added nothing to pswpin
    sr = run_steps(_swapped(8, fork=True) + """
        - read: {addr: a, length: 8 pages}
        - read: {addr: a, length: 8 pages}
          proc: c
        - print: [pswpin, pswpout]
        - memset: {addr: a, value: 0x62, length: 8 pages}
          proc: c
        - print: [pswpin, cow_ksm]
    """, model="v6.1")
    shared, written = (o.values for o in sr.result.observations)
    assert shared == {"pswpin": 8, "pswpout": 8}
    a = name(sr, "a")
    fp, _ = folio_at(sr, a)
    # the child's write copied (the folio is shared and not exclusive), the parent keeps it
    fc, _ = folio_at(sr, a, "c")
    assert fc is not fp and fp.mapcount == 1 and fp.flags & PG_swapcache
    assert written["pswpin"] == 8


def test_reading_two_addresses_of_a_swapped_ksm_page_reads_once_and_copies_once():
    # booted on 6.1 (scenarios/calibration/swapin-swap-cache.yaml): the stable node went
    # with the KSM folio, so the slot is read into an ordinary folio at the first address;
    # at the second, ksm_might_need_to_copy() finds its index foreign and copies it
    sr = run_steps("""
        - cgroup: {name: t}
        - cgroup_attach: {cgroup: t}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: k, length: 4 pages}
        - madvise: {addr: k, length: 4 pages, advice: MADV_MERGEABLE}
        - memset: {addr: k, value: 0x41, length: 4 pages}
        - ksm_wait: {full_scans: 3}
        - memory_reclaim: {cgroup: t, amount: 64M}
          errno: EAGAIN
        - memory_reclaim: {cgroup: t, amount: 64M}
          errno: EAGAIN
        - ksm_wait: {full_scans: 2}
        - print: [pages_shared, pswpout, pswpin, ksm_swpin_copy]
        - read: {addr: k, length: 2 pages}
        - print: [pswpin, ksm_swpin_copy, nr_swap_used]
    """, model="v6.1")
    swapped, read = (o.values for o in sr.result.observations)
    assert swapped == {"pages_shared": 0, "pswpout": 1, "pswpin": 0, "ksm_swpin_copy": 0}
    assert read == {"pswpin": 1, "ksm_swpin_copy": 1, "nr_swap_used": 1}
    k = name(sr, "k")
    f0, _ = folio_at(sr, k)
    f1, _ = folio_at(sr, k + P)
    assert f0 is not f1 and f0.flags & PG_swapcache and not f1.flags & PG_swapcache
