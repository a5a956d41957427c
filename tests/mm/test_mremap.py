"""mm/mremap.c: the pgoff arithmetic of kernel-reference.md §1.8 and §3.6."""

from ksmrepro.mm.const import PG_anon_exclusive, PG_lru
from ksmrepro.mm.mm_types import folio_test_ksm, linear_page_index
from tests.mm.conftest import HUGH_MREMAP, HUGH_PREFIX, P, folio_at, name, pte, run_steps, vmas


def test_hugh_mremap_keeps_the_old_linear_pgoff_and_folio_index():
    sr = run_steps(HUGH_PREFIX + HUGH_MREMAP)
    base = name(sr, "base")
    b = base // P
    # V1' [base, base+P) pgoff b;  V3 [base+2P, base+3P) pgoff b+1 (not b+2)
    assert vmas(sr) == [(base, base + P, b), (base + 2 * P, base + 3 * P, b + 1)]
    # prep_move_vma unshared the KSM page at base+P: the moved copy is an ordinary anon folio,
    # exclusive, with index b+1 -- consistent with V3's pgoff, not with its address
    f, i = folio_at(sr, base + 2 * P)
    assert not folio_test_ksm(f) and f.index + i == b + 1
    assert f.flags & PG_anon_exclusive
    v3 = sr.k.tasks["main"].mm.vmas[1]
    assert linear_page_index(v3, base + 2 * P) == b + 1
    assert pte(sr, base + P) is None
    # both vmas are still VM_MERGEABLE (commit 1ff829957316) and share the anon_vma
    assert all(v.vm_flags & 0x80000000 for v in sr.k.tasks["main"].mm.vmas)
    assert sr.k.tasks["main"].mm.vmas[0].anon_vma is v3.anon_vma
    assert sr.k.vmstat["cow_ksm"] == 1


def test_rmap_walk_anon_finds_the_moved_folio_through_its_index():
    sr = run_steps(HUGH_PREFIX.replace("madvise: {addr: base, length: 3 pages, advice: "
                                       "MADV_MERGEABLE}", "read: {addr: base, length: 1 page}")
                   + HUGH_MREMAP)
    base = name(sr, "base")
    f, _ = folio_at(sr, base + 2 * P)
    hits = []
    sr.k.rmap.rmap_walk_anon(f, lambda fo, vma, addr: hits.append((vma.vm_pgoff, addr)) or True)
    assert hits == [(base // P + 1, base + 2 * P)]


def test_move_of_a_never_faulted_vma_takes_the_new_address_as_pgoff():
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - mmap: {as: far, length: 16 pages}
        - munmap: {addr: far, length: 16 pages}
        - mremap: {old_addr: a, old_size: 2 pages, new_size: 2 pages,
                   flags: [MREMAP_MAYMOVE, MREMAP_FIXED], new_addr: far, as: moved}
    """)
    far = name(sr, "moved")
    assert vmas(sr) == [(far, far + 2 * P, far // P)]


def test_grow_in_place_shrink_and_dontunmap():
    sr = run_steps("""
        - mmap: {as: a, length: 3 pages}
        - mremap: {old_addr: a, old_size: 3 pages, new_size: 1 page, as: a}
        - mremap: {old_addr: a, old_size: 1 page, new_size: 2 pages, as: a}
    """)
    a = name(sr, "a")
    assert vmas(sr) == [(a, a + 2 * P, a // P)]  # shrunk, then grown in place
    sr = run_steps("""
        - mmap: {as: blocker, length: 1 page}
        - mmap: {as: a, length: 2 pages, prot: [PROT_READ]}
        - mprotect: {addr: a, length: 2 pages, prot: [PROT_READ, PROT_WRITE]}
        - memset: {addr: a, value: 3, length: 2 pages}
        - mremap: {old_addr: a, old_size: 2 pages, new_size: 3 pages, flags: [MREMAP_MAYMOVE],
                   as: grown}
    """)
    a, g = name(sr, "a"), name(sr, "grown")
    assert g != a  # the blocker sits right above a: it had to move
    assert (g, g + 3 * P, a // P) in vmas(sr)  # moved with its faulted pgoff
    f, i = folio_at(sr, g)
    assert f.index + i == a // P
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - memset: {addr: a, value: 3, length: 2 pages}
        - mremap: {old_addr: a, old_size: 2 pages, new_size: 2 pages,
                   flags: [MREMAP_MAYMOVE, MREMAP_DONTUNMAP], as: b}
        - read: {addr: a, length: 2 pages}
    """)
    a, b = name(sr, "a"), name(sr, "b")
    assert {v[0] for v in vmas(sr)} == {a, b}
    assert sr.k.tasks["main"].mm.rss_anon == 2  # the pages moved; a reads the zero page


def test_mremap_errors():
    for step, errno in [
        ("- mremap: {old_addr: a, old_size: 2 pages, new_size: 2 pages,"
         " flags: [MREMAP_MAYMOVE, MREMAP_FIXED], new_addr: a + 1 page}", "EINVAL"),  # overlap
        ("- mremap: {old_addr: a + 1, old_size: 1 page, new_size: 1 page}", "EINVAL"),
        ("- mremap: {old_addr: a + 4 pages, old_size: 1 page, new_size: 1 page}", "EFAULT"),
        ("- mremap: {old_addr: a, old_size: 4 pages, new_size: 4 pages}", "EFAULT"),
        ("- mremap: {old_addr: a, old_size: 2 pages, new_size: 4 pages}", "ENOMEM"),
    ]:
        sr = run_steps("- mmap: {as: z, length: 1 page}\n- mmap: {as: a, length: 2 pages}\n"
                       + step + f"\n  errno: {errno}")
        assert sr.result.error is None, (step, sr.result.error)


def test_the_moved_copy_is_on_the_lru_right_after_mremap():
    # break_ksm()'s copy goes into this CPU's lru_add batch; unmapping the source range
    # (vms_clear_ptes(), unmap_region() in v6.1) drains the batch first, so the copy is on
    # the LRU when mremap returns, as /proc/kpageflags showed on the real 6.1 guest
    # (scenarios/calibration/probes/hugh-memcg-race.yaml: "lru" at base + 2 pages).
    sr = run_steps(HUGH_PREFIX + HUGH_MREMAP, model="v6.1")
    copy, _ = folio_at(sr, name(sr, "base") + 2 * P)
    assert not folio_test_ksm(copy)
    assert copy.cpu < 0 and copy.flags & PG_lru and not sr.k.lru_add[0]


def test_munmap_and_dontneed_drain_the_lru_add_batch():
    for last in ("- munmap: {addr: b, length: 1 page}",
                 "- madvise: {addr: b, length: 1 page, advice: MADV_DONTNEED}"):
        sr = run_steps(f"""
            - mmap: {{as: a, length: 4 pages}}
            - mmap: {{as: b, length: 1 page}}
            - memset: {{addr: a, value: 1, length: 4 pages}}
            {last}
        """)
        f, _ = folio_at(sr, name(sr, "a"))
        assert f.flags & PG_lru and f.cpu < 0 and not sr.k.lru_add[0], last
    sr = run_steps("""
        - mmap: {as: a, length: 4 pages}
        - memset: {addr: a, value: 1, length: 4 pages}
    """)
    assert sum(f.nr for f in sr.k.lru_add[0]) == 4  # still batched (4 < FOLIO_BATCH_SIZE)
