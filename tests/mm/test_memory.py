"""mm/memory.c: zero page, write faults, CoW, fork, folio index."""

import pytest

from ksmrepro.mm.mm_types import ZeroPte, linear_page_index
from tests.mm.conftest import P, folio_at, name, pte, run_steps


def test_read_fault_maps_the_zero_page_and_write_replaces_it():
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - read: {addr: a, length: 2 pages}
    """)
    a = name(sr, "a")
    assert isinstance(pte(sr, a), ZeroPte) and sr.k.tasks["main"].mm.rss_anon == 0
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - read: {addr: a, length: 2 pages}
        - touch: {addr: a, length: 1 page, value: 9}
    """)
    f, i = folio_at(sr, name(sr, "a"))
    assert f.page_content(i)[1] == ((0, 9),) and sr.k.tasks["main"].mm.rss_anon == 1


def test_write_fault_folio_index_is_linear_page_index_young_dirty_writable():
    sr = run_steps("""
        - mmap: {as: a, length: 4 pages}
        - memset: {addr: a + 1 page, value: 0x5a, length: 2 pages}
    """)
    a = name(sr, "a")
    vma = sr.k.tasks["main"].mm.vmas[0]
    for addr in (a + P, a + 2 * P):
        f, i = folio_at(sr, addr)
        assert f.index + i == linear_page_index(vma, addr)
        p = pte(sr, addr)
        assert (p.young, p.dirty, p.write) == (True, True, True)


def test_fork_shares_anon_pages_cow_and_skips_dontfork():
    sr = run_steps("""
        - mmap: {as: a, length: 1 page}
        - mmap: {as: d, length: 1 page, addr: 0x10000000}
        - memset: {addr: a, value: 1, length: 1 page}
        - memset: {addr: d, value: 1, length: 1 page}
        - madvise: {addr: d, length: 1 page, advice: MADV_DONTFORK}
        - fork: {child: c}
    """)
    a, d = name(sr, "a"), name(sr, "d")
    pf, _ = folio_at(sr, a)
    cf, _ = folio_at(sr, a, "c")
    assert pf is cf and pf.mapcount == 2
    assert not pte(sr, a).write and not pte(sr, a, "c").write
    assert pte(sr, d, "c") is None and len(sr.k.tasks["c"].mm.vmas) == 1
    # the child's vma joined the parent's anon_vma and has one of its own (anon_vma_fork)
    cv = sr.k.tasks["c"].mm.vmas[0]
    assert len(cv.anon_vma_chain) == 2 and cv.anon_vma.root is pf.mapping


def test_write_after_fork_copies_and_leaves_the_other_side_alone():
    sr = run_steps("""
        - mmap: {as: a, length: 1 page}
        - memset: {addr: a, value: 1, length: 1 page}
        - fork: {child: c}
        - memset: {addr: a, value: 2, length: 1 page}
          proc: c
    """)
    a = name(sr, "a")
    pf, _ = folio_at(sr, a)
    cf, _ = folio_at(sr, a, "c")
    assert pf is not cf and pf.mapcount == 1 and cf.mapcount == 1
    assert pf.content[0] == 1 and cf.content[0] == 2
    assert cf.mapping is sr.k.tasks["c"].mm.vmas[0].anon_vma  # the child's own anon_vma


def test_exit_frees_memory():
    sr = run_steps("""
        - spawn: {name: p}
        - mmap: {as: a, length: 64 pages}
          proc: p
        - memset: {addr: a, value: 1, length: 64 pages}
          proc: p
        - exit: {}
          proc: p
    """)
    k = sr.k
    assert k.nr_free == k.totalram - k.totalram * 4 // 100


@pytest.mark.parametrize(("model", "seen"), [
    ("v7.0-rc6", [10, 110, 110, 109]),
    # SPLIT_RSS_COUNTING: the 66th fault folds the 65 before it into the mm; munmap's
    # zap_pte_range() (add_mm_rss_vec()) folds the rest
    ("v6.1", [0, 65, 110, 109]),
])
def test_rss_anon_of_v61_lags_the_task_faults(model, seen):
    sr = run_steps("""
        - mmap: {as: a, length: 10 pages}
        - memset: {addr: a, value: 1, length: 10 pages}
        - print: [rss_anon]
        - mmap: {as: b, length: 100 pages}
        - memset: {addr: b, value: 2, length: 100 pages}
        - print: [rss_anon]
        - mmap: {as: c, length: 1 page}
        - munmap: {addr: c, length: 1 page}
        - print: [rss_anon]
        - munmap: {addr: a, length: 1 page}
        - print: [rss_anon]
    """, model=model)
    assert [o.values["rss_anon"] for o in sr.result.observations] == seen
    assert sr.k.tasks["main"].mm.rss_anon == 109


def test_page_table_first_in_crosses_pte_tables():
    from ksmrepro.mm.pgtable import PageTable

    pt = PageTable()
    pt[1030] = "x"  # the third PTE table
    pt[5] = "y"
    assert pt.first_in(0, 2000) == 5
    assert pt.first_in(6, 2000) == 1030
    assert pt.first_in(6, 1030) is None
    assert pt.first_in(1031, 4000) is None
