"""mm/mmap.c, mm/vma.c: placement, vm_pgoff, split and merge rules, errors."""

from tests.mm.conftest import P, name, run_steps, vmas


def test_mmap_pgoff_is_address_and_placement_is_top_down():
    sr = run_steps("""
        - mmap: {as: a, length: 3 pages}
        - mmap: {as: b, length: 512K}
    """)
    a, b = name(sr, "a"), name(sr, "b")
    assert b == a - 512 * 1024  # directly below, as on a real x86-64 kernel
    # different vm_flags? no: same flags and contiguous pgoffs -> one merged vma
    assert vmas(sr) == [(b, a + 3 * P, b // P)]


def test_flags_change_splits_with_linear_pgoff_and_merges_back():
    sr = run_steps("""
        - mmap: {as: a, length: 3 pages}
        - madvise: {addr: a + 1 page, length: 1 page, advice: MADV_DONTFORK}
    """)
    a = name(sr, "a")
    assert vmas(sr) == [(a, a + P, a // P), (a + P, a + 2 * P, a // P + 1),
                        (a + 2 * P, a + 3 * P, a // P + 2)]
    sr = run_steps("""
        - mmap: {as: a, length: 3 pages}
        - madvise: {addr: a + 1 page, length: 1 page, advice: MADV_DONTFORK}
        - madvise: {addr: a + 1 page, length: 1 page, advice: MADV_DOFORK}
    """)
    assert vmas(sr) == [(name(sr, "a"), name(sr, "a") + 3 * P, name(sr, "a") // P)]


def test_vmas_with_different_flags_do_not_merge():
    sr = run_steps("""
        - mmap: {as: a, length: 3 pages}
        - madvise: {addr: a, length: 3 pages, advice: MADV_MERGEABLE}
        - mmap: {as: b, length: 2 pages}
    """)
    assert len(vmas(sr)) == 2


def test_munmap_middle_leaves_two_vmas_keeping_pgoffs():
    sr = run_steps("""
        - mmap: {as: a, length: 4 pages}
        - munmap: {addr: a + 1 page, length: 2 pages}
    """)
    a = name(sr, "a")
    assert vmas(sr) == [(a, a + P, a // P), (a + 3 * P, a + 4 * P, a // P + 3)]


def test_first_fault_reuses_a_compatible_neighbours_anon_vma():
    # find_mergeable_anon_vma(): vmas differing only in access flags share one anon_vma
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - mprotect: {addr: a, length: 1 page, prot: [PROT_READ, PROT_WRITE, PROT_EXEC]}
        - memset: {addr: a, value: 1, length: 1 page}
        - memset: {addr: a + 1 page, value: 1, length: 1 page}
    """)
    v0, v1 = sr.k.tasks["main"].mm.vmas
    assert v0.anon_vma is not None and v0.anon_vma is v1.anon_vma


def test_syscall_errors():
    cases = [
        ("- munmap: {addr: a + 1, length: 1 page}\n  errno: EINVAL", "EINVAL"),
        ("- madvise: {addr: a + 8 pages, length: 1 page, advice: MADV_DONTFORK}\n  errno: ENOMEM",
         "ENOMEM"),
        ("- madvise: {addr: a, length: 1 page, advice: MADV_REMOVE}\n  errno: EINVAL", "EINVAL"),
        ("- mprotect: {addr: a + 1, length: 1 page, prot: [PROT_READ]}\n  errno: EINVAL",
         "EINVAL"),
    ]
    for step, want in cases:
        sr = run_steps("- mmap: {as: a, length: 2 pages}\n" + step)
        assert sr.result.error is None, sr.result.error
        assert [o.errno for o in sr.result.step_outcomes] == [want]


def test_unexpected_errno_fails_the_run_at_its_step():
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - munmap: {addr: a + 1, length: 1 page}
        - memset: {addr: a, value: 1, length: 1 page}
    """)
    assert sr.result.status == "error"
    assert (sr.result.error.step, sr.result.error.errno) == (1, "EINVAL")


def test_access_outside_any_vma_is_sigsegv_and_write_to_readonly_too():
    sr = run_steps("""
        - mmap: {as: a, length: 1 page}
        - memset: {addr: a + 1 page, value: 1, length: 1 page}
          signal: SIGSEGV
        - mprotect: {addr: a, length: 1 page, prot: [PROT_READ]}
        - memset: {addr: a, value: 1, length: 1 page}
          signal: SIGSEGV
        - read: {addr: a, length: 1 page}
    """)
    assert sr.result.error is None
    assert [o.signal for o in sr.result.step_outcomes] == ["SIGSEGV", "SIGSEGV"]


def test_first_fault_does_not_reuse_anon_vma_across_other_flags():
    sr = run_steps("""
        - mmap: {as: a, length: 2 pages}
        - madvise: {addr: a, length: 1 page, advice: MADV_HUGEPAGE}
        - memset: {addr: a, value: 1, length: 1 page}
        - memset: {addr: a + 1 page, value: 1, length: 1 page}
    """)
    v0, v1 = sr.k.tasks["main"].mm.vmas
    assert v0.anon_vma is not None and v1.anon_vma is not None
    assert v0.anon_vma is not v1.anon_vma


def test_advice_that_changes_nothing_does_not_split():
    # madvise_update_vma(): new_flags == vm_flags returns early
    sr = run_steps("""
        - mmap: {as: a, length: 3 pages}
        - madvise: {addr: a, length: 3 pages, advice: MADV_DONTFORK}
        - madvise: {addr: a + 1 page, length: 1 page, advice: MADV_DONTFORK}
        - mprotect: {addr: a + 1 page, length: 1 page, prot: [PROT_READ, PROT_WRITE]}
    """)
    assert len(vmas(sr)) == 1
