"""mm/ksm.c: the scan, the trees, merging, counters, knobs."""

import pytest

from ksmrepro.errors import KernelBug
from ksmrepro.mm.const import Errno, PG_referenced
from ksmrepro.mm.mm_types import folio_test_ksm
from tests.mm.conftest import HUGH_MREMAP, HUGH_PREFIX, P, folio_at, name, pte, run_steps

TWO = """
    - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
    - mmap: {as: a, length: 2 pages}
    - memset: {addr: a, value: 0x77, length: 2 pages}
    - madvise: {addr: a, length: 2 pages, advice: MADV_MERGEABLE}
"""


def counters(sr, proc="main"):
    return sr.k.counters(sr.k.tasks[proc])


def test_first_full_scan_only_records_checksums_second_merges():
    # ksmd is woken by __ksm_enter() and completes its first full scan during the madvise step
    sr = run_steps(TWO + "- print: [full_scans, pages_shared, pages_sharing, pages_volatile]")
    assert sr.result.observations[0].values == {
        "full_scans": 1, "pages_shared": 0, "pages_sharing": 0, "pages_volatile": 2}
    sr = run_steps(TWO + "- ksm_wait: {full_scans: 1}")
    c = counters(sr)
    assert (c["pages_shared"], c["pages_sharing"], c["ksm_rmap_items"]) == (1, 1, 2)
    assert c["ksm_merging_pages"] == 2 and c["general_profit"] == 4096 - 2 * 64
    assert c["smaps_ksm"] == 2 * P


def test_smaps_ksm_walks_the_page_tables_only_when_asked_for():
    sr = run_steps(TWO + "- ksm_wait: {full_scans: 1}\n- print: all\n- print: [pages_shared]")
    every, one = sr.result.observations
    assert every.values["smaps_ksm"] == 2 * P
    assert one.values == {"pages_shared": 1}
    task = sr.k.tasks["main"]
    assert "smaps_ksm" not in sr.k.counters(task, ["pages_shared"])
    assert sr.k.counters(task, ["smaps_ksm"])["smaps_ksm"] == 2 * P


def test_merge_in_place_hlist_newest_first_and_young_pte_stock():
    sr = run_steps(TWO + "- ksm_wait: {full_scans: 2}")
    a = name(sr, "a")
    k0, _ = folio_at(sr, a)
    k1, _ = folio_at(sr, a + P)
    assert k0 is k1 and folio_test_ksm(k0) and k0.mapcount == 2
    # the page scanned second (a+P) found a in the unstable tree and became the KSM page in
    # place: it keeps its index; stable_tree_append(tree_item) then (item): hlist [a+P, a]
    assert k0.index == a // P + 1
    node = k0.mapping
    assert [i.address for i in node.hlist] == [a + P, a]
    assert k0.flags & PG_referenced  # folio_mark_accessed() on the new KSM folio (stock)
    assert pte(sr, a).young and not pte(sr, a).write and not pte(sr, a).dirty


def test_pte_mkold_patch_makes_replace_page_pte_old_and_skips_mark_accessed():
    sr = run_steps(TWO + """
        - touch: {addr: a, length: 1 page, value: 0x77}
        - ksm_wait: {full_scans: 2}
    """, model="v7.0-rc6+ksm-pte-mkold")
    a = name(sr, "a")
    k0, _ = folio_at(sr, a)
    assert not k0.flags & PG_referenced
    assert not pte(sr, a).young  # installed by replace_page(): old with the patch
    assert pte(sr, a + P).young  # the KSM page's own pte keeps its young bit


def test_write_to_a_ksm_page_is_uncounted_at_ksmds_next_visit():
    sr = run_steps(TWO + """
        - ksm_wait: {full_scans: 2}
        - touch: {addr: a, length: 1 page, value: 1}
        - print: [pages_shared, pages_sharing]
        - ksm_wait: {full_scans: 1}
        - print: [pages_shared, pages_sharing, cow_ksm]
    """)
    first, second = sr.result.observations
    assert first.values == {"pages_shared": 1, "pages_sharing": 1}  # counters lag
    assert second.values == {"pages_shared": 1, "pages_sharing": 0, "cow_ksm": 1}


def test_unmergeable_breaks_ksm_and_the_items_go_on_the_next_pass():
    sr = run_steps(TWO + """
        - ksm_wait: {full_scans: 2}
        - madvise: {addr: a, length: 2 pages, advice: MADV_UNMERGEABLE}
        - ksm_wait: {full_scans: 1}
    """)
    c = counters(sr)
    assert (c["pages_shared"], c["pages_sharing"], c["ksm_rmap_items"]) == (0, 0, 0)
    f0, _ = folio_at(sr, name(sr, "a"))
    assert not folio_test_ksm(f0) and not pte(sr, name(sr, "a")).write  # unshare copy: R/O


def test_use_zero_pages_maps_the_zero_page_dirty():
    sr = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/use_zero_pages, value: 1}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 4 pages}
        - memset: {addr: a, value: 0, length: 4 pages}
        - madvise: {addr: a, length: 4 pages, advice: MADV_MERGEABLE}
        - ksm_wait: {full_scans: 2}
    """)
    c = counters(sr)
    assert (c["pages_shared"], c["ksm_zero_pages"], c["rss_anon"]) == (0, 4, 0)
    assert pte(sr, name(sr, "a")).dirty  # the KSM zero-page marker


def test_max_page_sharing_builds_a_chain_of_dups():
    sr = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/max_page_sharing, value: 2}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 4 pages}
        - memset: {addr: a, value: 0x11, length: 4 pages}
        - madvise: {addr: a, length: 4 pages, advice: MADV_MERGEABLE}
        - ksm_wait: {full_scans: 3}
    """)
    c = counters(sr)
    assert (c["pages_shared"], c["pages_sharing"]) == (2, 2)
    assert (c["stable_node_chains"], c["stable_node_dups"]) == (1, 2)


def test_run_2_unmerges_everything_and_resets_full_scans():
    sr = run_steps(TWO + """
        - ksm_wait: {full_scans: 2}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 2}
    """)
    c = counters(sr)
    assert (c["pages_shared"], c["pages_sharing"], c["full_scans"], c["ksm_rmap_items"]) == (
        0, 0, 0, 0)
    assert not folio_test_ksm(folio_at(sr, name(sr, "a"))[0])


@pytest.mark.parametrize(("path", "value", "errno"), [
    ("run", "3", "EINVAL"),
    ("max_page_sharing", "1", "EINVAL"),
    ("sleep_millisecs", "abc", "EINVAL"),
    ("no_such_knob", "1", "ENOENT"),
])
def test_knob_errors(path, value, errno):
    sr = run_steps(f"""
        - sysfs: {{path: /sys/kernel/mm/ksm/{path}, value: "{value}"}}
          errno: {errno}
    """) if path != "no_such_knob" else None
    if sr is not None:
        assert sr.result.error is None, sr.result.error


def test_max_page_sharing_change_is_ebusy_while_ksm_pages_are_mapped():
    sr = run_steps(TWO + """
        - ksm_wait: {full_scans: 2}
        - sysfs: {path: /sys/kernel/mm/ksm/max_page_sharing, value: 3}
          errno: EBUSY
        - sysfs: {path: /sys/kernel/mm/ksm/merge_across_nodes, value: 0}
          errno: EBUSY
    """)
    assert sr.result.error is None, sr.result.error


def test_folio_in_lru_add_batch_fails_write_protect_page():
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - memset: {addr: a, value: 1, length: 2 pages}
    """)
    k = sr.k
    a = name(sr, "a")
    p = pte(sr, a)
    assert p.folio.cpu == 0  # still in CPU 0's lru_add batch: refcount = mapcount + 1
    vma = k.tasks["main"].mm.vmas[0]
    assert not k.ksm.write_protect_page(vma, p)
    k.swap.lru_add_drain(0)
    assert k.ksm.write_protect_page(vma, p) and not p.write


def test_smart_scan_skips_pages_that_never_merge():
    sr = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 8 pages}
        - touch: {addr: a, length: 8 pages}
        - madvise: {addr: a, length: 8 pages, advice: MADV_MERGEABLE}
        - ksm_wait: {full_scans: 12}
    """)
    assert counters(sr)["pages_skipped"] > 0
    sr61 = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 8 pages}
        - touch: {addr: a, length: 8 pages}
        - madvise: {addr: a, length: 8 pages, advice: MADV_MERGEABLE}
        - ksm_wait: {full_scans: 12}
    """, model="v6.1")
    assert counters(sr61)["pages_skipped"] == 0  # no smart scan before v6.7


@pytest.mark.parametrize("model, after_one_pass", [
    ("v6.1", (1, 1)),  # stable_tree_search() first: merged at the first visit
    ("v7.0-rc6", (1, 0)),  # d58a361b0350 (v6.11): the checksum gate comes first
])
def test_moved_copy_of_a_ksm_page_remerges_at_first_visit_before_v6_11(model, after_one_pass):
    # Hugh's mremap: the moved page is CoW'd off the KSM folio by prep_move_vma()'s
    # MADV_UNMERGEABLE; ksmd's next pass frees the stale item at base+P, visits base+2P anew
    sr = run_steps(HUGH_PREFIX + HUGH_MREMAP + """
        - print: [pages_shared, pages_sharing]
        - ksm_wait: {full_scans: 1}
        - print: [pages_shared, pages_sharing]
        - ksm_wait: {full_scans: 1}
        - print: [pages_shared, pages_sharing]
    """, model=model)
    before, one, two = (tuple(o.values.values()) for o in sr.result.observations)
    assert before == (1, 1)  # counters lag the unmerge
    assert one == after_one_pass
    assert two == (1, 1)
    base = name(sr, "base")
    k0, _ = folio_at(sr, base)
    k2, _ = folio_at(sr, base + 2 * P)
    assert k0 is k2 and folio_test_ksm(k0) and k0.mapcount == 2


def test_fork_child_counters_reset_since_v6_18_but_inherited_on_v6_1():
    steps = TWO + """
        - ksm_wait: {full_scans: 2}
        - fork: {child: c}
        - print: [ksm_merging_pages]
          proc: c
    """
    assert run_steps(steps).result.observations[0].values["ksm_merging_pages"] == 0
    assert run_steps(steps, model="v6.1").result.observations[0].values[
        "ksm_merging_pages"] == 2


def test_invariant_violation_is_a_kernel_bug():
    sr = run_steps(TWO + "- ksm_wait: {full_scans: 2}")
    sr.k.ksm.pages_sharing += 1
    with pytest.raises(KernelBug, match="pages_shared/pages_sharing"):
        sr.k.check_invariants()


def test_knobs_newer_than_the_kernel_are_unsupported_not_failures():
    sr = run_steps("- sysfs: {path: /sys/kernel/mm/ksm/smart_scan, value: 0}", model="v6.1")
    assert sr.result.error.errno == "ENOENT" and sr.result.error.unsupported
    sr = run_steps("- prctl: {option: PR_SET_MEMORY_MERGE, value: 1}", model="v6.1")
    assert sr.result.error.errno == "EINVAL" and sr.result.error.unsupported
    sr = run_steps("- sysfs: {path: /sys/kernel/mm/ksm/run, value: 7}", model="v6.1")
    assert sr.result.error.errno == "EINVAL" and not sr.result.error.unsupported


PROT_NONE_STEPS = """
    - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
    - mmap: {as: a, length: 4 pages}
    - madvise: {addr: a, length: 4 pages, advice: MADV_MERGEABLE}
    - memset: {addr: a, value: 0x52, length: 4 pages}
    - mprotect: {addr: a, length: 4 pages, prot: [PROT_NONE]}
    - ksm_wait: {full_scans: 3}
    - print: [pages_shared, pages_sharing, pages_unshared, pages_volatile]
    - madvise: {addr: a, length: 4 pages, advice: MADV_UNMERGEABLE}
    - print: [cow_ksm]
"""


@pytest.mark.parametrize(("model", "merged", "cow_ksm"), [
    # get_mergeable_page()/break_ksm() through follow_page(): no page behind PROT_NONE
    # (booted: scenarios/calibration/ksm-prot-none.yaml)
    ("v6.1", {"pages_shared": 0, "pages_sharing": 0, "pages_unshared": 1, "pages_volatile": 3}, 0),
    # folio_walk (v6.12) merges them; break_ksm()'s unshare fault copies them (v6.2)
    ("v7.0-rc6", {"pages_shared": 1, "pages_sharing": 3, "pages_unshared": 0, "pages_volatile": 0}, 4),
])
def test_prot_none_pages_merge_and_unmerge_by_kernel_version(model, merged, cow_ksm):
    sr = run_steps(PROT_NONE_STEPS, model=model)
    assert sr.result.error is None  # the unshare fault is not a user access: no SIGSEGV
    assert sr.result.observations[0].values == merged
    assert sr.result.observations[1].values == {"cow_ksm": cow_ksm}


@pytest.mark.parametrize(("model", "still_ksm"), [("v6.1", True), ("v7.0-rc6", False)])
def test_madv_unmergeable_on_prot_none_ksm_pages(model, still_ksm):
    # merged while readable, then PROT_NONE: 6.1's break_ksm() finds no page to unshare
    sr = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 4 pages}
        - madvise: {addr: a, length: 4 pages, advice: MADV_MERGEABLE}
        - memset: {addr: a, value: 0x52, length: 4 pages}
        - ksm_wait: {full_scans: 3}
        - expect: {pages_shared: 1, pages_sharing: 3}
        - mprotect: {addr: a, length: 4 pages, prot: [PROT_NONE]}
        - madvise: {addr: a, length: 4 pages, advice: MADV_UNMERGEABLE}
    """, model=model)
    assert sr.result.error is None and sr.result.status == "passed"
    for i in range(4):
        f, _ = folio_at(sr, name(sr, "a") + i * P)
        assert folio_test_ksm(f) is still_ksm


@pytest.mark.parametrize(("knob", "value", "stored"), [
    ("pages_to_scan", "5", 5),
    ("pages_to_scan", "+5", 5),
    ("pages_to_scan", "010", 10),  # base 10: not octal
    ("pages_to_scan", "5\n", 5),  # echo's newline
    ("pages_to_scan", "1 ", None),  # booted on 6.1: a trailing blank is EINVAL
    ("pages_to_scan", " 1", None),
    ("pages_to_scan", "0x10", None),
    ("pages_to_scan", "-1", None),
    ("pages_to_scan", "4294967296", None),  # more than UINT_MAX
    ("sleep_millisecs", "100000", 100000),  # no upper bound but UINT_MAX
    ("run", "1 ", None),
    ("use_zero_pages", "yes", 1),  # kstrtobool(): the first character decides
    ("use_zero_pages", "off", 0),
    ("use_zero_pages", "2", None),
])
def test_knob_stores_parse_as_the_kernels_kstrto_functions(knob, value, stored):
    sr = run_steps("- print: [full_scans]", model="v6.1")
    k = sr.k
    if stored is None:
        with pytest.raises(Errno) as ei:
            k.ksm.write_knob(knob, value)
        assert ei.value.name == "EINVAL"
    else:
        k.ksm.write_knob(knob, value)
        assert k.ksm.knobs[knob] == stored


@pytest.mark.parametrize(("value", "on"), [
    ("y", True), ("Yes", True), ("n", False), ("nope", False), ("0x0007", True), ("1", True),
    ("0", False), ("2", False), ("010", False), ("0x1\n", True),
    (" y", None), ("0x", None), ("09", None), ("maybe", None),
])
def test_lru_gen_enabled_store_reads_as_the_kernel_does(value, on):
    # mm/vmscan.c store_enabled(): n.../y... by the first character, else kstrtouint(buf, 0)
    sr = run_steps("- print: [full_scans]", model="v6.1")
    k = sr.k
    if on is None:
        with pytest.raises(Errno):
            k.sysfs_write("/sys/kernel/mm/lru_gen/enabled", value)
    else:
        k.sysfs_write("/sys/kernel/mm/lru_gen/enabled", value)
        assert k.lru_gen_enabled() is on
